"""Leverage: the signal's or the default, clamped (CAP) or refused (REJECT), never above the contract's."""

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
LOW_MAX = Contract("BTCUSDT", "BTC", "USDT", 1, 1, 3, D("0.001"), D("0.001"), D("5"), max_lever=5)
ACCOUNT = AccountView(D("10000"), D("10000"), frozenset(), D("10000"))
CTX = RiskContext(Mode.NORMAL, 0.0, {})


def entry(side: Side, leverage: int | None) -> ParsedMessage:
    stop = D("59000") if side is Side.LONG else D("61000")
    return ParsedMessage(
        kind=Kind.ENTRY,
        action=Action.TRADE,
        symbol="BTCUSDT",
        side=side,
        entries=(D("60000"),),
        stop_loss=stop,
        leverage=leverage,
        confidence=0.9,
    )


BOTH = pytest.mark.parametrize("side", [Side.LONG, Side.SHORT])


@BOTH
def test_leverage_within_max_is_kept(side: Side) -> None:
    decision = evaluate_entry(entry(side, 7), RiskLimits(), ACCOUNT, MarketView(D("60000"), BTC), CTX)
    assert decision.plan is not None
    assert decision.plan.leverage == 7
    assert decision.plan.margin == decision.plan.notional / 7


@BOTH
def test_cap_policy_clamps_to_max_with_a_warning(side: Side) -> None:
    limits = RiskLimits(max_leverage=10, leverage_policy="CAP")
    decision = evaluate_entry(entry(side, 50), limits, ACCOUNT, MarketView(D("60000"), BTC), CTX)
    assert decision.approved
    assert decision.plan is not None and decision.plan.leverage == 10
    assert any("capped to 10" in w for w in decision.warnings)


@BOTH
def test_reject_policy_refuses_leverage_above_max(side: Side) -> None:
    limits = RiskLimits(max_leverage=10, leverage_policy="REJECT")
    decision = evaluate_entry(entry(side, 20), limits, ACCOUNT, MarketView(D("60000"), BTC), CTX)
    assert not decision.approved
    assert decision.reason is RefusalReason.LEVERAGE_ABOVE_MAX


@BOTH
def test_reject_policy_accepts_exactly_max(side: Side) -> None:
    limits = RiskLimits(max_leverage=10, leverage_policy="REJECT")
    decision = evaluate_entry(entry(side, 10), limits, ACCOUNT, MarketView(D("60000"), BTC), CTX)
    assert decision.plan is not None and decision.plan.leverage == 10


@BOTH
def test_never_above_the_contract_max(side: Side) -> None:
    limits = RiskLimits(max_leverage=20)
    decision = evaluate_entry(entry(side, 15), limits, ACCOUNT, MarketView(D("60000"), LOW_MAX), CTX)
    assert decision.plan is not None and decision.plan.leverage == 5


@pytest.mark.parametrize(("default", "expected"), [(1, 1), (5, 5), (10, 10)])
def test_default_leverage_when_the_signal_has_none(default: int, expected: int) -> None:
    limits = RiskLimits(default_leverage=default)
    decision = evaluate_entry(entry(Side.LONG, None), limits, ACCOUNT, MarketView(D("60000"), BTC), CTX)
    assert decision.plan is not None and decision.plan.leverage == expected


@BOTH
def test_margin_beyond_available_is_refused(side: Side) -> None:
    # 200 USDT notional at 1x needs 200 USDT (plus the fee); only 100 available.
    poor = AccountView(D("100000"), D("100"), frozenset(), D("100000"))
    decision = evaluate_entry(entry(side, 1), RiskLimits(), poor, MarketView(D("60000"), BTC), CTX)
    assert decision.reason is RefusalReason.INSUFFICIENT_MARGIN
    # The same trade at 5x fits.
    decision = evaluate_entry(entry(side, 5), RiskLimits(), poor, MarketView(D("60000"), BTC), CTX)
    assert decision.approved, decision.detail


def test_invalid_leverage_policy_is_a_config_error() -> None:
    with pytest.raises(ValueError):
        RiskLimits(leverage_policy="IGNORE")


def test_configured_margin_mode_wins_over_the_signal() -> None:
    msg = replace(entry(Side.LONG, 3), margin_mode="crossed")
    decision = evaluate_entry(
        msg, RiskLimits(margin_mode="isolated"), ACCOUNT, MarketView(D("60000"), BTC), CTX
    )
    assert decision.plan is not None and decision.plan.margin_mode == "isolated"
    assert any("crossed" in w for w in decision.warnings)
