"""Token buckets keep each endpoint within its documented limit; 429 backoff grows, is capped, jittered and
reported; repeated limits are detected; a client obeying its buckets never gets 429 from the simulator."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import responses

from exchange.bitget.client import BitgetClient
from exchange.bitget.ratelimit import (
    DEFAULT_LIMITS,
    WINDOW_MARGIN_S,
    WINDOW_S,
    Backoff,
    RateLimiter,
    RepeatedLimitDetector,
    TokenBucket,
)
from exchange.sim.testing import running_sim
from ops.metrics import Metrics
from parsing.channel_server import ChannelServer
from runtime.config import load_secrets
from runtime.rate_limits import RateLimitReporter
from runtime.wiring import Runtime
from tests.e2e import CHANNEL, fast_config
from tests.waiting import wait_until
from trading.modes import Mode


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


def test_bucket_allows_a_burst_of_the_limit_then_waits_for_the_oldest_token_to_leave_the_window() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, window_s=1.1, clock=clock, sleep=clock.sleep)
    assert [bucket.acquire() for _ in range(10)] == [0.0] * 10
    assert bucket.acquire() == pytest.approx(1.1)  # the whole burst is still inside the window
    assert [bucket.acquire() for _ in range(9)] == [0.0] * 9  # the burst left together
    assert bucket.acquire() == pytest.approx(1.1)
    assert clock.slept == pytest.approx([1.1, 1.1])


def test_no_window_ever_holds_more_than_the_limit() -> None:
    # The gap this bucket closes: a refilling bucket (capacity = rate) lets 2x the limit into one second.
    clock = FakeClock()
    bucket = TokenBucket(5, window_s=1.0, clock=clock, sleep=clock.sleep)
    sent = []
    for step in range(40):
        clock.now += 0.07 * (step % 3)  # irregular callers
        bucket.acquire()
        sent.append(clock.now)
    for i, start in enumerate(sent):
        assert sum(1 for t in sent[i:] if t < start + 1.0) <= 5


def test_bucket_tokens_come_back_one_window_after_use() -> None:
    clock = FakeClock()
    bucket = TokenBucket(5, window_s=1.1, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        assert bucket.try_acquire()
    assert not bucket.try_acquire()
    clock.now += 1.0
    assert not bucket.try_acquire() and bucket.available == 0
    clock.now += 0.1
    assert bucket.available == 5
    clock.now += 60
    assert bucket.available == 5


def test_concurrent_acquires_never_exceed_the_limit() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, window_s=1.0, clock=lambda: 0.0, sleep=clock.sleep)  # frozen time: reservations
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
    # 40 requests at 10 per window: four windows of ten, whichever thread asks.
    assert sorted(waits) == [0.0] * 10 + [1.0] * 10 + [2.0] * 10 + [3.0] * 10


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
    assert limiter.acquire("/api/v2/mix/position/all-position") == pytest.approx(WINDOW_S + WINDOW_MARGIN_S)
    assert DEFAULT_LIMITS["/api/v2/mix/account/set-position-mode"] == 5


def test_client_and_simulator_agree_on_every_endpoint_limit() -> None:
    from exchange.sim.api import ROUTES

    limiter = RateLimiter()
    mix_routes = [r for r in ROUTES if r.path.startswith(("/api/v2/mix/", "/api/v2/public/"))]
    assert {r.path: float(r.per_second) for r in mix_routes} == {r.path: limiter.limit_for(r.path) for r in mix_routes}


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


# --- repeated limits --------------------------------------------------------------------------------------
def test_repeated_limits_fire_once_within_the_window_and_rearm_when_they_thin_out() -> None:
    clock = FakeClock()
    detector = RepeatedLimitDetector(3, 60, clock=clock)
    assert [detector.record(), detector.record()] == [False, False]
    clock.now += 30
    assert detector.record() is True  # three within 60 s
    assert detector.record() is False  # already reported
    clock.now += 61
    assert detector.record() is False  # the old ones left the window: re-armed
    assert [detector.record(), detector.record()] == [False, True]


def test_limits_spread_wider_than_the_window_never_fire() -> None:
    clock = FakeClock()
    detector = RepeatedLimitDetector(3, 60, clock=clock)
    for _ in range(10):
        assert detector.record() is False
        clock.now += 31


# --- the client's observer hook ---------------------------------------------------------------------------
class Observed:
    def __init__(self) -> None:
        self.waits: list[tuple[str, float, str]] = []
        self.limits: list[tuple[str, str, int | None, float | None]] = []

    def waited(self, endpoint: str, seconds: float, cause: str) -> None:
        self.waits.append((endpoint, seconds, cause))

    def limited(self, endpoint: str, code: str, http_status: int | None, retry_after: float | None) -> None:
        self.limits.append((endpoint, code, http_status, retry_after))


TICKER_URL = "https://api.bitget.com/api/v2/mix/market/ticker"
TICKER = {"code": "00000", "msg": "success", "requestTime": 1, "data": [{
    "symbol": "BTCUSDT", "lastPr": "65000", "askPr": "65000.1", "bidPr": "64999.9", "markPrice": "65000",
    "indexPrice": "65000", "ts": "1"}]}  # fmt: skip


@responses.activate
def test_client_reports_bucket_waits_rate_limits_and_backoff_waits() -> None:
    clock, observed = FakeClock(), Observed()
    client = BitgetClient(
        rate_limiter=RateLimiter({"/api/v2/mix/market/ticker": 1}, window_s=1.0, clock=clock, sleep=clock.sleep),
        backoff=Backoff(base=0.5, jitter=0.0, sleep=clock.sleep), sleep=clock.sleep, monotonic=clock,
        rate_limit_observer=observed, session=requests.Session(),
    )  # fmt: skip
    too_many = {"code": "429", "msg": "Too Many Requests"}
    responses.get(TICKER_URL, status=429, json=too_many, headers={"Retry-After": "2"})
    responses.get(TICKER_URL, json=TICKER)
    responses.get(TICKER_URL, json=TICKER)
    assert client.ticker("BTCUSDT").last == Decimal("65000")
    assert observed.limits == [("/api/v2/mix/market/ticker", "429", 429, 2.0)]
    # The server's Retry-After beats the first backoff step; by then the retry's token is back in the bucket.
    assert [(cause, seconds) for _, seconds, cause in observed.waits] == [("backoff", 2.0)]
    client.ticker("BTCUSDT")  # at once: waits for its token (1 per window)
    assert [(cause, round(seconds, 3)) for _, seconds, cause in observed.waits] == [("backoff", 2.0), ("bucket", 1.0)]


@responses.activate
def test_a_broken_observer_never_breaks_a_request() -> None:
    class Broken:
        def waited(self, *args: object) -> None:
            raise RuntimeError("metrics down")

        def limited(self, *args: object) -> None:
            raise RuntimeError("journal down")

    client = BitgetClient(
        rate_limiter=RateLimiter(sleep=lambda s: None), backoff=Backoff(sleep=lambda s: None),
        sleep=lambda s: None, rate_limit_observer=Broken(), session=requests.Session(),
    )  # fmt: skip
    responses.get(TICKER_URL, status=429, json={"code": "429", "msg": "Too Many Requests"})
    responses.get(TICKER_URL, json=TICKER)
    assert client.ticker("BTCUSDT").symbol == "BTCUSDT"


# --- client and simulator over loopback --------------------------------------------------------------------
def hammer_ticker(base_url: str, limiter: RateLimiter | None, observed: Observed) -> list[BaseException]:
    """Four threads, eight ticker requests each, as fast as the client lets them go."""
    client = BitgetClient(base_url, None, max_read_retries=0, rate_limit_observer=observed, rate_limiter=limiter)
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(8):
                client.ticker("BTCUSDT")
        except BaseException as exc:  # collected and asserted by the caller
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return errors


def test_a_client_obeying_its_buckets_never_gets_429_from_the_simulator() -> None:
    """The documented 20/s with the real clock; the simulator counts a strict sliding one-second window."""
    observed = Observed()
    with running_sim(seed=41) as sim:
        started = time.monotonic()
        errors = hammer_ticker(sim.base_url, None, observed)
        elapsed = time.monotonic() - started
        wait_until(lambda: len(sim.engine.requests_to("ticker")) == 32, timeout=5, what="32 logged requests")
        statuses = [r.status for r in sim.engine.requests_to("ticker")]
    assert errors == [] and observed.limits == []
    assert statuses == [200] * 32
    assert elapsed >= 1.0  # 32 requests at 20 per second cannot all go in the first window
    assert sum(seconds for _, seconds, cause in observed.waits if cause == "bucket") > 0


def test_the_simulator_answers_429_to_a_client_that_exceeds_the_limit() -> None:
    """The same hammering with buckets half as long as the window: the simulator does enforce the limit."""
    observed = Observed()
    with running_sim(seed=42) as sim:
        errors = hammer_ticker(sim.base_url, RateLimiter(window_s=0.5), observed)
    assert errors and observed.limits  # 429s reached the client and were reported
    assert {code for _, code, _, _ in observed.limits} == {"429"}


# --- the runtime's reporter ---------------------------------------------------------------------------------
class FakeJournal:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, object]]] = []

    def record_event(self, kind: str, detail: dict[str, object]) -> int:
        self.events.append((kind, detail))
        return len(self.events)


def test_reporter_journals_each_limit_counts_waits_and_asks_for_safe_mode_once_on_repeats() -> None:
    clock, journal, metrics, requests_for_safe = FakeClock(), FakeJournal(), Metrics(), []
    reporter = RateLimitReporter(metrics=metrics, journal=journal, detector=RepeatedLimitDetector(3, 60, clock=clock))
    reporter.waited("/api/v2/mix/order/place-order", 0.25, "bucket")
    reporter.waited("/api/v2/mix/order/place-order", 1.5, "backoff")
    assert metrics.rate_limit_wait_seconds_total._value.get() == pytest.approx(1.75)
    for _ in range(2):
        reporter.limited("/api/v2/mix/order/place-order", "429", 429, None)
    reporter.connect(requests_for_safe.append)
    assert requests_for_safe == []
    for _ in range(3):
        reporter.limited("/api/v2/mix/position/all-position", "429", 429, 1.0)
    assert [kind for kind, _ in journal.events] == ["RATE_LIMITED"] * 5
    assert journal.events[-1][1] == {"endpoint": "/api/v2/mix/position/all-position", "code": "429",
                                     "http_status": 429, "retry_after": 1.0}  # fmt: skip
    (reason,) = requests_for_safe
    assert "repeated exchange rate limits" in reason


def test_a_safe_mode_request_before_the_supervisor_is_connected_is_delivered_on_connect() -> None:
    reporter = RateLimitReporter(metrics=Metrics(), journal=FakeJournal(), detector=RepeatedLimitDetector(1, 60))
    reporter.limited("/api/v2/mix/market/ticker", "429", 429, None)
    delivered: list[str] = []
    reporter.connect(delivered.append)
    assert len(delivered) == 1


def test_runtime_enters_safe_mode_on_repeated_rate_limits(tmp_path: Path) -> None:
    with ChannelServer(CHANNEL) as channel:
        config = fast_config(tmp_path, channel.start(), bitget={"rate_limit_safe_mode_threshold": 2})
        runtime = Runtime(config, load_secrets(config, {}), env={})
        runtime.start()
        try:
            assert runtime.paper is not None and runtime.journal is not None
            journal = runtime.journal
            runtime.paper.engine.faults.fail_next("all-position", http_status=429, times=3)
            wait_until(lambda: runtime.gate.mode is Mode.SAFE, timeout=15, what="safe mode")
            limited = [e.detail for e in journal.events("RATE_LIMITED")]
            assert len(limited) >= 2 and {e["endpoint"] for e in limited} == {"/api/v2/mix/position/all-position"}
            # The gate turns first (entries stop at once); the journal row follows on the supervisor's thread.
            wait_until(lambda: any(e.detail["mode"] == "safe" and e.detail["source"] == "rate_limit"
                                   for e in journal.events("MODE_CHANGED")),
                       timeout=5, what="the safe mode journaled with its rate-limit source")  # fmt: skip
            wait_until(lambda: runtime.metrics.rate_limit_wait_seconds_total._value.get() > 0, timeout=10,
                       what="the backoff waits counted")  # reported once each wait is over  # fmt: skip
        finally:
            runtime.stop()
