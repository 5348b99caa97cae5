"""Listener: polls the channel (web preview or user client) and hands each new post on exactly once.

"Seen" is owned by the journal, not by this actor: a restarted Listener asks the journal for the last
message id and pages back over any gap, so nothing is missed and nothing is handed on twice. The work of one
poll lives in the plain ``ChannelPoller``; the actor only schedules it, on a thread of its own.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pykka

from actors.base import SupervisedActor
from actors.messages import PostEdited, PostSeen, Tick
from actors.ports import Notices, Recipient, StatusBoard
from exchange.backoff import capped_exponential
from ops.metrics import Metrics
from ops.repeats import RepeatedFailures
from parsing.media import MediaStore, MediaUrlRefused
from parsing.posts import Post, PostSource, PostSourceError, PostSourceRateLimited, post_link
from parsing.rules import parse_text
from parsing.signals import Kind
from parsing.telegram_source import Pushed, TelegramSetupError
from parsing.tme import UNREADABLE_MEDIA, skipped_messages
from parsing.web_preview import CatchUp, PreviewRedirected, catch_up_report
from runtime.config import ListenerConfig
from trading.journal import Journal, PostStatus
from trading.linking import OpenSignal, UpdateToLink, may_concern_open_signal
from trading.modes import Mode
from trading.signal_age import posted_epoch

log = logging.getLogger("following.listener")

CHANNEL_POLLED = "channel_polled"  # the /readyz fact: the channel was read successfully at least once
SKIPPED = "skipped"  # the decision journaled for a post read past the catch-up pages and not handed on
_LINKS_SHOWN = 5  # links listed at each end of a long list of posts in a notice
_EMPTY_BASELINE_SKEW_S = 60.0  # after an empty first page: slack for our clock against the channel's
PUSH_MISSED = "PUSH_MISSED"  # the journal event: posts the poll found that Telegram never pushed
_PUSH_GRACE_S = 10.0  # a post the poll took first is a missed push only if no push came for it this long
_PUSH_GAP_MAX = 20  # a pushed post this far past the last one seen, with ids between not pushed: left to the poll
_PUSHED_KEPT = 2_000  # pushed ids remembered (the newest)
_AFTER_PAGE_FULL = 10  # a newer-posts page this long may have more behind it: the newest page decides instead


class PollPlan:
    """When to poll next: the interval with jitter, exponential backoff after failures. Pure."""

    def __init__(self, interval_s: float, jitter_s: float, backoff_max_s: float, rng: random.Random) -> None:
        self.interval_s = interval_s
        self.jitter_s = jitter_s
        self.backoff_max_s = backoff_max_s
        self.failures = 0
        self._rng = rng

    def after_success(self) -> float:
        self.failures = 0
        return self.interval_s + self._rng.uniform(0, self.jitter_s)

    def after_failure(self, retry_after_s: float | None = None) -> float:
        self.failures += 1
        delay = capped_exponential(self.failures + 1, base=self.interval_s, cap=self.backoff_max_s)
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return delay + self._rng.uniform(0, self.jitter_s)


class ChannelPoller:
    """One poll of a channel: read the newest page (paging back over a gap), journal every post, download
    new images, and hand new posts and edits on in message-id order. Returns the delay before the next poll.

    The first start on a channel records what is already there as history (never handed on). A failed
    image download is journaled as an event; the post is handed on all the same.
    """

    def __init__(
        self,
        *,
        source: PostSource,
        journal: Journal,
        hand_on: Callable[[PostSeen | PostEdited], object],
        metrics: Metrics,
        plan: PollPlan,
        max_catch_up_pages: int = 10,
        skip_history_on_first_start: bool = True,
        media: MediaStore | None = None,
        status: StatusBoard | None = None,
        catch_up_extra_seconds: float = 30.0,
        notify: Callable[[str, str], None] | None = None,
        push_missed_grace_s: float = _PUSH_GRACE_S,
        full_page_every: int = 1,
    ) -> None:
        self.source = source
        # Lighter polls: between two reads of the newest page (every full_page_every polls: edits of recent posts
        # show only there) only the posts after the last one seen are asked for (?after=).
        self._full_page_every = max(1, full_page_every)
        self._polls = 0
        self._newest_read = False  # a poll of this instance read the newest page successfully
        self._push_grace_s = push_missed_grace_s
        self._extra_s = catch_up_extra_seconds
        self._notify = notify
        self._status = status  # /readyz: red until the first successful poll of the channel
        self._journal = journal
        self._hand_on = hand_on
        self._metrics = metrics
        self.plan = plan
        self._max_pages = max_catch_up_pages
        self._skip_history = skip_history_on_first_start
        self._media = media
        self._repeats = RepeatedFailures(log)  # an outage is said once, then counted
        # Push (Telegram mode): ids Telegram pushed, the last id seen when the subscription began (posts after it
        # should all be pushed), and posts the poll took first, waiting for their push until the grace ends.
        self._push_lock = threading.Lock()
        self._pushed: set[int] = set()
        self._push_from: int | None = None
        self._unpushed: dict[int, float] = {}
        self._push_from_pending = False
        self.on_pushed: Callable[[Pushed], None] | None = None  # set by the Listener to subscribe

    # --- push (Telegram mode): the poll stays, as catch-up and watchdog ----------------------------------------
    def note_pushed(self, message_id: int) -> None:
        """Telegram pushed ``message_id`` (called on the source's thread, before the post is taken)."""
        with self._push_lock:
            self._pushed.add(message_id)
            if len(self._pushed) > _PUSHED_KEPT:
                for old in sorted(self._pushed)[: len(self._pushed) - _PUSHED_KEPT]:
                    self._pushed.discard(old)

    def _was_pushed(self, post: Post) -> bool:
        with self._push_lock:
            return any(i in self._pushed for i in (post.album_ids or (post.message_id,)))

    def take_pushed(self, pushed: Pushed) -> bool:
        """A pushed message, taken at once when nothing can be missing before it; else left to the next poll,
        which reads it in order (an album item, a post after a gap, anything before the first poll). True when
        the post was taken."""
        channel = self.source.channel
        last_seen = self._journal.last_message_id(channel)
        post = pushed.post
        if post is None or last_seen is None or post.channel != channel:
            return False
        if pushed.edit:
            if post.message_id > last_seen:
                return False  # an edit of a post not seen yet: the poll reads its latest text
            self._take(post)
            return True
        if post.message_id <= last_seen:
            self._take(post)  # seen already (the poll was first): a duplicate, unless its text changed
            return True
        between = range(last_seen + 1, post.message_id)
        with self._push_lock:
            complete = len(between) < _PUSH_GAP_MAX and all(i in self._pushed for i in between)
        if not complete:
            return False
        self._take(post)
        self._repeats.succeeded(f"{channel}: push")
        return True

    def _subscribe(self) -> bool:
        """Subscribe to pushes when not subscribed on the current connection; True when it happened now."""
        subscribe = getattr(self.source, "subscribe", None)
        if self.on_pushed is None or subscribe is None or getattr(self.source, "subscribed", False):
            return False
        channel = self.source.channel
        try:
            newly = bool(subscribe(self.on_pushed))
        except (PostSourceError, TelegramSetupError) as exc:
            self._repeats.failed(f"{channel}: push subscription", f"{channel}: push unavailable ({exc}); polling")
            return False
        self._repeats.succeeded(f"{channel}: push subscription")
        if newly:
            log.info("%s: new and edited messages are pushed; polling every %.3gs as catch-up",
                     channel, self.plan.interval_s)
        return newly

    def _pushes_expected_after(self, channel: str) -> None:
        """Posts up to the last one seen by the poll that subscribed came before the subscription."""
        with self._push_lock:
            self._push_from = self._journal.last_message_id(channel) or 0

    def _missed_pushes(self, taken: list[Post]) -> None:
        """Posts the poll took as new: a push still missing after the grace means the push stream lost them (the
        poll repaired it); journaled and logged, so a silent stream shows."""
        now = time.monotonic()
        with self._push_lock:
            if self._push_from is None:
                return
            for post in taken:
                if post.message_id > self._push_from:
                    self._unpushed.setdefault(post.message_id, now)
            pending = dict(self._unpushed)
        missed = []
        for message_id, since in sorted(pending.items()):
            album = next((p for p in taken if p.message_id == message_id), None)
            if self._was_pushed(album or Post(self.source.channel, message_id, "")):
                self._unpushed.pop(message_id, None)
            elif now - since >= self._push_grace_s:
                missed.append(message_id)
                self._unpushed.pop(message_id, None)
        if missed:
            channel = self.source.channel
            # Said once, then counted (a channel the account has not joined is never pushed: every post is missed).
            self._repeats.failed(f"{channel}: push", f"{channel}: posts not pushed by Telegram were read by the "
                                 "catch-up poll (PUSH_MISSED); push needs the account to be a member of the channel")
            self._journal.record_event(PUSH_MISSED, {"channel": channel, "count": len(missed),
                                                     "message_ids": missed[:500]})

    def _newer_only(self, last_seen: int | None) -> list[Post] | None:
        """The posts after ``last_seen`` when a lighter poll can tell everything (None: read the newest page).

        The newest page is read on the first poll, after a failed one, every ``full_page_every`` polls (edits),
        and whenever the newer posts do not follow on from the last one seen (a gap, an album) or may be more
        than one page (the catch-up rules decide then); a newer-posts page is only ever taken when nothing can
        be missing before it."""
        fetch_after = getattr(self.source, "fetch_after", None)
        if (fetch_after is None or last_seen is None or self._full_page_every <= 1 or not self._newest_read
                or self.plan.failures > 0 or self._polls % self._full_page_every == 0):
            return None
        posts: list[Post] = fetch_after(last_seen)
        if not posts:
            return []
        ids = sorted(p.message_id for p in posts)
        if ids[0] != last_seen + 1 or len(posts) >= _AFTER_PAGE_FULL:
            return None
        return posts

    def poll(self) -> float:
        channel = self.source.channel
        if self._subscribe():
            self._push_from_pending = True  # set by the first successful poll from now on
        started = time.monotonic()
        self._polls += 1
        try:
            last_seen = self._journal.last_message_id(channel)
            first_start = self._first_start(channel) if last_seen is None and self._skip_history else None
            # The latest page carries the new posts and the recent old ones (whose edits we must see);
            # only when it does not reach back to the last post seen is there a gap to page over.
            caught: CatchUp | None = None
            newer = self._newer_only(last_seen) if first_start is None else None
            if newer is not None:  # nothing can be missing before these
                posts, latest_page = newer, getattr(self.source, "last_html", "")
            else:
                posts = self.source.fetch_latest()
                latest_page = getattr(self.source, "last_html", "")  # the web preview's page (catch-up pages follow)
                self._newest_read = True
                if first_start is not None:
                    posts = self._split_history(channel, posts, first_start)
                elif last_seen is not None and (not posts or min(p.message_id for p in posts) > last_seen + 1):
                    caught = catch_up_report(self.source, last_seen, self._max_pages,
                                             keep_beyond=self._open_signal_filter(), extra_seconds=self._extra_s)
                    posts = caught.posts
        except PostSourceRateLimited as exc:
            self._poll_failed(f"rate limited ({exc})")
            self._repeats.failed(f"{channel}: channel poll", f"{channel}: rate limited ({exc}); backing off")
            return self.plan.after_failure(exc.retry_after)
        except PreviewRedirected as exc:
            self._poll_failed(f"no public web preview: {exc}")
            self._repeats.failed(f"{channel}: channel poll", f"{channel} has no public web preview: {exc}; check "
                                 "listener.target_url", level=logging.ERROR)
            return self.plan.after_failure()
        except PostSourceError as exc:
            self._poll_failed(f"poll failed: {exc}")
            self._repeats.failed(f"{channel}: channel poll", f"{channel}: poll failed: {exc}")
            return self.plan.after_failure()
        finally:
            self._metrics.observe_poll("listener", time.monotonic() - started)
        self._repeats.succeeded(f"{channel}: channel poll")
        skipped: list[Post] = []
        if caught is not None:
            if caught.missing is not None:
                self._record_gap(caught)
            skipped = caught.skipped
            if skipped:
                self._report_skipped(skipped)
        # one pass in id order: the journal's last post seen only ever moves past posts taken or set aside
        set_aside = {post.message_id for post in skipped}
        taken: list[Post] = []
        for post in sorted([*posts, *skipped], key=lambda p: p.message_id):
            if post.message_id in set_aside:
                self._record_skipped(post)
            elif self._take(post):
                taken.append(post)
        if self._push_from_pending:
            self._push_from_pending = False
            self._pushes_expected_after(channel)
        else:
            self._missed_pushes(taken)
        if self._status is not None and not self._status.get(CHANNEL_POLLED):
            self._status.set(CHANNEL_POLLED, True)
        self._report_unreadable(latest_page, last_seen, first_start)
        return self.plan.after_success()

    def _report_unreadable(self, page: str, last_seen: int | None, first_start: float | None) -> None:
        """A post whose media the web preview does not show (a video or file without a picture, media only the
        app shows) may carry a signal the bot cannot read: each new one is journaled and told once, with its
        link. On the first start, those published before it are history, like every other post."""
        if not page:
            return
        channel = self.source.channel
        for message in skipped_messages(page):
            if message.kind not in UNREADABLE_MEDIA or (last_seen is not None and message.message_id <= last_seen):
                continue
            flag = f"unreadable_post:{channel}:{message.message_id}"
            if self._journal.get_flag(flag) is not None:
                continue
            self._journal.set_flag(flag, str(time.time()))
            published = posted_epoch(message.date)
            if first_start is not None and (published is None or published <= first_start):
                continue
            link = post_link(channel, message.message_id)
            self._journal.record_event("POST_UNREADABLE", {"channel": channel, "message_id": message.message_id,
                                                           "kind": message.kind, "link": link})
            self._tell_user("POST_UNREADABLE", f"{channel}: post {message.message_id} ({message.kind}) cannot be read "
                                               "on the web preview; if it is a signal or an update, it was not "
                                               f"acted on: read it in Telegram: {link}")

    def _poll_failed(self, why: str) -> None:
        self._metrics.poll_error("listener")
        if self._status is not None and not self._status.get(CHANNEL_POLLED):
            self._status.set(CHANNEL_POLLED, False, f"no successful poll of the channel yet ({why[:200]})")

    def _first_start(self, channel: str) -> float:
        """When the bot first tried to read this channel (journaled at the first attempt, kept across restarts)."""
        flag = f"listener_first_start:{channel}"
        stored = self._journal.get_flag(flag)
        if stored is None:
            baseline = self._journal.get_flag(f"listener_baseline:{channel}")  # a journal from before this flag
            stored = baseline or str(time.time())
            self._journal.set_flag(flag, stored)
        return float(stored)

    def _split_history(self, channel: str, posts: list[Post], first_start: float) -> list[Post]:
        """No post of this channel journaled yet: posts published before the first start (undated ones on the
        first page) are history, journaled and never traded; posts published since (while the channel was
        unreachable, or after an empty first page) are handed on. The first successful page sets the baseline;
        once the channel showed no post at it, a post dated well before it can only come from a page misread as
        empty, and stays history too."""
        baseline_flag = f"listener_baseline:{channel}"
        baseline = self._journal.get_flag(baseline_flag)
        # Post dates have second resolution: a post in the very second of the first start counts as history.
        cutoff = first_start if baseline is None else first_start - _EMPTY_BASELINE_SKEW_S
        history: list[Post] = []
        new: list[Post] = []
        for post in posts:
            published = posted_epoch(post.date)
            # undated: history on the first page, new after an empty one
            is_new = baseline is not None if published is None else published > cutoff
            (new if is_new else history).append(post)
        self._record_history(history)
        if baseline is None:
            self._journal.set_flag(baseline_flag, str(time.time()))
        return new

    def _record_history(self, posts: list[Post]) -> None:
        """First start on a channel: what is already there is history, not a signal to act on. Each post is
        journaled as seen and as read (decision "history"), so no restart ever reads it as new."""
        for post in posts:
            self._journal.record_post(post)
            self._journal.record_signal(post.channel, post.message_id, {}, "history",
                                        "on the channel before the first start")
        if posts:
            log.info("first start on %s: %d existing posts recorded, not traded", self.source.channel, len(posts))

    def _open_signal_filter(self) -> Callable[[Post], bool]:
        """Past the catch-up pages only posts that may act on an open signal are handed on (an exit must not be
        lost); the rules read each post for the reply, signal id, post link or coin it names."""
        open_now = [OpenSignal(row.id, row.channel, row.message_id, row.symbol, row.parsed.get("signal_ref"))
                    for row in self._journal.open_signals() if row.symbol]

        def concerns_open_signal(post: Post) -> bool:
            if not open_now:
                return False
            try:
                readings = parse_text(post.text) if post.text else []
            except Exception:  # a post the rules cannot read may still be an exit: hand it on
                return True
            updates = [UpdateToLink(post.channel, post.reply_to, signal_ref=r.signal_ref, symbol=r.symbol)
                       for r in readings if r.kind not in (Kind.ENTRY, Kind.NOISE)]
            return any(may_concern_open_signal(update, open_now)
                       for update in updates or [UpdateToLink(post.channel, post.reply_to)])

        return concerns_open_signal

    def _tell_user(self, kind: str, text: str) -> None:
        if self._notify is not None:
            self._notify(kind, text)

    def _record_gap(self, caught: CatchUp) -> None:
        """Posts that could not be read at all: journaled and told, with links, so the user can read them."""
        assert caught.missing is not None
        channel = self.source.channel
        first, last = caught.missing
        links = [post_link(channel, first)] if first == last else [post_link(channel, first), post_link(channel, last)]
        self._journal.record_event(
            "CATCH_UP_INCOMPLETE",
            {"channel": channel, "first_missing": first, "last_missing": last, "pages": caught.pages,
             "reason": caught.why_missing[:300], "links": links},
        )
        self._tell_user("CATCH_UP_INCOMPLETE",
                        f"{channel}: posts {first}-{last} could not be read after a gap ({caught.why_missing[:200]}); "
                        "whatever they said was not acted on, read them: " + " … ".join(links))

    def _report_skipped(self, skipped: list[Post]) -> None:
        """Posts read past the catch-up pages and set aside (about no open signal): journaled and told."""
        channel = self.source.channel
        ids = [post.message_id for post in skipped]
        shown = ids if len(ids) <= 2 * _LINKS_SHOWN else [*ids[:_LINKS_SHOWN], *ids[-_LINKS_SHOWN:]]
        links = [post_link(channel, message_id) for message_id in shown]
        self._journal.record_event(
            "CATCH_UP_SKIPPED", {"channel": channel, "count": len(ids), "message_ids": ids[:500], "links": links},
        )
        listed = " ".join(links) if len(ids) == len(shown) else (
            " ".join(links[:_LINKS_SHOWN]) + " … " + " ".join(links[_LINKS_SHOWN:]))
        self._tell_user("CATCH_UP_SKIPPED", f"{channel}: {len(ids)} older post(s) past the catch-up pages were "
                                            f"read and not acted on (about no open signal): {listed}")

    def _record_skipped(self, post: Post) -> None:
        result = self._journal.record_post(post)
        if result.status is PostStatus.NEW:
            self._journal.record_signal(post.channel, post.message_id, {}, SKIPPED,
                                        "past the catch-up pages and about no open signal")

    def _take(self, post: Post) -> bool:
        """Journal the post and hand it on when new or edited; True when it was new."""
        result = self._journal.record_post(post)
        if result.status is PostStatus.DUPLICATE:
            return False
        message: PostSeen | PostEdited
        if result.status is PostStatus.NEW:
            self._metrics.post_seen()
            message = PostSeen(post)
        else:
            message = PostEdited(post, result.previous_text or "")
        self._store_images(post)  # first, so the reader of the post (the vision model) finds its images
        self._hand_on(message)
        return result.status is PostStatus.NEW

    def _store_images(self, post: Post) -> None:
        if self._media is None:
            return
        for url in post.image_urls:
            try:
                self._media.fetch(url)
            except MediaUrlRefused as exc:  # a host off the allow-list: never fetched, and said so
                log.warning("%s/%d: image URL refused: %s", post.channel, post.message_id, exc)
                self._journal.record_event(
                    "MEDIA_URL_REFUSED", {"channel": post.channel, "message_id": post.message_id, "url": url[:500]},
                )
            except Exception as exc:  # a lost image must never cost the post (it is journaled already)
                log.warning("%s/%d: image not stored: %s", post.channel, post.message_id, exc)
                self._journal.record_event(
                    "MEDIA_DOWNLOAD_FAILED",
                    {"channel": post.channel, "message_id": post.message_id, "url": url,
                     "error": f"{type(exc).__name__}: {exc}"[:300]},
                )


@dataclass(frozen=True)
class _PollFinished:
    """Told to the Listener by its poll thread (internal)."""

    delay_s: float
    error: BaseException | None = None


@dataclass(frozen=True)
class ListenerSettings:
    """How the Listener polls its channel (``listener``) and how long one poll may take."""

    interval_s: float
    jitter_s: float = 0.0
    backoff_max_s: float = 300.0
    max_catch_up_pages: int = 10
    catch_up_extra_seconds: float = 30.0
    skip_history_on_first_start: bool = True
    poll_deadline_s: float | None = None  # None: derived from the page timeout and the catch-up bounds
    push: bool = False  # Telegram mode (telegram.push): new and edited messages pushed, the poll as catch-up
    push_missed_grace_s: float = _PUSH_GRACE_S  # a post only the poll found is reported once no push came this long
    full_page_every: int = 1  # listener.full_page_every_polls: the newest page every N polls, newer posts between

    @classmethod
    def from_config(cls, listener: ListenerConfig, *, skip_history_on_first_start: bool,
                    push: bool = False) -> ListenerSettings:
        return cls(
            push=push, full_page_every=listener.full_page_every_polls,
            interval_s=listener.polling_seconds, jitter_s=listener.jitter_seconds,
            backoff_max_s=listener.backoff_max_seconds, max_catch_up_pages=listener.max_catch_up_pages,
            catch_up_extra_seconds=listener.catch_up_extra_seconds,
            skip_history_on_first_start=skip_history_on_first_start,
        )


@dataclass(frozen=True)
class _Push:
    """A message Telegram pushed, told to the Listener by the source's thread (internal)."""

    pushed: Pushed
    at: float  # monotonic, when it arrived


@dataclass(frozen=True)
class _PushFailed:
    error: BaseException


class Listener(SupervisedActor):
    """Schedules polls; each poll runs on a thread of its own, so a page that takes its full timeout (or a
    catch-up over several pages) never leaves the supervisor's heartbeat unanswered. A poll still running
    past ``poll_deadline_s`` is a real hang: the actor fails and the supervisor restarts it."""

    def __init__(
        self,
        *,
        name: str,
        supervisor: Recipient | None,
        mode: Mode = Mode.NORMAL,
        settings: ListenerSettings,
        client: PostSource,
        journal: Journal,
        parser: Recipient,
        metrics: Metrics,
        media: MediaStore | None = None,
        status: StatusBoard | None = None,
        notifier: Notices | None = None,
    ) -> None:
        super().__init__(name, supervisor, mode=mode)
        self._poller = ChannelPoller(
            source=client, journal=journal, hand_on=parser.tell, metrics=metrics,
            plan=PollPlan(settings.interval_s, settings.jitter_s, settings.backoff_max_s, random.Random()),
            max_catch_up_pages=settings.max_catch_up_pages,
            skip_history_on_first_start=settings.skip_history_on_first_start,
            media=media, status=status, catch_up_extra_seconds=settings.catch_up_extra_seconds,
            notify=notifier.notify if notifier is not None else None,
            push_missed_grace_s=settings.push_missed_grace_s, full_page_every=settings.full_page_every,
        )
        # every page of a full catch-up taking its whole timeout (the last one past the extra time), and slack
        page_timeout = float(getattr(client, "timeout", 30.0))
        self._poll_deadline_s = settings.poll_deadline_s or (
            page_timeout * (settings.max_catch_up_pages + 3) + settings.catch_up_extra_seconds + 10.0)
        self._executor: ThreadPoolExecutor | None = None
        self._poll_started: float | None = None
        if settings.push:
            self._poller.on_pushed = self._pushed  # subscribed by the first poll, on the poll thread

    def _pushed(self, pushed: Pushed) -> None:
        """Called on the source's thread for each pushed message: noted at once (so a poll racing it does not
        call it missed), then taken on the poll thread, in turn with the polls."""
        self._poller.note_pushed(pushed.message_id)
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(_Push(pushed, time.monotonic()))

    def on_started(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.name}-poll")
        self.schedule_once(0.0, Tick("poll"))
        self.schedule_every(max(0.1, self._poll_deadline_s / 10), Tick("poll_watch"))

    def handle(self, message: Any) -> Any:
        if isinstance(message, _Push):
            if self._executor is not None:
                self._executor.submit(self._poller.take_pushed, message.pushed).add_done_callback(self._push_done)
        elif isinstance(message, _PushFailed):
            raise message.error  # the journal failed under a pushed post: the supervisor restarts us
        elif isinstance(message, Tick) and message.what == "poll":
            self._start_poll()
        elif isinstance(message, _PollFinished):
            self._poll_started = None
            if message.error is not None:
                raise message.error  # an unexpected failure (e.g. the journal): the supervisor restarts us
            self.schedule_once(message.delay_s, Tick("poll"))
        elif isinstance(message, Tick) and message.what == "poll_watch":
            started = self._poll_started
            if started is not None and time.monotonic() - started > self._poll_deadline_s:
                raise RuntimeError(f"poll of {self._poller.source.channel} stuck for more than "
                                   f"{self._poll_deadline_s:g}s")
        return None

    def on_stopped(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def _start_poll(self) -> None:
        if self._poll_started is not None or self._executor is None:
            return
        self._poll_started = time.monotonic()
        future = self._executor.submit(self._poller.poll)
        future.add_done_callback(self._poll_done)

    def _push_done(self, future: Future[bool]) -> None:
        if future.cancelled() or future.exception() is None:
            return
        error = future.exception()
        assert error is not None
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(_PushFailed(error))

    def _poll_done(self, future: Future[float]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        finished = _PollFinished(0.0, error) if error is not None else _PollFinished(future.result())
        with contextlib.suppress(pykka.ActorDeadError):  # stopped meanwhile: nobody to schedule for
            self.actor_ref.tell(finished)
