"""The simulator's public WebSocket: Bitget's subscribe/ack/ticker protocol over a real RFC 6455 socket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import websocket

from exchange.sim.engine import SimExchange
from exchange.sim.testing import RunningSim, running_sim

BTC_TICKER = {"instType": "USDT-FUTURES", "channel": "ticker", "instId": "BTCUSDT"}


@pytest.fixture
def sim() -> Iterator[RunningSim]:
    with running_sim(seed=4, ws=True) as running:
        yield running


@pytest.fixture
def ws(sim: RunningSim) -> Iterator[websocket.WebSocket]:
    connection = websocket.create_connection(sim.ws_url, timeout=5)
    yield connection
    connection.close()


def receive_json(ws: websocket.WebSocket) -> dict[str, Any]:
    return json.loads(ws.recv())


def test_subscribe_is_acknowledged_then_pushes_a_snapshot(sim: RunningSim, ws: websocket.WebSocket) -> None:
    sim.engine.set_price("BTCUSDT", "65000")
    ws.send(json.dumps({"op": "subscribe", "args": [BTC_TICKER]}))
    assert receive_json(ws) == {"event": "subscribe", "arg": BTC_TICKER}
    push = receive_json(ws)
    assert push["action"] == "snapshot" and push["arg"] == BTC_TICKER and isinstance(push["ts"], int)
    (tick,) = push["data"]
    assert tick["instId"] == "BTCUSDT" and tick["lastPr"] == "65000" and tick["markPrice"] == "65000"
    assert all(isinstance(tick[k], str) for k in ("lastPr", "bidPr", "askPr", "markPrice", "indexPrice", "ts"))


def test_every_price_change_is_pushed_to_subscribers(sim: RunningSim, ws: websocket.WebSocket) -> None:
    ws.send(json.dumps({"op": "subscribe", "args": [BTC_TICKER]}))
    receive_json(ws)
    receive_json(ws)
    sim.engine.set_price("ETHUSDT", "3000")  # not subscribed: no push
    sim.engine.set_price("BTCUSDT", "65100")
    sim.engine.set_price("BTCUSDT", "65200.5")
    assert [receive_json(ws)["data"][0]["lastPr"] for _ in range(2)] == ["65100", "65200.5"]


def test_text_ping_gets_pong_and_protocol_ping_gets_pong_frame(ws: websocket.WebSocket) -> None:
    ws.send("ping")
    assert ws.recv() == "pong"
    ws.ping(b"hi")
    opcode, frame = ws.recv_data_frame(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_PONG and frame.data == b"hi"


def test_unknown_channel_gets_an_error_event(ws: websocket.WebSocket) -> None:
    ws.send(json.dumps({"op": "subscribe", "args": [{**BTC_TICKER, "instId": "NOPEUSDT"}]}))
    reply = receive_json(ws)
    assert reply["event"] == "error" and reply["code"] == 30001 and "NOPEUSDT" in reply["msg"]
    ws.send("{not json")
    assert receive_json(ws)["event"] == "error"


def test_drop_ws_fault_closes_connections(sim: RunningSim, ws: websocket.WebSocket) -> None:
    ws.send("ping")
    assert ws.recv() == "pong"
    sim.engine.faults.drop_ws()
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
        ws.recv()
    # A new connection is accepted after the drop.
    again = websocket.create_connection(sim.ws_url, timeout=5)
    again.send("ping")
    assert again.recv() == "pong"
    again.close()


def test_refused_upgrade_then_muted_socket_then_ignored_ping(sim: RunningSim) -> None:
    sim.engine.faults.refuse_ws(times=1)
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(sim.ws_url, timeout=5)
    ws = websocket.create_connection(sim.ws_url, timeout=5)
    try:
        sim.engine.faults.mute_ws()
        ws.send(json.dumps({"op": "subscribe", "args": [BTC_TICKER]}))
        assert receive_json(ws)["event"] == "subscribe"
        sim.engine.set_price("BTCUSDT", "64000")  # muted: no push; the pong below is the next frame
        ws.send("ping")
        assert ws.recv() == "pong"
        sim.engine.faults.ignore_ws_pings()
        sim.engine.faults.mute_ws(False)
        ws.send("ping")
        sim.engine.set_price("BTCUSDT", "64100")
        assert receive_json(ws)["data"][0]["lastPr"] == "64100"  # no pong came before the push
    finally:
        ws.close()
    assert sim.ws_server is not None and sim.ws_server.connections_refused == 1


def test_random_drops_follow_the_seed() -> None:
    def draws(seed: int) -> list[bool]:
        engine = SimExchange(seed=seed)
        engine.faults.drop_ws_randomly(0.5)
        return [engine.faults.ws_drop_on_push() for _ in range(20)]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)


def test_a_push_drops_the_connection_when_drops_are_certain(sim: RunningSim, ws: websocket.WebSocket) -> None:
    ws.send(json.dumps({"op": "subscribe", "args": [BTC_TICKER]}))
    receive_json(ws)
    receive_json(ws)
    sim.engine.faults.drop_ws_randomly(1.0)
    sim.engine.set_price("BTCUSDT", "65300")
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
        ws.recv()


def test_a_price_jump_is_pushed_as_one_gapped_tick(sim: RunningSim, ws: websocket.WebSocket) -> None:
    sim.engine.set_price("BTCUSDT", "60000")
    ws.send(json.dumps({"op": "subscribe", "args": [BTC_TICKER]}))
    receive_json(ws)
    receive_json(ws)
    jumped = sim.engine.faults.jump_price("BTCUSDT", -5)
    assert jumped == Decimal("57000")
    assert receive_json(ws)["data"][0]["lastPr"] == "57000"


def test_stale_prices_stop_pushes_while_the_socket_stays_open(sim: RunningSim, ws: websocket.WebSocket) -> None:
    ws.send(json.dumps({"op": "subscribe", "args": [BTC_TICKER]}))
    receive_json(ws)
    receive_json(ws)
    sim.engine.faults.stale_prices()
    sim.engine.set_price("BTCUSDT", "61000")
    ws.send("ping")
    assert ws.recv() == "pong"  # the socket is alive, but nothing was pushed
    sim.engine.faults.stale_prices(False)
    sim.engine.set_price("BTCUSDT", "61100")
    assert receive_json(ws)["data"][0]["lastPr"] == "61100"
