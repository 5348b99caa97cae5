"""The entry gate's other rules: mode, signal quality, account state, symbol state, exposure, staleness."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from exchange.bitget.contracts import Contract
from parsing.signals import Action, Kind, ParsedMessage, Side
from trading.modes import Mode
from trading.risk import (
    AccountView,
    MarketView,
    RefusalReason,
    RiskContext,
    RiskLimits,
    drawdown_breached,
    evaluate_entry,
    in_cooldown,
    update_peak,
)

D = Decimal
BTC = Contract("BTCUSDT", "BTC", "USDT", 1, 1, 3, D("0.001"), D("0.001"), D("5"), max_lever=125)
LIMITS = RiskLimits()
ACCOUNT = AccountView(D("10000"), D("10000"), frozenset(), D("10000"))
MARKET = MarketView(D("60000"), BTC)
NOW = 1_700_000_000.0
CTX = RiskContext(Mode.NORMAL, NOW, {})
BOTH = pytest.mark.parametrize("side", [Side.LONG, Side.SHORT])


def entry(side: Side = Side.LONG, entries: tuple[str, ...] = ("60000",), *, market: bool = False) -> ParsedMessage:
    stop = D("59000") if side is Side.LONG else D("61000")
    return ParsedMessage(
        kind=Kind.ENTRY,
        action=Action.TRADE,
        symbol="BTCUSDT",
        side=side,
        entries=tuple(D(e) for e in entries),
        market_entry=market,
        stop_loss=stop,
        confidence=0.9,
    )


def reason(
    signal: ParsedMessage,
    account: AccountView = ACCOUNT,
    market: MarketView = MARKET,
    ctx: RiskContext = CTX,
    limits: RiskLimits = LIMITS,
) -> RefusalReason | None:
    return evaluate_entry(signal, limits, account, market, ctx).reason


@BOTH
def test_a_clean_signal_is_approved(side: Side) -> None:
    decision = evaluate_entry(entry(side), LIMITS, ACCOUNT, MARKET, CTX)
    assert decision.approved and decision.reason is None and decision.plan is not None
    assert decision.plan.symbol == "BTCUSDT" and decision.plan.side is side and not decision.plan.market


@pytest.mark.parametrize("mode", [Mode.SAFE, Mode.PANIC])
def test_no_entries_outside_normal_mode(mode: Mode) -> None:
    assert reason(entry(), ctx=RiskContext(mode, NOW, {})) is RefusalReason.MODE_NOT_NORMAL


@pytest.mark.parametrize(
    ("kind", "action"),
    [
        (Kind.ENTRY, Action.NOTIFY_ONLY),
        (Kind.ENTRY, Action.IGNORE),
        (Kind.UPDATE, Action.TRADE),
        (Kind.CLOSE, Action.TRADE),
        (Kind.NOISE, Action.IGNORE),
    ],
)
def test_only_tradeable_entries_pass(kind: Kind, action: Action) -> None:
    assert reason(replace(entry(), kind=kind, action=action)) is RefusalReason.NOT_TRADEABLE


@pytest.mark.parametrize("change", [{"symbol": None}, {"side": None}, {"leverage": 0}, {"entries": (D("-1"),)}])
def test_incomplete_or_invalid_fields_are_not_tradeable(change: dict[str, object]) -> None:
    assert reason(replace(entry(), **change)) is RefusalReason.NOT_TRADEABLE


@pytest.mark.parametrize(("confidence", "approved"), [(0.79, False), (0.8, True), (0.95, True)])
def test_signal_quality_threshold(confidence: float, approved: bool) -> None:
    result = reason(replace(entry(), confidence=confidence))
    assert result is (None if approved else RefusalReason.LOW_QUALITY)


@pytest.mark.parametrize("equity", ["0", "-5"])
def test_no_equity_no_trade(equity: str) -> None:
    assert reason(entry(), account=AccountView(D(equity), D("0"), frozenset(), D("100"))) is RefusalReason.NO_EQUITY


@pytest.mark.parametrize(
    ("equity", "peak", "refused"),
    [("8500", "10000", True), ("8501", "10000", False), ("8000", "10000", True)],
)
def test_drawdown_breaker_refuses_entries(equity: str, peak: str, refused: bool) -> None:
    account = AccountView(D(equity), D(equity), frozenset(), D(peak))
    assert (reason(entry(), account=account) is RefusalReason.DRAWDOWN_BREAKER) is refused


def test_drawdown_helpers() -> None:
    assert drawdown_breached(D("85"), D("100"), D("0.15"))
    assert not drawdown_breached(D("86"), D("100"), D("0.15"))
    assert not drawdown_breached(D("120"), D("100"), D("0.15"))  # above a stale peak is no drawdown
    assert update_peak(D("100"), D("120")) == D("120")
    assert update_peak(D("100"), D("90")) == D("100")


def test_unknown_symbol_is_refused() -> None:
    assert reason(entry(), market=MarketView(D("60000"), None)) is RefusalReason.SYMBOL_UNKNOWN
    eth = replace(BTC, symbol="ETHUSDT")  # a contract for another symbol is no contract for this one
    assert reason(entry(), market=MarketView(D("60000"), eth)) is RefusalReason.SYMBOL_UNKNOWN


@pytest.mark.parametrize("status", ["maintain", "limit_open", "restrictedAPI", "off"])
def test_symbol_not_trading_is_refused(status: str) -> None:
    market = MarketView(D("60000"), replace(BTC, status=status))
    assert reason(entry(), market=market) is RefusalReason.SYMBOL_NOT_TRADING


def test_no_live_price_is_refused() -> None:
    assert reason(entry(), market=MarketView(D("0"), BTC)) is RefusalReason.NO_PRICE


@BOTH
def test_second_position_on_the_same_symbol_is_refused(side: Side) -> None:
    account = replace(ACCOUNT, open_position_symbols=frozenset({"BTCUSDT"}))
    assert reason(entry(side), account=account) is RefusalReason.ALREADY_OPEN_ON_SYMBOL


def test_max_open_positions() -> None:
    three = replace(ACCOUNT, open_position_symbols=frozenset({"ETHUSDT", "SOLUSDT", "XRPUSDT"}))
    assert reason(entry(), account=three) is RefusalReason.MAX_OPEN_POSITIONS
    two = replace(ACCOUNT, open_position_symbols=frozenset({"ETHUSDT", "SOLUSDT"}))
    assert reason(entry(), account=two) is None


@pytest.mark.parametrize(("seconds_ago", "cooling"), [(0, True), (299, True), (300, False), (3600, False)])
def test_cooldown_after_an_entry_on_the_symbol(seconds_ago: int, cooling: bool) -> None:
    last = {"BTCUSDT": NOW - seconds_ago}
    assert in_cooldown("BTCUSDT", NOW, last, 300) is cooling
    assert (reason(entry(), ctx=RiskContext(Mode.NORMAL, NOW, last)) is RefusalReason.COOLDOWN) is cooling


def test_cooldown_is_per_symbol() -> None:
    assert not in_cooldown("BTCUSDT", NOW, {"ETHUSDT": NOW}, 300)


@pytest.mark.parametrize(
    ("side", "live", "refused"),
    [
        (Side.LONG, "60180", False),  # 0.3% above the quoted price
        (Side.LONG, "60200", True),
        (Side.LONG, "59800", True),  # far on either side means the signal is stale
        (Side.SHORT, "59820", False),
        (Side.SHORT, "59700", True),
    ],
)
def test_market_entry_far_from_the_quoted_price_is_refused(side: Side, live: str, refused: bool) -> None:
    signal = entry(side, ("60000",), market=True)
    assert (reason(signal, market=MarketView(D(live), BTC)) is RefusalReason.SLIPPAGE) is refused


@pytest.mark.parametrize(
    ("side", "live", "refused"),
    [
        (Side.LONG, "59900", False),  # inside the zone
        (Side.LONG, "60200", False),  # 0.17% above its top
        (Side.LONG, "60500", True),
        (Side.SHORT, "59700", False),
        (Side.SHORT, "59000", True),
    ],
)
def test_zone_far_from_the_live_price_is_refused(side: Side, live: str, refused: bool) -> None:
    signal = entry(side, ("59800", "60100"))
    assert (reason(signal, market=MarketView(D(live), BTC)) is RefusalReason.SLIPPAGE) is refused


@pytest.mark.parametrize(
    ("side", "live", "refused"),
    [
        (Side.LONG, "59900", False),  # 0.17% below a long's limit: fills at once, close enough
        (Side.LONG, "59500", True),  # the price already fell far through the entry toward the stop
        (Side.SHORT, "60100", False),
        (Side.SHORT, "60500", True),
    ],
)
def test_single_limit_the_price_already_passed_is_checked_like_a_market_entry(
    side: Side, live: str, refused: bool
) -> None:
    assert (reason(entry(side, ("60000",)), market=MarketView(D(live), BTC)) is RefusalReason.SLIPPAGE) is refused


@pytest.mark.parametrize(("side", "live"), [(Side.LONG, "62000"), (Side.SHORT, "58000")])
def test_single_limit_away_from_the_price_is_kept_as_a_limit(side: Side, live: str) -> None:
    decision = evaluate_entry(entry(side, ("60000",)), LIMITS, ACCOUNT, MarketView(D(live), BTC), CTX)
    assert decision.approved, decision.detail
    assert decision.plan is not None and not decision.plan.market
    assert decision.plan.entry_prices == (D("60000"),)


def test_market_entry_without_quoted_price_has_no_slippage_check() -> None:
    decision = evaluate_entry(entry(Side.LONG, (), market=True), LIMITS, ACCOUNT, MarketView(D("65000"), BTC), CTX)
    assert decision.approved and decision.plan is not None and decision.plan.market


def test_refusals_carry_no_plan_and_say_why() -> None:
    decision = evaluate_entry(entry(), LIMITS, ACCOUNT, MARKET, RiskContext(Mode.SAFE, NOW, {}))
    assert decision.plan is None and not decision.approved and "safe" in decision.detail
