"""OrderManager: the only actor that sends orders.

Every order is journaled as an intent (with its deterministic client id) before the request is sent, so a
crash can never produce a second entry: after a restart the intent is found and the exchange is asked by
client id what became of it. Entries are checked against the trading gate right before the request.
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any

from actors.base import SupervisedActor
from actors.messages import ApplyUpdate, PlaceBundle, ProtectiveClose, RepairStop, Tick
from exchange.bitget.errors import BitgetError, DuplicateClientOid, UnknownOutcome
from exchange.bitget.models import OrderRequest, PlanOrder, Position, TpslRequest
from exchange.bitget.semantics import tpsl_hold_side
from parsing.signals import UpdateType
from trading.bundle import LegPlan, break_even_stop, client_oid, resolve_tp_sizes
from trading.execution import (
    action_client_oid,
    close_request,
    default_stop,
    journal_state,
    partial_close_size,
    stop_is_valid,
)
from trading.guard import stop_plans_for
from trading.journal import Journal, OrderRow, OrderState
from trading.modes import Mode

log = logging.getLogger("following.orders")

_OPEN_STATES = [OrderState.INTENT, OrderState.SUBMITTED, OrderState.ACCEPTED, OrderState.PARTIAL]


class OrderManager(SupervisedActor):
    def __init__(
        self,
        *,
        journal: Journal,
        client: Any,
        notifier: Any,
        metrics: Any,
        status: Any,
        gate: Any,
        pos_mode: str,
        margin_mode: str,
        check_interval_s: float = 1.0,
        unknown_outcome_deadline_s: float = 30.0,
        break_even_buffer_pct: float = 0.001,
        move_sl_to_be_on_tp1: bool = True,
        default_stop_loss_pct: float = 0.006,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        self._journal = journal
        self._client = client
        self._notifier = notifier
        self._metrics = metrics
        self._status = status
        self._gate = gate
        self._pos_mode = pos_mode
        self._margin_mode = margin_mode
        self._check_interval_s = check_interval_s
        self._unknown_deadline_s = unknown_outcome_deadline_s
        self._be_buffer = Decimal(str(break_even_buffer_pct))
        self._move_sl_on_tp1 = move_sl_to_be_on_tp1
        self._default_stop_pct = Decimal(str(default_stop_loss_pct))
        self._panic_done = False

    # --- lifecycle -----------------------------------------------------------------------------------
    def on_started(self) -> None:
        self._status.set("orders_reconciled", False, "start-up reconciliation pending")
        self._reconcile_journal()
        self._status.set("orders_reconciled", True)
        if self.mode is Mode.PANIC:
            self._panic_close("restarted in panic")
        self.schedule_every(self._check_interval_s, Tick("orders"))

    def on_mode_changed(self, message: Any) -> None:
        if message.mode is Mode.PANIC:
            self._panic_close(message.reason)

    def handle(self, message: Any) -> Any:
        if isinstance(message, PlaceBundle):
            self._place_bundle(message)
        elif isinstance(message, ApplyUpdate):
            self._apply_update(message)
        elif isinstance(message, RepairStop):
            self._repair_stop(message)
        elif isinstance(message, ProtectiveClose):
            self._protective_close(message.symbol, message.hold_side, message.reason)
        elif isinstance(message, Tick) and message.what == "orders":
            self._check_orders()
        return None

    # --- entries -------------------------------------------------------------------------------------
    def _entries_allowed(self) -> bool:
        return self.mode is Mode.NORMAL and self._gate.entries_allowed()

    def _place_bundle(self, message: PlaceBundle) -> None:
        bundle, sized = message.bundle, message.sized
        if not self._entries_allowed():
            self._journal.set_signal_decision(message.signal_id, "refused", "MODE_NOT_NORMAL: checked before send")
            self._metrics.refusals_total.labels(reason="MODE_NOT_NORMAL").inc()
            return
        symbol = sized.symbol
        try:
            self._client.set_margin_mode(symbol, sized.margin_mode)
        except BitgetError as exc:  # e.g. already set, or positions exist: the leverage call still decides
            log.info("set margin mode %s on %s: %s", sized.margin_mode, symbol, exc.code)
        try:
            hold = sized.side.value if self._pos_mode == "hedge_mode" and sized.margin_mode == "isolated" else None
            self._client.set_leverage(symbol, sized.leverage, hold_side=hold)
        except BitgetError as exc:
            self._journal.set_signal_decision(message.signal_id, "refused", f"leverage not set: {exc.code}")
            self._notifier.notify("SIGNAL_REFUSED", f"{symbol}: leverage {sized.leverage} not accepted ({exc.code})")
            return
        for leg in bundle.entries:
            if not self._entries_allowed():  # a kill switch may have fired between two legs
                break
            self._submit(leg, message.signal_id, payload={"take_profits": [str(p) for p in sized.take_profits],
                                                          "stop_loss": str(sized.stop_loss),
                                                          "position_side": sized.side.value})
        legs = self._journal.orders(signal_id=message.signal_id)
        if any(row.state is not OrderState.REJECTED for row in legs):
            self._journal.set_signal_decision(message.signal_id, "traded", f"size {sized.size} lev {sized.leverage}")
        else:
            self._journal.set_signal_decision(message.signal_id, "refused", "every entry leg was rejected")

    def _submit(self, leg: LegPlan, signal_id: int | None, payload: dict[str, Any]) -> None:
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
            margin_mode=self._margin_mode, preset_stop_loss_price=leg.preset_stop_loss_price,
        )
        self._send(request, leg.leg)

    def _send(self, request: OrderRequest, leg: str) -> None:
        oid = request.client_oid or ""
        is_entry = leg.startswith("entry")
        if is_entry and not self._entries_allowed():
            self._journal.set_order_state(oid, OrderState.REJECTED, error="mode is not normal")
            return
        self._journal.set_order_state(oid, OrderState.SUBMITTED)
        try:
            placed = self._client.place_order(request)
        except DuplicateClientOid:
            self._resolve(oid, request.symbol)
            return
        except UnknownOutcome as exc:
            # The order may exist: it stays SUBMITTED until a lookup by client id decides.
            log.warning("order %s outcome unknown (%s); will look it up", oid, exc.code)
            self._metrics.orders_total.labels(leg=_leg_label(leg), result="unknown").inc()
            return
        except BitgetError as exc:
            self._journal.set_order_state(oid, OrderState.REJECTED, error=f"{exc.code}")
            self._metrics.orders_total.labels(leg=_leg_label(leg), result="rejected").inc()
            self._notifier.notify("ORDER_REJECTED", f"{request.symbol} {leg} rejected by the exchange: {exc.code}")
            return
        self._journal.set_order_state(oid, OrderState.ACCEPTED, exchange_order_id=placed.order_id)
        self._metrics.orders_total.labels(leg=_leg_label(leg), result="accepted").inc()
        log.info("%s %s %s %s accepted (%s)", request.symbol, leg, request.side, request.size, oid)
        self._resolve(oid, request.symbol)

    # --- following orders until they are done ------------------------------------------------------
    def _open_orders(self) -> list[OrderRow]:
        """Open journal orders that live in the exchange's order book. Take-profit and stop plans are
        plan orders: the order endpoints never see them, and the guard watches them on the position."""
        return [row for row in self._journal.orders(states=_OPEN_STATES) if row.order_type in ("market", "limit")]

    def _check_orders(self) -> None:
        for row in self._open_orders():
            self._resolve(row.client_oid, row.symbol)

    def _resolve(self, oid: str, symbol: str) -> None:
        row = self._journal.order(oid)
        if row is None or row.state.is_terminal:
            return
        try:
            order = self._client.resolve_unknown(symbol, oid)
        except BitgetError as exc:
            log.info("lookup of %s failed: %s", oid, exc.code)
            return
        if order is None:
            if row.state in (OrderState.SUBMITTED, OrderState.INTENT) and (
                time.time() - row.updated_at > self._unknown_deadline_s
            ):
                # Not at the exchange long after sending: it was never accepted. Never re-sent.
                self._journal.set_order_state(oid, OrderState.REJECTED, error="not found at the exchange")
            return
        state = journal_state(order)
        previous_fill = row.filled_size or Decimal(0)
        self._journal.set_order_state(
            oid, state, exchange_order_id=order.order_id, filled_size=order.filled_size, avg_price=order.avg_price
        )
        if row.leg.startswith("entry") and order.filled_size > previous_fill:
            self._on_entry_fill(row, order.filled_size, state)

    def _on_entry_fill(self, row: OrderRow, filled: Decimal, state: OrderState) -> None:
        """An entry filled (more): place the take-profit ladder once the entry is complete."""
        signal = self._journal.signal(row.signal_id) if row.signal_id is not None else None
        if state is not OrderState.FILLED or signal is None:
            return
        payload = row.payload
        targets = [Decimal(p) for p in payload.get("take_profits", [])]
        position_side = payload.get("position_side", "long")
        if not targets:
            return
        contract = self._client.contract(row.symbol)
        sizes = resolve_tp_sizes(filled, len(targets), contract)
        hold = tpsl_hold_side(position_side, self._pos_mode)
        for number, (price, size) in enumerate(zip(targets, sizes, strict=False), start=1):
            oid = client_oid(signal.channel, signal.message_id, f"tp{number}", signal_index=signal.index)
            if not self._journal.record_intent(
                oid, signal_id=signal.id, symbol=row.symbol, leg=f"tp{number}", side=hold, trade_side=None,
                order_type="profit_plan", size=size, price=price, reduce_only=True, payload={},
            ):
                continue
            try:
                placed = self._client.place_tpsl_order(TpslRequest(
                    symbol=row.symbol, plan_type="profit_plan", trigger_price=price, hold_side=hold, size=size,
                    client_oid=oid,
                ))
                self._journal.set_order_state(oid, OrderState.ACCEPTED, exchange_order_id=placed.order_id)
                self._metrics.orders_total.labels(leg="tp", result="accepted").inc()
            except BitgetError as exc:
                self._journal.set_order_state(oid, OrderState.REJECTED, error=f"{exc.code}")
                self._metrics.orders_total.labels(leg="tp", result="rejected").inc()
                log.warning("take-profit %d on %s refused: %s", number, row.symbol, exc.code)

    # --- start-up reconciliation ---------------------------------------------------------------------
    def _reconcile_journal(self) -> None:
        """Every order the journal does not know the end of is looked up by client id."""
        for row in self._open_orders():
            if row.state is OrderState.INTENT:
                # Journaled but maybe never sent: the exchange decides; unknown stays until the deadline.
                self._journal.set_order_state(row.client_oid, OrderState.SUBMITTED)
            self._resolve(row.client_oid, row.symbol)
        self._journal.record_event("RECONCILED", {"open_orders": len(self._open_orders())})

    # --- updates ---------------------------------------------------------------------------------------
    def _apply_update(self, message: ApplyUpdate) -> None:
        parsed = message.parsed
        kind = parsed.update_type
        position = self._position(message.symbol)
        if kind is UpdateType.CANCEL_ENTRIES:
            self._cancel_entries(message.signal_id)
        elif kind is UpdateType.CLOSE_ALL:
            self._cancel_entries(message.signal_id)
            if position is not None:
                self._close(position, None, f"signal {message.signal_id}: close all")
            self._journal.set_signal_closed(message.signal_id)
        elif kind is UpdateType.CLOSE_PARTIAL and position is not None and parsed.update_percent is not None:
            size = partial_close_size(position, parsed.update_percent, self._client.contract(position.symbol))
            if size > 0:
                self._close(position, size, f"signal {message.signal_id}: close {parsed.update_percent}%")
        elif kind is UpdateType.SET_STOP and position is not None and parsed.update_price is not None:
            self._replace_stop(position, parsed.update_price, f"signal {message.signal_id}: set stop")
        elif position is not None and (
            kind is UpdateType.MOVE_SL_TO_BE or (kind is UpdateType.TP_HIT and parsed.tp_index == 1
                                                 and self._move_sl_on_tp1)
        ):
            contract = self._client.contract(position.symbol)
            stop = break_even_stop(position.average_open_price, position.hold_side, self._be_buffer, contract)
            self._replace_stop(position, stop, f"signal {message.signal_id}: stop to break-even")
        elif position is None:
            log.info("update %s for signal %s: no open position on %s", kind, message.signal_id, message.symbol)
        else:
            log.info("update %s for signal %s needs no order", kind, message.signal_id)

    def _cancel_entries(self, signal_id: int | None = None) -> None:
        """Cancel the working entries (of one signal, or all), then record what became of them."""
        rows = self._journal.orders(states=_OPEN_STATES) if signal_id is None else self._journal.orders(
            states=_OPEN_STATES, signal_id=signal_id)
        for row in rows:
            if not row.leg.startswith("entry"):
                continue
            try:
                self._client.cancel_order(row.symbol, client_oid=row.client_oid)
            except BitgetError as exc:
                log.info("cancel %s: %s", row.client_oid, exc.code)
            self._resolve(row.client_oid, row.symbol)

    def _replace_stop(self, position: Position, stop: Decimal, reason: str) -> None:
        """New stop first, then the old ones are cancelled: never a moment without a stop."""
        mark = position.mark_price or position.average_open_price
        if not stop_is_valid(position.hold_side, stop, mark):
            self._notifier.notify("STOP_NOT_MOVED", f"{position.symbol}: stop {stop} is past the price {mark}")
            return
        current = self._stop_plans(position)
        if any(p.trigger_price == stop for p in current):
            return  # already there (two readings of one post may both ask for it)
        old = current
        if not self._place_stop(position, stop, reason):
            return
        for plan in old:
            try:
                self._client.cancel_plan_order(position.symbol, order_id=plan.order_id, plan_type=plan.plan_type)
            except BitgetError as exc:
                log.warning("old stop %s on %s not cancelled: %s", plan.order_id, position.symbol, exc.code)
        self._journal.record_event("STOP_MOVED", {"symbol": position.symbol, "stop": str(stop), "reason": reason})
        log.info("%s %s stop moved to %s (%s)", position.symbol, position.hold_side, stop, reason)

    def _place_stop(self, position: Position, stop: Decimal, reason: str) -> bool:
        hold = tpsl_hold_side(position.hold_side, self._pos_mode)
        oid = action_client_oid("stop", position.symbol, position.hold_side, stop, time.time())
        try:
            self._client.place_tpsl_order(TpslRequest(
                symbol=position.symbol, plan_type="pos_loss", trigger_price=stop, hold_side=hold, client_oid=oid,
            ))
        except BitgetError as exc:
            log.error("stop %s on %s refused: %s (%s)", stop, position.symbol, exc.code, reason)
            self._metrics.orders_total.labels(leg="stop", result="rejected").inc()
            return False
        self._metrics.orders_total.labels(leg="stop", result="accepted").inc()
        return True

    def _stop_plans(self, position: Position) -> list[PlanOrder]:
        try:
            plans = self._client.plan_orders_pending("profit_loss", position.symbol)
        except BitgetError:
            return []
        return stop_plans_for(position, plans, self._pos_mode)

    # --- protection --------------------------------------------------------------------------------
    def _repair_stop(self, message: RepairStop) -> None:
        position = self._position(message.symbol, message.hold_side)
        if position is None or self._stop_plans(position):
            return
        stop = self._intended_stop(position)
        if stop is None or not stop_is_valid(position.hold_side, stop, position.mark_price or stop):
            stop = default_stop(position, self._default_stop_pct, self._client.contract(position.symbol))
        if self._place_stop(position, stop, message.reason):
            self._journal.record_event("STOP_REPAIRED", {"symbol": position.symbol, "stop": str(stop)})

    def _intended_stop(self, position: Position) -> Decimal | None:
        for row in reversed(self._journal.open_signals(position.symbol)):
            value = row.parsed.get("stop_loss")
            if value is not None:
                return self._client.contract(position.symbol).round_price(Decimal(str(value)))
        return None

    def _protective_close(self, symbol: str, hold_side: str, reason: str) -> None:
        position = self._position(symbol, hold_side)
        if position is not None:
            self._close(position, None, reason)
            self._journal.record_event("PROTECTIVE_CLOSE", {"symbol": symbol, "hold_side": hold_side,
                                                            "reason": reason})
            self._notifier.notify("PROTECTIVE_CLOSE", f"{symbol} {hold_side} closed: {reason}")

    def _panic_close(self, reason: str) -> None:
        """Once per panic: cancel working entries, close every position reduce-only; stops stay."""
        if self._panic_done:
            return
        self._panic_done = True
        self._cancel_entries()
        try:
            positions = [p for p in self._client.positions() if p.total > 0]
        except BitgetError as exc:
            log.error("panic: positions unreadable (%s); the guard keeps trying", exc.code)
            self._panic_done = False
            return
        for position in positions:
            self._close(position, None, f"panic: {reason}")
        self._journal.record_event("PANIC_CLOSE", {"positions": len(positions), "reason": reason})
        self._notifier.notify("PANIC_CLOSE", f"closed {len(positions)} position(s): {reason}")

    def _close(self, position: Position, size: Decimal | None, reason: str) -> None:
        oid = action_client_oid("close", position.symbol, position.hold_side, size, time.time())
        request = close_request(position, self._pos_mode, oid, size)
        recorded = self._journal.record_intent(
            oid, signal_id=None, symbol=position.symbol, leg="close", side=request.side,
            trade_side=request.trade_side, order_type="market", size=request.size, price=None,
            reduce_only=True, payload={"reason": reason},
        )
        if recorded:
            self._send(request, "close")

    def _position(self, symbol: str, hold_side: str | None = None) -> Position | None:
        try:
            positions = self._client.position(symbol)
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
