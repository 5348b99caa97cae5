"""Reconciliation: the journal's view against the exchange's, as a list of typed decisions.

Pure: the caller reads the journal and the exchange, passes plain values in, and applies what comes out.
Nothing here sends, sleeps or reads a clock. Four questions are answered:

1. What became of our orders? Every order the journal does not know the end of is matched by client id
   against the exchange's open orders, its order details and its pending plans. Found: the exchange's state
   (with the filled size). Not found long after it could have reached the exchange: it never did
   (REJECTED). It is never sent again: its client id is journaled.
2. What is on the exchange that we did not place? An open order, trigger plan or position no journal row
   accounts for is adopted as external: journaled and alerted, never managed silently.
3. Is each of our positions protected and its take-profit ladder sized to it? Stops must cover the filled
   size (a partial fill grows the position past the stop the first fill got); take-profits are re-split
   over what the entries filled, summing exactly to it.
4. Are our plans clean? No stop or take-profit of ours stays on a side with no position (cancelled), the plans
   of ours on a position never sum to more than it (shrunk), and plans of others are reported, never touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from exchange.bitget.contracts import Contract
from exchange.bitget.models import Order, PlanOrder, Position, PositionSide, PosMode
from exchange.bitget.semantics import tpsl_hold_side
from trading.bundle import CLIENT_OID_PREFIX, resolve_tp_sizes
from trading.execution import journal_state, stop_is_valid
from trading.guard import stop_coverage, stop_plans_for
from trading.intents import EntryIntent
from trading.journal import OrderRow, OrderState

OPEN_STATES = (OrderState.INTENT, OrderState.SUBMITTED, OrderState.ACCEPTED, OrderState.PARTIAL)
BOOK_ORDER_TYPES = ("market", "limit")
STOP_LEG = "sl"
TRIGGER_PLAN_TYPES = ("normal_plan", "track_plan")
# A take-profit step the exchange refused is placed again under a new client id, at most this many times.
TP_RETRIES = 3
# After this many refused stops of one signal the order side stops trying; the PositionGuard's repair and,
# past its timeout, its protective close take over (an endless retry would only repeat the refusal).
STOP_ATTEMPTS = 5
NEVER_SENT = "not found at the exchange after the outcome deadline"


# --- decisions ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SetOrderState:
    """The exchange knows the order: journal its state and filled size."""

    client_oid: str
    symbol: str
    leg: str
    state: OrderState
    previous_state: OrderState
    filled_size: Decimal | None
    newly_filled: Decimal  # filled since the journal last looked (0 when unchanged)
    avg_price: Decimal | None = None
    exchange_order_id: str | None = None


@dataclass(frozen=True)
class MarkNeverSent:
    """Sent (or maybe sent) long ago and unknown to the exchange: it never arrived. Never re-sent."""

    client_oid: str
    symbol: str
    leg: str
    reason: str


@dataclass(frozen=True)
class AdoptExternalOrder:
    """An open order or trigger plan on the exchange that no journal row accounts for."""

    symbol: str
    order_id: str
    client_oid: str | None
    kind: str  # "market" | "limit" | "normal_plan" | "track_plan"
    side: str
    trade_side: str | None
    size: Decimal
    price: Decimal | None
    reduce_only: bool
    state: str

    @property
    def journal_oid(self) -> str:
        return self.client_oid or f"ext{self.order_id}"


@dataclass(frozen=True)
class AdoptExternalPosition:
    symbol: str
    hold_side: PositionSide
    size: Decimal
    key: str


@dataclass(frozen=True)
class PlaceStop:
    """A stop plan (``loss_plan``) for the part of a position no stop covers."""

    symbol: str
    hold_side: PositionSide
    size: Decimal
    trigger_price: Decimal
    signal_id: int


@dataclass(frozen=True)
class CloseUncovered:
    """The uncovered part of a position whose stop price the market has already passed: a stop there would
    be refused or fire at once, so that part is closed, as the stop would have done."""

    symbol: str
    hold_side: PositionSide
    size: Decimal
    stop_price: Decimal
    mark: Decimal


@dataclass(frozen=True)
class ResizeStop:
    """Our own sized stop grows to cover a position that grew."""

    symbol: str
    order_id: str
    client_oid: str | None
    trigger_price: Decimal
    size: Decimal
    previous_size: Decimal


@dataclass(frozen=True)
class PlaceTakeProfit:
    symbol: str
    hold_side: PositionSide
    step: int  # 1-based target number
    client_oid: str
    trigger_price: Decimal
    size: Decimal
    signal_id: int


@dataclass(frozen=True)
class ResizeTakeProfit:
    symbol: str
    order_id: str
    client_oid: str
    trigger_price: Decimal
    size: Decimal
    previous_size: Decimal


@dataclass(frozen=True)
class CloseSignal:
    """Every entry of a signal is done, something filled, and its position is gone."""

    signal_id: int
    symbol: str


@dataclass(frozen=True)
class CancelPlan:
    """A stop or take-profit plan of ours to cancel: its position is gone (``orphan``), or the plans of ours on
    a position sum to more than it and this one is too small to keep after shrinking."""

    symbol: str
    order_id: str
    client_oid: str | None
    plan_type: str
    orphan: bool
    reason: str


@dataclass(frozen=True)
class ReportForeignPlan:
    """A stop or take-profit plan someone else placed, on a side with no position: reported once, never touched."""

    symbol: str
    order_id: str
    plan_type: str
    size: Decimal | None
    trigger_price: Decimal


Decision = (
    SetOrderState | MarkNeverSent | AdoptExternalOrder | AdoptExternalPosition | PlaceStop | ResizeStop
    | CloseUncovered | PlaceTakeProfit | ResizeTakeProfit | CloseSignal | CancelPlan | ReportForeignPlan
)


# --- inputs -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExchangeView:
    """What the exchange said during one pass. Positions must be read before plans: a fill between the two
    reads then shows as more stop than position (harmless), never as a phantom gap."""

    pending: tuple[Order, ...] = ()  # every open book order (orders-pending)
    details: Mapping[str, Order | None] | None = None  # client id -> order detail; None: not found
    plans: tuple[PlanOrder, ...] = ()  # every pending plan (TP/SL and trigger plans)
    positions: tuple[Position, ...] = ()

    def order_for(self, client_oid: str) -> tuple[bool, Order | None]:
        """(looked at, order): looked at is False when this pass has no evidence about the client id."""
        for order in self.pending:
            if order.client_oid == client_oid:
                return True, order
        details = self.details or {}
        if client_oid in details:
            return True, details[client_oid]
        return False, None

    def plan_with_oid(self, client_oid: str) -> PlanOrder | None:
        for plan in self.plans:
            if plan.client_oid == client_oid:
                return plan
        return None


@dataclass(frozen=True)
class PositionIntent:
    """What the journal says one of our positions should carry: the signal's stop and targets."""

    signal_id: int
    symbol: str
    hold_side: PositionSide
    stop_price: Decimal
    targets: tuple[Decimal, ...]  # nearest first
    shares: tuple[Decimal, ...]  # one per target, or empty for equal shares
    tp_oids: tuple[str, ...]  # client id of each target's take-profit plan
    entry_filled: Decimal  # what the signal's entries have filled in total
    entries_open: bool  # an entry leg may still fill
    stop_oids: frozenset[str]  # our journaled stop plans for this signal
    rejected_oids: frozenset[str] = frozenset()  # this signal's orders the exchange refused


