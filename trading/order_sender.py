"""Sending orders: an entry leg or a close, journaled before the request, its state from the exchange's reply.

``OrderSender`` sends one journaled order (an entry leg, a close) and follows it up by client id; ``Closer``
closes positions reduce-only by market (protective, liquidation reduce, panic, an uncovered fill), each under a
client id deterministic per (cause, position, attempt), and sends them even when the journal cannot be written
(journaled as soon as it can). Plain objects, no actor: the OrderManager builds them with its fenced client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from exchange.bitget.errors import BitgetError, DuplicateClientOid, UnknownOutcome
from exchange.bitget.models import MarginMode, OrderRequest, Position, PositionSide, PosMode
from trading import reconcile as rec
from trading.bundle import LegPlan
from trading.execution import action_client_oid, close_request
from trading.journal import Journal, JournalError, OrderState
from trading.ports import ExecutionExchange, Notices, OrderCounters
from trading.reconcile import OPEN_STATES

log = logging.getLogger("following.orders")


class Resolver(Protocol):
    def resolve(self, client_oid: str, symbol: str) -> None: ...


class OrderSender:
    def __init__(self, *, journal: Journal, client: ExecutionExchange, notifier: Notices, metrics: OrderCounters,
                 follow_up: Resolver, entries_allowed: Callable[[], bool], margin_mode: MarginMode,
                 preset_stop: bool) -> None:
        self._journal = journal
        self._client = client
        self._notifier = notifier
        self._metrics = metrics
        self._follow_up = follow_up
        self._entries_allowed = entries_allowed  # checked again right before each entry leg is sent
        self._margin_mode = margin_mode
        self._preset_stop = preset_stop  # the stop rides on each entry (presetStopLossPrice)

    def submit(self, leg: LegPlan, signal_id: int | None, payload: dict[str, Any]) -> None:
        """Journal the intent, then send; never send a client id that was journaled before."""
        recorded = self._journal.record_intent(
            leg.client_oid, signal_id=signal_id, symbol=leg.symbol, leg=leg.leg, side=leg.side,
            trade_side=leg.trade_side, order_type=leg.order_type, size=leg.size, price=leg.price,
            reduce_only=leg.reduce_only, payload=payload,
        )
        if not recorded:
            log.info("intent %s already journaled: not sent again", leg.client_oid)
            return
        request = OrderRequest(
            symbol=leg.symbol, side=leg.side, size=leg.size, order_type=leg.order_type, price=leg.price,
            trade_side=leg.trade_side, reduce_only=leg.reduce_only, client_oid=leg.client_oid,
            margin_mode=self._margin_mode,
            preset_stop_loss_price=leg.preset_stop_loss_price if self._preset_stop else None,
        )
        self.send(request, leg.leg)

    def send(self, request: OrderRequest, leg: str) -> None:
        oid = request.client_oid or ""
        is_entry = leg.startswith("entry")
        if is_entry and not self._entries_allowed():
            self._journal.set_order_state(oid, OrderState.REJECTED, error="mode is not normal")
            return
        self._journal.set_order_state(oid, OrderState.SUBMITTED)
        try:
            placed = self._client.place_order(request)
        except DuplicateClientOid:
            self._follow_up.resolve(oid, request.symbol)
            return
        except UnknownOutcome as exc:
            # The order may exist: it stays SUBMITTED until a lookup by client id decides.
            log.warning("order %s outcome unknown (%s); will look it up", oid, exc.code)
            self._metrics.order(_leg_label(leg), "unknown")
            return
        except BitgetError as exc:
            self._journal.set_order_state(oid, OrderState.REJECTED, error=f"{exc.code}")
            self._metrics.order(_leg_label(leg), "rejected")
            self._notifier.notify("ORDER_REJECTED", f"{request.symbol} {leg} rejected by the exchange: {exc.code}")
            return
        self._journal.set_order_state(oid, OrderState.ACCEPTED, exchange_order_id=placed.order_id)
        self._metrics.order(_leg_label(leg), "accepted")
        log.info("%s %s %s %s accepted (%s)", request.symbol, leg, request.side, request.size, oid)
        self._follow_up.resolve(oid, request.symbol)


class Closer:
    def __init__(self, *, journal: Journal, client: ExecutionExchange, notifier: Notices, metrics: OrderCounters,
                 sender: OrderSender, follow_up: Resolver, pos_mode: PosMode) -> None:
        self._journal = journal
        self._client = client
        self._notifier = notifier
        self._metrics = metrics
        self._sender = sender
        self._follow_up = follow_up
        self._pos_mode = pos_mode
        self._unjournaled_closes: list[tuple[OrderRequest, dict[str, Any]]] = []  # sent while the disk was full

    def protective_close(self, symbol: str, hold_side: PositionSide, reason: str) -> None:
        position = self.position(symbol, hold_side)
        if position is not None:
            # A crossed local stop is the position's stop doing its job; anything else is a protective close.
            self.close(position, None, reason, cause="stop" if reason.startswith("local stop") else "protective")
            self._journal.record_event("PROTECTIVE_CLOSE", {"symbol": symbol, "hold_side": hold_side,
                                                            "reason": reason})
            self._notifier.notify("PROTECTIVE_CLOSE", f"{symbol} {hold_side} closed: {reason}")

    def close(self, position: Position, size: Decimal | None, reason: str, cause: str = "protective") -> None:
        """``cause`` (trading.outcomes.CAUSES) is journaled with the order: the outcome notices name it.

        A close is reduce-only: it can only shrink the position. So when the journal cannot be written (disk
        full) it goes out anyway, and is journaled as soon as the journal can be written again."""
        oid = self._close_oid(position, cause)
        if oid is None:
            return
        request = close_request(position, self._pos_mode, oid, size)
        payload = {"reason": reason, "cause": cause}
        try:
            recorded = self._record_close_intent(request, payload)
        except JournalError as exc:
            log.error("%s close: the journal cannot be written (%s); sending it unjournaled", position.symbol, exc)
            self._send_unjournaled(request, payload)
            return
        if not recorded:
            return
        try:
            self._sender.send(request, "close")
        except JournalError as exc:  # the intent is journaled, its state could not be: the client id dedupes
            log.error("%s close: the journal cannot be written (%s); sending it anyway", position.symbol, exc)
            self._send_unjournaled(request, payload)

    def _close_oid(self, position: Position, cause: str) -> str | None:
        """The client id of this close: deterministic per (cause, position, attempt), so a crash between send and
        reply is resolved by looking the close up, never by a second close. None while the previous attempt's
        outcome is still unknown (looked up again here; the next request or reconciliation pass decides it)."""
        key = rec.position_key(position)
        attempt, last = 1, None
        while (row := self._journal.order(action_client_oid("close", cause, key, attempt))) is not None:
            attempt, last = attempt + 1, row
        if last is not None and last.state in OPEN_STATES:
            self._follow_up.resolve(last.client_oid, last.symbol)
            again = self._journal.order(last.client_oid)
            if again is not None and again.state in OPEN_STATES:
                log.warning("%s %s close (%s): the previous close %s is not decided yet; not sent again",
                            position.symbol, position.hold_side, cause, last.client_oid)
                return None
        return action_client_oid("close", cause, key, attempt)

    def _record_close_intent(self, request: OrderRequest, payload: dict[str, Any]) -> bool:
        return self._journal.record_intent(
            request.client_oid or "", signal_id=None, symbol=request.symbol, leg="close", side=request.side,
            trade_side=request.trade_side, order_type="market", size=request.size, price=None,
            reduce_only=True, payload=payload,
        )

    def _send_unjournaled(self, request: OrderRequest, payload: dict[str, Any]) -> None:
        """Send a reduce-only close the journal could not record; keep it in memory to journal it later."""
        try:
            self._client.place_order(request)
            result = "accepted"
        except DuplicateClientOid:
            result = "accepted"
        except UnknownOutcome:
            result = "unknown"
        except BitgetError as exc:
            result = "rejected"
            log.error("unjournaled close %s refused: %s", request.client_oid, exc.code)
        self._metrics.order("close", result)
        self._unjournaled_closes.append((request, payload))
        log.warning("close %s on %s sent (%s) without a journal entry; journaled when the disk allows",
                    request.client_oid, request.symbol, result)

    def journal_unjournaled(self) -> None:
        """Closes sent while the journal could not be written, journaled now (SUBMITTED: reconciliation then
        asks the exchange what became of each by client id, as for any sent order)."""
        while self._unjournaled_closes:
            request, payload = self._unjournaled_closes[0]
            try:
                self._record_close_intent(request, {**payload, "journaled_late": True})
                self._journal.set_order_state(request.client_oid or "", OrderState.SUBMITTED)
            except JournalError:
                return
            self._unjournaled_closes.pop(0)

    def position(self, symbol: str, hold_side: PositionSide | None = None) -> Position | None:
        return read_open_position(self._client, symbol, hold_side)


def read_open_position(client: ExecutionExchange, symbol: str, hold_side: PositionSide | None = None,
                       ) -> Position | None:
    """The open position on ``symbol`` (on ``hold_side`` when given), None when flat or unreadable (logged)."""
    try:
        positions = client.position(symbol)
    except BitgetError as exc:
        log.warning("position %s unreadable: %s", symbol, exc.code)
        return None
    for position in positions:
        if position.total > 0 and (hold_side is None or position.hold_side == hold_side):
            return position
    return None


def _leg_label(leg: str) -> str:
    for label in ("entry", "tp", "stop", "close"):
        if leg.startswith(label):
            return label
    return "other"
