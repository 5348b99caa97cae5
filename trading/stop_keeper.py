"""Keeping each position's stop: moved (new stop first, then the old ones go: never a moment without one),
repaired where no stop covers the position, and moved to break-even when asked (``MoveStopToBreakEven``).

Plain object, no actor: the OrderManager builds it with its fenced client and asks it on the guard's requests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from exchange.bitget.errors import BitgetError
from exchange.bitget.models import PlanOrder, Position, PositionSide, PosMode, TpslRequest
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
from trading.journal import Journal
from trading.order_sender import read_open_position
from trading.ports import ExecutionExchange, Notices, OrderCounters

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

    def _position(self, symbol: str, hold_side: PositionSide | None = None) -> Position | None:
        return read_open_position(self._client, symbol, hold_side)

    def replace_stop(self, position: Position, stop: Decimal, reason: str, *, break_even: bool = False) -> bool:
        """New stop first, then the old ones are cancelled: never a moment without a stop. False when the new
        stop could not be placed (the old one stays). The stop goes on the tick grid away from the entry."""
        try:
            stop = self._client.contract(position.symbol).round_price(
                stop, stop_rounding(stop, position.average_open_price))
        except BitgetError as exc:
            log.warning("%s: contract unreadable (%s); stop not moved to %s", position.symbol, exc.code, stop)
            return False
        mark = position.mark_price or position.average_open_price
        if not stop_is_valid(position.hold_side, stop, mark):
            self._notifier.notify("STOP_NOT_MOVED", f"{position.symbol}: stop {stop} is past the price {mark}")
            return True  # a request that can never succeed: nothing to retry
        if self._local_guard:
            set_local_stop(self._journal, position, stop, reason)
            self._journal.record_event("STOP_MOVED", {"symbol": position.symbol, "stop": str(stop), "reason": reason,
                                                      "local": True, "break_even": break_even})
            log.info("%s %s local stop moved to %s (%s)", position.symbol, position.hold_side, stop, reason)
            return True
        current = self._stop_plans(position)
        old = [p for p in current if p.trigger_price != stop]
        if len(old) < len(current):  # already there: two readings of one post both asked, or an earlier try
            if not old:  # whose reply was lost placed it; then the old stops still go, and the move is told
                remember_moved_stop(self._journal, position, stop)
                return True
        elif not self._place_stop(position, stop, reason):
            return False
        for plan in old:
            try:
                self._client.cancel_plan_order(position.symbol, order_id=plan.order_id, plan_type=plan.plan_type)
            except BitgetError as exc:
                log.warning("old stop %s on %s not cancelled: %s", plan.order_id, position.symbol, exc.code)
        remember_moved_stop(self._journal, position, stop)
        self._journal.record_event("STOP_MOVED", {"symbol": position.symbol, "stop": str(stop), "reason": reason,
                                                  "previous": str(old[0].trigger_price) if old else None,
                                                  "break_even": break_even})
        log.info("%s %s stop moved to %s (%s)", position.symbol, position.hold_side, stop, reason)
        return True

    def _place_stop(self, position: Position, stop: Decimal, reason: str, size: Decimal | None = None) -> bool:
        """A whole-position stop (``pos_loss``), or with ``size`` a stop plan for that part only."""
        hold = tpsl_hold_side(position.hold_side, self._pos_mode)
        oid = action_client_oid("stop", position.symbol, position.hold_side, stop, time.time())
        try:
            self._client.place_tpsl_order(TpslRequest(
                symbol=position.symbol, plan_type="pos_loss" if size is None else "loss_plan", trigger_price=stop,
                hold_side=hold, size=size, client_oid=oid,
            ))
        except BitgetError as exc:
            log.error("stop %s on %s refused: %s (%s)", stop, position.symbol, exc.code, reason)
            self._metrics.order("stop", "rejected")
            return False
        self._metrics.order("stop", "accepted")
        return True

    def _stop_plans(self, position: Position) -> list[PlanOrder]:
        if self._local_guard:
            return []  # no stop of ours is on the exchange
        try:
            plans = self._client.plan_orders_pending("profit_loss", position.symbol)
        except BitgetError:
            return []
        return stop_plans_for(position, plans, self._pos_mode)

    # --- protection --------------------------------------------------------------------------------
    def repair(self, symbol: str, hold_side: PositionSide, reason: str) -> None:
        """The part of the position no stop covers gets one: the whole position a position-level stop, a
        partly covered one (grown past its sized stop) a stop plan sized to the gap."""
        if self._local_guard:
            return  # the PositionGuard holds the stop itself
        position = self._position(symbol, hold_side)
        if position is None:
            return
        plans = self._stop_plans(position)
        gap = uncovered_size(position, plans, self._pos_mode)
        if gap <= 0:
            return
        stop = self._intended_stop(position)
        if stop is None or not stop_is_valid(position.hold_side, stop, position.mark_price or stop):
            stop = default_stop(position, self._default_stop_pct, self._client.contract(position.symbol))
        size = None if gap >= position.total else gap
        if self._place_stop(position, stop, reason, size=size):
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
            moved = self.replace_stop(position, stop, message.reason, break_even=True)
        except BitgetError as exc:
            log.warning("%s: break-even move failed (%s)", position.symbol, exc.code)
            moved = False
        if moved:
            self._break_even_tries.pop(key, None)
            return None
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