def _is_entry(row: OrderRow) -> bool:
    return row.leg.startswith("entry")


def rows_to_look_up(rows: Iterable[OrderRow], pending: Sequence[Order]) -> list[OrderRow]:
    """Open book orders of ours that are not among the exchange's open orders: they filled, were canceled,
    or never arrived; only an order-detail lookup by client id tells which."""
    open_oids = {order.client_oid for order in pending}
    return [
        row for row in rows
        if row.state in OPEN_STATES and row.order_type in BOOK_ORDER_TYPES and row.client_oid not in open_oids
    ]


# --- 1. our orders -----------------------------------------------------------------------------------------
def order_decisions(
    rows: Iterable[OrderRow], view: ExchangeView, *, now: float, unknown_deadline_s: float
) -> list[Decision]:
    """States for every open journal order the exchange gave evidence about in this pass."""
    decisions: list[Decision] = []
    for row in rows:
        if row.state not in OPEN_STATES:
            continue
        if row.order_type in BOOK_ORDER_TYPES:
            looked, order = view.order_for(row.client_oid)
            if not looked:
                continue
            if order is not None:
                decision = _state_change(row, order)
                if decision is not None:
                    decisions.append(decision)
                continue
        elif row.state in (OrderState.INTENT, OrderState.SUBMITTED):
            plan = view.plan_with_oid(row.client_oid)
            if plan is not None:
                decisions.append(SetOrderState(
                    row.client_oid, row.symbol, row.leg, OrderState.ACCEPTED, row.state, None, Decimal(0),
                    exchange_order_id=plan.order_id,
                ))
                continue
        else:
            continue  # an accepted plan that is no longer pending fired or went with its position
        if row.state in (OrderState.INTENT, OrderState.SUBMITTED) and now - row.updated_at > unknown_deadline_s:
            decisions.append(MarkNeverSent(row.client_oid, row.symbol, row.leg, NEVER_SENT))
    return decisions


