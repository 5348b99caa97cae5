"""side / tradeSide / reduceOnly for one-way and hedge position modes.

The Bitget quirk: in *hedge* mode ``side`` names the position direction, not the trade direction, so
closing a long is sent as ``side=buy, tradeSide=close``. In *one-way* mode there is no ``tradeSide`` at all:
``side`` is the trade direction and closing a long is ``side=sell, reduceOnly=YES``. TP/SL orders name the
position with ``holdSide``: ``long``/``short`` in hedge mode, ``buy``/``sell`` in one-way mode.

These functions are the only place that knows the mapping; everything else asks them.
"""

from __future__ import annotations

from exchange.bitget.models import PositionSide, PosMode, Side, TpslHoldSide, TradeSide

ONE_WAY: PosMode = "one_way_mode"
HEDGE: PosMode = "hedge_mode"


def _check(position_side: str, pos_mode: str) -> None:
    if position_side not in ("long", "short"):
        raise ValueError(f"position_side must be 'long' or 'short', got {position_side!r}")
    if pos_mode not in (ONE_WAY, HEDGE):
        raise ValueError(f"pos_mode must be 'one_way_mode' or 'hedge_mode', got {pos_mode!r}")


def _trade_direction(position_side: str) -> Side:
    return "buy" if position_side == "long" else "sell"


def open_params(position_side: PositionSide, pos_mode: PosMode) -> dict[str, str]:
    """Fields that open (or add to) a position on ``position_side``."""
    _check(position_side, pos_mode)
    if pos_mode == HEDGE:
        return {"side": _trade_direction(position_side), "tradeSide": "open"}
    return {"side": _trade_direction(position_side)}


def close_params(position_side: PositionSide, pos_mode: PosMode) -> dict[str, str]:
    """Fields that reduce / close a position on ``position_side`` (never open the opposite side)."""
    _check(position_side, pos_mode)
    if pos_mode == HEDGE:
        # Hedge mode: side stays the position's direction; tradeSide=close makes it a closing order.
        return {"side": _trade_direction(position_side), "tradeSide": "close"}
    opposite = "sell" if position_side == "long" else "buy"
    return {"side": opposite, "reduceOnly": "YES"}


def tpsl_hold_side(position_side: PositionSide, pos_mode: PosMode) -> TpslHoldSide:
    """``holdSide`` of a TP/SL order protecting a position on ``position_side``."""
    _check(position_side, pos_mode)
    if pos_mode == HEDGE:
        return position_side
    return _trade_direction(position_side)


def order_fields(
    position_side: PositionSide, pos_mode: PosMode, *, closing: bool
) -> tuple[Side, TradeSide | None, bool]:
    """``(side, trade_side, reduce_only)`` for an :class:`~exchange.bitget.models.OrderRequest`."""
    params = close_params(position_side, pos_mode) if closing else open_params(position_side, pos_mode)
    side: Side = "buy" if params["side"] == "buy" else "sell"
    trade_side: TradeSide | None = None
    if "tradeSide" in params:
        trade_side = "open" if params["tradeSide"] == "open" else "close"
    return side, trade_side, params.get("reduceOnly") == "YES"


def position_side_of_fill(side: str, trade_side: str | None, pos_mode: PosMode) -> PositionSide | None:
    """Which position a hedge-mode order/fill acts on; None in one-way mode (it depends on the position)."""
    if pos_mode != HEDGE or trade_side is None:
        return None
    return "long" if side.lower() == "buy" else "short"
