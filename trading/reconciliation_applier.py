"""Applies reconciliation: gathers what the exchange shows, asks :mod:`trading.reconcile` what to do, and does it.

Order states from lookups by client id, intents that never arrived, external orders and positions (journaled and
alerted), each position's stop and take-profit ladder sized to what filled, and plans of ours without their
position or bigger than it. Plain object, no actor: the OrderManager runs a pass on its timer, asks ``resolve``
after every send, ``protect`` after a fill, and keeps readiness and retries; a request the exchange rate limited
is handed back through ``protect_later``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, TypeVar, cast

from exchange.bitget.errors import BitgetError, OrderNotFound, RateLimited, UnknownOutcome
from exchange.bitget.models import (
    Account,
    Order,
    PlacedOrder,
    PlanOrder,
    Position,
    PositionSide,
    PosMode,
    TpslPlanType,
    TpslRequest,
    as_position_side,
)
from exchange.bitget.semantics import tpsl_hold_side
from trading import reconcile as rec
from trading.bundle import CLIENT_OID_PREFIX, signal_oid_prefix
from trading.facts import FactStore
from trading.guard import moved_stop
from trading.journal import Journal, OrderRow, OrderState
from trading.order_sender import read_open_position
from trading.ports import ExecutionExchange, Notices, OrderCounters
from trading.reconcile import OPEN_STATES
from trading.shared_listings import Listings, SharedListings, listing_verdict
from trading.stop_intents import UNKNOWN_STOP_GRACE_S, StopIntents, StopWanted

log = logging.getLogger("following.orders")

MAX_LOOKUPS_PER_PASS = 8  # order-detail lookups per pass (Bitget allows 10/s); the rest wait for the next pass
_READ_ATTEMPTS = 3  # a pass's reading is started over after a write made during its pauses; the last one never pauses
T = TypeVar("T")


def run_through(steps: Generator[None, None, T]) -> T:
    """Run a stepped procedure to its end without pausing; its result."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return cast(T, done.value)


class ReconcileExchange(ExecutionExchange, Protocol):
    """What a pass reads beyond an exit's needs, and the plan resizes."""

    def positions(self) -> list[Position]: ...

    def pending_orders(self, symbol: str | None = None) -> list[Order]: ...

    def order_detail(self, symbol: str, *, order_id: str | None = None, client_oid: str | None = None) -> Order: ...

    def resolve_unknown(self, symbol: str, client_oid: str) -> Order | None: ...

    def modify_tpsl_order(
        self,
        symbol: str,
        *,
        trigger_price: Decimal,
        order_id: str | None = None,
        client_oid: str | None = None,
        size: Decimal | None = None,
        trigger_type: str = "mark_price",
        execute_price: Decimal | None = None,
    ) -> PlacedOrder: ...


@dataclass(frozen=True)
class ReconcileSettings:
    pos_mode: PosMode
    unknown_outcome_deadline_s: float = 30.0
    local_guard: bool = False  # stops are the bot's own: none is placed or checked on the exchange
    plan_orders_supported: bool = True  # without plan orders no take-profit plan is placed and none listed
    shared_listing_max_age_s: float = 0.0  # a pass may decide on the guard's reading this old (0: never)
    unknown_stop_grace_s: float = UNKNOWN_STOP_GRACE_S  # a stop sent without answer, not listed this long: lost