def _state_change(row: OrderRow, order: Order) -> SetOrderState | None:
    state = journal_state(order)
    previous = row.filled_size or Decimal(0)
    if state is row.state and order.filled_size == previous and row.exchange_order_id == order.order_id:
        return None
    return SetOrderState(
        row.client_oid, row.symbol, row.leg, state, row.state, order.filled_size,
        max(Decimal(0), order.filled_size - previous), avg_price=order.avg_price, exchange_order_id=order.order_id,
    )


# --- 2. what we did not place ------------------------------------------------------------------------------
def external_decisions(
    view: ExchangeView,
    *,
    journaled_oids: frozenset[str],
    intents: Mapping[tuple[str, str], PositionIntent],
    adopted_keys: frozenset[str],
) -> list[Decision]:
    """Open orders, trigger plans and positions nobody in the journal accounts for.

    ``journaled_oids`` holds every client id the journal knows among those on the exchange (adopted
    external orders are journaled, so they are reported once). Take-profit and stop plans are not adopted:
    an entry's attached stop gets an exchange-made client id, and a stop never adds exposure.
    """
    decisions: list[Decision] = []
    for order in view.pending:
        if order.client_oid in journaled_oids or f"ext{order.order_id}" in journaled_oids:
            continue
        decisions.append(AdoptExternalOrder(
            order.symbol, order.order_id, order.client_oid, order.order_type, order.side, order.trade_side,
            order.size, order.price, order.reduce_only, order.state,
        ))
    for plan in view.plans:
        if plan.plan_type not in TRIGGER_PLAN_TYPES:
            continue
        if plan.client_oid in journaled_oids or f"ext{plan.order_id}" in journaled_oids:
            continue
        decisions.append(AdoptExternalOrder(
            plan.symbol, plan.order_id, plan.client_oid, plan.plan_type, plan.side or "", plan.trade_side,
            plan.size or Decimal(0), plan.trigger_price, False, plan.status,
        ))
    for position in view.positions:
        if position.total <= 0 or (position.symbol, position.hold_side) in intents:
            continue
        key = position_key(position)
        if key not in adopted_keys:
            decisions.append(AdoptExternalPosition(position.symbol, position.hold_side, position.total, key))
    return decisions


def position_key(position: Position) -> str:
    """Names one position across passes and restarts (a re-opened position is a new one)."""
    return f"{position.symbol}:{position.hold_side}:{position.c_time or 0}"


