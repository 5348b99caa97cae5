"""Client-side rate limiting: a token bucket per endpoint, a jittered backoff for HTTP 429, an observer hook
for metrics and events, and a detector for repeated limits.

Bitget counts each endpoint's limit separately (reference notes §4.3), so each path gets its own bucket.
Clock and sleep are injectable so tests never sleep for real.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Protocol

from exchange.backoff import backoff_delay

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], None]

# Requests per second per endpoint path, from the reference notes §4.3 (doc or ccxt costs).
DEFAULT_LIMITS: dict[str, float] = {
    "/api/v2/mix/order/place-order": 10,
    "/api/v2/mix/order/cancel-order": 10,
    "/api/v2/mix/order/detail": 10,
    "/api/v2/mix/order/fills": 10,
    "/api/v2/mix/order/orders-pending": 10,
    "/api/v2/mix/order/orders-history": 10,
    "/api/v2/mix/order/batch-cancel-orders": 10,
    "/api/v2/mix/order/orders-plan-pending": 10,
    "/api/v2/mix/order/place-tpsl-order": 10,
    "/api/v2/mix/order/place-pos-tpsl": 10,
    "/api/v2/mix/order/place-plan-order": 10,
    "/api/v2/mix/order/modify-tpsl-order": 10,
    "/api/v2/mix/order/modify-plan-order": 10,
    "/api/v2/mix/order/cancel-plan-order": 10,
    "/api/v2/mix/account/account": 10,
    "/api/v2/mix/account/accounts": 10,
    "/api/v2/mix/position/single-position": 10,
    "/api/v2/mix/position/all-position": 5,
    "/api/v2/mix/account/set-position-mode": 5,
    "/api/v2/mix/account/set-margin": 5,
    "/api/v2/mix/account/set-leverage": 5,
    "/api/v2/mix/account/set-margin-mode": 5,
    "/api/v2/mix/order/batch-place-order": 1,
    "/api/v2/mix/order/close-positions": 1,
    "/api/v2/mix/order/cancel-all-orders": 1,
    "/api/v2/mix/market/contracts": 20,
    "/api/v2/mix/market/ticker": 20,
    "/api/v2/mix/market/tickers": 20,
    "/api/v2/mix/market/symbol-price": 20,
    "/api/v2/mix/market/merge-depth": 20,
    "/api/v2/mix/market/current-fund-rate": 20,
    "/api/v2/public/time": 20,
}
DEFAULT_RATE = 5.0  # unknown endpoints: the most conservative documented private limit


# Bitget counts "N requests per second" per endpoint; the simulator (and, we assume, the exchange) checks it over a
# sliding one-second window. A token therefore comes back one window after it was used, plus this margin for the
# spread between when we take a token and when the request reaches the server (signing, network, threads).
WINDOW_S = 1.0
WINDOW_MARGIN_S = 0.1


class TokenBucket:
    """``limit`` tokens per ``window_s``; each token returns to the bucket one window after it was taken.

    That is the exact client-side dual of a sliding-window limit: in any window at most ``limit`` requests are
    sent, a full burst of ``limit`` is allowed at once (an entry, its stop and its take-profits go out
    together), and the next request waits until the oldest one in the window leaves it. A classic refilling
    bucket with ``capacity == rate`` would allow ``2 * limit`` in one second (a burst plus a second's refill),
    which a sliding window answers with 429.

    ``acquire`` reserves its slot under the lock and sleeps outside it, so concurrent callers queue fairly.
    Thread-safe.
    """

    def __init__(
        self,
        limit: float,
        *,
        window_s: float = WINDOW_S + WINDOW_MARGIN_S,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must allow at least one request per window")
        if window_s <= 0:
            raise ValueError("window must be positive")
        self.limit = int(limit)
        self.window_s = window_s
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()  # send times (reserved ones may lie in the future), ascending
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        """The documented requests per second this bucket enforces."""
        return float(self.limit)

    def _slot(self, now: float) -> float:
        while self._sent and self._sent[0] <= now - self.window_s:
            self._sent.popleft()
        if len(self._sent) < self.limit:
            return now
        return max(now, self._sent[-self.limit] + self.window_s)

    def try_acquire(self) -> bool:
        with self._lock:
            now = self._clock()
            if self._slot(now) > now:
                return False
            self._sent.append(now)
            return True

    def acquire(self) -> float:
        """Take a token, waiting if needed. Returns the seconds waited (0.0 when none)."""
        with self._lock:
            now = self._clock()
            slot = self._slot(now)
            self._sent.append(slot)
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait

    @property
    def available(self) -> int:
        with self._lock:
            now = self._clock()
            self._slot(now)
            return max(0, self.limit - sum(1 for t in self._sent if t > now - self.window_s))


class RateLimiter:
    """One token bucket per endpoint path, at the documented limits (:data:`DEFAULT_LIMITS`)."""

    def __init__(
        self,
        limits: Mapping[str, float] | None = None,
        *,
        default_rate: float = DEFAULT_RATE,
        window_s: float = WINDOW_S + WINDOW_MARGIN_S,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self._default_rate = default_rate
        self._window_s = window_s
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def limit_for(self, endpoint: str) -> float:
        return self._limits.get(endpoint, self._default_rate)

    def bucket(self, endpoint: str) -> TokenBucket:
        with self._lock:
            found = self._buckets.get(endpoint)
            if found is None:
                found = TokenBucket(
                    self.limit_for(endpoint), window_s=self._window_s, clock=self._clock, sleep=self._sleep
                )
                self._buckets[endpoint] = found
            return found

    def acquire(self, endpoint: str) -> float:
        """Wait for a slot on ``endpoint``; returns the seconds waited."""
        return self.bucket(endpoint).acquire()


class RateLimitObserver(Protocol):
    """What the client reports about rate limiting (the runtime turns it into metrics, events, safe mode)."""

    def waited(self, endpoint: str, seconds: float, cause: str) -> None:
        """``seconds`` spent waiting before a request: ``cause`` is ``bucket`` (our limit) or ``backoff``."""

    def limited(self, endpoint: str, code: str, http_status: int | None, retry_after: float | None) -> None:
        """The exchange answered HTTP 429 or a rate-limit code."""


class RepeatedLimitDetector:
    """Fires once when ``threshold`` rate limits fall within ``window_s``; re-arms once they thin out.

    Pure apart from the injected clock; thread-safe.
    """

    def __init__(self, threshold: int, window_s: float, *, clock: Clock = time.monotonic) -> None:
        if threshold < 1 or window_s <= 0:
            raise ValueError("threshold must be >= 1 and the window positive")
        self.threshold = threshold
        self.window_s = window_s
        self._clock = clock
        self._hits: deque[float] = deque()
        self._fired = False
        self._lock = threading.Lock()

    def record(self) -> bool:
        """Count one rate limit now; True exactly when this one makes the limits "repeated"."""
        with self._lock:
            now = self._clock()
            self._hits.append(now)
            while self._hits and self._hits[0] <= now - self.window_s:
                self._hits.popleft()
            if len(self._hits) < self.threshold:
                self._fired = False
                return False
            if self._fired:
                return False
            self._fired = True
            return True

    def recent(self) -> int:
        with self._lock:
            now = self._clock()
            return sum(1 for t in self._hits if t > now - self.window_s)


class Backoff:
    """Exponential backoff with jitter for repeated rate limiting (or other retryable failures).

    The n-th consecutive delay is ``min(cap, base * factor**(n-1))`` scaled by a random factor in
    ``[1 - jitter, 1]``, so it never exceeds ``cap``. ``on_wait(seconds)`` reports each wait (for a metric);
    ``on_repeated_limit(count)`` fires when the streak reaches ``repeat_threshold`` (once per streak) so the
    caller can raise an event. ``reset()`` ends the streak (call it after a success).
    """

    def __init__(
        self,
        *,
        base: float = 0.5,
        factor: float = 2.0,
        cap: float = 30.0,
        jitter: float = 0.5,
        repeat_threshold: int = 3,
        rng: Callable[[], float] = random.random,
        sleep: Sleep = time.sleep,
        on_wait: Callable[[float], None] | None = None,
        on_repeated_limit: Callable[[int], None] | None = None,
    ) -> None:
        if base <= 0 or factor < 1 or cap < base or not 0 <= jitter <= 1 or repeat_threshold < 1:
            raise ValueError("invalid backoff parameters")
        self.base = base
        self.factor = factor
        self.cap = cap
        self.jitter = jitter
        self.repeat_threshold = repeat_threshold
        self._rng = rng
        self._sleep = sleep
        self._on_wait = on_wait
        self._on_repeated_limit = on_repeated_limit
        self._consecutive = 0
        self._lock = threading.Lock()

    @property
    def consecutive(self) -> int:
        with self._lock:
            return self._consecutive

    def next_delay(self) -> float:
        """Count one more consecutive limit and return how long to wait before the next try."""
        with self._lock:
            self._consecutive += 1
            count = self._consecutive
        delay = backoff_delay(
            count, base=self.base, cap=self.cap, factor=self.factor, jitter=self.jitter, unit_random=self._rng()
        )
        if count == self.repeat_threshold and self._on_repeated_limit is not None:
            _call_hook(self._on_repeated_limit, count)
        return delay

    def wait(self, at_least: float = 0.0) -> float:
        """Sleep for the next delay (or ``at_least``, e.g. a server Retry-After, capped). Returns seconds."""
        delay = max(self.next_delay(), min(at_least, self.cap))
        if self._on_wait is not None:
            _call_hook(self._on_wait, delay)
        self._sleep(delay)
        return delay

    def reset(self) -> None:
        with self._lock:
            self._consecutive = 0


def _call_hook(hook: Callable[[float], None] | Callable[[int], None], value: float) -> None:
    # A broken metrics/event hook must never break the request path.
    try:
        hook(value)  # type: ignore[arg-type]
    except Exception:
        log.exception("backoff hook failed")
