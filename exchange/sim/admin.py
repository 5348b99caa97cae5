"""The simulator's admin endpoints (``/_sim/...``), for harnesses that run the simulator as its own process.

Off by default (``SimServer(admin=True)``, ``following sim --admin``): they are unauthenticated and change the
exchange's state, so they exist only on a loopback simulator started for a test campaign. They expose what a
test in the same process reads from the engine directly:

- ``GET /_sim/state``: every order, every plan (any status), positions, last and mark prices, the request count.
- ``GET /_sim/requests?since=N``: the request log from index ``N`` (method, endpoint, params, status, code).
- ``POST /_sim/faults``: ``{"op": "fail_next", "endpoint", "http_status", "code", "times"}``,
  ``{"op": "timeout_after_accept", "endpoint", "delay_s" (null: drop the connection), "times"}``,
  ``{"op": "latency", "endpoint", "seconds"}``, ``{"op": "base_latency", "seconds"}`` (every endpoint),
  ``{"op": "plans_survive_flat", "enabled"}``, ``{"op": "clear"}``.
- ``POST /_sim/price``: ``{"symbol", "price", "mark" (optional)}`` moves the price and runs the triggers.

Answers are JSON objects; decimals are strings, as in Bitget's own replies.
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from decimal import Decimal
from typing import Any

from exchange.sim.engine import SimExchange
from exchange.sim.errors import SimError

ADMIN_PREFIX = "/_sim/"


class AdminError(Exception):
    """A bad admin call: answered with HTTP 400 and the message."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def state(engine: SimExchange) -> dict[str, Any]:
    prices = {
        symbol: {"last": str(engine.price(symbol)), "mark": str(engine.mark_price(symbol))}
        for symbol in engine.contracts
    }
    return {
        "now_ms": engine.now_ms(),
        "orders": _jsonable(engine.orders()),
        "plans": _jsonable(engine.plan_orders(live_only=False)),
        "positions": _jsonable(engine.positions()),
        "prices": prices,
        "requests": len(engine.request_log),
    }


def requests_since(engine: SimExchange, since: int) -> dict[str, Any]:
    log = list(engine.request_log)  # a copy: handler threads append meanwhile
    since = max(0, since)
    return {
        "next": len(log),
        "requests": [
            {"index": index, **_jsonable(entry)} for index, entry in enumerate(log[since:], start=since)
        ],
    }


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise AdminError(f"{key} must be a non-empty string")
    return value


def _int(body: dict[str, Any], key: str, default: int) -> int:
    value = body.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise AdminError(f"{key} must be a non-negative integer")
    return value


def _seconds(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise AdminError(f"{key} must be a non-negative number or null")
    return float(value)


def faults(engine: SimExchange, body: dict[str, Any]) -> dict[str, Any]:
    plan = engine.faults
    op = body.get("op")
    if op == "fail_next":
        http_status = _int(body, "http_status", 500)
        code = body.get("code")
        plan.fail_next(_text(body, "endpoint"), http_status=http_status,
                       code=str(code) if code is not None else None, times=_int(body, "times", 1))
    elif op == "timeout_after_accept":
        plan.timeout_after_accept(_text(body, "endpoint"), delay_s=_seconds(body, "delay_s"),
                                  times=_int(body, "times", 1))
    elif op == "latency":
        plan.latency(_text(body, "endpoint"), _seconds(body, "seconds") or 0.0)
    elif op == "base_latency":
        plan.base_latency(_seconds(body, "seconds") or 0.0)
    elif op == "plans_survive_flat":
        plan.plans_survive_flat(bool(body.get("enabled", True)))
    elif op == "clear":
        plan.clear()
    else:
        raise AdminError(f"unknown op {op!r}")
    return {"ok": True}


def set_price(engine: SimExchange, body: dict[str, Any]) -> dict[str, Any]:
    symbol = _text(body, "symbol")
    try:
        price = Decimal(str(body["price"]))
        mark = None if body.get("mark") is None else Decimal(str(body["mark"]))
        applied = engine.set_price(symbol, price, mark=mark)
    except (KeyError, ArithmeticError) as exc:
        raise AdminError(f"bad price: {exc}") from None
    except SimError as exc:
        raise AdminError(exc.msg) from None
    return {"symbol": symbol, "price": str(applied)}


def handle(engine: SimExchange, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """One admin call -> (HTTP status, JSON object)."""
    name = path[len(ADMIN_PREFIX):].strip("/")
    try:
        if method == "GET" and name == "state":
            return 200, state(engine)
        if method == "GET" and name == "requests":
            try:
                since = int(params.get("since", 0))
            except (TypeError, ValueError):
                raise AdminError("since must be an integer") from None
            return 200, requests_since(engine, since)
        if method == "POST" and name == "faults":
            return 200, faults(engine, params)
        if method == "POST" and name == "price":
            return 200, set_price(engine, params)
    except AdminError as exc:
        return 400, {"error": str(exc)}
    return 404, {"error": f"no admin endpoint {method} {path}"}
