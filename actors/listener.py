"""Listener: polls the channel's web preview and hands each new post on exactly once.

"Seen" is owned by the journal, not by this actor: a restarted Listener asks the journal for the last
message id and pages back over any gap, so nothing is missed and nothing is handed on twice.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from actors.base import SupervisedActor
from actors.messages import PostEdited, PostSeen, Tick
from parsing.posts import Post
from parsing.web_preview import (
    PreviewError,
    PreviewRateLimited,
    WebPreviewClient,
    catch_up,
)
from trading.journal import Journal

log = logging.getLogger("following.listener")


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
        delay = min(self.backoff_max_s, self.interval_s * (2 ** min(self.failures, 16)))
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return delay + self._rng.uniform(0, self.jitter_s)


class Listener(SupervisedActor):
    def __init__(
        self,
        *,
        client: WebPreviewClient,
        journal: Journal,
        parser: Any,
        metrics: Any,
        interval_s: float,
        jitter_s: float = 0.0,
        backoff_max_s: float = 300.0,
        max_catch_up_pages: int = 10,
        skip_history_on_first_start: bool = True,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        self._client = client
        self._journal = journal
        self._parser = parser
        self._metrics = metrics
        self._plan = PollPlan(interval_s, jitter_s, backoff_max_s, random.Random())
        self._max_pages = max_catch_up_pages
        self._skip_history = skip_history_on_first_start

    def on_started(self) -> None:
        self.schedule_once(0.0, Tick("poll"))

    def handle(self, message: Any) -> Any:
        if isinstance(message, Tick) and message.what == "poll":
            self.schedule_once(self._poll(), Tick("poll"))
        return None

    def _poll(self) -> float:
        """Poll once; returns the delay before the next poll."""
        channel = self._client.channel
        started = time.monotonic()
        try:
            last_seen = self._journal.last_message_id(channel)
            # The latest page carries the new posts and the recent old ones (whose edits we must see);
            # only when it does not reach back to the last post seen is there a gap to page over.
            posts = self._client.fetch_latest()
            baseline_flag = f"listener_baseline:{channel}"
            if last_seen is None and self._skip_history and self._journal.get_flag(baseline_flag) is None:
                self._record_history(posts)
                self._journal.set_flag(baseline_flag, str(time.time()))
                posts = []
            elif last_seen is not None and (not posts or min(p.message_id for p in posts) > last_seen + 1):
                posts = catch_up(self._client, last_seen, self._max_pages)
        except PreviewRateLimited as exc:
            self._metrics.poll_errors.labels(source="listener").inc()
            log.warning("channel preview rate limited; backing off")
            return self._plan.after_failure(exc.retry_after)
        except PreviewError as exc:
            self._metrics.poll_errors.labels(source="listener").inc()
            log.warning("channel preview poll failed: %s", exc)
            return self._plan.after_failure()
        finally:
            self._metrics.poll_seconds.labels(source="listener").observe(time.monotonic() - started)
        for post in sorted(posts, key=lambda p: p.message_id):
            self._hand_on(post)
        return self._plan.after_success()

    def _record_history(self, posts: list[Post]) -> None:
        """First start on a channel: what is already there is history, not a signal to act on. Each post is
        journaled as seen and as read (decision "history"), so no restart ever reads it as new."""
        for post in posts:
            self._journal.record_post(post)
            self._journal.record_signal(post.channel, post.message_id, {}, "history",
                                        "on the channel before the first start")
        log.info("first start on %s: %d existing posts recorded, not traded", self._client.channel, len(posts))

    def _hand_on(self, post: Post) -> None:
        result = self._journal.record_post(post)
        if result.status == "new":
            self._metrics.posts_total.inc()
            self._parser.tell(PostSeen(post))
        elif result.status == "edited":
            self._parser.tell(PostEdited(post, result.previous_text or ""))
