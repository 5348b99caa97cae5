"""Pure execution decisions: exchange order states to journal states, closes, stop replacement."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from exchange.bitget.contracts import Contract
from exchange.bitget.models import MarginMode, Order, OrderRequest, Position, PosMode
from exchange.bitget.semantics import order_fields
from trading.journal import OrderState

_EXCHANGE_STATES = {
    "live": OrderState.ACCEPTED,
    "new": OrderState.ACCEPTED,
    "init": OrderState.ACCEPTED,
    "partially_filled": OrderState.PARTIAL,
    "filled": OrderState.FILLED,
    "canceled": OrderState.CANCELED,
    "cancelled": OrderState.CANCELED,
}


def journal_state(order: Order) -> OrderState:
    """The journal state of an order as the exchange reports it (unknown states stay ACCEPTED).

    Canceled after a partial fill is CANCELED (the filled size is journaled beside it): the order is done, and
    what filled is protected as a position by reconciliation. A PARTIAL row would count as a working entry
    (blocking new signals on the symbol) and be looked up forever.
    """
    state = _EXCHANGE_STATES.get(order.state.lower(), OrderState.ACCEPTED)
    if state is OrderState.CANCELED and order.size > 0 and order.filled_size >= order.size:
        return OrderState.FILLED
    return state


def margin_mode_in_place(requested: str, reported: str | None) -> bool:
    """After set-margin-mode failed: the entry may go ahead only if the exchange reports the mode we asked for
    (e.g. it was already set); anything else, unknown included, could open the position in the other mode."""
    return reported is not None and reported.strip().lower() == requested.lower()


def action_client_oid(kind: str, *parts: object) -> str:
    """A client id for a protective action (close, repair): unique per distinct input, Bitget-safe."""
    digest = hashlib.sha256("|".join(str(p) for p in (kind, *parts)).encode()).hexdigest()[:20]
    return f"fl{kind[:4]}{digest}"


def close_request(position: Position, pos_mode: PosMode, client_oid: str, size: Decimal | None = None) -> OrderRequest:
    """A reduce-only market order closing ``size`` (default: all) of a position."""
    side, trade_side, reduce_only = order_fields(position.hold_side, pos_mode, closing=True)
    margin_mode: MarginMode = "crossed" if position.margin_mode == "crossed" else "isolated"
    return OrderRequest(
        symbol=position.symbol,
        side=side,
        size=size if size is not None else position.total,
        order_type="market",
        trade_side=trade_side,
        reduce_only=reduce_only,
        client_oid=client_oid,
        margin_mode=margin_mode,
    )


def partial_close_size(position: Position, percent: Decimal, contract: Contract) -> Decimal:
    """Size for closing ``percent`` of a position: rounded down to the step; all of it when the rest
    would be below the exchange minimum (a dust remainder cannot be closed later)."""
    if percent >= 100:
        return position.total
    size = contract.round_size(position.total * percent / Decimal(100))
    if position.total - size < contract.min_trade_num:
        return position.total
    if size < contract.min_trade_num:
        return Decimal(0)  # too small to send; the caller closes nothing
    return size


def stop_is_valid(side: str, stop: Decimal, mark: Decimal) -> bool:
    """A stop must sit on the loss side of the current price, or it would fire at once."""
    return stop < mark if side == "long" else stop > mark


def default_stop(position: Position, pct: Decimal, contract: Contract) -> Decimal:
    """Emergency stop for a position nobody gave a stop: ``pct`` from its entry on the loss side."""
    if position.hold_side == "long":
        return contract.round_price(position.average_open_price * (1 - pct), rounding="ROUND_DOWN")
    return contract.round_price(position.average_open_price * (1 + pct), rounding="ROUND_UP")
