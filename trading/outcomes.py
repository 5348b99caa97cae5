"""What happened to each trade, from the exchange's own fills: pure rules, no I/O.

The OutcomeTracker (``actors/outcomes.py``) reads Bitget's fill history of our symbols, stores every fill once
(``Journal.record_fill``) and asks these rules:

- which position a fill opened or closed (``fill_opens``, ``fill_hold_side``) and, for an order the exchange made
  itself (a triggered stop or take-profit plan, a liquidation), what kind of exit it was (``exit_kind_of_source``);
- why a closing fill closed (``close_cause``): ``take_profit``, ``stop``, ``break_even_stop``, ``channel_close``,
  ``protective``, ``panic``, ``liquidation_reduce``, ``manual`` or ``external``;
- a signal's trade from its fills (``summarize``): average entry and exit, sizes, realized P&L after fees (the
  exchange's realized profit of each closing fill plus every fill's fee, Bitget's sign: negative = paid), fees
  paid, R multiple (P&L over the risk the entry was sized with), close cause, holding time;
- per channel figures for ``following report`` (``channel_report``) with the maximum drawdown of realized equity.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from trading.journal import FillRow, SignalRow

Cause = Literal[
    "take_profit", "stop", "break_even_stop", "channel_close", "protective", "panic", "liquidation_reduce", "manual",
    "external",
]
CAUSES: tuple[Cause, ...] = (
    "take_profit", "stop", "break_even_stop", "channel_close", "protective", "panic", "liquidation_reduce", "manual",
    "external",
)
ExitKind = Literal["stop", "take_profit", "liquidation", "manual"]
ZERO = Decimal(0)

# Legs of fills (the journal's order legs, and these for orders the exchange made).
STOP_FILL_LEG = "stop"
LIQUIDATION_LEG = "liquidation"
MANUAL_LEG = "manual"


def exit_kind_of_source(order_source: str | None) -> ExitKind:
    """What made an order we did not send (Bitget ``orderSource``): a triggered stop plan (``loss_market``,
    ``pos_loss_market``, ``loss_limit``, ...), a take-profit plan (``profit_market``, ``pos_profit_*``), a
    liquidation or delivery, else a hand-made order (``normal``, ``market``, web or app)."""
    source = (order_source or "").lower()
    if "liquidat" in source or "delivery" in source or "adl" in source.split("_"):
        return "liquidation"
    if "loss" in source:
        return "stop"
    if "profit" in source:
        return "take_profit"
    return "manual"


GUESS_TOLERANCE = Decimal("0.003")  # a market exit fills this far past its trigger and still counts as it


def guess_exit_kind(price: Decimal, hold_side: str, stop: Decimal | None, targets: Sequence[Decimal],
                    tolerance: Decimal = GUESS_TOLERANCE) -> ExitKind:
    """What an exit was when the exchange does not say (no ``orderSource``): at or past the stop in force -> stop;
    at or past a take-profit -> take_profit; else manual. Only used without the exchange's own answer."""
    long = hold_side == "long"
    if stop is not None and (price <= stop * (1 + tolerance) if long else price >= stop * (1 - tolerance)):
        return "stop"
    if targets:
        nearest = min(targets) if long else max(targets)
        if price >= nearest * (1 - tolerance) if long else price <= nearest * (1 + tolerance):
            return "take_profit"
    return "manual"


def fill_opens(trade_side: str | None, side: str, *, reduce_only: bool | None = None,
               position_side: str | None = None) -> bool:
    """Whether a fill opened (grew) a position. ``tradeSide`` tells in hedge mode (open / close) and in one-way
    mode's ``*_single`` / ``reduce_close_*`` forms; otherwise the order's reduce-only flag, else the side against
    the known position side (a buy grows a long)."""
    ts = (trade_side or "").lower()
    if ts == "open":
        return True
    if "close" in ts or "reduce" in ts:
        return False
    if reduce_only is not None:
        return not reduce_only
    if position_side in ("long", "short"):
        return (side == "buy") == (position_side == "long")
    return True


def fill_hold_side(side: str, opening: bool, pos_mode: str | None) -> str:
    """The position a fill acted on. Opening: a buy opens a long. Closing: in hedge mode Bitget reports the close
    of a long as ``side=buy, tradeSide=close``; in one-way mode the close of a long is a sell."""
    buy = side.lower() == "buy"
    if opening:
        return "long" if buy else "short"
    if (pos_mode or "").lower() == "hedge_mode":
        return "long" if buy else "short"
    return "short" if buy else "long"


