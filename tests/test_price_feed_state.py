"""The price feed's pure rules: which source is active, what REST polls, when the feed is stale or on a
fallback, the /readyz verdict, and the reconnect backoff."""

from __future__ import annotations

import random

import pytest

from exchange.bitget.feed_state import FeedStateMachine, ReconnectBackoff, feed_readiness

STALE = 10.0
GRACE = 5.0


def machine(prefer_ws: bool = True, now: float = 0.0) -> FeedStateMachine:
    return FeedStateMachine(prefer_ws=prefer_ws, stale_after_s=STALE, fallback_grace_s=GRACE, now=now)


def test_socket_up_and_pushing_every_symbol_is_ws_and_rest_polls_nothing() -> None:
    feed = machine()
    feed.watch("BTCUSDT", 0)
    feed.watch("ETHUSDT", 0)
    feed.socket_up(1)
    feed.ws_price("BTCUSDT", 1.1)
    feed.ws_price("ETHUSDT", 1.2)
    view = feed.evaluate(2)
    assert (view.state, view.poll_symbols, view.on_fallback) == ("ws", (), False)


def test_a_new_connection_must_push_before_rest_polling_stops() -> None:
    feed = machine()
    feed.watch("BTCUSDT", 0)
    feed.socket_up(1)
    assert feed.evaluate(1.5).state == "rest" and feed.evaluate(1.5).poll_symbols == ("BTCUSDT",)
    feed.ws_price("BTCUSDT", 1.6)
    assert feed.evaluate(1.7).state == "ws"


def test_a_push_from_before_a_reconnect_does_not_count() -> None:
    feed = machine()
    feed.watch("BTCUSDT", 0)
    feed.socket_up(0)
    feed.ws_price("BTCUSDT", 1)
    feed.socket_down(2)
    feed.socket_up(3)
    view = feed.evaluate(3.5)
    assert (view.state, view.poll_symbols) == ("rest", ("BTCUSDT",))


def test_socket_down_polls_every_watched_symbol_on_rest() -> None:
    feed = machine()
    for symbol in ("ETHUSDT", "BTCUSDT"):
        feed.watch(symbol, 0)
    feed.socket_up(0)
    feed.ws_price("BTCUSDT", 0.5)
    feed.ws_price("ETHUSDT", 0.5)
    feed.socket_down(1)
    view = feed.evaluate(1.5)
    assert (view.state, view.poll_symbols) == ("rest", ("BTCUSDT", "ETHUSDT"))


def test_only_the_symbol_the_socket_stopped_pushing_is_polled() -> None:
    feed = machine()
    feed.watch("BTCUSDT", 0)
    feed.watch("ETHUSDT", 0)
    feed.socket_up(0)
    feed.ws_price("BTCUSDT", 1)
    feed.ws_price("ETHUSDT", 1)
    feed.ws_price("BTCUSDT", 11)  # ETH has been silent for more than STALE by t=11.5
    view = feed.evaluate(11.5)
    assert (view.state, view.poll_symbols) == ("stale", ("ETHUSDT",))
    feed.rest_price("ETHUSDT", 11.6)
    view = feed.evaluate(11.7)
    assert (view.state, view.poll_symbols) == ("rest", ("ETHUSDT",))


def test_silent_socket_goes_stale_then_rest_once_rest_answers() -> None:
    feed = machine()
    feed.watch("BTCUSDT", 0)
    feed.socket_up(0)
    feed.ws_price("BTCUSDT", 1)
    assert feed.evaluate(10.9).state == "ws"
    view = feed.evaluate(11.1)
    assert (view.state, view.poll_symbols) == ("stale", ("BTCUSDT",))
    feed.rest_price("BTCUSDT", 11.2)
    assert feed.evaluate(11.3).state == "rest"


def test_no_price_from_either_source_is_stale_counted_from_the_watch() -> None:
    feed = machine(prefer_ws=False)
    feed.watch("BTCUSDT", 100)
    assert feed.evaluate(109).state == "rest"
    assert feed.evaluate(111).state == "stale"


