"""The risk gate: may this signal open a position, and with what size, stop and leverage.

Pure functions over plain values: the caller passes the account, the market and the clock. Every refusal
names one rule (:class:`RefusalReason`) so that the journal and the operator see *why* nothing was traded.

Sizing rule. The risk budget is ``equity * account_risk_per_trade``. One unit of size loses, when the stop
is hit, the distance from entry to stop plus the taker fee paid on the way in and on the way out:
``|entry - stop| + (entry + stop) * taker_fee_rate``. Size is the budget divided by that loss, capped by
``max_notional_per_trade``, then rounded *down* to the contract's size step. Prices are rounded to the tick
*before* sizing, in the direction that never makes the trade riskier:

- a limit entry is rounded toward the better price (a long buys no higher, a short sells no lower);
- the stop is rounded *away* from the entry (a long's stop down, a short's up). That keeps it strictly on
  the protective side and only ever widens the distance, and the size is computed from the rounded stop,
  so the planned worst-case loss (fees included) never exceeds the budget;
- targets are rounded toward the entry, so a target the signal names is reached when price touches it.

A market entry is sized at the worst fill ``max_entry_slippage_pct`` allows: the live price moved that far
against the trade (a long's up, a short's down), fees included, so a market order that slips up to the bound
still loses no more than the budget at the stop. The fee rate is ``RiskLimits.taker_fee_rate`` when the
config sets one, the contract's taker fee otherwise.

What the planned worst case does not cover: slippage of the stop's own market execution, and a market entry
filled beyond the slippage bound (the bound is also how stale a signal may be).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from enum import Enum

from exchange.bitget.contracts import Contract
from exchange.bitget.models import MarginMode
from parsing.signals import Action, Kind, ParsedMessage, Side
from trading.modes import Mode, allows_new_entries


class RefusalReason(str, Enum):
    MODE_NOT_NORMAL = "mode_not_normal"
    NOT_TRADEABLE = "not_tradeable"  # not an entry, not action=trade, or fields missing/invalid
    LOW_QUALITY = "low_quality"
    NO_EQUITY = "no_equity"
    DRAWDOWN_BREAKER = "drawdown_breaker"
    SYMBOL_UNKNOWN = "symbol_unknown"
    SYMBOL_NOT_TRADING = "symbol_not_trading"
    NO_PRICE = "no_price"  # no usable live price for the symbol
    ALREADY_OPEN_ON_SYMBOL = "already_open_on_symbol"
    MAX_OPEN_POSITIONS = "max_open_positions"
    COOLDOWN = "cooldown"
    STOP_MISSING = "stop_missing"
    STOP_WRONG_SIDE = "stop_wrong_side"
    LEVERAGE_ABOVE_MAX = "leverage_above_max"
    SLIPPAGE = "slippage"
    SIZE_BELOW_MINIMUM = "size_below_minimum"
    INSUFFICIENT_MARGIN = "insufficient_margin"


@dataclass(frozen=True)
class RiskLimits:
    """The ``risk:`` section of the config, as the gate reads it."""

    account_risk_per_trade: Decimal = Decimal("0.003")
    max_leverage: int = 10
    leverage_policy: str = "CAP"  # "CAP" clamps a signal's leverage to max_leverage, "REJECT" refuses it
    default_stop_loss_pct: Decimal = Decimal("0.006")
    # True: an entry whose post names no stop (``ParsedMessage.stop_missing``) gets default_stop_loss_pct from
    # its best entry (the live price for a market entry). False: such an entry is refused (notify_only).
    use_default_stop_loss: bool = False
    # Every approved entry carries a stop (the signal's or the default): sizing needs its distance. False would
    # mean trading without one, which this project refuses to do; it is kept only to be rejected loudly.
    hard_stop_loss_required: bool = True
    max_entry_slippage_pct: Decimal = Decimal("0.003")
    max_notional_per_trade: Decimal = Decimal("200")
    max_open_positions: int = 3
    cooldown_seconds: float = 300.0
    min_signal_quality: float = 0.8
    max_account_drawdown_pct: Decimal = Decimal("0.15")
    default_leverage: int = 1  # when the signal names none
    taker_fee_rate: Decimal | None = None  # None: the contract's taker fee
    margin_mode: MarginMode = "isolated"  # the config decides; a signal's margin mode is only noted

    def __post_init__(self) -> None:
        if self.leverage_policy not in ("CAP", "REJECT"):
            raise ValueError(f"leverage_policy must be CAP or REJECT, not {self.leverage_policy!r}")
        if self.margin_mode not in ("isolated", "crossed"):
            raise ValueError(f"margin_mode must be isolated or crossed, not {self.margin_mode!r}")
        if self.max_leverage < 1 or self.default_leverage < 1:
            raise ValueError("leverages must be at least 1")
        if not self.hard_stop_loss_required:
            raise ValueError("hard_stop_loss_required must be true: every position carries a stop")


@dataclass(frozen=True)
class AccountView:
    equity: Decimal
    available: Decimal  # margin free for a new position
    # Symbols with an open position *or a working entry*: both count against the limits.
    open_position_symbols: frozenset[str]
    peak_equity: Decimal


@dataclass(frozen=True)
class MarketView:
    price: Decimal  # last (or mark) price of the signal's symbol
    contract: Contract | None  # None when the exchange does not list the symbol


@dataclass(frozen=True)
class RiskContext:
    mode: Mode
    now: float  # seconds, same clock as last_entry_at
    last_entry_at: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SizedEntry:
    """An approved entry: every price on the tick grid, the size on the step grid."""

    symbol: str
    side: Side
    size: Decimal
    # Limit prices ordered worst first (a long's highest first); for a market entry, the live price used.
    entry_prices: tuple[Decimal, ...]
    market: bool
    stop_loss: Decimal
    take_profits: tuple[Decimal, ...]  # nearest first
    tp_percentages: tuple[Decimal, ...]  # one per target when the signal gave them, else empty
    leverage: int
    margin_mode: MarginMode
    sizing_price: Decimal  # the entry price the size was computed at (the worst one)
    notional: Decimal  # size * sizing_price
    margin: Decimal  # notional / leverage
    risk_usdt: Decimal  # worst-case loss at the stop, fees included; never above the budget
    warnings: tuple[str, ...] = ()
    default_stop: bool = False  # the stop is the configured default: the post named none


@dataclass(frozen=True)
class RiskDecision:
    approved: bool
    reason: RefusalReason | None
    detail: str
    plan: SizedEntry | None = None
    warnings: tuple[str, ...] = ()


def drawdown_breached(equity: Decimal, peak_equity: Decimal, max_dd: Decimal) -> bool:
    """True once equity has fallen ``max_dd`` (a fraction) or more below its peak."""
    if peak_equity <= 0:
        return equity < 0
    return (peak_equity - equity) / peak_equity >= max_dd


def update_peak(peak: Decimal, equity: Decimal) -> Decimal:
    return max(peak, equity)


def in_cooldown(symbol: str, now: float, last_entry_at: Mapping[str, float], cooldown_s: float) -> bool:
    last = last_entry_at.get(symbol)
    return last is not None and now - last < cooldown_s


def worst_market_fill(live: Decimal, is_long: bool, max_slippage_pct: Decimal) -> Decimal:
    """The worst price a market entry may fill at within the slippage bound: above the live price for a long,
    below it for a short."""
    return live * (1 + max_slippage_pct) if is_long else live * (1 - max_slippage_pct)


def unit_loss(entry: Decimal, stop: Decimal, taker_fee_rate: Decimal) -> Decimal:
    """What one unit of size loses from ``entry`` to ``stop``, both fills paying the taker fee."""
    return abs(entry - stop) + (entry + stop) * taker_fee_rate


def needs_default_stop(signal: ParsedMessage) -> bool:
    """An entry the parser found complete and consistent except that its post names no stop."""
    return (
        signal.kind == Kind.ENTRY and signal.action == Action.NOTIFY_ONLY and signal.stop_missing
        and signal.stop_loss is None
    )


def _refuse(reason: RefusalReason, detail: str, warnings: list[str]) -> RiskDecision:
    return RiskDecision(approved=False, reason=reason, detail=detail, plan=None, warnings=tuple(warnings))


def _stop_protects(is_long: bool, stop: Decimal, price: Decimal) -> bool:
    """The stop is strictly on the losing side of ``price``: below it for a long, above for a short."""
    return stop < price if is_long else stop > price


def _distance_from_zone(price: Decimal, zone: tuple[Decimal, ...]) -> Decimal:
    """Relative distance from ``price`` to the closed interval spanned by ``zone`` (0 inside it)."""
    low, high = min(zone), max(zone)
    if price < low:
        return (low - price) / low
    if price > high:
        return (price - high) / high
    return Decimal(0)


@dataclass(frozen=True)
class LeverageChoice:
    """The leverage an entry gets (None: refused, ``refusal`` says why) and what was changed on the way."""

    leverage: int | None
    warnings: tuple[str, ...] = ()
    refusal: str = ""


def choose_leverage(requested: int | None, limits: RiskLimits, contract: Contract) -> LeverageChoice:
    """The signal's leverage or the default; the config's cap (or refusal, policy REJECT), then the contract's
    bounds. The one rule for an entry's leverage: the RiskGate sizes with it, settings ahead predict it."""
    warnings: list[str] = []
    leverage = requested if requested is not None else limits.default_leverage
    if leverage > limits.max_leverage:
        if limits.leverage_policy == "REJECT":
            return LeverageChoice(None, tuple(warnings), f"leverage {leverage} > max {limits.max_leverage}")
        warnings.append(f"leverage {leverage} capped to {limits.max_leverage}")
        leverage = limits.max_leverage
    if leverage > contract.max_lever:
        warnings.append(f"leverage {leverage} capped to the contract's {contract.max_lever}")
        leverage = contract.max_lever
    if leverage < contract.min_lever:
        if contract.min_lever > limits.max_leverage:
            return LeverageChoice(None, tuple(warnings),
                                  f"contract minimum leverage {contract.min_lever} > max {limits.max_leverage}")
        warnings.append(f"leverage {leverage} raised to the contract's minimum {contract.min_lever}")
        leverage = contract.min_lever
    return LeverageChoice(leverage, tuple(warnings))


