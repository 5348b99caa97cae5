"""No stop, no trade: a signal without a stop is refused unless the default stop is switched on."""

from __future__ import annotations

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


@BOTH
def test_missing_stop_is_refused_even_when_hard_stop_is_off(side: Side) -> None:
    # Sizing needs a stop distance: turning the hard-stop flag off must not produce an unprotected trade.
    limits = RiskLimits(hard_stop_loss_required=False, use_default_stop_loss=False)
    decision = evaluate_entry(entry(side, None), limits, ACCOUNT, MarketView(D("60000"), BTC), CTX)
    assert decision.reason is RefusalReason.STOP_MISSING


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
    decision = evaluate_entry(entry(side, None, entries), limits, ACCOUNT, MarketView(D("60000"), BTC), CTX)
    assert decision.approved, decision.detail
    assert decision.plan is not None
    assert decision.plan.stop_loss == expected_stop
    assert any("default stop" in w for w in decision.warnings)


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
