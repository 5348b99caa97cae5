"""Executes the channel's exits (and the guard's break-even move): the procedures that apply
:func:`trading.exits.next_step` to the exchange, with the journal written before every request.

Plain object, no actor: the OrderManager builds one with its (fenced) client and journal, runs ``run_all`` when an
exit arrives, at start-up and on every pass, and tells itself to run again soon while some exit waits.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from decimal import Decimal

from exchange.bitget.errors import (
    BitgetError,
    DuplicateClientOid,
    ExchangeUnavailable,
    RateLimited,
    UnknownOutcome,
)
from exchange.bitget.models import (
    MARGIN_MODES,
    ORDER_TYPES,
    SIDES,
    TRADE_SIDES,
    MarginMode,
    OrderRequest,
    Position,
    PositionSide,
    PosMode,
    one_of,
)
from exchange.bitget.semantics import tpsl_hold_side
from trading import exits as ex
from trading.bundle import break_even_stop
from trading.execution import close_request, partial_close_size, stop_is_valid
from trading.guard import remember_moved_stop, set_local_stop, stop_plans_for, stop_rounding
from trading.intents import CLOSE_LEG, STOP_LEG, ExitIntent
from trading.journal import IntentState, Journal, JournalError, OrderRow, OrderState, Superseded
from trading.ports import ExecutionExchange, FailureLog, Notices, OrderCounters, OrderFollowUp
from trading.reconcile import OPEN_STATES
from trading.stop_intents import UNKNOWN_STOP_GRACE_S, StopIntents, StopWanted, by_client_oid, refusals

log = logging.getLogger("following.orders")

STEPS_PER_RUN = 8  # steps of one exit per run (cancel, close, look up, ...); the rest at the next run
STOP_MOVE_REFUSALS = 3  # a stop move of an exit refused this often (not rate limited) fails, reported


@dataclass(frozen=True)
class ExitSettings:
    pos_mode: PosMode
    margin_mode: MarginMode
    break_even_buffer: Decimal = Decimal("0.001")
    stop_moves_enabled: bool = True  # move_sl_to_be: the first target's break-even move
    local_guard: bool = False  # stops are the bot's own, kept in the journal
    delay_notice_s: float = 60.0  # an exit not done after this long is told (EXIT_DELAYED)
    unknown_stop_grace_s: float = UNKNOWN_STOP_GRACE_S  # a new stop sent without answer, not listed this long: lost


class ExitExecutor:
    def __init__(self, *, journal: Journal, client: ExecutionExchange, notifier: Notices, metrics: OrderCounters,
                 failures: FailureLog, follow_up: OrderFollowUp, settings: ExitSettings) -> None:
        self._journal = journal
        self._client = client
        self._notifier = notifier
        self._metrics = metrics
        self._failures = failures
        self._follow_up = follow_up
        self._settings = settings
        self._first_wait: dict[str, float] = {}  # exit key -> when this executor first saw it wait
        self._wait_why: dict[str, str] = {}  # exit key -> why its last run stopped short
        self._stops = StopIntents(journal=journal, client=client, notifier=notifier, metrics=metrics,
                                  grace_s=settings.unknown_stop_grace_s)

    def run_all(self) -> bool:
        """Every pending exit, oldest first; an exit waiting (for its entry, the exchange, a lookup) holds back
        the later exits of the same signal. True when some exit waits: the caller runs them again soon."""
        waiting: set[int] = set()
        for row in self._journal.exits(states=[IntentState.PENDING]):
            intent = row.intent
            if intent.target_signal_id in waiting:
                continue
            try:
                done = self._run(intent)
            except BitgetError as exc:  # the exchange could not be read or asked: the exit stays pending
                self._failures.failed(f"exit {intent.key}", f"exit {intent.key} ({intent.kind} {intent.symbol}) "
                                     f"waits: {exc.code}")
                self._wait_why[intent.key] = f"the exchange: {exc.code}"
                done = False
            except (Superseded, JournalError, sqlite3.Error):
                raise  # the instance is replaced, or the journal itself fails: not this exit's fault
            except Exception as exc:  # a fault in this exit alone (not the exchange's answer): fail it and tell
                log.exception("exit %s (%s %s) failed", intent.key, intent.kind, intent.symbol)
                self._finish(intent, ex.Finish(False, f"internal error ({type(exc).__name__}); check the "
                                                           "position yourself"), None, broken=True)
                done = True
            if not done:
                waiting.add(intent.target_signal_id)
                self._delayed(intent)
            else:
                self._failures.succeeded(f"exit {intent.key}")
        return bool(waiting)

    def _run(self, intent: ExitIntent) -> bool:
        """Steps of one exit until it waits (False) or is finished (True); see :mod:`trading.exits`."""
        for _ in range(STEPS_PER_RUN):
            position = self._read_position(intent.symbol, intent.hold_side)
            target = self._journal.signal(intent.target_signal_id)
            entries = [r for r in self._journal.orders(signal_id=intent.target_signal_id) if r.leg.startswith("entry")]
            step = ex.next_step(
                intent, target_decision=target.decision if target is not None else None,
                working_entries=[r for r in entries if r.state in OPEN_STATES], closes=self._closes(intent),
                position=position, entry_filled=sum((r.filled_size or Decimal(0) for r in entries), Decimal(0)),
                stop_moves_enabled=self._settings.stop_moves_enabled,
            )
            if isinstance(step, ex.Wait):
                log.info("exit %s (%s %s) waits: %s", intent.key, intent.kind, intent.symbol, step.reason)
                self._wait_why[intent.key] = step.reason
                return False
            if isinstance(step, ex.Finish):
                self._finish(intent, step, position)
                return True
            if isinstance(step, ex.CancelEntries):
                for row in step.rows:
                    self._cancel_entry(row)
                if any(self._open(row.client_oid) for row in step.rows):
                    return False  # the exchange has not confirmed yet: the next run looks again
            elif isinstance(step, ex.LookUp):
                if step.row.state is OrderState.INTENT:
                    self._send_close(_request_from_row(step.row, self._settings.margin_mode))
                else:
                    self._follow_up.resolve(step.row.client_oid, step.row.symbol)
                if self._open(step.row.client_oid):
                    return False
            elif isinstance(step, ex.SendClose):
                assert position is not None
                if not self._close(intent, position, step):
                    return False
            elif isinstance(step, ex.MoveStop):
                assert position is not None
                finish = self._move_stop(intent, position)
                if finish is None:
                    return False
                self._finish(intent, finish, position)
                return True
        return False

    def _delayed(self, intent: ExitIntent) -> None:
        """An exit still not done ``exit_delay_notice_s`` after this instance first tried it is told once (journal-
        claimed, also across restarts), with why it waits; it goes on being tried, and is told again when done."""
        why = self._wait_why.pop(intent.key, "not confirmed by the exchange yet")
        now = time.monotonic()
        waited = now - self._first_wait.setdefault(intent.key, now)
        row = self._journal.exit(intent.key) if waited >= self._settings.delay_notice_s else None
        if row is None or row.state is not IntentState.PENDING:
            return  # not late yet, or finished meanwhile (a partial close below the minimum)
        detail = {"key": intent.key, "kind": intent.kind, "symbol": intent.symbol, "message_id": intent.message_id,
                  "target_signal_id": intent.target_signal_id, "waited_s": int(waited), "why": why}
        if not self._journal.claim_notice(f"exit_delayed:{intent.key}", "EXIT_DELAYED", detail):
            return
        self._journal.record_event("EXIT_DELAYED", detail)
        self._notifier.notify("EXIT_DELAYED", f"post {intent.message_id} {intent.symbol} "
                                              f"{intent.kind.replace('_', ' ')}: not done after {int(waited)} s, "
                                              f"still trying: {why}")

    def _open(self, client_oid: str) -> bool:
        row = self._journal.order(client_oid)
        return row is not None and row.state in OPEN_STATES

    def _closes(self, intent: ExitIntent) -> list[OrderRow]:
        rows: list[OrderRow] = []
        while (row := self._journal.order(intent.client_oid(CLOSE_LEG, len(rows) + 1))) is not None:
            rows.append(row)
        return rows

    def _read_position(self, symbol: str, hold_side: PositionSide) -> Position | None:
        """The position as the exchange shows it; an unreadable one raises (it is not "gone")."""
        for position in self._client.position(symbol):
            if position.total > 0 and position.hold_side == hold_side:
                return position
        return None

    def _cancel_entry(self, row: OrderRow) -> None:
        try:
            self._client.cancel_order(row.symbol, client_oid=row.client_oid)
        except BitgetError as exc:
            log.info("cancel %s: %s", row.client_oid, exc.code)
        self._follow_up.resolve(row.client_oid, row.symbol)

    def _close(self, intent: ExitIntent, position: Position, step: ex.SendClose) -> bool:
        """Journal this attempt's close, then send it. False when it is not known to be done yet."""
        size = step.size
        if size is None and intent.kind == "close_partial" and intent.percent is not None:
            size = partial_close_size(position, intent.percent, self._client.contract(position.symbol))
            if size <= 0:
                self._finish(intent, ex.Finish(False, f"{intent.percent}% of {position.total} is below the "
                                                           "exchange minimum: nothing closed"), position)
                return False
        if size is not None and size >= position.total:
            size = None
        request = close_request(position, self._settings.pos_mode, step.client_oid, size)
        if self._journal.record_intent(
            step.client_oid, signal_id=intent.target_signal_id, symbol=position.symbol, leg="close",
            side=request.side, trade_side=request.trade_side, order_type="market", size=request.size, price=None,
            reduce_only=True, payload={"exit": intent.key, "kind": intent.kind, "position_side": position.hold_side,
                                       "reason": f"post {intent.message_id}: {intent.kind}", "cause": "channel_close",
                                       "margin_mode": request.margin_mode},
        ):
            self._send_close(request)
        return not self._open(step.client_oid)

    def _send_close(self, request: OrderRequest) -> None:
        """Send a journaled close. A refusal the exchange gave without looking (rate limit, unavailable) is
        journaled as transient: the exit sends its next attempt later; any other refusal is its outcome."""
        oid = request.client_oid or ""
        self._journal.set_order_state(oid, OrderState.SUBMITTED)
        try:
            placed = self._client.place_order(request)
        except Superseded:
            # Replaced right before sending: nothing left, so the newer instance sends it under this client id.
            self._journal.set_order_state(oid, OrderState.INTENT)
            raise
        except DuplicateClientOid:
            self._follow_up.resolve(oid, request.symbol)
            return
        except UnknownOutcome as exc:
            log.warning("close %s outcome unknown (%s); will look it up", oid, exc.code)
            self._metrics.order("close", "unknown")
            return
        except (RateLimited, ExchangeUnavailable) as exc:
            self._journal.set_order_state(oid, OrderState.REJECTED, error=f"{ex.TRANSIENT}{exc.code}")
            self._metrics.order("close", "rejected")
            return
        except BitgetError as exc:
            self._journal.set_order_state(oid, OrderState.REJECTED, error=str(exc.code))
            self._metrics.order("close", "rejected")
            return
        self._journal.set_order_state(oid, OrderState.ACCEPTED, exchange_order_id=placed.order_id)
        self._metrics.order("close", "accepted")
        log.info("%s close %s %s accepted (%s)", request.symbol, request.side, request.size, oid)
        self._follow_up.resolve(oid, request.symbol)

    def _move_stop(self, intent: ExitIntent, position: Position) -> ex.Finish | None:
        """Move the stop for an exit: the new stop first, then the old ones go. None: try again later."""
        contract = self._client.contract(position.symbol)
        break_even = intent.kind != "set_stop"
        if intent.stop_price is not None and not break_even:
            stop = contract.round_price(intent.stop_price, stop_rounding(intent.stop_price,
                                                                         position.average_open_price))
        else:
            stop = break_even_stop(position.average_open_price, position.hold_side, self._settings.break_even_buffer,
                                   contract)
        mark = position.mark_price or position.average_open_price
        if not stop_is_valid(position.hold_side, stop, mark):
            return ex.Finish(False, f"stop {stop} is past the price {mark}: not moved")
        reason = f"post {intent.message_id}: {intent.kind}"
        if self._settings.local_guard:
            set_local_stop(self._journal, position, stop, reason)
            self._journal.record_event("STOP_MOVED", {"symbol": position.symbol, "stop": str(stop), "reason": reason,
                                                      "local": True, "break_even": break_even})
            return ex.Finish(True, f"stop moved to {stop}")
        plans = self._client.plan_orders_pending("profit_loss", position.symbol)  # unreadable: the exit waits
        current = stop_plans_for(position, plans, self._settings.pos_mode)
        listed = by_client_oid(plans)

        def oid_for(attempt: int) -> str:
            return intent.client_oid(STOP_LEG, attempt)

        if any(plan.trigger_price == stop for plan in current):
            self._stops.settle(oid_for, listed)  # an earlier attempt whose reply was lost, or another reading
            if len(current) == 1:
                remember_moved_stop(self._journal, position, stop)
                return ex.Finish(True, f"stop at {stop} already")
        else:
            wanted = StopWanted(symbol=position.symbol, hold_side=position.hold_side,
                                tpsl_hold=tpsl_hold_side(position.hold_side, self._settings.pos_mode),
                                trigger_price=stop, size=None, position_size=position.total)
            outcome = self._stops.place(wanted, oid_for, purpose="exit", stop_for=intent.key, reason=reason,
                                        listed=listed, tell_refusal=False, extra={"exit": intent.key})
            if outcome == "pending":
                log.warning("stop move of %s waits: the new stop's outcome is not known yet", intent.key)
                return None
            if outcome == "refused":
                attempts = self._stops.attempts(oid_for)
                if refusals(attempts) >= STOP_MOVE_REFUSALS:
                    return ex.Finish(False, f"new stop {stop} refused by the exchange: {attempts[-1].error}; the old "
                                            "stop stays")
                return None
        for plan in current:
            if plan.trigger_price == stop:
                continue
            try:
                self._client.cancel_plan_order(position.symbol, order_id=plan.order_id, plan_type=plan.plan_type)
            except BitgetError as exc:
                log.warning("old stop %s on %s not cancelled: %s", plan.order_id, position.symbol, exc.code)
        remember_moved_stop(self._journal, position, stop)
        previous = [plan.trigger_price for plan in current if plan.trigger_price != stop]
        self._journal.record_event("STOP_MOVED", {"symbol": position.symbol, "stop": str(stop), "reason": reason,
                                                  "previous": str(previous[0]) if previous else None,
                                                  "break_even": break_even})
        return ex.Finish(True, f"stop moved to {stop}")

    def _finish(self, intent: ExitIntent, finish: ex.Finish, position: Position | None, *,
                     broken: bool = False) -> None:
        """``broken``: the exit raised; nothing is known of the position, so nothing is cleaned or closed."""
        if intent.closes and not broken:
            self._follow_up.clean_plans(intent.symbol)  # none left beside a flat side, none bigger than the rest
        if not self._journal.finish_exit(intent, finish.ok, finish.detail,
                                         close_target=not broken and intent.kind == "close_all" and position is None):
            return
        detail = {"key": intent.key, "kind": intent.kind, "symbol": intent.symbol, "hold_side": intent.hold_side,
                  "signal_id": intent.update_signal_id, "target_signal_id": intent.target_signal_id,
                  "message_id": intent.message_id, "detail": finish.detail}
        what = f"post {intent.message_id} {intent.symbol} {intent.kind.replace('_', ' ')}"
        self._first_wait.pop(intent.key, None)
        if not intent.from_channel:  # the guard's break-even move: the channel asked for nothing
            if not finish.ok and position is not None:  # refused, or past the price; the old stop stays
                self._journal.record_event("BREAK_EVEN_FAILED", detail)
                self._notifier.notify("STOP_NOT_MOVED", f"{intent.symbol} {intent.hold_side}: break-even stop not "
                                      f"moved: {finish.detail}; the previous stop stays")
            return
        if finish.ok:
            self._journal.record_event("EXIT_DONE", detail)
            log.info("%s: done (%s)", what, finish.detail)
            if self._journal.notice_claimed(f"exit_delayed:{intent.key}"):  # the user was told it was late
                self._notifier.notify("EXIT_DONE", f"{what}: done after the delay: {finish.detail}")
        else:
            self._journal.record_event("EXIT_FAILED", detail)
            self._notifier.notify("EXIT_NOT_EXECUTED", f"{what}: not executed: {finish.detail}")


def _request_from_row(row: OrderRow, margin_mode: MarginMode) -> OrderRequest:
    """The close a journaled row describes, to send it under its own client id."""
    return OrderRequest(
        symbol=row.symbol, side=one_of(row.side, SIDES, "side"), size=row.size,
        order_type=one_of(row.order_type, ORDER_TYPES, "order type"), price=row.price,
        trade_side=None if row.trade_side is None else one_of(row.trade_side, TRADE_SIDES, "trade side"),
        reduce_only=row.reduce_only, client_oid=row.client_oid,
        margin_mode=one_of(row.payload.get("margin_mode") or margin_mode, MARGIN_MODES, "margin mode"),
    )
