"""No stop, no trade: a signal without a stop is refused unless the default stop is switched on."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from exchange.bitget.contracts import Contract
from parsing.signals import Action, Kind, ParsedMessage, Side
from trading.modes import Mode
from trading.risk import AccountView, MarketView, RefusalReason, RiskContext, RiskLimits, evaluate_entry

D = Decimal
BTC = Contract("BTCUSDT", "BTC", "USDT", 1, 1, 3, D("0.001"), D("0.001"), D("5"), max_lever=125)
ACCOUNT = AccountView(D("10000"), D("10000"), frozenset(), D("10000"))
CTX = RiskContext(Mode.NORMAL, 0.0, {})
BOTH = pytest.mark.parametrize("side", [Side.LONG, Side.SHORT])


def entry(
    side: Side, stop: str | None, entries: tuple[str, ...] = ("60000",), market: bool = False
) -> ParsedMessage:
    return ParsedMessage(
        kind=Kind.ENTRY,
        action=Action.TRADE,
        symbol="BTCUSDT",
        side=side,
        entries=tuple(D(e) for e in entries),
        market_entry=market,
        stop_loss=None if stop is None else D(stop),
        confidence=0.9,
    )


@BOTH
def test_missing_stop_is_refused_by_default(side: Side) -> None:
    decision = evaluate_entry(entry(side, None), RiskLimits(), ACCOUNT, MarketView(D("60000"), BTC), CTX)
    assert not decision.approved
    assert decision.reason is RefusalReason.STOP_MISSING
    assert decision.plan is None


def stopless(side: Side, entries: tuple[str, ...] = ("60000",), market: bool = False) -> ParsedMessage:
    """What the parser gives for a post complete but for its stop: notify_only, flagged stop_missing."""
    return replace(entry(side, None, entries, market), action=Action.NOTIFY_ONLY, stop_missing=True,
                   warnings=("no stop loss",))


def test_hard_stop_loss_cannot_be_switched_off() -> None:
    # False would mean an entry without a stop; the project refuses that combination instead of honouring it.
    with pytest.raises(ValueError, match="hard_stop_loss_required"):
        RiskLimits(hard_stop_loss_required=False)


@BOTH
def test_stopless_post_is_refused_when_the_default_stop_is_off(side: Side) -> None:
    decision = evaluate_entry(stopless(side), RiskLimits(), ACCOUNT, MarketView(D("60000"), BTC), CTX)
    assert decision.reason is RefusalReason.STOP_MISSING
    assert decision.plan is None


@pytest.mark.parametrize(
    ("side", "entries", "expected_stop"),
    [
        (Side.LONG, ("60000",), D("59640.0")),  # 60000 * 0.994
        (Side.SHORT, ("60000",), D("60360.0")),
        (Side.LONG, ("59800", "60100"), D("59441.2")),  # below the lowest entry: 59800 * 0.994
        (Side.SHORT, ("59800", "60100"), D("60460.6")),  # above the highest: 60100 * 1.006
    ],
)
def test_default_stop_when_enabled(side: Side, entries: tuple[str, ...], expected_stop: Decimal) -> None:
    limits = RiskLimits(use_default_stop_loss=True, default_stop_loss_pct=D("0.006"))
    decision = evaluate_entry(stopless(side, entries), limits, ACCOUNT, MarketView(D("60000"), BTC), CTX)
    assert decision.approved, decision.detail
    assert decision.plan is not None
    assert decision.plan.stop_loss == expected_stop
    assert decision.plan.default_stop
    assert any("default stop" in w for w in decision.warnings)


# 61735.5 * 0.996 = 61488.558 rounded down, * 1.004 = 61982.442 rounded up: away from the entry either way
@pytest.mark.parametrize(("side", "expected_stop"), [(Side.LONG, D("61488.5")), (Side.SHORT, D("61982.5"))])
def test_default_stop_of_a_market_entry_is_taken_from_the_live_price(side: Side, expected_stop: Decimal) -> None:
    limits = RiskLimits(use_default_stop_loss=True, default_stop_loss_pct=D("0.004"))
    decision = evaluate_entry(stopless(side, (), market=True), limits, ACCOUNT, MarketView(D("61735.5"), BTC), CTX)
    assert decision.plan is not None, decision.detail
    assert decision.plan.stop_loss == expected_stop
    # The stop is placed from the live price; the size from the worst fill the slippage bound allows.
    worst = D("1") + limits.max_entry_slippage_pct if side is Side.LONG else D("1") - limits.max_entry_slippage_pct
    assert decision.plan.sizing_price == D("61735.5") * worst


def test_default_stop_sizes_the_trade_from_its_own_distance() -> None:
    # Same budget, the stop the default gives: the worst-case loss stays within the budget.
    limits = RiskLimits(use_default_stop_loss=True, default_stop_loss_pct=D("0.01"), max_notional_per_trade=D("1e9"))
    plan = evaluate_entry(stopless(Side.LONG), limits, ACCOUNT, MarketView(D("60000"), BTC), CTX).plan
    assert plan is not None
    assert plan.stop_loss == D("59400.0")
    budget = ACCOUNT.equity * limits.account_risk_per_trade
    assert plan.risk_usdt <= budget
    assert plan.risk_usdt > budget * D("0.9")  # sized from the 1 % distance, not from some other stop


@pytest.mark.parametrize("action", [Action.TRADE, Action.NOTIFY_ONLY])
def test_only_a_reading_flagged_stop_missing_gets_the_default(action: Action) -> None:
    # A notify_only reading with another doubt, or a "trade" reading that lost its stop, is never completed.
    reading = replace(entry(Side.LONG, None), action=action, stop_missing=False)
    limits = RiskLimits(use_default_stop_loss=True)
    decision = evaluate_entry(reading, limits, ACCOUNT, MarketView(D("60000"), BTC), CTX)
    assert not decision.approved
    expected = RefusalReason.STOP_MISSING if action is Action.TRADE else RefusalReason.NOT_TRADEABLE
    assert decision.reason is expected


@pytest.mark.parametrize(
    ("side", "stop"), [(Side.LONG, "61000"), (Side.SHORT, "59000"), (Side.LONG, "60000")]
)
def test_stop_on_the_wrong_side_of_the_entry_is_refused(side: Side, stop: str) -> None:
    decision = evaluate_entry(entry(side, stop), RiskLimits(), ACCOUNT, MarketView(D("60000"), BTC), CTX)
    assert decision.reason is RefusalReason.STOP_WRONG_SIDE


@pytest.mark.parametrize(("side", "stop"), [(Side.LONG, "59900"), (Side.SHORT, "60100")])
def test_stop_inside_the_zone_is_refused(side: Side, stop: str) -> None:
    decision = evaluate_entry(
        entry(side, stop, ("59800", "60200")), RiskLimits(), ACCOUNT, MarketView(D("60000"), BTC), CTX
    )
    assert decision.reason is RefusalReason.STOP_WRONG_SIDE


@pytest.mark.parametrize(
    ("side", "stop", "live"), [(Side.LONG, "59000", "58900"), (Side.SHORT, "61000", "61100")]
)
def test_price_already_through_the_stop_is_refused(side: Side, stop: str, live: str) -> None:
    # A limit entry whose stop the market has already passed would be stopped out at once.
    decision = evaluate_entry(entry(side, stop), RiskLimits(), ACCOUNT, MarketView(D(live), BTC), CTX)
    assert decision.reason is RefusalReason.STOP_WRONG_SIDE


@pytest.mark.parametrize(("side", "stop"), [(Side.LONG, "59000"), (Side.SHORT, "61000")])
def test_approved_plan_always_carries_a_protective_stop(side: Side, stop: str) -> None:
    decision = evaluate_entry(
        entry(side, stop, (), market=True), RiskLimits(), ACCOUNT, MarketView(D("60000"), BTC), CTX
    )
    assert decision.plan is not None
    if side is Side.LONG:
        assert decision.plan.stop_loss < decision.plan.sizing_price
    else:
        assert decision.plan.stop_loss > decision.plan.sizing_price
