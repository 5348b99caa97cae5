"""What to do next for one exit intent: a pure decision from the journal's rows and the exchange's position.

The OrderManager applies the step, reads again and asks again until the answer is ``Wait`` or ``Finish``.
The same question is asked when the exit arrives, at start-up and on every reconciliation pass, so an exit
interrupted anywhere (before its close was sent, after it was sent but before the reply) is completed from
what the exchange shows: a close whose client id is journaled is looked up, never sent a second time.

- The signal's entry not decided or not placed yet: wait for it (an update read right after its signal).
- The signal was never traded (refused, interrupted): the exit fails with that reason.
- close_all: the working entries are cancelled first, then the position is closed reduce-only by market.
- close_partial: one close of the share of the position seen when the exit first ran.
- cancel_entries: every working entry of the signal is cancelled.
- set_stop / break_even: the stop moves (the OrderManager places the new one before cancelling the old).
A close the exchange refused for a passing reason (rate limit, unavailable) is sent again under the next
attempt's client id; any other refusal, or no position to act on, finishes the exit as failed with its reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from exchange.bitget.models import Position
from parsing.signals import ParsedMessage, UpdateType
from trading.intents import CLOSE_LEG, ExitIntent, ExitKind
from trading.journal import OrderRow, OrderState
from trading.reconcile import NEVER_SENT

OPEN = (OrderState.INTENT, OrderState.SUBMITTED, OrderState.ACCEPTED, OrderState.PARTIAL)
TRANSIENT = "transient:"  # prefix of a refusal's error that another attempt may overcome
MAX_CLOSE_ATTEMPTS = 8
UNDECIDED = ("parsed", "approved")


def exit_kind(parsed: ParsedMessage) -> ExitKind | None:
    """The exit an update asks for; None when it needs no order (a target hit other than the first, a fill)."""
    kind = parsed.update_type
    if kind is UpdateType.CLOSE_ALL:
        return "close_all"
    if kind is UpdateType.CANCEL_ENTRIES:
        return "cancel_entries"
    if kind is UpdateType.CLOSE_PARTIAL and parsed.update_percent is not None and 0 < parsed.update_percent <= 100:
        return "close_all" if parsed.update_percent >= 100 else "close_partial"
    if kind is UpdateType.SET_STOP and parsed.update_price is not None and parsed.update_price > 0:
        return "set_stop"
    if kind is UpdateType.MOVE_SL_TO_BE:
        return "break_even"
    if kind is UpdateType.TP_HIT and parsed.tp_index == 1:
        return "break_even_on_tp1"
    return None


# --- steps -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Wait:
    reason: str


@dataclass(frozen=True)
class CancelEntries:
    rows: tuple[OrderRow, ...]


@dataclass(frozen=True)
class LookUp:
    """A close whose outcome the journal does not know: ask the exchange by client id (an INTENT row was
    never sent: it is sent now under the same client id, which the exchange would refuse as a duplicate)."""

    row: OrderRow


@dataclass(frozen=True)
class SendClose:
    client_oid: str
    size: Decimal | None  # None: the whole position


@dataclass(frozen=True)
class MoveStop:
    pass


@dataclass(frozen=True)
class Finish:
    ok: bool
    detail: str


ExitStep = Wait | CancelEntries | LookUp | SendClose | MoveStop | Finish


def _transient(row: OrderRow) -> bool:
    """Refused without being looked at (rate limit, unavailable) or never arrived: another attempt may do."""
    error = row.error or ""
    return row.state is OrderState.REJECTED and (error.startswith(TRANSIENT) or error == NEVER_SENT)


def next_step(
    intent: ExitIntent,
    *,
    target_decision: str | None,
    working_entries: Sequence[OrderRow],
    closes: Sequence[OrderRow],
    position: Position | None,
    entry_filled: Decimal | None = None,
    stop_moves_enabled: bool = True,
) -> ExitStep:
    """``closes``: this exit's close rows by attempt (``intent.client_oid(CLOSE_LEG, n)``), oldest first;
    ``position``: the target's position as the exchange shows it now (None: flat); ``entry_filled``: what the
    target's entries filled in all (None: unknown)."""
    if target_decision in UNDECIDED:
        return Wait(f"signal {intent.target_signal_id} is not placed yet")
    if target_decision != "traded":
        return Finish(False, f"signal {intent.target_signal_id} was not traded ({target_decision or 'unknown'})")
    if intent.kind == "cancel_entries":
        if working_entries:
            return CancelEntries(tuple(working_entries))
        return Finish(True, "no working entry left")
    if intent.kind in ("set_stop", "break_even", "break_even_on_tp1"):
        if intent.kind == "break_even_on_tp1" and not stop_moves_enabled:
            return Finish(True, "first target hit; moving the stop to break-even is off")
        if position is None:
            if entry_filled == 0:
                return Finish(False, "no entry has filled yet: the stop was not moved")
            return Finish(False, "no open position: the stop was not moved")
        return MoveStop()
    if intent.kind == "close_all" and working_entries:
        return CancelEntries(tuple(working_entries))
    last = closes[-1] if closes else None
    if last is not None and last.state in OPEN:
        return LookUp(last)
    filled = sum((row.filled_size or Decimal(0) for row in closes), Decimal(0))
    if intent.kind == "close_partial" and filled > 0:
        return Finish(True, f"closed {filled}")
    if position is None:
        if filled > 0:
            return Finish(True, f"closed {filled}")
        if entry_filled == 0:
            if intent.kind == "close_all":
                return Finish(True, "no entry had filled: the entries were cancelled, nothing to close")
            return Finish(False, "no entry has filled yet: nothing to close")
        return Finish(False, "no open position: it was already closed")
    if last is not None and last.state is OrderState.REJECTED and not _transient(last):
        return Finish(False, f"close refused by the exchange: {last.error or 'no reason given'}")
    counted = [row for row in closes if not _transient(row)]
    if len(counted) >= MAX_CLOSE_ATTEMPTS:
        return Finish(False, f"position still open after {len(counted)} closes")
    size = None
    if intent.kind == "close_partial" and last is not None:
        size = last.size  # the share decided when the exit first ran; never recomputed from a smaller position
    return SendClose(intent.client_oid(CLOSE_LEG, len(closes) + 1), size)
