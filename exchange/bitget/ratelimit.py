"""Client-side rate limiting: a token bucket per endpoint, and a jittered backoff for HTTP 429.

Bitget counts each endpoint's limit separately (reference notes §4.3), so each path gets its own bucket.
Clock and sleep are injectable so tests never sleep for real.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping

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
    "/api/v2/public/time": 20,
}
DEFAULT_RATE = 5.0  # unknown endpoints: the most conservative documented private limit


class TokenBucket:
    """``rate`` tokens per second, at most ``capacity`` stored. Thread-safe.

    ``acquire`` reserves a token immediately (the balance may go negative) and then sleeps outside the lock
    until the reservation is due, so concurrent callers queue fairly instead of all waking at once.
    """

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.capacity = float(capacity if capacity is not None else rate)
        if self.capacity < 1:
            raise ValueError("capacity must allow at least one token")
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._last = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)

    def try_acquire(self, tokens: float = 1.0) -> bool:
        with self._lock:
            self._refill()
            if self._tokens >= tokens:
                self._tokens -= tokens
                return True
            return False

    def acquire(self, tokens: float = 1.0) -> float:
        """Take ``tokens``, waiting if needed. Returns the seconds waited (0.0 when none)."""
        with self._lock:
            self._refill()
            self._tokens -= tokens
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if wait > 0:
            self._sleep(wait)
        return wait

    @property
    def available(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens


class RateLimiter:
    """One token bucket per endpoint path."""

    def __init__(
        self,
        limits: Mapping[str, float] | None = None,
        *,
        default_rate: float = DEFAULT_RATE,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self._default_rate = default_rate
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def bucket(self, endpoint: str) -> TokenBucket:
        with self._lock:
            found = self._buckets.get(endpoint)
            if found is None:
                rate = self._limits.get(endpoint, self._default_rate)
                found = TokenBucket(rate, clock=self._clock, sleep=self._sleep)
                self._buckets[endpoint] = found
            return found

    def acquire(self, endpoint: str) -> float:
        """Wait for a slot on ``endpoint``; returns the seconds waited."""
        return self.bucket(endpoint).acquire()


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
        raw = min(self.cap, self.base * self.factor ** (count - 1))
        delay = raw * (1.0 - self.jitter * self._rng())
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
