"""Bitget V2 USDT-M futures simulator: matching engine, loopback REST server and public WebSocket."""

from __future__ import annotations

from exchange.sim.engine import SimExchange
from exchange.sim.errors import SimError
from exchange.sim.server import SimServer
from exchange.sim.ws_server import SimWsServer

__all__ = ["SimError", "SimExchange", "SimServer", "SimWsServer"]
