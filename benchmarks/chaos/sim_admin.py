"""Client of the simulator's ``/_sim/`` admin endpoints (exchange/sim/admin.py), with typed views of its state.

Everything the chaos harness checks comes from here: the exchange's own orders, plans, positions, prices and
request log, never the bot's account of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import requests

# Write endpoints through which an exit acts (close, cancel, stop move); one of them in the request log after an
# exit post is "an exit request was sent".
EXIT_ENDPOINTS = frozenset({
    "place-order", "cancel-order", "batch-cancel-orders", "close-positions", "place-tpsl-order",
    "place-pos-tpsl", "modify-tpsl-order", "cancel-plan-order",
})
# What a 429 burst hits: every trading write, and the reads reconciliation depends on.
RATE_LIMITED_ENDPOINTS = (
    "place-order", "cancel-order", "place-tpsl-order", "place-pos-tpsl", "modify-tpsl-order", "cancel-plan-order",
    "orders-pending", "orders-plan-pending", "all-position", "single-position", "detail",
)


@dataclass(frozen=True)
class OrderView:
    order_id: str
    client_oid: str
    symbol: str
    side: str
    trade_side: str
    reduce_only: bool
    pos_mode: str
    size: Decimal
    filled: Decimal
    state: str
    c_time: int
    order_source: str

    @property
    def closing(self) -> bool:
        return self.trade_side == "close" if self.pos_mode == "hedge_mode" else self.reduce_only

    @property
    def pos_side(self) -> str:
        """The position this order opens or closes (one-way: a reduce-only buy closes a short)."""
        if self.pos_mode == "hedge_mode":
            return "long" if self.side == "buy" else "short"
        if self.reduce_only:
            return "short" if self.side == "buy" else "long"
        return "long" if self.side == "buy" else "short"

    @property
    def from_plan(self) -> bool:
        """Sent by the exchange when one of its plans triggered (a stop or take-profit), not by a client."""
        return self.order_source != "normal"


@dataclass(frozen=True)
class PlanView:
    order_id: str
    client_oid: str
    symbol: str
    plan_type: str
    trigger_price: Decimal
    hold_side: str
    size: Decimal | None  # None: the whole position
    status: str
    c_time: int
    u_time: int

    @property
    def is_tpsl(self) -> bool:
        return self.plan_type in ("profit_plan", "loss_plan", "pos_profit", "pos_loss")

    @property
    def is_stop(self) -> bool:
        return self.plan_type in ("loss_plan", "pos_loss")


@dataclass(frozen=True)
class PositionView:
    symbol: str
    hold_side: str
    size: Decimal
    average_price: Decimal


@dataclass(frozen=True)
class SimState:
    now_ms: int
    orders: tuple[OrderView, ...]
    plans: tuple[PlanView, ...]
    positions: tuple[PositionView, ...]
    last: dict[str, Decimal]
    mark: dict[str, Decimal]

    def position(self, symbol: str, hold_side: str) -> PositionView | None:
        return next((p for p in self.positions if p.symbol == symbol and p.hold_side == hold_side), None)

    def position_size(self, symbol: str, hold_side: str) -> Decimal:
        found = self.position(symbol, hold_side)
        return found.size if found is not None else Decimal(0)

    def live_plans(self, symbol: str | None = None) -> list[PlanView]:
        return [p for p in self.plans if p.status == "live" and (symbol is None or p.symbol == symbol)]

    def open_orders(self, symbol: str | None = None) -> list[OrderView]:
        return [o for o in self.orders if o.state in ("live", "partially_filled")
                and (symbol is None or o.symbol == symbol)]


@dataclass(frozen=True)
class LoggedCall:
    index: int
    method: str
    endpoint: str
    params: dict[str, Any]
    status: int
    code: str

    @property
    def accepted(self) -> bool:
        """Applied by the exchange (an accepted call whose reply was then held or dropped is logged "accepted")."""
        return (self.status == 200 and self.code == "00000") or self.code == "accepted"


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


def parse_state(data: dict[str, Any]) -> SimState:
    orders = tuple(
        OrderView(
            order_id=str(o["order_id"]), client_oid=str(o.get("client_oid") or ""), symbol=str(o["symbol"]),
            side=str(o["side"]), trade_side=str(o.get("trade_side") or ""), reduce_only=bool(o["reduce_only"]),
            pos_mode=str(o["pos_mode"]), size=_dec(o["size"]), filled=_dec(o["filled"]), state=str(o["state"]),
            c_time=int(o["c_time"]), order_source=str(o.get("order_source") or "normal"),
        )
        for o in data["orders"]
    )
    plans = tuple(
        PlanView(
            order_id=str(p["order_id"]), client_oid=str(p.get("client_oid") or ""), symbol=str(p["symbol"]),
            plan_type=str(p["plan_type"]), trigger_price=_dec(p["trigger_price"]), hold_side=str(p["hold_side"]),
            size=None if p.get("size") is None else _dec(p["size"]), status=str(p["status"]),
            c_time=int(p["c_time"]), u_time=int(p["u_time"]),
        )
        for p in data["plans"]
    )
    positions = tuple(
        PositionView(symbol=str(p["symbol"]), hold_side=str(p["hold_side"]), size=_dec(p["size"]),
                     average_price=_dec(p["average_price"]))
        for p in data["positions"]
        if _dec(p["size"]) > 0
    )
    prices: dict[str, dict[str, str]] = data["prices"]
    return SimState(
        now_ms=int(data["now_ms"]), orders=orders, plans=plans, positions=positions,
        last={s: _dec(v["last"]) for s, v in prices.items()}, mark={s: _dec(v["mark"]) for s, v in prices.items()},
    )


class SimAdmin:
    """Talks to one simulator process's admin endpoints."""

    def __init__(self, base_url: str, *, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def _get(self, name: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        response = self._session.get(f"{self.base_url}/_sim/{name}", params=params, timeout=self._timeout)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def _post(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._session.post(f"{self.base_url}/_sim/{name}", json=body, timeout=self._timeout)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def state(self) -> SimState:
        return parse_state(self._get("state"))

    def state_json(self) -> dict[str, Any]:
        """The state as the simulator sent it (what a saved run keeps)."""
        return self._get("state")

    def requests_since(self, since: int) -> tuple[int, list[LoggedCall]]:
        data = self._get("requests", {"since": str(since)})
        calls = [
            LoggedCall(index=int(r["index"]), method=str(r["method"]), endpoint=str(r["endpoint"]),
                       params=dict(r.get("params") or {}), status=int(r["status"]), code=str(r["code"]))
            for r in data["requests"]
        ]
        return int(data["next"]), calls

    def request_count(self) -> int:
        return int(self._get("requests", {"since": "1000000000"})["next"])

    def fail_next(self, endpoint: str, *, http_status: int, code: str, times: int) -> None:
        self._post("faults", {"op": "fail_next", "endpoint": endpoint, "http_status": http_status, "code": code,
                              "times": times})

    def timeout_after_accept(self, endpoint: str, *, delay_s: float | None, times: int = 1) -> None:
        self._post("faults", {"op": "timeout_after_accept", "endpoint": endpoint, "delay_s": delay_s,
                              "times": times})

    def plans_survive_flat(self, enabled: bool) -> None:
        self._post("faults", {"op": "plans_survive_flat", "enabled": enabled})

    def clear_faults(self) -> None:
        self._post("faults", {"op": "clear"})

    def set_price(self, symbol: str, price: Decimal) -> Decimal:
        return _dec(self._post("price", {"symbol": symbol, "price": str(price)})["price"])
