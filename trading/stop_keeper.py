"""Keeping each position's stop: moved (new stop first, then the old ones go: never a moment without one),
repaired where no stop covers the position, and moved to break-even when asked (``MoveStopToBreakEven``).

Plain object, no actor: the OrderManager builds it with its fenced client and asks it on the guard's requests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from exchange.bitget.errors import BitgetError
from exchange.bitget.models import PlanOrder, Position, PositionSide, PosMode, as_position_side
from exchange.bitget.semantics import tpsl_hold_side
from trading import reconcile as rec
from trading.bundle import break_even_stop
from trading.execution import action_client_oid, default_stop, stop_is_valid
from trading.guard import (
    current_stop,
    moved_stop,
    remember_moved_stop,
    set_local_stop,
    stop_plans_for,
    stop_rounding,
    uncovered_size,
)
from trading.journal import Journal, OrderState
from trading.order_sender import read_open_position
from trading.ports import ExecutionExchange, Notices, OrderCounters
from trading.stop_intents import (
    UNKNOWN_STOP_GRACE_S,
    StopIntents,
    StopOutcome,
    StopPurpose,
    StopWanted,
    by_client_oid,
    is_stop_intent,
)

log = logging.getLogger("following.orders")

BREAK_EVEN_RETRIES = 3  # a break-even move the exchange refused is asked again this often (backing off) ...
BREAK_EVEN_RETRY_S = 0.5  # ... this many seconds times the attempt number apart


class BreakEvenRequest(Protocol):
    @property
    def symbol(self) -> str: ...

    @property
    def hold_side(self) -> PositionSide: ...

    @property
    def reason(self) -> str: ...


@dataclass(frozen=True)
class StopSettings:
    pos_mode: PosMode
    break_even_buffer: Decimal = Decimal("0.001")
    default_stop_loss_pct: Decimal = Decimal("0.006")
    local_guard: bool = False  # stops are the bot's own, kept in the journal: none is sent to the exchange
    unknown_stop_grace_s: float = UNKNOWN_STOP_GRACE_S  # a stop sent without answer, not listed this long: lost


class StopKeeper:
    def __init__(self, *, journal: Journal, client: ExecutionExchange, notifier: Notices, metrics: OrderCounters,
                 settings: StopSettings,
                 intents: Callable[[], Mapping[tuple[str, str], rec.PositionIntent]]) -> None:
        self._journal = journal
        self._client = client
        self._notifier = notifier
        self._metrics = metrics
        self._pos_mode = settings.pos_mode
        self._be_buffer = settings.break_even_buffer
        self._default_stop_pct = settings.default_stop_loss_pct
        self._local_guard = settings.local_guard
        self._intents = intents  # the open signals' position intents (their stops), as reconciliation reads them
        self._break_even_tries: dict[tuple[str, str], int] = {}
        self._stops = StopIntents(journal=journal, client=client, notifier=notifier, metrics=metrics,
                                  grace_s=settings.unknown_stop_grace_s)

    def _position(self, symbol: str, hold_side: PositionSide | None = None) -> Position | None:
        return read_open_position(self._client, symbol, hold_side)

    def replace_stop(self, position: Position, stop: Decimal, reason: str, *, break_even: bool = False) -> StopOutcome:
        """New stop first, then the old ones are cancelled: never a moment without a stop. ``placed``: done (or a
        request that can never succeed: nothing to retry); ``pending``: the new stop's outcome is not known yet;
        ``refused``: it was refused (the old one stays). The stop goes on the tick grid away from the entry."""
        try:
            stop = self._client.contract(position.symbol).round_price(
                stop, stop_rounding(stop, position.average_open_price))
        except BitgetError as exc:
            log.warning("%s: contract unreadable (%s); stop not moved to %s", position.symbol, exc.code, stop)
            return "refused"
        mark = position.mark_price or position.average_open_price
        if not stop_is_valid(position.hold_side, stop, mark):
            self._notifier.notify("STOP_NOT_MOVED", f"{position.symbol}: stop {stop} is past the price {mark}")
            return "placed"  # a request that can never succeed: nothing to retry
        if self._local_guard:
            set_local_stop(self._journal, position, stop, reason)
            self._journal.record_event("STOP_MOVED", {"symbol": position.symbol, "stop": str(stop), "reason": reason,
                                                      "local": True, "break_even": break_even})
            log.info("%s %s local stop moved to %s (%s)", position.symbol, position.hold_side, stop, reason)
            return "placed"
        plans = self._read_plans(position.symbol)
        listed = by_client_oid(plans)
        current = stop_plans_for(position, plans or [], self._pos_mode)
        old = [p for p in current if p.trigger_price != stop]
        oid_for = self._oid_for("move", position)
        if len(old) < len(current):  # already there: two readings of one post both asked, or an earlier try
            self._stops.settle(oid_for, listed)  # whose reply was lost placed it; then the old stops still go
            if not old:
                remember_moved_stop(self._journal, position, stop)
                return "placed"
        else:
            outcome = self._stops.place(
                self._wanted(position, stop, None), oid_for, purpose="move", stop_for=rec.position_key(position),
                reason=reason, listed=listed, tell_refusal=False, extra={"break_even": break_even})
            if outcome != "placed":
                return outcome
        for plan in old:
            try:
                self._client.cancel_plan_order(position.symbol, order_id=plan.order_id, plan_type=plan.plan_type)
            except BitgetError as exc:
                log.warning("old stop %s on %s not cancelled: %s", plan.order_id, position.symbol, exc.code)
                continue
            row = self._journal.order(plan.client_oid) if plan.client_oid else None
            if row is not None and not row.state.is_terminal:
                self._journal.set_order_state(row.client_oid, OrderState.CANCELED)
        remember_moved_stop(self._journal, position, stop)
        self._journal.record_event("STOP_MOVED", {"symbol": position.symbol, "stop": str(stop), "reason": reason,
                                                  "previous": str(old[0].trigger_price) if old else None,
                                                  "break_even": break_even})
        log.info("%s %s stop moved to %s (%s)", position.symbol, position.hold_side, stop, reason)
        return "placed"

    def _oid_for(self, purpose: StopPurpose, position: Position) -> Callable[[int], str]:
        """Attempt n of this purpose's stop on this position (re-opened: a new position, new ids)."""
        key = rec.position_key(position)
        return lambda attempt: action_client_oid("stop", purpose, key, attempt)

    def _wanted(self, position: Position, stop: Decimal, size: Decimal | None) -> StopWanted:
        return StopWanted(symbol=position.symbol, hold_side=position.hold_side,
                          tpsl_hold=tpsl_hold_side(position.hold_side, self._pos_mode), trigger_price=stop, size=size,
                          position_size=position.total)

    def _read_plans(self, symbol: str) -> list[PlanOrder] | None:
        """The symbol's pending TP/SL plans; None when they cannot be read."""
        try:
            return self._client.plan_orders_pending("profit_loss", symbol)
        except BitgetError as exc:
            log.info("%s: plans unreadable (%s)", symbol, exc.code)
            return None

    def resume(self) -> None:
        """Stops journaled and never sent before a restart (or a replaced instance) are sent now under their own
        client id while their position still needs them, else decided without being sent. A position that cannot
        be read leaves them for the next pass."""
        for row in self._journal.orders(states=[OrderState.INTENT]):
            purpose = row.payload.get("purpose")
            if not is_stop_intent(row) or purpose not in ("repair", "move"):
                continue  # an exit's stop is resumed by its exit
            side = as_position_side(row.payload.get("position_side"))
            try:
                positions = [p for p in self._client.position(row.symbol) if p.total > 0 and p.hold_side == side]
            except BitgetError as exc:
                log.warning("%s: position unreadable (%s); stop %s resumed later", row.symbol, exc.code,
                            row.client_oid)
                continue
            position = positions[0] if positions else None
            if position is None or side is None or rec.position_key(position) != row.payload.get("stop_for"):
                self._journal.set_order_state(row.client_oid, OrderState.REJECTED,
                                              error="its position is gone: not sent")
                continue
            reason = f"resumed after a restart: {row.payload.get('reason', '')}"
            try:
                if purpose == "repair":
                    self.repair(row.symbol, side, reason)
                elif row.price is not None:
                    self.replace_stop(position, row.price, reason, break_even=bool(row.payload.get("break_even")))
            except BitgetError as exc:
                log.warning("%s: stop %s not resumed yet (%s)", row.symbol, row.client_oid, exc.code)
                continue
            again = self._journal.order(row.client_oid)
            if again is not None and again.state is OrderState.INTENT:
                self._journal.set_order_state(row.client_oid, OrderState.REJECTED,
                                              error="no longer wanted after the restart: not sent")

    # --- protection --------------------------------------------------------------------------------
    def repair(self, symbol: str, hold_side: PositionSide, reason: str) -> None:
        """The part of the position no stop covers gets one: the whole position a position-level stop, a
        partly covered one (grown past its sized stop) a stop plan sized to the gap. Each request is an attempt of
        the position's repair (``trading.stop_intents``): journaled first, never sent twice."""
        if self._local_guard:
            return  # the PositionGuard holds the stop itself
        position = self._position(symbol, hold_side)
        if position is None:
            return
        plans = self._read_plans(symbol)
        listed = by_client_oid(plans)
        oid_for = self._oid_for("repair", position)
        gap = uncovered_size(position, stop_plans_for(position, plans or [], self._pos_mode), self._pos_mode)
        if gap <= 0:
            self._stops.settle(oid_for, listed)
            return
        stop = self._intended_stop(position)
        if stop is None or not stop_is_valid(position.hold_side, stop, position.mark_price or stop):
            stop = default_stop(position, self._default_stop_pct, self._client.contract(position.symbol))
        size = None if gap >= position.total else gap
        outcome = self._stops.place(self._wanted(position, stop, size), oid_for, purpose="repair",
                                    stop_for=rec.position_key(position), reason=reason, listed=listed)
        if outcome == "placed":
            self._journal.record_event("STOP_REPAIRED", {"symbol": position.symbol, "stop": str(stop),
                                                         "size": str(size) if size is not None else "position"})

    def _intended_stop(self, position: Position) -> Decimal | None:
        """The stop the position should have now: where it was last moved (break-even, set-stop), else the stop
        its signal's entries carried, else the signal's reading; exact text, rounded away from the entry."""
        signals = self._journal.open_signals(position.symbol)
        intent = self._intents().get(_key(position))
        signal_stop = intent.stop_price if intent is not None else None
        if signal_stop is None:
            for row in reversed(signals):
                value, side = row.parsed.get("stop_loss"), row.parsed.get("side")
                if value is not None and side in (None, position.hold_side):
                    signal_stop = _exact_decimal(value)
                    break
        return current_stop(position, moved=moved_stop(self._journal, position), signal_stop=signal_stop,
                            contract=self._client.contract(position.symbol))

    def retrying(self, symbol: str, hold_side: PositionSide) -> bool:
        """A break-even move of this position was refused and is being asked again."""
        return (symbol, hold_side) in self._break_even_tries

    def move_to_break_even(self, message: BreakEvenRequest) -> float | None:
        """Stop to break-even; a move the exchange refused (the old stop stays) is asked again, a bounded number
        of times ``BREAK_EVEN_RETRY_S`` apart, each refusal journaled: the delay after which the caller asks
        again, or None (done, or given up and told)."""
        key = (message.symbol, message.hold_side)
        position = self._position(message.symbol, message.hold_side)
        if position is None:
            self._break_even_tries.pop(key, None)
            return None
        try:
            contract = self._client.contract(position.symbol)
            stop = break_even_stop(position.average_open_price, position.hold_side, self._be_buffer, contract)
            outcome = self.replace_stop(position, stop, message.reason, break_even=True)
        except BitgetError as exc:
            log.warning("%s: break-even move failed (%s)", position.symbol, exc.code)
            outcome = "refused"
        if outcome == "placed":
            self._break_even_tries.pop(key, None)
            return None
        if outcome == "pending":  # the new stop's outcome is not known yet: asked again, not counted as refused
            self._break_even_tries.setdefault(key, 0)
            return BREAK_EVEN_RETRY_S
        tries = self._break_even_tries.get(key, 0) + 1
        detail = {"symbol": message.symbol, "hold_side": message.hold_side, "attempt": tries,
                  "reason": message.reason}
        if tries > BREAK_EVEN_RETRIES:
            self._break_even_tries.pop(key, None)
            self._journal.record_event("BREAK_EVEN_FAILED", detail)
            self._notifier.notify("STOP_NOT_MOVED", f"{message.symbol} {message.hold_side}: break-even stop refused "
                                  f"{tries} times; the previous stop stays")
            return None
        self._break_even_tries[key] = tries
        self._journal.record_event("BREAK_EVEN_RETRY", detail)
        return BREAK_EVEN_RETRY_S * tries


def _exact_decimal(value: object) -> Decimal | None:
    """A price read back from a journaled reading: its text (a float from an older journal goes through its
    shortest repr, the best that is left of it)."""
    try:
        price = Decimal(value) if isinstance(value, str) else Decimal(repr(value))
    except (ArithmeticError, ValueError, TypeError):
        return None
    return price if price.is_finite() else None


def _key(position: Position) -> tuple[str, str]:
    return position.symbol, position.hold_side