# --- 3. protection of our positions ------------------------------------------------------------------------
def intents_from_journal(
    signal_rows: Mapping[int, Sequence[OrderRow]], entries: Mapping[int, EntryIntent] | None = None
) -> dict[tuple[str, str], PositionIntent]:
    """(symbol, hold side) -> the intent of the latest open signal whose entries filled or may still fill.

    ``signal_rows`` maps each open signal's id to all its journal rows; ``entries`` each signal's journaled
    ``EntryIntent`` (stop, targets, shares and their client ids, as planned). A signal journaled before entry
    intents existed has none: its entry rows' payload says the same in text.
    """
    intents: dict[tuple[str, str], PositionIntent] = {}
    for signal_id in sorted(signal_rows):
        rows = signal_rows[signal_id]
        entry_rows = [row for row in rows if _is_entry(row)]
        if not entry_rows:
            continue
        filled = sum((row.filled_size or Decimal(0) for row in entry_rows), Decimal(0))
        may_fill = any(row.state in OPEN_STATES for row in entry_rows)
        if filled <= 0 and not may_fill:
            continue
        first = entry_rows[0]
        planned = (entries or {}).get(signal_id)
        if planned is not None:
            hold_side: PositionSide = planned.side
            stop_price = planned.stop_price
            targets = tuple(t.price for t in planned.targets)
            shares = planned.shares
            tp_oids = tuple(t.client_oid for t in planned.targets)
        else:
            payload = first.payload
            hold_side = "short" if payload.get("position_side") == "short" else "long"
            stop = payload.get("stop_loss")
            if stop is None:
                continue
            stop_price = Decimal(str(stop))
            targets = tuple(Decimal(str(p)) for p in payload.get("take_profits", []))
            shares = tuple(Decimal(str(p)) for p in payload.get("tp_percentages", []))
            tp_oids = tuple(str(oid) for oid in payload.get("tp_oids", []))
        if len(shares) != len(targets):
            shares = ()
        intents[(first.symbol, hold_side)] = PositionIntent(
            signal_id=signal_id,
            symbol=first.symbol,
            hold_side=hold_side,
            stop_price=stop_price,
            targets=targets,
            shares=shares,
            tp_oids=tp_oids,
            entry_filled=filled,
            entries_open=may_fill,
            stop_oids=frozenset(row.client_oid for row in rows if row.leg.startswith(STOP_LEG)),
            rejected_oids=frozenset(row.client_oid for row in rows if row.state is OrderState.REJECTED),
        )
    return intents


def protection_decisions(
    position: Position,
    intent: PositionIntent,
    plans: Sequence[PlanOrder],
    contract: Contract,
    pos_mode: PosMode,
    *,
    exchange_stops: bool = True,
    take_profits: bool = True,
) -> list[Decision]:
    """Stop and take-profit decisions for one of our positions.

    ``exchange_stops`` False (local_guard: the stop lives in the journal and the PositionGuard closes by market)
    leaves the stop out; ``take_profits`` False (the exchange takes no plan orders) leaves the ladder out.

    The stop must cover the whole position: our own sized stop grows by the gap, else a new stop plan
    covers the gap. The take-profit ladder is split over what the signal's entries filled (shares when the
    signal gave them, equal otherwise; a step below the minimum merges into the last kept one), so its
    sizes sum exactly to the filled size; a step that already fired or failed is left alone.
    """
    decisions: list[Decision] = []
    covered = stop_coverage(position, plans, pos_mode) if exchange_stops else None
    if covered is not None and covered < position.total:
        gap = position.total - covered
        mark = position.mark_price
        if mark is not None and not stop_is_valid(position.hold_side, intent.stop_price, mark):
            return [CloseUncovered(position.symbol, position.hold_side, gap, intent.stop_price, mark)]
        own = [
            plan for plan in stop_plans_for(position, plans, pos_mode)
            if plan.client_oid in intent.stop_oids and plan.size is not None
        ]
        if own:
            plan = own[-1]
            assert plan.size is not None
            decisions.append(ResizeStop(position.symbol, plan.order_id, plan.client_oid, plan.trigger_price,
                                        plan.size + gap, plan.size))
        elif len(intent.stop_oids & intent.rejected_oids) < STOP_ATTEMPTS:
            decisions.append(PlaceStop(position.symbol, position.hold_side, gap, intent.stop_price, intent.signal_id))
    if take_profits:
        decisions.extend(_take_profit_decisions(position, intent, plans, contract))
    return decisions


