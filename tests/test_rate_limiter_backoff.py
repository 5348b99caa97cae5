"""Token buckets refill at the documented rates; 429 backoff grows, is capped, jittered and reported."""

from __future__ import annotations

import threading

import pytest

from exchange.bitget.ratelimit import DEFAULT_LIMITS, Backoff, RateLimiter, TokenBucket


class FakeClock:
    """A clock whose sleep advances time, so waits are measured instead of slept."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now += seconds


def test_bucket_allows_a_burst_up_to_capacity_then_waits_one_interval_per_token() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, clock=clock, sleep=clock.sleep)
    assert [bucket.acquire() for _ in range(10)] == [0.0] * 10
    assert bucket.acquire() == pytest.approx(0.1)
    assert bucket.acquire() == pytest.approx(0.1)
    assert clock.slept == pytest.approx([0.1, 0.1])


def test_bucket_refills_with_time_but_not_beyond_capacity() -> None:
    clock = FakeClock()
    bucket = TokenBucket(5, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        assert bucket.try_acquire()
    assert not bucket.try_acquire()
    clock.now += 0.2  # one token at 5/s
    assert bucket.try_acquire()
    assert not bucket.try_acquire()
    clock.now += 60
    assert bucket.available == pytest.approx(5)


def test_concurrent_acquires_never_exceed_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, clock=lambda: 0.0, sleep=clock.sleep)  # frozen time: every wait is a reservation
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            waited = bucket.acquire()
            with lock:
                waits.append(waited)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    # 40 tokens from a 10-token bucket at 10/s: the last reservation is 3 s out, each token a distinct slot.
    assert sorted(waits) == pytest.approx(sorted([0.0] * 10 + [i / 10 for i in range(1, 31)]))


def test_limiter_uses_per_endpoint_buckets_at_documented_rates() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    assert limiter.bucket("/api/v2/mix/position/all-position").rate == 5
    assert limiter.bucket("/api/v2/mix/order/place-order").rate == 10
    assert limiter.bucket("/api/v2/mix/market/ticker").rate == 20
    assert limiter.bucket("/api/v2/mix/something-new").rate == 5  # conservative default
    for _ in range(5):
        limiter.acquire("/api/v2/mix/position/all-position")
    # Another endpoint's budget is independent.
    assert limiter.acquire("/api/v2/mix/order/place-order") == 0.0
    assert limiter.acquire("/api/v2/mix/position/all-position") == pytest.approx(0.2)
    assert DEFAULT_LIMITS["/api/v2/mix/account/set-position-mode"] == 5


def test_backoff_grows_exponentially_and_is_capped() -> None:
    backoff = Backoff(base=0.5, factor=2, cap=4, jitter=0.0, sleep=lambda s: None)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.consecutive == 0
    assert backoff.next_delay() == 0.5


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.999999])
def test_backoff_jitter_stays_within_bounds(draw: float) -> None:
    backoff = Backoff(base=1, factor=2, cap=8, jitter=0.5, rng=lambda: draw, sleep=lambda s: None)
    for raw in (1, 2, 4, 8, 8):
        delay = backoff.next_delay()
        assert raw * 0.5 <= delay <= raw


def test_backoff_wait_reports_seconds_and_honours_retry_after_within_cap() -> None:
    clock = FakeClock()
    reported: list[float] = []
    backoff = Backoff(base=0.5, cap=10, jitter=0.0, sleep=clock.sleep, on_wait=reported.append)
    assert backoff.wait() == 0.5
    assert backoff.wait(at_least=3) == 3
    assert backoff.wait(at_least=999) == 10  # a hostile Retry-After is capped
    assert reported == clock.slept == [0.5, 3, 10]


def test_repeated_limit_callback_fires_once_per_streak() -> None:
    fired: list[int] = []
    backoff = Backoff(repeat_threshold=3, sleep=lambda s: None, on_repeated_limit=fired.append)
    for _ in range(5):
        backoff.wait()
    assert fired == [3]
    backoff.reset()
    for _ in range(3):
        backoff.wait()
    assert fired == [3, 3]


def test_broken_hooks_do_not_break_the_backoff() -> None:
    def boom(_: float) -> None:
        raise RuntimeError("metrics down")

    backoff = Backoff(repeat_threshold=1, sleep=lambda s: None, on_wait=boom, on_repeated_limit=boom)
    assert backoff.wait() > 0
