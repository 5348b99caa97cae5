"""What the OrderManager's procedures (``trading.exit_executor`` and its kin) need from their collaborators, as
Protocols: the exchange (``BitgetClient``, fenced by the actor), the user's notices, the order counters and the
repeated-failure log. Plain objects know nothing of actors; the OrderManager hands them its own collaborators,
which satisfy these structurally (mypy checks it where they are built)."""

from __future__ import annotations

from typing import Protocol

from exchange.bitget.contracts import Contract
from exchange.bitget.models import OrderRequest, PlacedOrder, PlanOrder, Position, TpslRequest


class ExecutionExchange(Protocol):
    """Reads and writes the procedures use; every write goes through the actor's fence."""

    def position(self, symbol: str) -> list[Position]: ...

    def contract(self, symbol: str) -> Contract: ...

    def plan_orders_pending(self, plan_type: str, symbol: str | None = None) -> list[PlanOrder]: ...

    def place_order(self, request: OrderRequest) -> PlacedOrder: ...

    def cancel_order(self, symbol: str, *, order_id: str | None = None, client_oid: str | None = None) -> PlacedOrder:
        ...

    def place_tpsl_order(self, request: TpslRequest) -> PlacedOrder: ...

    def cancel_plan_order(
        self, symbol: str, *, plan_type: str, order_id: str | None = None, client_oid: str | None = None
    ) -> PlacedOrder: ...


class Notices(Protocol):
    def notify(self, kind: str, text: str) -> None: ...


class OrderCounters(Protocol):
    """Orders sent, by leg ("entry", "close", "stop", "tp") and result ("accepted", "rejected", "unknown")."""

    def order(self, leg: str, result: str) -> None: ...


class FailureLog(Protocol):
    """A failure said once, then counted (``ops.repeats.RepeatedFailures``)."""

    def failed(self, key: str, message: str) -> None: ...

    def succeeded(self, key: str) -> None: ...


class OrderFollowUp(Protocol):
    """What an exit asks of the rest of the order side: what became of an order (by client id, applied to the
    journal), and the reduce plans of a symbol cleaned after a close."""

    def resolve(self, client_oid: str, symbol: str) -> None: ...

    def clean_plans(self, symbol: str) -> None: ...