def _take_profit_decisions(
    position: Position, intent: PositionIntent, plans: Sequence[PlanOrder], contract: Contract
) -> list[Decision]:
    if not intent.targets or len(intent.tp_oids) != len(intent.targets) or intent.entry_filled <= 0:
        return []
    if intent.entry_filled > position.total:
        # Something already reduced the position (a target fired, a partial close): the ladder stays as it
        # is; re-splitting it now would move the remaining targets.
        return []
    sizes = resolve_tp_sizes(intent.entry_filled, intent.shares or len(intent.targets), contract)
    live = {plan.client_oid: plan for plan in plans if plan.plan_type == "profit_plan" and plan.client_oid}
    decisions: list[Decision] = []
    for step, (price, size) in enumerate(zip(intent.targets, sizes, strict=False), start=1):
        oid = take_profit_oid(intent.tp_oids[step - 1], intent.rejected_oids)
        if oid is None:
            continue  # refused every time: the stop still covers the position
        plan = live.get(oid)
        if plan is not None:
            if plan.size != size:
                decisions.append(ResizeTakeProfit(position.symbol, plan.order_id, oid, plan.trigger_price, size,
                                                  plan.size or Decimal(0)))
            continue
        decisions.append(PlaceTakeProfit(position.symbol, position.hold_side, step, oid, price, size,
                                         intent.signal_id))
    return decisions


def take_profit_oid(base: str, rejected: frozenset[str]) -> str | None:
    """The client id a take-profit step is (or will be) placed under: the first one not refused."""
    for oid in (base, *(f"{base}r{n}" for n in range(1, TP_RETRIES + 1))):
        if oid not in rejected:
            return oid
    return None


def closed_signal_decisions(
    intents: Mapping[tuple[str, str], PositionIntent], positions: Iterable[Position]
) -> list[Decision]:
    """Signals whose entries are all done and filled something, while no position is left on that side."""
    live = {(p.symbol, p.hold_side) for p in positions if p.total > 0}
    return [
        CloseSignal(intent.signal_id, intent.symbol)
        for key, intent in intents.items()
        if not intent.entries_open and intent.entry_filled > 0 and key not in live
    ]


def unfilled_signal_decisions(signal_rows: Mapping[int, Sequence[OrderRow]]) -> list[Decision]:
    """Open signals whose every entry ended (canceled, rejected) with nothing filled: nothing to follow."""
    decisions: list[Decision] = []
    for signal_id, rows in sorted(signal_rows.items()):
        entries = [row for row in rows if _is_entry(row)]
        if entries and all(row.state.is_terminal and not row.filled_size for row in entries):
            decisions.append(CloseSignal(signal_id, entries[0].symbol))
    return decisions


# --- 4. clean plans: none of ours without its position, never more than the position --------------------
REDUCE_PLAN_TYPES = ("profit_plan", "loss_plan", "pos_profit", "pos_loss", "moving_plan")


def is_ours(plan: PlanOrder, our_stop_prices: Mapping[str, frozenset[Decimal]]) -> bool:
    """Placed by this bot: our client-id prefix, or (an entry's attached stop, which the exchange names itself) a
    stop at the price one of our entries on that coin attached."""
    if plan.client_oid and plan.client_oid.startswith(CLIENT_OID_PREFIX):
        return True
    return plan.plan_type in ("loss_plan", "pos_loss") and plan.trigger_price in our_stop_prices.get(plan.symbol, ())


def _protects(plan: PlanOrder, position: Position, pos_mode: PosMode) -> bool:
    sides = {position.hold_side, tpsl_hold_side(position.hold_side, pos_mode), None, "", "net"}
    return plan.symbol == position.symbol and plan.pos_side in sides


