"""Helpers for tests and demos: a running simulator and a minimal signed HTTP caller.

``running_sim()`` is the pytest-friendly way to get a live loopback exchange::

    with running_sim(seed=7) as sim:
        sim.engine.set_price("BTCUSDT", 65000)
        reply = sim.post("/api/v2/mix/order/place-order", {...})
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests

from exchange.bitget.client import BitgetClient, Credentials
from exchange.bitget.signing import canonical_query, sign
from exchange.sim.engine import SimExchange
from exchange.sim.server import SimServer
from exchange.sim.ws_server import SimWsServer


@dataclass(frozen=True)
class SimCredentials:
    api_key: str = "sim-key"
    api_secret: str = field(default="sim-secret", repr=False)
    passphrase: str = field(default="sim-pass", repr=False)


@dataclass
class RunningSim:
    engine: SimExchange
    server: SimServer
    base_url: str
    credentials: SimCredentials
    ws_url: str = ""
    ws_server: SimWsServer | None = None
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def client(self, **options: Any) -> BitgetClient:
        """A ``BitgetClient`` signed with this simulator's credentials; ``options`` go to the client."""
        creds = self.credentials
        return BitgetClient(self.base_url, Credentials(creds.api_key, creds.api_secret, creds.passphrase), **options)

    def headers(
        self,
        method: str,
        path: str,
        query: str = "",
        body: str = "",
        *,
        timestamp: str | None = None,
    ) -> dict[str, str]:
        ts = timestamp or str(int(time.time() * 1000))
        return {
            "ACCESS-KEY": self.credentials.api_key,
            "ACCESS-SIGN": sign(self.credentials.api_secret, ts, method, path, query, body),
            "ACCESS-TIMESTAMP": ts,
            "ACCESS-PASSPHRASE": self.credentials.passphrase,
            "Content-Type": "application/json",
            "locale": "en-US",
        }

    def get(
        self, path: str, params: dict[str, Any] | None = None, *, signed: bool = True, timeout: float = 5.0
    ) -> requests.Response:
        query = canonical_query(params)
        url = self.base_url + path + ("?" + query if query else "")
        headers = self.headers("GET", path, query) if signed else {}
        return self.session.get(url, headers=headers, timeout=timeout)

    def post(self, path: str, body: dict[str, Any], *, timeout: float = 5.0) -> requests.Response:
        raw = json.dumps(body, separators=(",", ":"))
        return self.session.post(
            self.base_url + path, data=raw, headers=self.headers("POST", path, "", raw), timeout=timeout
        )

    def place_order(self, *, timeout: float = 5.0, **fields: Any) -> requests.Response:
        """POST place-order with the usual USDT-M defaults filled in."""
        body = {
            "productType": "USDT-FUTURES",
            "marginMode": "crossed",
            "marginCoin": "USDT",
            "orderType": "market",
            **fields,
        }
        return self.post("/api/v2/mix/order/place-order", body, timeout=timeout)


@contextmanager
def running_sim(
    *,
    seed: int = 0,
    credentials: SimCredentials | None = None,
    engine: SimExchange | None = None,
    ws: bool = False,
    **server_options: Any,
) -> Iterator[RunningSim]:
    """Start an engine + loopback REST server (+ the public WebSocket with ``ws=True``); always stop them."""
    creds = credentials or SimCredentials()
    sim_engine = engine or SimExchange(seed=seed)
    server = SimServer(
        sim_engine,
        api_key=creds.api_key,
        api_secret=creds.api_secret,
        passphrase=creds.passphrase,
        **server_options,
    )
    ws_server = SimWsServer(sim_engine) if ws else None
    base_url = server.start()
    try:
        ws_url = ws_server.start() if ws_server else ""
        running = RunningSim(sim_engine, server, base_url, creds, ws_url, ws_server)
        try:
            yield running
        finally:
            running.session.close()
    finally:
        if ws_server is not None:
            ws_server.stop()
        server.stop()
        sim_engine.stop_ticker()
