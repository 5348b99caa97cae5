"""The PriceFeed actor over loopback against the simulator: WebSocket first, REST while the socket is down or
silent, back to WebSocket when it recovers."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from actors.messages import PriceTick, WatchSymbol
from actors.price_feed import EVENT_FALLBACK, PriceFeed, PriceFeedSettings
from exchange.bitget.client import BitgetClient
from exchange.sim.testing import RunningSim, running_sim
from exchange.sim.ws_server import SimWsServer
from ops.metrics import Metrics
from ops.status import RuntimeStatus
from runtime.config import ConfigError, parse_config
from runtime.wiring import price_feed_ws_url
from tests.waiting import wait_until
from trading.journal import Journal

INTERVAL = 0.05
STALE = 0.3
SETTINGS_FIELDS = {field.name for field in dataclasses.fields(PriceFeedSettings)}


class Ticks:
    """A subscriber: records every PriceTick it is told."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received: list[tuple[float, PriceTick]] = []

    def tell(self, tick: PriceTick) -> None:
        with self._lock:
            self.received.append((time.monotonic(), tick))

    def count(self, source: str, symbol: str | None = None, since: float = 0.0) -> int:
        with self._lock:
            return sum(1 for at, t in self.received
                       if t.source == source and (symbol is None or t.symbol == symbol) and at >= since)

    def times(self, source: str, since: float) -> list[float]:
        with self._lock:
            return [at for at, t in self.received if t.source == source and at >= since]