def evaluate_entry(
    signal: ParsedMessage,
    limits: RiskLimits,
    account: AccountView,
    market: MarketView,
    ctx: RiskContext,
) -> RiskDecision:
    """Approve and size an entry signal, or refuse it with the first rule it breaks."""
    warnings: list[str] = []

    if not allows_new_entries(ctx.mode):
        return _refuse(RefusalReason.MODE_NOT_NORMAL, f"mode is {ctx.mode.value}", warnings)
    # == rather than `is`: a str-valued kind/action (e.g. read back from JSON) compares equal to the member.
    default_stop = needs_default_stop(signal)
    if default_stop and not limits.use_default_stop_loss:
        return _refuse(RefusalReason.STOP_MISSING, "the signal has no stop loss", warnings)
    if signal.kind != Kind.ENTRY or (signal.action != Action.TRADE and not default_stop):
        return _refuse(RefusalReason.NOT_TRADEABLE, f"kind={signal.kind} action={signal.action}", warnings)
    if signal.symbol is None or signal.side is None:
        return _refuse(RefusalReason.NOT_TRADEABLE, "symbol or side missing", warnings)
    if any(price <= 0 for price in signal.entries) or any(price <= 0 for price in signal.take_profits):
        return _refuse(RefusalReason.NOT_TRADEABLE, "non-positive entry or target price", warnings)
    if signal.leverage is not None and signal.leverage < 1:
        return _refuse(RefusalReason.NOT_TRADEABLE, f"leverage {signal.leverage} is not positive", warnings)
    if signal.confidence < limits.min_signal_quality:
        return _refuse(
            RefusalReason.LOW_QUALITY,
            f"confidence {signal.confidence} < {limits.min_signal_quality}",
            warnings,
        )

    if account.equity <= 0:
        return _refuse(RefusalReason.NO_EQUITY, f"equity {account.equity}", warnings)
    peak = update_peak(account.peak_equity, account.equity)
    if drawdown_breached(account.equity, peak, limits.max_account_drawdown_pct):
        return _refuse(
            RefusalReason.DRAWDOWN_BREAKER,
            f"equity {account.equity} vs peak {peak}: drawdown >= {limits.max_account_drawdown_pct}",
            warnings,
        )

    symbol = signal.symbol
    contract = market.contract
    if contract is None or contract.symbol != symbol:
        return _refuse(RefusalReason.SYMBOL_UNKNOWN, f"no contract for {symbol}", warnings)
    if contract.status != "normal":
        return _refuse(RefusalReason.SYMBOL_NOT_TRADING, f"{symbol} status is {contract.status}", warnings)
    if market.price <= 0:
        return _refuse(RefusalReason.NO_PRICE, f"live price {market.price}", warnings)

    if symbol in account.open_position_symbols:
        return _refuse(RefusalReason.ALREADY_OPEN_ON_SYMBOL, f"{symbol} already open", warnings)
    if len(account.open_position_symbols) >= limits.max_open_positions:
        return _refuse(
            RefusalReason.MAX_OPEN_POSITIONS,
            f"{len(account.open_position_symbols)} open, max {limits.max_open_positions}",
            warnings,
        )
    if in_cooldown(symbol, ctx.now, ctx.last_entry_at, limits.cooldown_seconds):
        waited = ctx.now - ctx.last_entry_at[symbol]
        return _refuse(
            RefusalReason.COOLDOWN,
            f"last entry on {symbol} {waited:.0f}s ago (< {limits.cooldown_seconds}s)",
            warnings,
        )

    side = Side(signal.side)
    is_long = side is Side.LONG
    live = market.price
    market_entry = signal.market_entry or not signal.entries

    # Entry prices on the tick grid, rounded toward the better price; ordered worst first.
    if market_entry:
        entry_prices: tuple[Decimal, ...] = (live,)
    else:
        better = ROUND_DOWN if is_long else ROUND_UP
        rounded = {contract.round_price(price, better) for price in signal.entries}
        if any(price <= 0 for price in rounded):
            return _refuse(RefusalReason.NOT_TRADEABLE, "entry rounds to zero", warnings)
        entry_prices = tuple(sorted(rounded, reverse=is_long))
    # A market entry is sized at the worst fill the slippage bound allows; a limit at its worst price.
    sizing_price = worst_market_fill(live, is_long, limits.max_entry_slippage_pct) if market_entry \
        else entry_prices[0]
    best_entry = entry_prices[-1]
    fee_rate = limits.taker_fee_rate if limits.taker_fee_rate is not None else contract.taker_fee_rate

    # The stop: the signal's, or (only for a reading flagged stop_missing) the configured default below (above)
    # every entry. A reading that claims to trade without a stop is inconsistent and never gets the default.
    if default_stop:
        pct = limits.default_stop_loss_pct
        raw_stop = best_entry * (1 - pct) if is_long else best_entry * (1 + pct)
        warnings.append(f"default stop loss {pct:%} from the {'live price' if market_entry else 'best entry'}")
    elif signal.stop_loss is None:
        return _refuse(RefusalReason.STOP_MISSING, "the signal has no stop loss", warnings)
    else:
        raw_stop = signal.stop_loss
    stop = contract.round_price(raw_stop, ROUND_DOWN if is_long else ROUND_UP)
    if stop <= 0:
        return _refuse(RefusalReason.STOP_WRONG_SIDE, f"stop {raw_stop} is not a positive price", warnings)
    if not all(_stop_protects(is_long, stop, price) for price in entry_prices):
        return _refuse(
            RefusalReason.STOP_WRONG_SIDE,
            f"{side.value} stop {stop} not {'below' if is_long else 'above'} every entry {entry_prices}",
            warnings,
        )
    if not _stop_protects(is_long, stop, live):
        return _refuse(RefusalReason.STOP_WRONG_SIDE, f"live price {live} is already through the stop {stop}", warnings)

    # Stale signal: a market entry or a zone must still be near the live price. A single limit waiting
    # for the price is kept; one the price has already passed would fill at once, i.e. it is a market entry
    # in disguise, and gets the same check.
    single_limit_marketable = (
        not market_entry
        and len(signal.entries) == 1
        and (live < entry_prices[0] if is_long else live > entry_prices[0])
    )
    if signal.entries and (market_entry or len(signal.entries) > 1 or single_limit_marketable):
        distance = _distance_from_zone(live, signal.entries)
        if distance > limits.max_entry_slippage_pct:
            return _refuse(
                RefusalReason.SLIPPAGE,
                f"live {live} is {distance:.4%} from the entry zone (max {limits.max_entry_slippage_pct:%})",
                warnings,
            )

    choice = choose_leverage(signal.leverage, limits, contract)
    warnings.extend(choice.warnings)
    if choice.leverage is None:
        return _refuse(RefusalReason.LEVERAGE_ABOVE_MAX, choice.refusal, warnings)
    leverage = choice.leverage

    if signal.margin_mode is not None and signal.margin_mode != limits.margin_mode:
        warnings.append(f"signal asks {signal.margin_mode} margin; using {limits.margin_mode}")

    # Targets: on the profit side of the worst entry, rounded toward it, nearest first.
    toward_entry = ROUND_DOWN if is_long else ROUND_UP
    take_profits: list[Decimal] = []
    for target in signal.take_profits:
        rounded_target = contract.round_price(target, toward_entry)
        if (rounded_target > entry_prices[0]) if is_long else (rounded_target < entry_prices[0]):
            take_profits.append(rounded_target)
        else:
            warnings.append(f"target {target} dropped: not beyond the entry {entry_prices[0]}")
    tp_percentages: tuple[Decimal, ...] = ()
    if signal.tp_percentages:
        if len(signal.tp_percentages) == len(take_profits) and all(p > 0 for p in signal.tp_percentages):
            tp_percentages = signal.tp_percentages
        else:
            warnings.append("target percentages do not match the targets; splitting equally")
    order = sorted(range(len(take_profits)), key=lambda i: take_profits[i], reverse=not is_long)
    take_profits = [take_profits[i] for i in order]
    if tp_percentages:
        tp_percentages = tuple(tp_percentages[i] for i in order)

    # Size.
    budget = account.equity * limits.account_risk_per_trade
    loss_per_unit = unit_loss(sizing_price, stop, fee_rate)
    raw_size = min(budget / loss_per_unit, limits.max_notional_per_trade / sizing_price)
    if raw_size < budget / loss_per_unit:
        warnings.append(f"size capped by max_notional_per_trade {limits.max_notional_per_trade}")
    size = contract.round_size(raw_size)
    # The smallest notional any part of the entry can have is at the lowest price.
    if size <= 0 or not contract.meets_minimums(size, min(entry_prices)):
        return _refuse(
            RefusalReason.SIZE_BELOW_MINIMUM,
            f"size {size} (from {raw_size:.8f}) below minimum {contract.min_trade_num} / "
            f"{contract.min_trade_usdt} USDT",
            warnings,
        )

    notional = size * sizing_price
    margin = notional / leverage
    # The opening fee is taken from available balance too.
    needed = margin + notional * fee_rate
    if needed > account.available:
        return _refuse(
            RefusalReason.INSUFFICIENT_MARGIN,
            f"needs {needed:.4f} USDT, available {account.available}",
            warnings,
        )

    plan = SizedEntry(
        symbol=symbol,
        side=side,
        size=size,
        entry_prices=entry_prices,
        market=market_entry,
        stop_loss=stop,
        take_profits=tuple(take_profits),
        tp_percentages=tp_percentages,
        leverage=leverage,
        margin_mode=limits.margin_mode,
        sizing_price=sizing_price,
        notional=notional,
        margin=margin,
        risk_usdt=size * loss_per_unit,
        warnings=tuple(warnings),
        default_stop=default_stop,
    )
    return RiskDecision(
        approved=True,
        reason=None,
        detail=f"{side.value} {size} {symbol} @ {sizing_price} stop {stop}{' (default)' if default_stop else ''} "
               f"risk {plan.risk_usdt:.4f} USDT",
        plan=plan,
        warnings=tuple(warnings),
    )
