"""The ticker WebSocket connection against the simulator's WebSocket server, over loopback."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest

from exchange.bitget.feed_state import ReconnectBackoff
from exchange.bitget.models import Ticker
from exchange.bitget.ws import TickerStream
from exchange.sim.testing import RunningSim, running_sim
from exchange.sim.ws_server import SimWsServer
from tests.waiting import wait_until


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tickers: list[Ticker] = []
        self.states: list[tuple[str, str]] = []

    def on_ticker(self, ticker: Ticker) -> None:
        with self.lock:
            self.tickers.append(ticker)

    def on_state(self, state: str, detail: str) -> None:
        with self.lock:
            self.states.append((state, detail))

    def lasts(self, symbol: str) -> list[Decimal]:
        with self.lock:
            return [t.last for t in self.tickers if t.symbol == symbol]

    def state_names(self) -> list[str]:
        with self.lock:
            return [s for s, _ in self.states]


@pytest.fixture
def sim() -> Iterator[RunningSim]:
    with running_sim(seed=5, ws=True) as running:
        yield running


def ws_server(sim: RunningSim) -> SimWsServer:
    assert sim.ws_server is not None
    return sim.ws_server


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def make_stream(sim: RunningSim, recorder: Recorder, **options: float) -> TickerStream:
    settings: dict[str, float] = {"ping_interval": 30.0, "pong_timeout": 10.0, "stale_after": 30.0,
                                  "poll_interval": 0.02}
    settings.update(options)
    return TickerStream(
        sim.ws_url, recorder.on_ticker, recorder.on_state,
        backoff=ReconnectBackoff(base_s=0.02, cap_s=0.1, rng=random.Random(1)), **settings,
    )


@pytest.fixture
def stream_factory(sim: RunningSim, recorder: Recorder) -> Iterator[list[TickerStream]]:
    streams: list[TickerStream] = []
    yield streams
    for stream in streams:
        stream.stop()


def started(streams: list[TickerStream], stream: TickerStream) -> TickerStream:
    streams.append(stream)
    stream.start()
    return stream


def test_snapshot_and_updates_arrive_with_every_price_field(
    sim: RunningSim, recorder: Recorder, stream_factory: list[TickerStream]
) -> None:
    sim.engine.set_price("BTCUSDT", "65000")
    stream = started(stream_factory, make_stream(sim, recorder))
    stream.watch("BTCUSDT")
    wait_until(lambda: recorder.lasts("BTCUSDT"), what="the subscribe snapshot")
    sim.engine.set_price("BTCUSDT", "65100.5")
    wait_until(lambda: Decimal("65100.5") in recorder.lasts("BTCUSDT"), what="the update")
    ticker = recorder.tickers[-1]
    assert ticker.mark == Decimal("65100.5") and ticker.index == Decimal("65100.5")
    assert ticker.bid is not None and ticker.ask is not None and ticker.bid < ticker.ask and ticker.ts > 0
    assert recorder.state_names()[:2] == ["connecting", "connected"]


def test_symbols_are_added_and_removed_while_connected(
    sim: RunningSim, recorder: Recorder, stream_factory: list[TickerStream]
) -> None:
    stream = started(stream_factory, make_stream(sim, recorder))
    stream.watch("BTCUSDT")
    wait_until(lambda: ws_server(sim).subscribed_symbols() == [{"BTCUSDT"}])
    stream.watch("ETHUSDT")
    wait_until(lambda: ws_server(sim).subscribed_symbols() == [{"BTCUSDT", "ETHUSDT"}])
    wait_until(lambda: recorder.lasts("ETHUSDT"), what="the ETH snapshot")
    stream.unwatch("BTCUSDT")
    wait_until(lambda: ws_server(sim).subscribed_symbols() == [{"ETHUSDT"}])
    before = len(recorder.lasts("BTCUSDT"))
    sim.engine.set_price("BTCUSDT", "60000")
    sim.engine.set_price("ETHUSDT", "3001")
    wait_until(lambda: Decimal("3001") in recorder.lasts("ETHUSDT"))
    assert len(recorder.lasts("BTCUSDT")) == before
    assert ws_server(sim).connections_accepted == 1


def test_a_dropped_connection_reconnects_and_resubscribes_every_symbol(
    sim: RunningSim, recorder: Recorder, stream_factory: list[TickerStream]
) -> None:
    stream = started(stream_factory, make_stream(sim, recorder))
    for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
        stream.watch(symbol)
    wait_until(lambda: ws_server(sim).subscribed_symbols() == [{"BTCUSDT", "ETHUSDT", "SOLUSDT"}])
    sim.engine.faults.drop_ws()
    wait_until(lambda: ws_server(sim).connections_accepted == 2, what="a reconnect")
    wait_until(lambda: ws_server(sim).subscribed_symbols() == [{"BTCUSDT", "ETHUSDT", "SOLUSDT"}])
    sim.engine.set_price("SOLUSDT", "151.5")
    wait_until(lambda: Decimal("151.5") in recorder.lasts("SOLUSDT"), what="a push after the reconnect")
    assert "disconnected" in recorder.state_names()


def test_refused_connections_are_retried_with_backoff_until_accepted(
    sim: RunningSim, recorder: Recorder, stream_factory: list[TickerStream]
) -> None:
    sim.engine.faults.refuse_ws(times=3)
    stream = started(stream_factory, make_stream(sim, recorder))
    stream.watch("BTCUSDT")
    wait_until(lambda: recorder.lasts("BTCUSDT"), what="a ticker after three refusals")
    assert ws_server(sim).connections_refused == 3
    assert ws_server(sim).connections_accepted == 1
    assert recorder.state_names().count("disconnected") == 3


def test_text_ping_every_interval_and_pong_is_handled(
    sim: RunningSim, recorder: Recorder, stream_factory: list[TickerStream]
) -> None:
    stream = started(stream_factory, make_stream(sim, recorder, ping_interval=0.05, pong_timeout=0.5))
    wait_until(lambda: stream.pongs_received >= 3, what="three pongs")
    assert ws_server(sim).pings_received >= 3
    assert ws_server(sim).connections_accepted == 1  # answered pings keep the connection


def test_missing_pongs_end_the_connection(
    sim: RunningSim, recorder: Recorder, stream_factory: list[TickerStream]
) -> None:
    sim.engine.faults.ignore_ws_pings()
    started(stream_factory, make_stream(sim, recorder, ping_interval=0.05, pong_timeout=0.1))
    wait_until(lambda: ws_server(sim).connections_accepted >= 2, what="a reconnect after a missing pong")
    assert any("no pong" in detail for state, detail in recorder.states if state == "disconnected")


def test_a_socket_that_stops_pushing_is_reported_stale_and_recycled(
    sim: RunningSim, recorder: Recorder, stream_factory: list[TickerStream]
) -> None:
    stream = started(stream_factory, make_stream(sim, recorder, stale_after=0.2))
    stream.watch("BTCUSDT")
    wait_until(lambda: recorder.lasts("BTCUSDT"))
    sim.engine.faults.mute_ws()
    wait_until(lambda: "stale" in recorder.state_names(), what="stale")
    wait_until(lambda: ws_server(sim).connections_accepted >= 2, what="a new connection")
    sim.engine.faults.mute_ws(False)
    sim.engine.set_price("BTCUSDT", "61000")
    wait_until(lambda: Decimal("61000") in recorder.lasts("BTCUSDT"), what="pushes again")


def test_stop_closes_the_connection_and_joins_the_thread(
    sim: RunningSim, recorder: Recorder, stream_factory: list[TickerStream]
) -> None:
    stream = started(stream_factory, make_stream(sim, recorder))
    stream.watch("BTCUSDT")
    wait_until(lambda: ws_server(sim).connection_count() == 1)
    stream.stop()
    assert not stream.alive
    assert recorder.state_names()[-1] == "stopped"
    wait_until(lambda: ws_server(sim).connection_count() == 0, what="the server to see the close")
