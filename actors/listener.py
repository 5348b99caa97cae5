"""Listener: polls the channel (web preview or user client) and hands each new post on exactly once.

"Seen" is owned by the journal, not by this actor: a restarted Listener asks the journal for the last
message id and pages back over any gap, so nothing is missed and nothing is handed on twice. The work of one
poll lives in the plain ``ChannelPoller``; the actor only schedules it, on a thread of its own.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pykka

from actors.base import SupervisedActor
from actors.messages import PostEdited, PostSeen, Tick
from exchange.backoff import capped_exponential
from parsing.media import MediaStore, MediaUrlRefused
from parsing.posts import Post, PostSource, PostSourceError, PostSourceRateLimited
from parsing.web_preview import PreviewRedirected, catch_up
from trading.journal import Journal, PostStatus
from trading.signal_age import posted_epoch

log = logging.getLogger("following.listener")

CHANNEL_POLLED = "channel_polled"  # the /readyz fact: the channel was read successfully at least once
_EMPTY_BASELINE_SKEW_S = 2.0  # post dates have second resolution and the channel's clock is not ours


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
        hand_on: Callable[[Any], Any],
        metrics: Any,
        plan: PollPlan,
        max_catch_up_pages: int = 10,
        skip_history_on_first_start: bool = True,
        media: MediaStore | None = None,
        status: Any = None,
    ) -> None:
        self.source = source
        self._status = status  # /readyz: red until the first successful poll of the channel
        self._journal = journal
        self._hand_on = hand_on
        self._metrics = metrics
        self.plan = plan
        self._max_pages = max_catch_up_pages
        self._skip_history = skip_history_on_first_start
        self._media = media

    def poll(self) -> float:
        channel = self.source.channel
        started = time.monotonic()
        try:
            last_seen = self._journal.last_message_id(channel)
            first_start = self._first_start(channel) if last_seen is None and self._skip_history else None
            # The latest page carries the new posts and the recent old ones (whose edits we must see);
            # only when it does not reach back to the last post seen is there a gap to page over.
            posts = self.source.fetch_latest()
            if first_start is not None:
                posts = self._split_history(channel, posts, first_start)
            elif last_seen is not None and (not posts or min(p.message_id for p in posts) > last_seen + 1):
                posts = catch_up(self.source, last_seen, self._max_pages, on_gap=self._record_gap)
        except PostSourceRateLimited as exc:
            self._poll_failed(f"rate limited ({exc})")
            log.warning("%s: rate limited (%s); backing off", channel, exc)
            return self.plan.after_failure(exc.retry_after)
        except PreviewRedirected as exc:
            self._poll_failed(f"no public web preview: {exc}")
            log.error("%s has no public web preview: %s; check listener.target_url", channel, exc)
            return self.plan.after_failure()
        except PostSourceError as exc:
            self._poll_failed(f"poll failed: {exc}")
            log.warning("%s: poll failed: %s", channel, exc)
            return self.plan.after_failure()
        finally:
            self._metrics.observe_poll("listener", time.monotonic() - started)
        for post in sorted(posts, key=lambda p: p.message_id):
            self._take(post)
        if self._status is not None and not self._status.get(CHANNEL_POLLED):
            self._status.set(CHANNEL_POLLED, True)
        return self.plan.after_success()

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
        history, new = [], []
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

    def _record_gap(self, first_id: int, last_id: int) -> None:
        self._journal.record_event(
            "CATCH_UP_INCOMPLETE",
            {"channel": self.source.channel, "first_missing": first_id, "last_missing": last_id,
             "pages": self._max_pages},
        )

    def _take(self, post: Post) -> None:
        result = self._journal.record_post(post)
        if result.status is PostStatus.DUPLICATE:
            return
        message: PostSeen | PostEdited
        if result.status is PostStatus.NEW:
            self._metrics.post_seen()
            message = PostSeen(post)
        else:
            message = PostEdited(post, result.previous_text or "")
        self._store_images(post)  # first, so the reader of the post (the vision model) finds its images
        self._hand_on(message)

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


class Listener(SupervisedActor):
    """Schedules polls; each poll runs on a thread of its own, so a page that takes its full timeout (or a
    catch-up over several pages) never leaves the supervisor's heartbeat unanswered. A poll still running
    past ``poll_deadline_s`` is a real hang: the actor fails and the supervisor restarts it."""

    def __init__(
        self,
        *,
        client: PostSource,
        journal: Journal,
        parser: Any,
        metrics: Any,
        interval_s: float,
        jitter_s: float = 0.0,
        backoff_max_s: float = 300.0,
        max_catch_up_pages: int = 10,
        skip_history_on_first_start: bool = True,
        media: MediaStore | None = None,
        poll_deadline_s: float | None = None,
        status: Any = None,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        self._poller = ChannelPoller(
            source=client, journal=journal, hand_on=parser.tell, metrics=metrics,
            plan=PollPlan(interval_s, jitter_s, backoff_max_s, random.Random()),
            max_catch_up_pages=max_catch_up_pages, skip_history_on_first_start=skip_history_on_first_start,
            media=media, status=status,
        )
        # every page of a full catch-up taking its whole timeout, and some slack
        page_timeout = float(getattr(client, "timeout", 30.0))
        self._poll_deadline_s = poll_deadline_s or page_timeout * (max_catch_up_pages + 2) + 10.0
        self._executor: ThreadPoolExecutor | None = None
        self._poll_started: float | None = None

    def on_started(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.name}-poll")
        self.schedule_once(0.0, Tick("poll"))
        self.schedule_every(max(0.1, self._poll_deadline_s / 10), Tick("poll_watch"))

    def handle(self, message: Any) -> Any:
        if isinstance(message, Tick) and message.what == "poll":
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

    def _poll_done(self, future: Future[float]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        finished = _PollFinished(0.0, error) if error is not None else _PollFinished(future.result())
        with contextlib.suppress(pykka.ActorDeadError):  # stopped meanwhile: nobody to schedule for
            self.actor_ref.tell(finished)