class RecordingStatus(RuntimeStatus):
    """The real status board, also keeping every price_feed verdict in order."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[tuple[bool, str]] = []

    def set(self, name: str, ok: bool, detail: str = "") -> None:
        super().set(name, ok, detail)
        if name == "price_feed":
            self.history.append((ok, detail))


class Notices:
    def __init__(self) -> None:
        self.kinds: list[str] = []

    def notify(self, kind: str, text: str) -> None:
        self.kinds.append(kind)


@pytest.fixture
def sim() -> Iterator[RunningSim]:
    with running_sim(seed=6, ws=True) as running:
        running.engine.start_ticker(0.02)  # the market moves: the socket pushes every 20 ms
        yield running


class Feed:
    def __init__(self, sim: RunningSim, **options: Any) -> None:
        self.sim = sim
        self.ticks = Ticks()
        self.status = RecordingStatus()
        self.metrics = Metrics()
        args: dict[str, Any] = {
            "client": BitgetClient(sim.base_url, None), "metrics": self.metrics, "status": self.status,
            "subscribers": [self.ticks],
        }
        settings = PriceFeedSettings(
            interval_s=INTERVAL, stale_after_s=STALE, ws_url=sim.ws_url, ping_interval_s=30.0, pong_timeout_s=5.0,
            backoff_base_s=0.02, backoff_max_s=0.1, rest_grace_s=30.0, jitter_seed=1,
        )
        tuning = {name: options.pop(name) for name in list(options) if name in SETTINGS_FIELDS}
        args.update(options)
        self.ref: pykka.ActorRef[Any] = PriceFeed.start(
            name="price_feed", supervisor=None, settings=dataclasses.replace(settings, **tuning), **args)

    @property
    def ws_server(self) -> SimWsServer:
        assert self.sim.ws_server is not None
        return self.sim.ws_server

    def watch(self, *symbols: str) -> None:
        for symbol in symbols:
            self.ref.tell(WatchSymbol(symbol))

    def state(self) -> str:
        ok, detail = self.status.snapshot().get("price_feed", (False, "not started"))
        return detail if ok else "stale" if "stale" in detail else "not ready"

    def rest_requests(self) -> int:
        return len(self.sim.engine.requests_to("ticker"))

    def wait_state(self, state: str) -> None:
        wait_until(lambda: self.state() == state, what=f"price feed {state}")
        assert f'following_price_feed_state{{state="{state}"}} 1.0' in self.metrics.render().decode()

    def wait_more_ticks(self, source: str, count: int) -> None:
        since = time.monotonic()
        wait_until(lambda: self.ticks.count(source, since=since) >= count, what=f"{count} {source} ticks")


def test_ticks_arrive_over_ws_and_rest_is_not_polled(sim: RunningSim) -> None:
    feed = Feed(sim)
    feed.watch("BTCUSDT")
    feed.wait_state("ws")
    polled = feed.rest_requests()
    feed.wait_more_ticks("ws", 10)  # about ten poll intervals
    assert feed.rest_requests() == polled
    assert feed.ticks.count("rest", since=time.monotonic() - 0.1) == 0


def test_dropped_socket_falls_back_to_rest_at_the_interval_then_returns_to_ws(sim: RunningSim) -> None:
    feed = Feed(sim)
    feed.watch("BTCUSDT")
    feed.wait_state("ws")
    sim.engine.faults.refuse_ws()  # stays down until the test lets it back
    sim.engine.faults.drop_ws()
    feed.wait_state("rest")
    since = time.monotonic()
    wait_until(lambda: len(feed.ticks.times("rest", since)) >= 5, what="five REST ticks")
    times = feed.ticks.times("rest", since)[:5]
    assert times[-1] - times[0] >= 4 * INTERVAL * 0.9, "REST is polled at the interval, not faster"
    assert feed.ws_server.connections_refused >= 1

    sim.engine.faults.refuse_ws(False)
    feed.wait_state("ws")
    polled = feed.rest_requests()
    feed.wait_more_ticks("ws", 10)
    assert feed.rest_requests() == polled, "REST polling stops once the socket pushes again"


def test_each_reconnect_of_the_socket_is_counted(sim: RunningSim) -> None:
    feed = Feed(sim)
    feed.watch("BTCUSDT")
    feed.wait_state("ws")

    def reconnects() -> float | None:
        return feed.metrics.registry.get_sample_value("following_price_feed_reconnects_total")

    assert reconnects() == 0, "the first connection is not a reconnect"
    for expected in (1, 2):
        sim.engine.faults.drop_ws()
        wait_until(lambda n=expected: reconnects() == n, what=f"reconnect {expected} counted")
    feed.wait_more_ticks("ws", 5)
    assert reconnects() == 2


def test_silent_socket_goes_stale_then_rest(sim: RunningSim) -> None:
    feed = Feed(sim)
    feed.watch("BTCUSDT")
    feed.wait_state("ws")
    sim.engine.faults.mute_ws()  # the socket stays open and answers pings, but pushes nothing
    feed.wait_state("rest")
    verdicts = [detail for ok, detail in feed.status.history]
    went_stale = max(i for i, d in enumerate(verdicts) if d == "ws") + 1
    assert "stale" in verdicts[went_stale] and verdicts[went_stale + 1] == "rest"
    feed.wait_more_ticks("rest", 3)
    sim.engine.faults.mute_ws(False)
    feed.wait_state("ws")


def test_resubscribe_after_reconnect_includes_every_watched_symbol(sim: RunningSim) -> None:
    feed = Feed(sim)
    symbols = {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    feed.watch(*sorted(symbols))
    wait_until(lambda: feed.ws_server.subscribed_symbols() == [symbols])
    feed.wait_state("ws")
    sim.engine.faults.drop_ws()
    wait_until(lambda: feed.ws_server.connections_accepted == 2, what="the reconnect")
    wait_until(lambda: feed.ws_server.subscribed_symbols() == [symbols], what="every symbol resubscribed")
    since = time.monotonic()
    wait_until(lambda: all(feed.ticks.count("ws", s, since) for s in symbols), what="ws ticks of every symbol")
    feed.wait_state("ws")


def test_ping_is_sent_and_pong_keeps_the_connection(sim: RunningSim) -> None:
    feed = Feed(sim, ping_interval_s=0.05, pong_timeout_s=0.5)
    feed.watch("BTCUSDT")
    wait_until(lambda: feed.ws_server.pings_received >= 4, what="four pings")
    assert feed.ws_server.connections_accepted == 1
    feed.wait_state("ws")


def test_unanswered_pings_recycle_the_connection_and_rest_covers_meanwhile(sim: RunningSim) -> None:
    feed = Feed(sim, ping_interval_s=0.05, pong_timeout_s=0.1)
    feed.watch("BTCUSDT")
    feed.wait_state("ws")
    sim.engine.faults.ignore_ws_pings()
    wait_until(lambda: feed.ws_server.connections_accepted >= 2, what="a reconnect after missing pongs")
    wait_until(lambda: feed.ticks.count("rest") > 0, what="REST ticks while the socket was recycled")


def test_alert_on_rest_fallback_with_local_guard_is_journaled_and_notified_once(sim: RunningSim) -> None:
    journal = Journal(":memory:")
    notices = Notices()
    feed = Feed(sim, local_guard=True, local_guard_on_rest="alert", rest_grace_s=0.2, journal=journal,
                notifier=notices)
    feed.watch("BTCUSDT")
    feed.wait_state("ws")
    sim.engine.faults.refuse_ws()
    sim.engine.faults.drop_ws()
    wait_until(lambda: journal.events(EVENT_FALLBACK), what="the fallback event")
    feed.wait_more_ticks("rest", 5)  # well past the grace: still one alert for this episode
    assert notices.kinds.count(EVENT_FALLBACK) == 1
    assert len(journal.events(EVENT_FALLBACK)) == 1
    sim.engine.faults.refuse_ws(False)
    wait_until(lambda: "PRICE_FEED_RECOVERED" in notices.kinds, what="the recovery notice")


def test_rest_mode_never_opens_the_socket(sim: RunningSim) -> None:
    feed = Feed(sim, ws_url=None)
    feed.watch("ETHUSDT")
    feed.wait_more_ticks("rest", 3)
    assert feed.state() == "rest"
    assert feed.ws_server.connections_accepted == 0
    assert feed.ticks.count("ws") == 0


def test_a_restarted_feed_watches_every_open_position_without_being_told(sim: RunningSim) -> None:
    reply = sim.place_order(symbol="ETHUSDT", side="buy", size="0.1")
    assert reply.json()["code"] == "00000"
    feed = Feed(sim, client=sim.client())  # no WatchSymbol: the feed finds the position itself
    wait_until(lambda: feed.ws_server.subscribed_symbols() == [{"ETHUSDT"}], what="the position's symbol")
    feed.wait_more_ticks("ws", 3)
    feed.wait_state("ws")


def test_the_websocket_address_follows_the_config() -> None:
    def url(paper: str | None = None, **sections: Any) -> str | None:
        return price_feed_ws_url(parse_config(sections), paper)

    assert url() == "wss://ws.bitget.com/v2/ws/public"
    assert url("ws://127.0.0.1:5000/v2/ws/public") == "ws://127.0.0.1:5000/v2/ws/public"
    assert url(bitget={"demo_trading": True}) == "wss://wspap.bitget.com/v2/ws/public"
    assert url(bitget={"demo_trading": True, "ws_public_url": "wss://example.test/ws"}) == "wss://example.test/ws"
    assert url("ws://127.0.0.1:5000/v2/ws/public", monitor={"price_feed": {"mode": "rest"}}) is None


def test_a_stale_limit_within_one_poll_interval_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"monitor": {"price_feed": {"interval_seconds": 5, "stale_after_seconds": 5}}})
    assert info.value.problems[0][0] == "monitor.price_feed"
