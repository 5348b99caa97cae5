"""The order bundle: entry legs, the stop and the targets, in the one-way and hedge dialects of Bitget."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from exchange.bitget.contracts import Contract
from parsing.signals import Action, Kind, ParsedMessage, Side
from trading.bundle import OrderBundle, break_even_stop, client_oid, plan_bundle
from trading.modes import Mode
from trading.risk import AccountView, MarketView, RiskContext, RiskLimits, SizedEntry, evaluate_entry

D = Decimal
BTC = Contract("BTCUSDT", "BTC", "USDT", 1, 1, 3, D("0.001"), D("0.001"), D("5"), max_lever=125)
BOTH = pytest.mark.parametrize("side", [Side.LONG, Side.SHORT])
MODES = pytest.mark.parametrize("pos_mode", ["one_way_mode", "hedge_mode"])


def sized(
    side: Side,
    *,
    entries: tuple[str, ...] = ("60000",),
    market: bool = False,
    size: str = "0.012",
    tps: tuple[str, ...] | None = None,
    tp_pct: tuple[Decimal, ...] = (),
) -> SizedEntry:
    is_long = side is Side.LONG
    if tps is None:
        tps = ("61000", "62000", "63000") if is_long else ("59000", "58000", "57000")
    prices = tuple(sorted((D(e) for e in entries), reverse=is_long))
    return SizedEntry(
        symbol="BTCUSDT",
        side=side,
        size=D(size),
        entry_prices=prices,
        market=market,
        stop_loss=D("59000") if is_long else D("61000"),
        take_profits=tuple(D(t) for t in tps),
        tp_percentages=tp_pct,
        leverage=5,
        margin_mode="isolated",
        sizing_price=prices[0],
        notional=D(size) * prices[0],
        margin=D(size) * prices[0] / 5,
        risk_usdt=D("1"),
    )


def bundle(plan: SizedEntry, pos_mode: str = "one_way_mode", zone_split: int = 1) -> OrderBundle:
    return plan_bundle(
        plan, channel="IvanCryptotalk", message_id=77, pos_mode=pos_mode, zone_split=zone_split, contract=BTC
    )


@pytest.mark.parametrize(
    ("side", "pos_mode", "open_", "close", "hold"),
    [
        (Side.LONG, "one_way_mode", ("buy", None, False), ("sell", None, True), "buy"),
        (Side.SHORT, "one_way_mode", ("sell", None, False), ("buy", None, True), "sell"),
        (Side.LONG, "hedge_mode", ("buy", "open", False), ("buy", "close", False), "long"),
        (Side.SHORT, "hedge_mode", ("sell", "open", False), ("sell", "close", False), "short"),
    ],
)
def test_side_trade_side_and_reduce_only_per_position_mode(
    side: Side, pos_mode: str, open_: tuple[str, str | None, bool], close: tuple[str, str | None, bool], hold: str
) -> None:
    result = bundle(sized(side), pos_mode)
    for leg in result.entries:
        assert (leg.side, leg.trade_side, leg.reduce_only) == open_
        assert not leg.closes
    assert result.take_profits
    for leg in result.take_profits:
        assert (leg.side, leg.trade_side, leg.reduce_only) == close
        assert leg.closes and leg.order_type == "limit"
    assert result.stop.hold_side == hold


@BOTH
@MODES
def test_market_entry_is_one_market_order_carrying_the_stop(side: Side, pos_mode: str) -> None:
    result = bundle(sized(side, market=True), pos_mode)
    assert len(result.entries) == 1
    entry = result.entries[0]
    assert entry.order_type == "market" and entry.price is None and entry.size == D("0.012")
    assert entry.preset_stop_loss_price == result.stop.trigger_price
    assert entry.leg == "entry" and entry.client_oid == client_oid("IvanCryptotalk", 77, "entry")


@BOTH
def test_single_limit_entry(side: Side) -> None:
    result = bundle(sized(side))
    assert [(e.order_type, e.price, e.size) for e in result.entries] == [("limit", D("60000"), D("0.012"))]


@BOTH
def test_zone_without_split_is_one_limit_at_the_worst_price(side: Side) -> None:
    result = bundle(sized(side, entries=("59800", "60200")))
    worst = D("60200") if side is Side.LONG else D("59800")
    assert [(e.price, e.size) for e in result.entries] == [(worst, D("0.012"))]


@pytest.mark.parametrize(
    ("side", "expected_prices"),
    [
        (Side.LONG, [D("60200"), D("60000"), D("59800")]),
        (Side.SHORT, [D("59800"), D("60000"), D("60200")]),
    ],
)
def test_zone_split_spreads_the_size_from_the_worst_price(side: Side, expected_prices: list[Decimal]) -> None:
    result = bundle(sized(side, entries=("59800", "60200"), size="0.013"), zone_split=3)
    assert [e.price for e in result.entries] == expected_prices
    assert [e.size for e in result.entries] == [D("0.005"), D("0.004"), D("0.004")]  # odd step fills first
    assert sum(e.size for e in result.entries) == D("0.013")
    assert [e.leg for e in result.entries] == ["entry", "entry2", "entry3"]
    # Every leg carries the attached stop (sized by the exchange to that leg's fills).
    assert [e.preset_stop_loss_price for e in result.entries] == [result.stop.trigger_price] * 3
    assert result.stop.size == D("0.013")


@BOTH
def test_zone_split_uses_the_signals_own_entries_when_counts_match(side: Side) -> None:
    result = bundle(sized(side, entries=("59000.5", "59700", "60200"), size="0.030"), zone_split=3)
    expected = [D("60200"), D("59700"), D("59000.5")]
    assert [e.price for e in result.entries] == (expected if side is Side.LONG else expected[::-1])


@BOTH
def test_zone_split_gives_fewer_parts_rather_than_undersized_ones(side: Side) -> None:
    # Three parts of 0.001 BTC (60 USDT each) would break a 100 USDT minimum notional: one part of 0.002.
    contract = replace(BTC, min_trade_usdt=D("100"))
    plan = sized(side, entries=("59800", "60200"), size="0.002")
    result = plan_bundle(plan, channel="c", message_id=1, pos_mode="one_way_mode", zone_split=3, contract=contract)
    assert len(result.entries) == 1 and result.entries[0].size == D("0.002")


@BOTH
@MODES
def test_stop_plan_matches_the_plan(side: Side, pos_mode: str) -> None:
    plan = sized(side)
    result = bundle(plan, pos_mode)
    assert result.stop.trigger_price == plan.stop_loss
    assert result.stop.size == plan.size
    assert result.stop.plan_type == "loss_plan"
    assert result.stop.client_oid == client_oid("IvanCryptotalk", 77, "sl")


@BOTH
def test_targets_sized_and_priced_in_order(side: Side) -> None:
    plan = sized(side)
    result = bundle(plan)
    assert [t.price for t in result.take_profits] == list(plan.take_profits)
    assert [t.size for t in result.take_profits] == [D("0.004")] * 3
    assert [t.leg for t in result.take_profits] == ["tp1", "tp2", "tp3"]
    assert sum(t.size for t in result.take_profits) == plan.size


@BOTH
def test_target_percentages_are_used(side: Side) -> None:
    result = bundle(sized(side, size="0.010", tp_pct=(D(50), D(30), D(20))))
    assert [t.size for t in result.take_profits] == [D("0.005"), D("0.003"), D("0.002")]


@BOTH
def test_small_position_gets_fewer_targets(side: Side) -> None:
    result = bundle(sized(side, size="0.002"))
    assert [t.leg for t in result.take_profits] == ["tp1", "tp2"]
    assert sum(t.size for t in result.take_profits) == D("0.002")


@BOTH
def test_no_targets_no_tp_legs(side: Side) -> None:
    assert bundle(sized(side, tps=())).take_profits == ()


def test_every_client_id_in_a_bundle_is_distinct() -> None:
    result = bundle(sized(Side.LONG, entries=("59800", "60200"), size="0.030"), zone_split=3)
    oids = result.client_oids()
    assert len(oids) == len(set(oids)) == 3 + 1 + 3


def test_bundle_refuses_mismatched_inputs() -> None:
    with pytest.raises(ValueError):
        bundle(sized(Side.LONG), pos_mode="double_mode")
    with pytest.raises(ValueError):
        plan_bundle(
            sized(Side.LONG),
            channel="c",
            message_id=1,
            pos_mode="one_way_mode",
            contract=replace(BTC, symbol="ETHUSDT"),
        )


@BOTH
@MODES
def test_from_signal_to_bundle(side: Side, pos_mode: str) -> None:
    # The risk gate's output feeds the bundle without any adaptation.
    is_long = side is Side.LONG
    signal = ParsedMessage(
        kind=Kind.ENTRY,
        action=Action.TRADE,
        symbol="BTCUSDT",
        side=side,
        entries=(D("59900"), D("60100")),
        stop_loss=D("59000") if is_long else D("61000"),
        take_profits=(D("61000"), D("62000")) if is_long else (D("59000.5"), D("58000")),
        leverage=5,
        confidence=0.9,
    )
    decision = evaluate_entry(
        signal,
        RiskLimits(),
        AccountView(D("10000"), D("10000"), frozenset(), D("10000")),
        MarketView(D("60000"), BTC),
        RiskContext(Mode.NORMAL, 0.0, {}),
    )
    assert decision.plan is not None, decision.detail
    result = plan_bundle(decision.plan, channel="c", message_id=9, pos_mode=pos_mode, zone_split=2, contract=BTC)
    assert sum(e.size for e in result.entries) == decision.plan.size
    assert sum(t.size for t in result.take_profits) == decision.plan.size
    assert result.leverage == 5 and result.margin_mode == "isolated"


@pytest.mark.parametrize(
    ("side", "avg_entry", "buffer", "expected"),
    [
        (Side.LONG, "60000", "0.001", D("60060.0")),
        (Side.LONG, "60000.03", "0.001", D("60060.1")),  # 60060.03003 rounded up: the buffer is kept whole
        (Side.SHORT, "60000", "0.001", D("59940.0")),
        (Side.SHORT, "60000.07", "0.001", D("59940.0")),  # 59940.00993 rounded down
        (Side.LONG, "60000", "0", D("60000.0")),
    ],
)
def test_break_even_stop(side: Side, avg_entry: str, buffer: str, expected: Decimal) -> None:
    assert break_even_stop(D(avg_entry), side, D(buffer), BTC) == expected


@pytest.mark.parametrize(("hold_side", "expected"), [("long", D("60060.0")), ("short", D("59940.0"))])
def test_break_even_stop_takes_a_positions_hold_side_string(hold_side: str, expected: Decimal) -> None:
    # Positions from the exchange name their side as a plain string; it must not be read as the other side.
    assert break_even_stop(D("60000"), hold_side, D("0.001"), BTC) == expected


def test_break_even_stop_refuses_an_unknown_side() -> None:
    with pytest.raises(ValueError):
        break_even_stop(D("60000"), "buy", D("0.001"), BTC)