def cause_of_close_reason(reason: str) -> Cause:
    """The cause of one of our close orders from the reason it was journaled with (older rows have no cause)."""
    text = reason.lower()
    if text.startswith("panic"):
        return "panic"
    if text.startswith("signal "):
        return "channel_close"
    if text.startswith("liquidation"):
        return "liquidation_reduce"
    if text.startswith("local stop"):
        return "stop"
    return "protective"


def close_cause(leg: str, *, payload_cause: str | None = None, payload_reason: str | None = None,
                break_even: bool = False) -> Cause:
    """Why a closing fill closed, from its leg (and for our close orders the cause journaled with the order).

    ``break_even`` says the stop in force was moved to break-even: a stop fill is then ``break_even_stop``."""
    if leg.startswith("tp") or leg == "take_profit":
        return "take_profit"
    if leg.startswith("sl") or leg == STOP_FILL_LEG:
        return "break_even_stop" if break_even else "stop"
    if leg == LIQUIDATION_LEG:
        return "external"
    if leg.startswith("close"):
        if payload_cause in CAUSES:
            cause: Cause = payload_cause
            return "break_even_stop" if cause == "stop" and break_even else cause
        cause = cause_of_close_reason(payload_reason or "")
        return "break_even_stop" if cause == "stop" and break_even else cause
    if leg.startswith("entry"):
        return "external"  # a one-way entry that flipped the position: not ours to name
    return "manual"


def target_number(leg: str) -> int | None:
    """``tp2`` -> 2."""
    digits = leg[2:] if leg.startswith("tp") else ""
    return int(digits) if digits.isdigit() else None


def pick_remaining(remaining: Sequence[tuple[int, Decimal]]) -> int | None:
    """The signal a closing fill without a signal of its own belongs to: the oldest with size still open."""
    for signal_id, size in remaining:
        if size > 0:
            return signal_id
    return None


def open_size(fills: Iterable[FillRow]) -> Decimal:
    total = ZERO
    for fill in fills:
        total += fill.size if fill.opening else -fill.size
    return total


@dataclass(frozen=True)
class TradeOutcome:
    signal_id: int
    symbol: str
    hold_side: str
    entry_size: Decimal
    avg_entry: Decimal | None
    exit_size: Decimal
    avg_exit: Decimal | None
    gross_pnl: Decimal  # the exchange's realized profit of the closing fills, before fees
    fees: Decimal  # fees paid (positive), net of rebates
    realized_pnl: Decimal  # gross_pnl - fees
    risk: Decimal | None  # what the entry was sized to lose at its stop
    r_multiple: Decimal | None
    closed: bool
    cause: Cause | None
    opened_ms: int | None
    closed_ms: int | None

    @property
    def holding_seconds(self) -> float | None:
        if self.opened_ms is None or self.closed_ms is None:
            return None
        return max(0.0, (self.closed_ms - self.opened_ms) / 1000)

    @property
    def open_size(self) -> Decimal:
        return self.entry_size - self.exit_size


def summarize(signal_id: int, fills: Sequence[FillRow], risk: Decimal | None) -> TradeOutcome | None:
    """The trade of one signal from its fills (None without an opening fill). Closed once what was closed reaches
    what was opened; the cause is the cause of the last closing fill."""
    ordered = sorted(fills, key=lambda f: (f.ts, f.trade_id))
    opens = [f for f in ordered if f.opening]
    if not opens:
        return None
    closes = [f for f in ordered if not f.opening]
    entry_size = sum((f.size for f in opens), ZERO)
    avg_entry = sum((f.price * f.size for f in opens), ZERO) / entry_size if entry_size > 0 else None
    exit_size = sum((f.size for f in closes), ZERO)
    avg_exit = sum((f.price * f.size for f in closes), ZERO) / exit_size if exit_size > 0 else None
    hold_side = opens[0].hold_side or "long"
    gross = ZERO
    for fill in closes:
        if fill.profit is not None:
            gross += fill.profit
        elif avg_entry is not None:
            move = fill.price - avg_entry
            gross += move * fill.size if hold_side == "long" else -move * fill.size
    fee_sum = sum((f.fee for f in ordered), ZERO)  # Bitget sign: negative = paid
    realized = gross + fee_sum
    closed = exit_size >= entry_size > 0
    r_multiple = realized / risk if risk is not None and risk > 0 else None
    cause: Cause | None = None
    if closed and closes and closes[-1].cause in CAUSES:
        cause = closes[-1].cause
    return TradeOutcome(
        signal_id=signal_id, symbol=opens[0].symbol, hold_side=hold_side, entry_size=entry_size, avg_entry=avg_entry,
        exit_size=exit_size, avg_exit=avg_exit, gross_pnl=gross, fees=-fee_sum, realized_pnl=realized, risk=risk,
        r_multiple=r_multiple, closed=closed, cause=cause, opened_ms=opens[0].ts,
        closed_ms=closes[-1].ts if closed and closes else None,
    )  # fmt: skip