def plan_hygiene_decisions(
    positions: Iterable[Position],
    plans: Iterable[PlanOrder],
    pos_mode: PosMode,
    *,
    contracts: Mapping[str, Contract],
    our_stop_prices: Mapping[str, frozenset[Decimal]],
    reported_foreign: frozenset[str] = frozenset(),
) -> list[Decision]:
    """Plans of ours on a side with no position are cancelled; plans of others there are reported (once); on
    each position, our sized take-profits and our sized stops are each shrunk to sum to at most its size (a
    partial close, a break-even reduce or a liquidation reduce left them bigger): take-profits in proportion,
    each rounded down to the size step (one below the minimum is cancelled), stops from the latest placed.

    Read the plans *before* the positions: a fill between the reads then shows a position bigger than its
    plans (nothing to do), never plans bigger than a position that just grew."""
    live = [p for p in positions if p.total > 0]
    decisions: list[Decision] = []
    by_position: dict[int, list[PlanOrder]] = {}
    for plan in plans:
        if plan.plan_type not in REDUCE_PLAN_TYPES:
            continue
        index = next((i for i, position in enumerate(live) if _protects(plan, position, pos_mode)), None)
        if index is not None:
            by_position.setdefault(index, []).append(plan)
        elif is_ours(plan, our_stop_prices):
            decisions.append(CancelPlan(plan.symbol, plan.order_id, plan.client_oid, plan.plan_type, True,
                                        "its position is closed"))
        elif plan.order_id not in reported_foreign:
            decisions.append(ReportForeignPlan(plan.symbol, plan.order_id, plan.plan_type, plan.size,
                                               plan.trigger_price))
    for index, attached in by_position.items():
        position = live[index]
        contract = contracts.get(position.symbol)
        ours = [plan for plan in attached if is_ours(plan, our_stop_prices) and plan.size]
        # Sized plans only: a position-level plan (pos_profit / pos_loss) acts on what is there when it fires.
        targets = sorted((p for p in ours if p.plan_type == "profit_plan"), key=lambda p: p.c_time or 0)
        stops = sorted((p for p in ours if p.plan_type == "loss_plan"), key=lambda p: p.c_time or 0)
        if contract is not None:
            decisions += _shrink_targets(position, targets, contract)
        decisions += _shrink_stops(position, stops)
    return decisions


def _size(plan: PlanOrder) -> Decimal:
    return plan.size or Decimal(0)


def _shrink_targets(position: Position, plans: Sequence[PlanOrder], contract: Contract) -> list[Decision]:
    total = sum((_size(p) for p in plans), Decimal(0))
    if total <= position.total:
        return []
    decisions: list[Decision] = []
    for plan in plans:
        size = contract.round_size(_size(plan) * position.total / total)
        if size < contract.min_trade_num or size <= 0:
            decisions.append(CancelPlan(plan.symbol, plan.order_id, plan.client_oid, plan.plan_type, False,
                                        f"shrunk below the minimum (the position is {position.total})"))
        elif size != plan.size:
            decisions.append(ResizeTakeProfit(plan.symbol, plan.order_id, plan.client_oid or "", plan.trigger_price,
                                              size, _size(plan)))
    return decisions


def _shrink_stops(position: Position, plans: Sequence[PlanOrder]) -> list[Decision]:
    excess = sum((_size(p) for p in plans), Decimal(0)) - position.total
    decisions: list[Decision] = []
    for plan in reversed(plans):
        if excess <= 0:
            break
        cut = min(excess, _size(plan))
        excess -= cut
        if cut == _size(plan):
            decisions.append(CancelPlan(plan.symbol, plan.order_id, plan.client_oid, plan.plan_type, False,
                                        f"stops of ours cover more than the position ({position.total})"))
        else:
            decisions.append(ResizeStop(plan.symbol, plan.order_id, plan.client_oid, plan.trigger_price,
                                        _size(plan) - cut, _size(plan)))
    return decisions


def reconcile(
    rows: Sequence[OrderRow],
    view: ExchangeView,
    *,
    now: float,
    unknown_deadline_s: float,
    journaled_oids: frozenset[str],
    intents: Mapping[tuple[str, str], PositionIntent],
    adopted_keys: frozenset[str],
    contracts: Mapping[str, Contract],
    pos_mode: PosMode,
    exchange_stops: bool = True,
    take_profits: bool = True,
) -> list[Decision]:
    """One whole pass: our orders' states, external orders and positions, then protection.

    Protection decisions come from the position snapshot of this pass; ``intents`` must be built from the
    journal as it was before this pass (an entry that filled after the positions were read shows up in the
    next pass, never as a closed signal).
    """
    decisions = order_decisions(rows, view, now=now, unknown_deadline_s=unknown_deadline_s)
    decisions += external_decisions(view, journaled_oids=journaled_oids, intents=intents,
                                     adopted_keys=adopted_keys)
    for position in view.positions:
        intent = intents.get((position.symbol, position.hold_side))
        contract = contracts.get(position.symbol)
        if position.total > 0 and intent is not None and contract is not None:
            decisions += protection_decisions(position, intent, view.plans, contract, pos_mode,
                                              exchange_stops=exchange_stops, take_profits=take_profits)
    decisions += closed_signal_decisions(intents, view.positions)
    return decisions
