"""Runtime side of the client's rate-limit observer: a metric, a journaled event, safe mode on repeats.

The client (``exchange/``) cannot import actors; it reports to whatever object it is given. This one counts
the seconds waited, journals every 429 as ``RATE_LIMITED`` and, when the limits repeat within the configured
window (:class:`exchange.bitget.ratelimit.RepeatedLimitDetector`), asks for safe mode through a callback the
runtime connects to the Supervisor.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from exchange.bitget.ratelimit import RepeatedLimitDetector
from ops.metrics import Metrics
from runtime.plan_capability import EventJournal

log = logging.getLogger("following.ratelimit")

EVENT_RATE_LIMITED = "RATE_LIMITED"


class RateLimitReporter:
    """Implements :class:`exchange.bitget.ratelimit.RateLimitObserver`. Thread-safe; never raises."""

    def __init__(self, *, metrics: Metrics, journal: EventJournal, detector: RepeatedLimitDetector) -> None:
        self._metrics = metrics
        self._journal = journal
        self._detector = detector
        self._request_safe: Callable[[str], None] | None = None
        self._pending_reason: str | None = None
        self._lock = threading.Lock()

    def connect(self, request_safe: Callable[[str], None]) -> None:
        """Where safe-mode requests go (the Supervisor); a request made before this is delivered now."""
        with self._lock:
            self._request_safe = request_safe
            pending, self._pending_reason = self._pending_reason, None
        if pending is not None:
            request_safe(pending)

    def waited(self, endpoint: str, seconds: float, cause: str) -> None:
        self._metrics.rate_limit_wait(seconds)

    def limited(self, endpoint: str, code: str, http_status: int | None, retry_after: float | None) -> None:
        self._journal.record_event(
            EVENT_RATE_LIMITED,
            {"endpoint": endpoint, "code": code, "http_status": http_status, "retry_after": retry_after},
        )
        if not self._detector.record():
            return
        reason = (
            f"repeated exchange rate limits: {self._detector.recent()} within {self._detector.window_s:g}s "
            f"(last on {endpoint})"
        )
        log.error("%s: requesting safe mode", reason)
        with self._lock:
            request_safe = self._request_safe
            if request_safe is None:
                self._pending_reason = reason
        if request_safe is not None:
            request_safe(reason)