def stop_risk(avg_entry: Decimal | None, stop: Decimal | None, size: Decimal) -> Decimal | None:
    """The loss at the stop for ``size`` (fees left out): the fallback risk when the sized risk is not journaled."""
    if avg_entry is None or stop is None or size <= 0:
        return None
    return abs(avg_entry - stop) * size


def money_text(value: Decimal) -> str:
    """USDT for reading in a notice or a report: four decimals (the journal and the JSON keep every digit)."""
    return f"{value.quantize(Decimal('0.0001')):f}"


def max_drawdown(pnls: Iterable[Decimal]) -> Decimal:
    """Largest fall of realized equity (cumulative P&L from 0) from a peak, as a positive amount."""
    equity = peak = worst = ZERO
    for pnl in pnls:
        equity += pnl
        peak = max(peak, equity)
        worst = max(worst, peak - equity)
    return worst


@dataclass(frozen=True)
class ChannelReport:
    channel: str
    posts: int
    signals: int  # entry signals read
    traded: int
    notify_only: Mapping[str, int]
    closed_trades: int
    wins: int
    losses: int
    win_rate: Decimal | None
    realized_pnl: Decimal
    fees: Decimal
    average_r: Decimal | None
    expectancy: Decimal | None  # average realized P&L per closed trade
    max_drawdown: Decimal
    trades: tuple[TradeOutcome, ...] = field(default=())
    updates: int = 0  # updates, closes and cancels read


def notify_only_reason(reason: str) -> str:
    """How to group a notify_only / refused decision: its reason code (``NO_STOP_LOSS: ...`` -> ``NO_STOP_LOSS``),
    else its first clause (``no stop loss; target dropped`` -> ``no stop loss``), at most 60 characters."""
    text = reason.strip()
    head = text.split(":", 1)[0].strip()
    if head and all(c.isupper() or c.isdigit() or c == "_" for c in head):
        return head
    clause = text.split(";", 1)[0].strip()
    return clause[:60] or "unknown"


def channel_report(channel: str, posts: int, signals: Sequence[SignalRow], outcomes: Sequence[TradeOutcome]
                   ) -> ChannelReport:
    """One channel's figures. ``signals`` are its readings that are not noise; ``outcomes`` its trades."""
    entries = [s for s in signals if s.parsed.get("kind", "entry") == "entry"]
    traded = sum(1 for s in entries if s.decision == "traded")
    notify_only: dict[str, int] = {}
    for s in signals:
        if s.decision in ("notify_only", "refused"):
            code = notify_only_reason(s.reason)
            notify_only[code] = notify_only.get(code, 0) + 1
    closed = sorted((o for o in outcomes if o.closed), key=lambda o: (o.closed_ms or 0, o.signal_id))
    wins = sum(1 for o in closed if o.realized_pnl > 0)
    losses = sum(1 for o in closed if o.realized_pnl <= 0)
    realized = sum((o.realized_pnl for o in closed), ZERO)
    fees = sum((o.fees for o in closed), ZERO)
    rs = [o.r_multiple for o in closed if o.r_multiple is not None]
    count = len(closed)
    return ChannelReport(
        channel=channel, posts=posts, signals=len(entries), updates=len(signals) - len(entries), traded=traded,
        notify_only=dict(sorted(notify_only.items())), closed_trades=count, wins=wins, losses=losses,
        win_rate=Decimal(wins) / Decimal(count) if count else None, realized_pnl=realized, fees=fees,
        average_r=sum(rs, ZERO) / Decimal(len(rs)) if rs else None,
        expectancy=realized / Decimal(count) if count else None,
        max_drawdown=max_drawdown(o.realized_pnl for o in closed), trades=tuple(closed),
    )  # fmt: skip


def daily_summary_due(now_utc_seconds: float, at: str, window_s: float = 3600.0) -> str | None:
    """The date (YYYY-MM-DD, UTC) whose summary is due now: ``at`` (HH:MM UTC) passed less than ``window_s`` ago
    (a bot that was down at that time skips that day rather than summarizing late); else None."""
    if not at:
        return None
    now = _dt.datetime.fromtimestamp(now_utc_seconds, tz=_dt.timezone.utc)
    hours, minutes = (int(part) for part in at.split(":"))
    due = now.replace(hour=hours, minute=minutes, second=0, microsecond=0)
    if due > now:
        due -= _dt.timedelta(days=1)
    if (now - due).total_seconds() >= window_s:
        return None
    return due.date().isoformat()
