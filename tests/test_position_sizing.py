"""Position sizing: risk budget over stop distance plus fees, capped, rounded down, never over budget."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.bitget.contracts import Contract
from parsing.signals import Action, Kind, ParsedMessage, Side
from trading.modes import Mode
from trading.risk import (
    AccountView,
    MarketView,
    RefusalReason,
    RiskContext,
    RiskLimits,
    evaluate_entry,
    unit_loss,
)

D = Decimal
BTC = Contract(
    symbol="BTCUSDT",
    base_coin="BTC",
    quote_coin="USDT",
    price_place=1,
    price_end_step=1,
    volume_place=3,
    size_multiplier=D("0.001"),
    min_trade_num=D("0.001"),
    min_trade_usdt=D("5"),
    max_lever=125,
)
DOGE = Contract(
    symbol="DOGEUSDT",
    base_coin="DOGE",
    quote_coin="USDT",
    price_place=5,
    price_end_step=1,
    volume_place=0,
    size_multiplier=D("1"),
    min_trade_num=D("1"),
    min_trade_usdt=D("5"),
    max_lever=50,
)
LIMITS = RiskLimits(max_notional_per_trade=D("1000000"))  # the notional cap is tested on its own


def signal(
    side: Side,
    entries: tuple[str, ...],
    stop: str,
    *,
    symbol: str = "BTCUSDT",
    market: bool = False,
    tps: tuple[str, ...] = (),
) -> ParsedMessage:
    return ParsedMessage(
        kind=Kind.ENTRY,
        action=Action.TRADE,
        symbol=symbol,
        side=side,
        entries=tuple(D(e) for e in entries),
        market_entry=market,
        stop_loss=D(stop),
        take_profits=tuple(D(t) for t in tps),
        confidence=0.95,
    )


def account(equity: str = "10000", available: str | None = None) -> AccountView:
    return AccountView(D(equity), D(available or equity), frozenset(), D(equity))


def ctx() -> RiskContext:
    return RiskContext(mode=Mode.NORMAL, now=1_000_000.0, last_entry_at={})


def test_long_size_is_budget_over_stop_distance_plus_fees() -> None:
    decision = evaluate_entry(
        signal(Side.LONG, ("60000",), "59000"), LIMITS, account("10000"), MarketView(D("60000"), BTC), ctx()
    )
    assert decision.approved, decision.detail
    plan = decision.plan
    assert plan is not None
    budget = D("30")  # 10000 * 0.003
    per_unit = D("1000") + D("119000") * D("0.0006")  # distance + both taker fees = 1071.4
    assert plan.size == D("0.028")  # 30 / 1071.4 = 0.02800.., rounded down to 0.001
    assert plan.risk_usdt == plan.size * per_unit <= budget
    assert plan.notional == D("0.028") * D("60000")
    assert plan.stop_loss == D("59000") and plan.entry_prices == (D("60000"),)


@pytest.mark.parametrize(
    ("side", "entries", "stop", "worst"),
    [
        (Side.LONG, ("59800", "60000"), "59000", D("60000")),
        (Side.SHORT, ("60000", "60200"), "61000", D("60000")),
    ],
)
def test_zone_is_sized_at_its_worst_entry(
    side: Side, entries: tuple[str, ...], stop: str, worst: Decimal
) -> None:
    decision = evaluate_entry(
        signal(side, entries, stop), LIMITS, account(), MarketView(D("60000"), BTC), ctx()
    )
    assert decision.approved, decision.detail
    assert decision.plan is not None
    assert decision.plan.sizing_price == worst
    assert decision.plan.entry_prices[0] == worst  # worst first, for the bundle
    assert decision.plan.size == BTC.round_size(D("30") / unit_loss(worst, D(stop), BTC.taker_fee_rate))


@pytest.mark.parametrize(("side", "stop"), [(Side.LONG, "2950"), (Side.SHORT, "3050")])
def test_market_entry_is_sized_at_the_worst_fill_the_slippage_bound_allows(side: Side, stop: str) -> None:
    eth = Contract("ETHUSDT", "ETH", "USDT", 2, 1, 2, D("0.01"), D("0.01"), D("5"), 100)
    decision = evaluate_entry(
        signal(side, (), stop, symbol="ETHUSDT", market=True),
        LIMITS,
        account(),
        MarketView(D("3010"), eth),
        ctx(),
    )
    assert decision.approved, decision.detail
    plan = decision.plan
    assert plan is not None and plan.market
    # The live price moved max_entry_slippage_pct (0.3%) against the trade: a long may fill higher, a short lower.
    worst = D("3010") * (D("1.003") if side is Side.LONG else D("0.997"))
    assert plan.sizing_price == worst and plan.entry_prices == (D("3010"),)
    assert plan.size == eth.round_size(D("30") / unit_loss(worst, D(stop), eth.taker_fee_rate))
    assert plan.size < eth.round_size(D("30") / unit_loss(D("3010"), D(stop), eth.taker_fee_rate))


@settings(max_examples=300, deadline=None)
@given(
    side=st.sampled_from([Side.LONG, Side.SHORT]),
    live_ticks=st.integers(min_value=100, max_value=10_000_000),
    stop_fraction=st.decimals(min_value=D("0.001"), max_value=D("0.3"), places=4),
    slippage=st.decimals(min_value=D("0"), max_value=D("0.05"), places=4),
    fill_at=st.decimals(min_value=D("0"), max_value=D("1"), places=3),
    equity=st.decimals(min_value=D("10"), max_value=D("1000000"), places=2),
    price_place=st.integers(min_value=0, max_value=5),
    volume_place=st.integers(min_value=0, max_value=4),
    contract_fee=st.sampled_from([D("0"), D("0.0006"), D("0.001")]),
    config_fee=st.sampled_from([None, D("0"), D("0.0002"), D("0.002")]),
)
def test_a_market_entry_filled_anywhere_within_the_slippage_bound_never_loses_more_than_the_budget(
    side: Side, live_ticks: int, stop_fraction: Decimal, slippage: Decimal, fill_at: Decimal, equity: Decimal,
    price_place: int, volume_place: int, contract_fee: Decimal, config_fee: Decimal | None,
) -> None:
    step = D(1).scaleb(-volume_place)
    contract = Contract("XUSDT", "X", "USDT", price_place, 1, volume_place, step, step, D("1"), 125,
                        taker_fee_rate=contract_fee)
    live = live_ticks * contract.tick_size
    is_long = side is Side.LONG
    stop = live * (1 - stop_fraction) if is_long else live * (1 + stop_fraction)
    msg = ParsedMessage(kind=Kind.ENTRY, action=Action.TRADE, symbol="XUSDT", side=side, market_entry=True,
                        stop_loss=stop, confidence=1.0)
    limits = RiskLimits(max_notional_per_trade=D("1e12"), max_entry_slippage_pct=slippage, taker_fee_rate=config_fee)
    wallet = AccountView(equity, D("1e15"), frozenset(), equity)
    decision = evaluate_entry(msg, limits, wallet, MarketView(live, contract), ctx())
    if not decision.approved:
        assert decision.reason in (RefusalReason.SIZE_BELOW_MINIMUM, RefusalReason.STOP_WRONG_SIDE), decision.detail
        return
    plan = decision.plan
    assert plan is not None
    fee = config_fee if config_fee is not None else contract_fee
    # Any fill from the live price up to the bound (against the trade), then out at the stop: both fills pay fees.
    fill = live * (1 + slippage * fill_at) if is_long else live * (1 - slippage * fill_at)
    loss = plan.size * (abs(fill - plan.stop_loss) + (fill + plan.stop_loss) * fee)
    budget = equity * limits.account_risk_per_trade
    assert loss <= budget, f"loss {loss} > budget {budget} (fill {fill}, size {plan.size})"


@pytest.mark.parametrize(("side", "stop"), [(Side.LONG, "59700"), (Side.SHORT, "60300")])
def test_notional_cap_limits_size(side: Side, stop: str) -> None:
    limits = RiskLimits(max_notional_per_trade=D("200"))
    decision = evaluate_entry(
        signal(side, ("60000",), stop), limits, account("100000"), MarketView(D("60000"), BTC), ctx()
    )
    assert decision.approved, decision.detail
    assert decision.plan is not None
    assert decision.plan.size == D("0.003")  # 200 / 60000 = 0.00333.. rounded down
    assert decision.plan.notional <= D("200")
    assert any("max_notional" in w for w in decision.warnings)


@pytest.mark.parametrize(("side", "stop"), [(Side.LONG, "50000"), (Side.SHORT, "70000")])
def test_below_minimum_after_rounding_is_refused_not_rounded_up(side: Side, stop: str) -> None:
    # Budget 0.3 USDT over a 10000 distance: 0.00003 BTC, below the 0.001 minimum.
    decision = evaluate_entry(
        signal(side, ("60000",), stop), LIMITS, account("100"), MarketView(D("60000"), BTC), ctx()
    )
    assert not decision.approved
    assert decision.reason is RefusalReason.SIZE_BELOW_MINIMUM
    assert decision.plan is None


def test_below_minimum_notional_is_refused() -> None:
    # 3 DOGE at 0.1 = 0.3 USDT notional: above the size minimum but below the 5 USDT minimum.
    decision = evaluate_entry(
        signal(Side.LONG, ("0.1",), "0.09", symbol="DOGEUSDT"),
        LIMITS,
        account("100"),
        MarketView(D("0.1"), DOGE),
        ctx(),
    )
    assert decision.reason is RefusalReason.SIZE_BELOW_MINIMUM


@pytest.mark.parametrize(
    ("side", "entry", "stop", "entry_rounded", "stop_rounded"),
    [
        (Side.LONG, "60000.07", "59000.09", D("60000.0"), D("59000.0")),
        (Side.SHORT, "60000.07", "61000.01", D("60000.1"), D("61000.1")),
    ],
)
def test_prices_round_toward_less_risk(
    side: Side, entry: str, stop: str, entry_rounded: Decimal, stop_rounded: Decimal
) -> None:
    # Entries round toward the better price, stops away from the entry; the size uses the rounded values.
    decision = evaluate_entry(
        signal(side, (entry,), stop), LIMITS, account(), MarketView(D("60000"), BTC), ctx()
    )
    assert decision.plan is not None
    assert decision.plan.entry_prices == (entry_rounded,)
    assert decision.plan.stop_loss == stop_rounded
    assert decision.plan.risk_usdt == decision.plan.size * unit_loss(
        entry_rounded, stop_rounded, BTC.taker_fee_rate
    )


@pytest.mark.parametrize(
    ("side", "tps", "expected"),
    [
        (Side.LONG, ("63000.06", "61000.04", "59500"), (D("61000.0"), D("63000.0"))),
        (Side.SHORT, ("57000.01", "59000.04", "60500"), (D("59000.1"), D("57000.1"))),
    ],
)
def test_targets_rounded_ordered_and_wrong_side_dropped(
    side: Side, tps: tuple[str, ...], expected: tuple[Decimal, ...]
) -> None:
    stop = "58000" if side is Side.LONG else "62000"
    decision = evaluate_entry(
        signal(side, ("60000",), stop, tps=tps), LIMITS, account(), MarketView(D("60000"), BTC), ctx()
    )
    assert decision.plan is not None
    assert decision.plan.take_profits == expected
    assert any("dropped" in w for w in decision.warnings)


@settings(max_examples=400, deadline=None)
@given(
    side=st.sampled_from([Side.LONG, Side.SHORT]),
    entry_ticks=st.integers(min_value=100, max_value=10_000_000),
    stop_fraction=st.decimals(min_value=D("0.001"), max_value=D("0.5"), places=4),
    equity=st.decimals(min_value=D("10"), max_value=D("1000000"), places=2),
    price_place=st.integers(min_value=0, max_value=5),
    volume_place=st.integers(min_value=0, max_value=4),
    fee=st.sampled_from([D("0"), D("0.0006"), D("0.001")]),
    notional_cap=st.sampled_from([D("50"), D("200"), D("1000000")]),
)
def test_worst_case_loss_never_exceeds_budget(
    side: Side,
    entry_ticks: int,
    stop_fraction: Decimal,
    equity: Decimal,
    price_place: int,
    volume_place: int,
    fee: Decimal,
    notional_cap: Decimal,
) -> None:
    step = D(1).scaleb(-volume_place)
    contract = Contract(
        "XUSDT", "X", "USDT", price_place, 1, volume_place, step, step, D("1"), 125, taker_fee_rate=fee
    )
    entry = entry_ticks * contract.tick_size
    stop = entry * (1 - stop_fraction) if side is Side.LONG else entry * (1 + stop_fraction)
    msg = ParsedMessage(
        kind=Kind.ENTRY,
        action=Action.TRADE,
        symbol="XUSDT",
        side=side,
        entries=(entry,),
        stop_loss=stop,
        confidence=1.0,
    )
    limits = RiskLimits(max_notional_per_trade=notional_cap)
    wallet = AccountView(equity, D("1e12"), frozenset(), equity)  # margin is not what this test is about
    decision = evaluate_entry(msg, limits, wallet, MarketView(entry, contract), ctx())
    if not decision.approved:
        # Only a too-small position may be refused here, never by rounding the risk up to the minimum.
        assert decision.reason is RefusalReason.SIZE_BELOW_MINIMUM, decision.detail
        rounded_stop = contract.round_price(stop, ROUND_DOWN if side is Side.LONG else ROUND_UP)
        per_unit = unit_loss(entry, rounded_stop, fee)
        raw = min(equity * limits.account_risk_per_trade / per_unit, notional_cap / entry)
        assert not contract.meets_minimums(contract.round_size(raw), entry)
        return
    plan = decision.plan
    assert plan is not None
    worst_case = plan.size * unit_loss(plan.sizing_price, plan.stop_loss, fee)
    assert worst_case == plan.risk_usdt
    assert worst_case <= equity * limits.account_risk_per_trade
    assert plan.notional <= notional_cap
    assert plan.size % contract.size_step == 0 and plan.size >= contract.min_trade_num
    assert plan.stop_loss % contract.tick_size == 0
    assert (plan.stop_loss < plan.sizing_price) if side is Side.LONG else (plan.stop_loss > plan.sizing_price)
