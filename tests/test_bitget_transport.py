"""The client's default keep-alive transport over loopback: what reached the exchange decides the error class.

A write that may have reached the exchange is an UnknownOutcome; a write that never got a connection is only
"unavailable" (nothing happened); a connection the server closed while idle is replaced, not written into.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from exchange.bitget.client import BitgetClient, Credentials
from exchange.bitget.errors import ExchangeUnavailable, UnknownOutcome
from exchange.bitget.models import OrderRequest
from exchange.bitget.ratelimit import RateLimiter
from exchange.bitget.transport import HttpClientTransport, RequestsTransport, TransportError, default_transport
from exchange.sim.testing import running_sim
from tests.waiting import wait_until


@pytest.fixture
def sim() -> Iterator[Any]:
    with running_sim(seed=51) as running:
        yield running


def client_for(base_url: str, sim: Any | None = None, timeout: float = 2.0) -> BitgetClient:
    creds = sim.credentials if sim is not None else None
    return BitgetClient(
        base_url,
        Credentials(creds.api_key, creds.api_secret, creds.passphrase) if creds else Credentials("k", "s", "p"),
        timeout=timeout, max_read_retries=0, rate_limiter=RateLimiter(sleep=lambda s: None),
    )  # fmt: skip


def market_buy(client_oid: str) -> OrderRequest:
    return OrderRequest(
        symbol="BTCUSDT", side="buy", size=Decimal("0.001"), order_type="market", client_oid=client_oid,
        margin_mode="crossed",
    )  # fmt: skip


def test_default_transport_is_the_keep_alive_one_unless_a_proxy_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("ALL_PROXY", raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    assert isinstance(default_transport("https://api.bitget.com"), HttpClientTransport)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert isinstance(default_transport("https://api.bitget.com"), RequestsTransport)


def test_requests_share_one_connection_per_thread(sim: Any) -> None:
    client = client_for(sim.base_url, sim)
    client.ticker("BTCUSDT")
    transport = client._transport
    assert isinstance(transport, HttpClientTransport)
    first_socket = transport._local.conn.sock
    for _ in range(5):
        client.ticker("BTCUSDT")
        client.positions()
    assert transport._local.conn.sock is first_socket  # no reconnects: keep-alive


def test_a_connection_the_server_closed_while_idle_is_replaced(sim: Any) -> None:
    client = client_for(sim.base_url, sim)
    client.ticker("BTCUSDT")
    conn = client._transport._local.conn  # type: ignore[attr-defined]
    conn.sock.shutdown(socket.SHUT_RD)  # as if the server had closed it: the socket reads EOF
    assert client.ticker("BTCUSDT").symbol == "BTCUSDT"


def test_a_write_with_no_reply_is_an_unknown_outcome_and_is_on_the_exchange(sim: Any) -> None:
    client = client_for(sim.base_url, sim, timeout=0.3)
    client.contracts()
    sim.engine.faults.timeout_after_accept("place-order", delay_s=2.0)
    with pytest.raises(UnknownOutcome):
        client.place_order(market_buy("held-reply"))
    assert client.resolve_unknown("BTCUSDT", "held-reply") is not None
    sim.engine.faults.timeout_after_accept("place-order")  # dropped socket, no reply at all
    with pytest.raises(UnknownOutcome):
        client.place_order(market_buy("dropped-reply"))
    assert client.resolve_unknown("BTCUSDT", "dropped-reply") is not None


def test_a_read_past_its_timeout_is_unavailable_and_bounded(sim: Any) -> None:
    sim.engine.faults.latency("all-position", 2.0)
    client = client_for(sim.base_url, sim, timeout=0.2)
    with pytest.raises(ExchangeUnavailable) as info:
        client.positions()
    assert info.value.code == "timeout"
    sim.engine.faults.latency("all-position", 0)
    assert client.positions() == []  # the next call reconnects


def test_a_write_that_never_connected_is_only_unavailable() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nobody listens here once the socket is closed
    client = client_for(f"http://127.0.0.1:{port}", timeout=1.0)
    with pytest.raises(ExchangeUnavailable) as info:
        client.place_order(market_buy("never-sent"))
    assert info.value.code == "connect"


def test_threads_do_not_share_a_connection(sim: Any) -> None:
    client = client_for(sim.base_url, sim)
    connections: list[object] = []
    lock = threading.Lock()

    def worker() -> None:
        client.ticker("BTCUSDT")
        with lock:
            connections.append(client._transport._local.conn)  # type: ignore[attr-defined]

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    wait_until(lambda: len(connections) == 3, timeout=5, what="three workers")
    assert len({id(c) for c in connections}) == 3


def test_transport_reports_connect_failures_by_kind() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(TransportError) as info:
        HttpClientTransport(f"http://127.0.0.1:{port}").send("GET", f"http://127.0.0.1:{port}/x", None, {}, 1.0)
    assert info.value.kind == "connect"
