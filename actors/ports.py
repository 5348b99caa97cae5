"""What the actors need from their collaborators, as Protocols (structural types: any object with these
methods will do, the real ones and the test doubles alike).

Each actor asks only for what it uses: the PriceFeed's exchange reads positions and tickers, the OrderManager's
also places and cancels. ``BitgetClient`` satisfies every exchange protocol here; ``Notifier``,
``RuntimeStatus`` and ``Address`` (or a pykka ref) the others. mypy checks that at the wiring
(``runtime/wiring.py``), so a method renamed on one side is a type error, not an ``AttributeError`` at 3 a.m.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

from exchange.bitget.contracts import Contract
from exchange.bitget.models import (
    Account,
    Fill,
    Order,
    OrderRequest,
    PlacedOrder,
    PlanOrder,
    Position,
    Ticker,
    TpslRequest,
)
from ops.notify import NoticeValue
from trading.facts import FactStore

# The facts the exchange showed (account, positions, prices, symbol settings) as the actors share them.
ExchangeFacts = FactStore[Account, Position]


class Recipient(Protocol):
    """Anything a message can be told to: an :class:`~actors.directory.Address` or a pykka ref."""

    def tell(self, message: object, /) -> object: ...


class Notices(Protocol):
    """The user's notice channel (:class:`~ops.notify.Notifier`)."""

    def notify(self, kind: str, text: str, fields: Mapping[str, NoticeValue] | None = None) -> None: ...


class StatusBoard(Protocol):
    """The readiness facts /readyz reads (:class:`~ops.status.RuntimeStatus`)."""

    def set(self, name: str, ok: bool, detail: str = "") -> None: ...

    def get(self, name: str) -> bool: ...


# --- the exchange, as each actor uses it ------------------------------------------------------------------
class PositionsReader(Protocol):
    def positions(self) -> list[Position]: ...


class PriceFeedExchange(PositionsReader, Protocol):
    """The PriceFeed's exchange: open positions to watch, and a ticker when the WebSocket is silent."""

    def ticker(self, symbol: str) -> Ticker: ...


class MarketReader(PositionsReader, Protocol):
    def account(self, symbol: str | None = None) -> Account: ...

    def contract(self, symbol: str) -> Contract: ...


class RiskGateExchange(MarketReader, Protocol):
    """The RiskGate's exchange: the account, the contract and its price, the open positions."""

    def ticker(self, symbol: str) -> Ticker: ...


class PlansReader(Protocol):
    def plan_orders_pending(self, plan_type: str, symbol: str | None = None) -> list[PlanOrder]: ...


class PositionsAndPlans(PositionsReader, PlansReader, Protocol):
    """``following status``: the positions and the TP/SL plans that protect them."""


class GuardExchange(MarketReader, PlansReader, Protocol):
    """The PositionGuard's exchange: positions with their stops and working orders."""

    def pending_orders(self, symbol: str | None = None) -> list[Order]: ...


class OutcomesExchange(Protocol):
    """The OutcomeTracker's exchange: fills and the orders they belong to."""

    def fills(self, symbol: str, order_id: str | None = None, *, start_time_ms: int | None = None) -> list[Fill]: ...

    def order_detail(self, symbol: str, *, order_id: str | None = None, client_oid: str | None = None) -> Order: ...


class OrderExchange(GuardExchange, Protocol):
    """The OrderManager's exchange: everything it reads, and the writes (each one fenced)."""

    def position(self, symbol: str) -> list[Position]: ...

    def cached_contract(self, symbol: str) -> Contract | None: ...  # the contract list as read, no request

    def order_detail(self, symbol: str, *, order_id: str | None = None, client_oid: str | None = None) -> Order: ...

    def resolve_unknown(self, symbol: str, client_oid: str) -> Order | None: ...

    def place_order(self, request: OrderRequest) -> PlacedOrder: ...

    def cancel_order(self, symbol: str, *, order_id: str | None = None, client_oid: str | None = None) -> PlacedOrder:
        ...

    def place_tpsl_order(self, request: TpslRequest) -> PlacedOrder: ...

    def modify_tpsl_order(
        self,
        symbol: str,
        *,
        trigger_price: Decimal,
        order_id: str | None = None,
        client_oid: str | None = None,
        size: Decimal | None = None,
        trigger_type: str = "mark_price",
        execute_price: Decimal | None = None,
    ) -> PlacedOrder: ...

    def cancel_plan_order(
        self, symbol: str, *, plan_type: str, order_id: str | None = None, client_oid: str | None = None
    ) -> PlacedOrder: ...

    def set_leverage(self, symbol: str, leverage: int | Decimal, hold_side: str | None = None) -> dict[str, Any]: ...

    def set_margin_mode(self, symbol: str, mode: str) -> dict[str, Any]: ...