def test_nothing_watched_is_ws_when_connected_and_rest_otherwise() -> None:
    feed = machine()
    assert feed.evaluate(0).state == "rest"
    feed.socket_up(1)
    assert feed.evaluate(1).state == "ws"


def test_rest_mode_ignores_the_socket_and_is_never_a_fallback() -> None:
    feed = machine(prefer_ws=False)
    feed.watch("BTCUSDT", 0)
    feed.socket_up(0)
    feed.ws_price("BTCUSDT", 0.1)
    view = feed.evaluate(0.2)
    assert (view.state, view.poll_symbols, view.on_fallback) == ("rest", ("BTCUSDT",), False)
    feed.rest_price("BTCUSDT", 50)
    assert feed.evaluate(50 + GRACE).on_fallback is False


def test_fallback_starts_after_the_grace_once_per_episode() -> None:
    feed = machine()
    feed.watch("BTCUSDT", 0)
    feed.socket_up(0)
    feed.ws_price("BTCUSDT", 0.5)
    assert feed.evaluate(1).state == "ws"
    feed.socket_down(2)
    feed.rest_price("BTCUSDT", 2.5)
    first = feed.evaluate(3)  # off ws since t=3 (first evaluation without ws)
    assert (first.state, first.on_fallback, first.fallback_started) == ("rest", False, False)
    feed.rest_price("BTCUSDT", 7.9)
    started = feed.evaluate(8)
    assert (started.on_fallback, started.fallback_started) == (True, True)
    feed.rest_price("BTCUSDT", 8.9)
    again = feed.evaluate(9)
    assert (again.on_fallback, again.fallback_started) == (True, False)
    # Back on ws ends the episode; the next loss starts a new one.
    feed.socket_up(10)
    feed.ws_price("BTCUSDT", 10.1)
    assert feed.evaluate(10.2).on_fallback is False
    feed.socket_down(11)
    feed.rest_price("BTCUSDT", 11)
    feed.evaluate(11)
    assert feed.evaluate(11 + GRACE).fallback_started is True


def test_a_socket_that_never_connects_is_a_fallback_after_the_grace_from_start() -> None:
    feed = machine(now=0)
    assert feed.evaluate(GRACE - 0.1).on_fallback is False
    assert feed.evaluate(GRACE).fallback_started is True


@pytest.mark.parametrize(
    ("state", "local_guard", "required", "ready"),
    [
        ("ws", True, True, True),
        ("rest", True, True, False),
        ("rest", True, False, True),
        ("rest", False, True, True),
        ("stale", False, False, False),
    ],
)
def test_readiness_of_the_feed(state: str, local_guard: bool, required: bool, ready: bool) -> None:
    ok, detail = feed_readiness(state, local_guard=local_guard, ws_required_for_local_guard=required)  # type: ignore[arg-type]
    assert ok is ready
    if not ok:
        assert "price feed" in detail


def test_backoff_doubles_up_to_the_cap_and_never_exceeds_it() -> None:
    backoff = ReconnectBackoff(base_s=1, cap_s=8, jitter=0.5, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    raws = [1, 2, 4, 8, 8, 8, 8, 8]
    for delay, raw in zip(delays, raws, strict=True):
        assert raw * 0.5 <= delay <= raw
    assert max(delays) <= 8


def test_backoff_is_deterministic_with_a_seed_and_resets() -> None:
    first = ReconnectBackoff(base_s=0.5, cap_s=30, rng=random.Random(7))
    second = ReconnectBackoff(base_s=0.5, cap_s=30, rng=random.Random(7))
    assert [first.next_delay() for _ in range(5)] == [second.next_delay() for _ in range(5)]
    first.reset()
    assert first.next_delay() <= 0.5


def test_backoff_without_jitter_is_exact_and_survives_many_attempts() -> None:
    backoff = ReconnectBackoff(base_s=0.1, cap_s=2, jitter=0)
    assert [backoff.next_delay() for _ in range(5)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6])
    for _ in range(5000):
        assert backoff.next_delay() == 2
