"""One-way vs hedge mode: which side/tradeSide/reduceOnly/holdSide opens or closes which position."""

from __future__ import annotations

import pytest

from exchange.bitget.semantics import close_params, open_params, order_fields, tpsl_hold_side


@pytest.mark.parametrize(
    ("position_side", "expected"),
    [("long", {"side": "buy", "tradeSide": "open"}), ("short", {"side": "sell", "tradeSide": "open"})],
)
def test_hedge_open(position_side: str, expected: dict[str, str]) -> None:
    assert open_params(position_side, "hedge_mode") == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("position_side", "expected"),
    # The Bitget quirk: closing a long in hedge mode is side=buy + tradeSide=close.
    [("long", {"side": "buy", "tradeSide": "close"}), ("short", {"side": "sell", "tradeSide": "close"})],
)
def test_hedge_close_keeps_the_position_direction(position_side: str, expected: dict[str, str]) -> None:
    assert close_params(position_side, "hedge_mode") == expected  # type: ignore[arg-type]


def test_one_way_open_has_no_trade_side_and_no_reduce_only() -> None:
    assert open_params("long", "one_way_mode") == {"side": "buy"}
    assert open_params("short", "one_way_mode") == {"side": "sell"}


def test_one_way_close_is_the_opposite_trade_with_reduce_only() -> None:
    assert close_params("long", "one_way_mode") == {"side": "sell", "reduceOnly": "YES"}
    assert close_params("short", "one_way_mode") == {"side": "buy", "reduceOnly": "YES"}


def test_tpsl_hold_side_per_mode() -> None:
    assert tpsl_hold_side("long", "hedge_mode") == "long"
    assert tpsl_hold_side("short", "hedge_mode") == "short"
    assert tpsl_hold_side("long", "one_way_mode") == "buy"
    assert tpsl_hold_side("short", "one_way_mode") == "sell"


def test_order_fields_feed_an_order_request() -> None:
    assert order_fields("long", "hedge_mode", closing=True) == ("buy", "close", False)
    assert order_fields("long", "one_way_mode", closing=True) == ("sell", None, True)
    assert order_fields("short", "one_way_mode", closing=False) == ("sell", None, False)


@pytest.mark.parametrize(
    ("side", "mode"), [("buy", "hedge_mode"), ("long", "hedge"), ("LONG", "one_way_mode")]
)
def test_unknown_values_are_refused(side: str, mode: str) -> None:
    with pytest.raises(ValueError):
        open_params(side, mode)  # type: ignore[arg-type]