class ReconciliationApplier:
    def __init__(
        self,
        *,
        journal: Journal,
        client: ReconcileExchange,
        notifier: Notices,
        metrics: OrderCounters,
        facts: FactStore[Account, Position],
        settings: ReconcileSettings,
        close_position: Callable[[Position, Decimal, str], None],
        protect_later: Callable[[str, float], object],
        listings: SharedListings | None = None,
    ) -> None:
        self._journal = journal
        self._client = client
        self._notifier = notifier
        self._metrics = metrics
        self._facts = facts
        self._pos_mode = settings.pos_mode
        self._unknown_deadline_s = settings.unknown_outcome_deadline_s
        self._local_guard = settings.local_guard
        self._plans_supported = settings.plan_orders_supported
        self._close_position = close_position  # reduce-only by market, journaled (the OrderManager's closes)
        self._protect_later = protect_later  # (symbol, delay): protect that symbol again after a rate limit
        self._last_view: rec.ExchangeView | None = None
        # The guard's shared reading (None: always read here) and how old it may be when a pass decides on it.
        self._listings = listings
        self._listing_max_age_s = settings.shared_listing_max_age_s
        self._view_observed_at: float | None = None  # monotonic time of the view the last pass decided on
        self._reported_foreign: set[str] | None = None  # plans of others already reported (FOREIGN_PLAN)
        self._stops = StopIntents(journal=journal, client=client, notifier=notifier, metrics=metrics,
                                  grace_s=settings.unknown_stop_grace_s)

    def _position(self, symbol: str, hold_side: PositionSide | None = None) -> Position | None:
        return read_open_position(self._client, symbol, hold_side)

    def resolve(self, oid: str, symbol: str) -> None:
        """Ask the exchange what became of one order (by client id) and apply the answer."""
        row = self._journal.order(oid)
        if row is None or row.state.is_terminal:
            return
        try:
            order = self._client.resolve_unknown(symbol, oid)
        except BitgetError as exc:
            log.info("lookup of %s failed: %s", oid, exc.code)
            return
        view = rec.ExchangeView(details={oid: order})
        self.apply(rec.order_decisions([row], view, now=time.time(), unknown_deadline_s=self._unknown_deadline_s))

    def gather(self) -> list[rec.Decision]:
        """What one pass should do (``gather_steps`` run through without pauses)."""
        return run_through(self.gather_steps())

    def gather_steps(self) -> Generator[None, None, list[rec.Decision]]:
        """What one pass should do, pausing (a bare ``yield``) after each request so that the OrderManager can
        handle a waiting entry or exit in between. On the guard's shared reading when it may be used
        (trading.shared_listings) and shows nothing to do; otherwise, and whenever that reading shows anything to
        act on, on the exchange read again now: no decision that acts is ever taken on another actor's reading.

        A write of the bot's made during the pauses (an entry sent meanwhile) makes what was read before it stale:
        the reading starts over, and its last attempt runs without pauses. The decisions are returned with no
        pause after the last read, so nothing is written between the check and their application."""
        for attempt in range(_READ_ATTEMPTS):
            pausing = self._listings is not None and attempt < _READ_ATTEMPTS - 1
            before = self._listings.writes.mark() if self._listings is not None else None
            decisions = yield from self._gather_once(pausing)
            if self._listings is None or self._listings.writes.mark() == before:
                return decisions
            self._count("read_over")
        return decisions

    def _gather_once(self, pausing: bool) -> Generator[None, None, list[rec.Decision]]:
        shared = self._usable_listing()
        if shared is not None:
            decisions = yield from self._decide(shared.positions, shared.pending, shared.plans, shared.observed_at,
                                                pausing)
            if not decisions:
                self._count("used")
                return decisions
            self._count("read_again")
            log.debug("the shared listing shows %d decision(s): reading the exchange again", len(decisions))
            if pausing:
                yield
        return (yield from self._gather_own(pausing))

    def _usable_listing(self) -> Listings | None:
        if self._listings is None:
            return None
        latest = self._listings.latest()
        verdict = listing_verdict(latest, now=time.monotonic(), max_age_s=self._listing_max_age_s,
                                  writes=self._listings.writes.mark(), not_older_than=self._view_observed_at)
        return latest if verdict.usable else None

    def _count(self, what: str) -> None:
        if self._listings is not None:
            self._listings.count(what)

    def _gather_own(self, pausing: bool) -> Generator[None, None, list[rec.Decision]]:
        # Positions before plans: a fill between the reads then looks like extra stop, never like a gap.
        observed_at, sent = time.monotonic(), time.time()
        positions = tuple(p for p in self._client.positions() if p.total > 0)
        self._facts.put_positions(positions, sent, "reconcile")
        if pausing:
            yield
        pending = tuple(self._client.pending_orders())
        self._count("own_reading")
        if pausing:
            yield
        return (yield from self._decide(positions, pending, None, observed_at, pausing))

    def _decide(self, positions: tuple[Position, ...], pending: tuple[Order, ...],
                plans: tuple[PlanOrder, ...] | None, observed_at: float,
                pausing: bool) -> Generator[None, None, list[rec.Decision]]:
        """Decisions on one view: positions and open orders as read, the lookups by client id made now, the plans
        as read (None: read now, after the lookups, as a pass always read them)."""
        rows = self._journal.orders(states=OPEN_STATES)
        details: dict[str, Order | None] = {}
        for row in rec.rows_to_look_up(rows, pending)[:MAX_LOOKUPS_PER_PASS]:
            details[row.client_oid] = self._lookup(row)
            if pausing:
                yield
        if plans is None:
            plans = tuple(self._client.plan_orders_pending("profit_loss")) if self._plans_supported else ()
            if pausing and self._plans_supported:
                yield
            plans += tuple(self._client.plan_orders_pending("normal_plan")) if self._plans_supported else ()
        view = rec.ExchangeView(pending=pending, details=details, plans=plans, positions=positions)
        self._last_view = view
        self._view_observed_at = observed_at
        exchange_oids = {o.client_oid for o in pending} | {p.client_oid for p in plans}
        exchange_oids |= {f"ext{o.order_id}" for o in pending} | {f"ext{p.order_id}" for p in plans}
        journaled = frozenset(oid for oid in exchange_oids if oid and self._journal.order(oid) is not None)
        signal_rows = self._open_signal_rows()
        intents = rec.intents_from_journal(signal_rows, self._journal.entry_intents(signal_rows))
        intents = self._with_moved_stops(intents, positions)
        contracts = {p.symbol: self._client.contract(p.symbol) for p in positions if _key(p) in intents}
        return rec.reconcile(
            rows, view, now=time.time(), unknown_deadline_s=self._unknown_deadline_s, journaled_oids=journaled,
            intents=intents, adopted_keys=self._adopted_keys(positions), contracts=contracts, pos_mode=self._pos_mode,
            exchange_stops=not self._local_guard, take_profits=self._plans_supported,
        ) + rec.unfilled_signal_decisions(signal_rows)

    # --- clean plans: none of ours without its position, never more than the position -----------------------
    def clean_plans(self, symbol: str) -> None:
        """Orphaned and oversized plans of ours on one symbol (after a close)."""
        self._clean_plans(symbol=symbol)

    def clean_after_pass(self) -> None:
        """Orphaned and oversized plans of ours on the coins the last pass's snapshot nominated."""
        self._clean_plans(self._last_view)

    def _clean_plans(self, view: rec.ExchangeView | None = None, symbol: str | None = None) -> None:
        """Orphaned and oversized plans of ours (``rec.plan_hygiene_decisions``). A pass's snapshot (positions read
        before plans) only nominates coins; each is read again, plans first, before anything is cancelled."""
        if not self._plans_supported:
            return
        try:
            if view is not None:
                symbols = {d.symbol for d in self._hygiene(view.positions, view.plans)}
            else:
                symbols = {symbol} if symbol else set()
            for name in sorted(symbols):
                plans = tuple(self._client.plan_orders_pending("profit_loss", name))
                positions = tuple(p for p in self._client.position(name) if p.total > 0)
                self.apply(self._hygiene(positions, plans))
        except BitgetError as exc:  # the next pass tries again
            log.warning("plan clean-up failed: %s", exc.code)

    def _hygiene(self, positions: tuple[Position, ...], plans: tuple[PlanOrder, ...]) -> list[rec.Decision]:
        candidates = [p for p in plans if p.plan_type in rec.REDUCE_PLAN_TYPES]
        if not candidates:
            return []
        ours: dict[str, frozenset[Decimal]] = {}
        # Only plans without our client-id prefix need the journal (an entry's attached stop is named by the venue).
        for name in {plan.symbol for plan in candidates if not (plan.client_oid or "").startswith(CLIENT_OID_PREFIX)}:
            ours[name] = frozenset(
                Decimal(str(row.payload["stop_loss"])) for row in self._journal.orders(symbol=name)
                if row.leg.startswith("entry") and row.payload.get("attached_stop") and row.payload.get("stop_loss"))
        if self._reported_foreign is None:
            self._reported_foreign = {str(e.detail.get("order_id"))
                                      for e in self._journal.events("FOREIGN_PLAN", limit=100000)}
        reported = frozenset(self._reported_foreign)
        contracts = {p.symbol: self._client.contract(p.symbol) for p in positions if p.total > 0}
        return rec.plan_hygiene_decisions(positions, candidates, self._pos_mode, contracts=contracts,
                                          our_stop_prices=ours, reported_foreign=reported)

    def _cancel_plan(self, decision: rec.CancelPlan) -> None:
        with contextlib.suppress(OrderNotFound):  # gone already (fired, or went with its position)
            self._client.cancel_plan_order(decision.symbol, order_id=decision.order_id, plan_type=decision.plan_type)
        row = self._journal.order(decision.client_oid) if decision.client_oid else None
        if row is not None and not row.state.is_terminal:
            self._journal.set_order_state(row.client_oid, OrderState.CANCELED)
        self._journal.record_event("PLAN_CANCELLED", {"symbol": decision.symbol, "order_id": decision.order_id,
                                                      "client_oid": decision.client_oid,
                                                      "plan_type": decision.plan_type, "reason": decision.reason})
        log.info("%s %s plan %s cancelled: %s", decision.symbol, decision.plan_type, decision.order_id, decision.reason)

    def pending_plans(self, symbol: str | None = None) -> tuple[PlanOrder, ...]:
        if not self._plans_supported:
            return ()  # the exchange has none to list (asking would fail every pass)
        plans = tuple(self._client.plan_orders_pending("profit_loss", symbol))
        return plans + tuple(self._client.plan_orders_pending("normal_plan", symbol)) if symbol is None else plans

    def _lookup(self, row: OrderRow) -> Order | None:
        """The order by its exchange id when known (an adopted order may have no client id of ours)."""
        if row.exchange_order_id is None:
            return self._client.resolve_unknown(row.symbol, row.client_oid)
        try:
            return self._client.order_detail(row.symbol, order_id=row.exchange_order_id)
        except OrderNotFound:
            return None

    def _open_signal_rows(self) -> dict[int, list[OrderRow]]:
        return {s.id: self._journal.orders(signal_id=s.id) for s in self._journal.open_signals()}

    def _with_moved_stops(self, intents: dict[tuple[str, str], rec.PositionIntent],
                          positions: Iterable[Position]) -> dict[tuple[str, str], rec.PositionIntent]:
        """The intents with, for each position whose stop was moved (break-even, a set-stop), that stop: what
        reconciliation places or checks is the stop the position should have now, not the signal's first one."""
        current = dict(intents)
        for position in positions:
            intent = current.get(_key(position))
            moved = moved_stop(self._journal, position) if intent is not None else None
            if intent is not None and moved is not None:
                current[_key(position)] = dataclasses.replace(intent, stop_price=moved)
        return current

    def intents(self) -> dict[tuple[str, str], rec.PositionIntent]:
        rows = self._open_signal_rows()
        return rec.intents_from_journal(rows, self._journal.entry_intents(rows))

    def _adopted_keys(self, positions: tuple[Position, ...]) -> frozenset[str]:
        """Positions already reported as external, by this reconciliation or by the guard (whose events
        carry no key: one recorded after the position opened counts), so each is alerted once."""
        events = self._journal.events("EXTERNAL_POSITION", limit=100000)
        keys = {str(e.detail["key"]) for e in events if e.detail.get("key")}
        for position in positions:
            opened_s = (position.c_time or 0) / 1000
            if any(not e.detail.get("key") and (e.detail.get("symbol"), e.detail.get("hold_side")) == _key(position)
                   and e.ts >= opened_s for e in events):
                keys.add(rec.position_key(position))
        return frozenset(keys)

    def protect(self, symbol: str, hold_side: PositionSide | None = None) -> None:
        """Right after a fill: the filled size gets its stop and the targets are re-split over it."""
        intents = self.intents()
        try:
            positions = [p for p in self._client.position(symbol) if p.total > 0]
            plans = list(self.pending_plans(symbol)) if positions else []
        except BitgetError as exc:
            log.warning("%s: position unreadable after a fill (%s); the next pass retries", symbol, exc.code)
            return
        intents = self._with_moved_stops(intents, positions)
        decisions: list[rec.Decision] = []
        for position in positions:
            intent = intents.get(_key(position))
            if intent is None or (hold_side is not None and position.hold_side != hold_side):
                continue
            decisions += rec.protection_decisions(position, intent, plans, self._client.contract(symbol),
                                                  self._pos_mode, exchange_stops=not self._local_guard,
                                                  take_profits=self._plans_supported)
        self.apply(decisions)

    def watch_unprotected_entries(self) -> None:
        """Entries sent without an attached stop are watched closely: their fills need a stop at once."""
        watched = [row for row in self._journal.orders(states=OPEN_STATES)
                   if row.leg.startswith("entry") and not row.payload.get("attached_stop", True)]
        for row in watched:
            self.resolve(row.client_oid, row.symbol)

    # --- applying decisions ----------------------------------------------------------------------------
    def apply(self, decisions: list[rec.Decision]) -> None:
        filled: set[tuple[str, PositionSide | None]] = set()
        for decision in decisions:
            try:
                if isinstance(decision, rec.SetOrderState):
                    self._apply_state(decision)
                    if decision.leg.startswith("entry") and decision.newly_filled > 0:
                        row = self._journal.order(decision.client_oid)
                        side = as_position_side(row.payload.get("position_side")) if row is not None else None
                        filled.add((decision.symbol, side))
                elif isinstance(decision, rec.MarkNeverSent):
                    self._journal.set_order_state(decision.client_oid, OrderState.REJECTED, error=decision.reason)
                    self._journal.record_event("RECONCILE_NEVER_SENT", {"client_oid": decision.client_oid,
                                                                       "symbol": decision.symbol, "leg": decision.leg})
                    log.warning("%s %s (%s) never reached the exchange", decision.symbol, decision.leg,
                                decision.client_oid)
                elif isinstance(decision, rec.AdoptExternalOrder):
                    self._adopt_order(decision)
                elif isinstance(decision, rec.AdoptExternalPosition):
                    self._journal.record_event("EXTERNAL_POSITION", {
                        "symbol": decision.symbol, "hold_side": decision.hold_side, "size": str(decision.size),
                        "key": decision.key, "by": "reconciliation"})
                    self._notifier.notify("EXTERNAL_POSITION", f"{decision.symbol} {decision.hold_side} "
                                          f"{decision.size} was not opened by this bot (adopted, not managed)")
                elif isinstance(decision, (rec.PlaceStop, rec.ResizeStop)):
                    self._apply_stop(decision)
                elif isinstance(decision, rec.CloseUncovered):
                    self._close_uncovered(decision)
                elif isinstance(decision, (rec.PlaceTakeProfit, rec.ResizeTakeProfit)):
                    self._apply_take_profit(decision)
                elif isinstance(decision, rec.CancelPlan):
                    self._cancel_plan(decision)
                elif isinstance(decision, rec.ReportForeignPlan):
                    if self._reported_foreign is not None:
                        self._reported_foreign.add(decision.order_id)
                    self._journal.record_event("FOREIGN_PLAN", {
                        "symbol": decision.symbol, "order_id": decision.order_id, "plan_type": decision.plan_type,
                        "size": str(decision.size) if decision.size is not None else None,
                        "trigger_price": str(decision.trigger_price)})
                    self._notifier.notify("FOREIGN_PLAN", f"{decision.symbol} {decision.plan_type} at "
                                          f"{decision.trigger_price} (plan {decision.order_id}) was not placed by this "
                                          "bot and has no position; left as it is")
                elif isinstance(decision, rec.CloseSignal):
                    self._journal.set_signal_closed(decision.signal_id)
                    self._journal.record_event("RECONCILE_SIGNAL_CLOSED", {"signal_id": decision.signal_id,
                                                                           "symbol": decision.symbol})
            except BitgetError as exc:
                log.warning("reconcile decision %s failed: %s", type(decision).__name__, exc.code)
                symbol = getattr(decision, "symbol", None)
                if isinstance(exc, RateLimited) and isinstance(decision, (rec.ResizeStop, rec.ResizeTakeProfit)):
                    self._protect_later(str(symbol), exc.retry_after or 0.2)
        for symbol, side in filled:
            # A fill may have grown the position past its stop: protect it now, not at the next pass.
            self.protect(symbol, side)

    def _apply_state(self, decision: rec.SetOrderState) -> None:
        self._journal.set_order_state(decision.client_oid, decision.state, exchange_order_id=decision.exchange_order_id,
                                      filled_size=decision.filled_size, avg_price=decision.avg_price)
        if decision.state is not decision.previous_state:
            self._journal.record_event("RECONCILE_STATE", {
                "client_oid": decision.client_oid, "symbol": decision.symbol, "leg": decision.leg,
                "from": decision.previous_state.value, "to": decision.state.value,
                "filled": str(decision.filled_size) if decision.filled_size is not None else None})

    def _adopt_order(self, decision: rec.AdoptExternalOrder) -> None:
        """Journal an order nobody here placed (so it is reported once and its state followed), and alert."""
        self._journal.record_intent(
            decision.journal_oid, signal_id=None, symbol=decision.symbol, leg="external", side=decision.side or "?",
            trade_side=decision.trade_side, order_type=decision.kind, size=decision.size, price=decision.price,
            reduce_only=decision.reduce_only, payload={"order_id": decision.order_id, "state": decision.state},
        )
        self._journal.set_order_state(decision.journal_oid, OrderState.ACCEPTED, exchange_order_id=decision.order_id)
        self._journal.record_event("EXTERNAL_ORDER", {"symbol": decision.symbol, "order_id": decision.order_id,
                                                      "client_oid": decision.client_oid, "kind": decision.kind,
                                                      "size": str(decision.size)})
        self._notifier.notify("EXTERNAL_ORDER", f"{decision.symbol} {decision.kind} {decision.side} {decision.size} "
                              f"(order {decision.order_id}) was not placed by this bot (adopted, not managed)")

    def _apply_stop(self, decision: rec.PlaceStop | rec.ResizeStop) -> None:
        if isinstance(decision, rec.ResizeStop):
            self._client.modify_tpsl_order(decision.symbol, order_id=decision.order_id,
                                           trigger_price=decision.trigger_price, size=decision.size)
            self._journal.record_event("RECONCILE_STOP_RESIZED", {"symbol": decision.symbol, "size": str(decision.size),
                                                                  "previous": str(decision.previous_size)})
            log.info("%s stop resized %s -> %s", decision.symbol, decision.previous_size, decision.size)
            return
        signal = self._journal.signal(decision.signal_id)
        if signal is None:
            return
        prefix = signal_oid_prefix(signal.channel, signal.message_id, signal_index=signal.index)

        def leg_for(attempt: int) -> str:  # the signal's stops: legs sl, sl2, ... under <prefix><leg>
            return rec.STOP_LEG if attempt == 1 else f"{rec.STOP_LEG}{attempt}"

        def oid_for(attempt: int) -> str:
            return prefix + leg_for(attempt)

        wanted = StopWanted(symbol=decision.symbol, hold_side=decision.hold_side,
                            tpsl_hold=tpsl_hold_side(decision.hold_side, self._pos_mode),
                            trigger_price=decision.trigger_price, size=decision.size, position_size=decision.size)
        outcome = self._stops.place(wanted, oid_for, purpose="protect", stop_for=f"signal {signal.id}",
                                    reason="a fill no stop covers", listed=self._stops.listed(decision.symbol),
                                    signal_id=signal.id, tell_refusal=False, leg_for=leg_for)
        if outcome == "refused":
            if self._stops.retry_after is not None:  # rate limited: again in a moment, not at the next pass
                self._protect_later(decision.symbol, self._stops.retry_after)
            else:
                attempts = self._stops.attempts(oid_for)
                self._notifier.notify("STOP_REFUSED", f"{decision.symbol} stop {decision.trigger_price} for "
                                      f"{decision.size} refused: {attempts[-1].error if attempts else ''}")
            return
        if outcome == "pending":
            return
        self._journal.record_event("RECONCILE_STOP_PLACED", {"symbol": decision.symbol, "size": str(decision.size),
                                                             "stop": str(decision.trigger_price)})
        log.info("%s stop %s placed for %s", decision.symbol, decision.trigger_price, decision.size)

    def _place_plan_intent(
        self,
        oid: str,
        signal_id: int,
        leg: str,
        plan_type: TpslPlanType,
        decision: rec.PlaceTakeProfit,
        *,
        on_refused: Callable[[BitgetError], None],
    ) -> PlacedOrder | None:
        """Journal the intent, then place one take-profit plan the reconciliation asked for (its stops go through
        ``trading.stop_intents``).

        None when it was not placed: already journaled, outcome unknown (stays SUBMITTED; the next pass finds it
        among the plans), or refused (journaled REJECTED and counted; a rate-limited one is tried again in a
        moment under a new leg, not at the next pass)."""
        metric_leg = "stop" if plan_type == "loss_plan" else "tp"
        hold = tpsl_hold_side(decision.hold_side, self._pos_mode)
        if not self._journal.record_intent(
            oid, signal_id=signal_id, symbol=decision.symbol, leg=leg, side=hold, trade_side=None,
            order_type=plan_type, size=decision.size, price=decision.trigger_price, reduce_only=True, payload={},
        ):
            return None
        self._journal.set_order_state(oid, OrderState.SUBMITTED)
        try:
            placed = self._client.place_tpsl_order(TpslRequest(
                symbol=decision.symbol, plan_type=plan_type, trigger_price=decision.trigger_price, hold_side=hold,
                size=decision.size, client_oid=oid,
            ))
        except UnknownOutcome:
            return None
        except BitgetError as exc:
            self._journal.set_order_state(oid, OrderState.REJECTED, error=str(exc.code))
            self._metrics.order(metric_leg, "rejected")
            if isinstance(exc, RateLimited):
                self._protect_later(decision.symbol, exc.retry_after or 0.2)
            on_refused(exc)
            return None
        self._journal.set_order_state(oid, OrderState.ACCEPTED, exchange_order_id=placed.order_id)
        self._metrics.order(metric_leg, "accepted")
        return placed

    def _close_uncovered(self, decision: rec.CloseUncovered) -> None:
        position = self._position(decision.symbol, decision.hold_side)
        if position is None:
            return
        reason = f"stop {decision.stop_price} already passed (mark {decision.mark}) with {decision.size} uncovered"
        self._close_position(position, min(decision.size, position.total), reason)
        self._journal.record_event("RECONCILE_UNCOVERED_CLOSED", {"symbol": decision.symbol, "size": str(decision.size),
                                                                  "stop": str(decision.stop_price),
                                                                  "mark": str(decision.mark)})
        self._notifier.notify("PROTECTIVE_CLOSE", f"{decision.symbol} {decision.hold_side}: {reason}; closed")

    def _apply_take_profit(self, decision: rec.PlaceTakeProfit | rec.ResizeTakeProfit) -> None:
        if isinstance(decision, rec.ResizeTakeProfit):
            self._client.modify_tpsl_order(decision.symbol, order_id=decision.order_id,
                                           trigger_price=decision.trigger_price, size=decision.size)
            self._journal.record_event("RECONCILE_TP_RESIZED", {"client_oid": decision.client_oid,
                                                                "size": str(decision.size),
                                                                "previous": str(decision.previous_size)})
            return
        oid = decision.client_oid

        def refused(exc: BitgetError) -> None:
            log.warning("take-profit %d on %s refused: %s", decision.step, decision.symbol, exc.code)

        self._place_plan_intent(oid, decision.signal_id, oid.rsplit("_", 1)[-1], "profit_plan", decision,
                                on_refused=refused)


def _key(position: Position) -> tuple[str, str]:
    return position.symbol, position.hold_side
