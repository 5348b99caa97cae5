"""The simulator's public WebSocket: Bitget's subscribe/ack/ticker protocol over a real RFC 6455 socket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import websocket

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
