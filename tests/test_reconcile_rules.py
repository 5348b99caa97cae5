"""Reconciliation rules: journal view + exchange view -> decisions (pure; no exchange, no clock)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from exchange.bitget.contracts import Contract
from exchange.bitget.models import Order, PlanOrder, Position
from trading.journal import OrderRow, OrderState
from trading.reconcile import (
    AdoptExternalOrder,
    AdoptExternalPosition,
    CloseSignal,
    CloseUncovered,
    ExchangeView,
    MarkNeverSent,
    PlaceStop,
    PlaceTakeProfit,
    PositionIntent,
    ResizeStop,
    ResizeTakeProfit,
    SetOrderState,
    external_decisions,
    intents_from_journal,
    order_decisions,
    protection_decisions,
    reconcile,
    rows_to_look_up,
    stop_coverage,
    unfilled_signal_decisions,
)

D = Decimal
BTC = Contract("BTCUSDT", "BTC", "USDT", 1, 1, 3, D("0.001"), D("0.001"), D("5"), max_lever=125)
NOW = 1_000_000.0
DEADLINE = 30.0
SIDES = pytest.mark.parametrize("side", ["long", "short"])
MODES = pytest.mark.parametrize("pos_mode", ["one_way_mode", "hedge_mode"])
TP_OIDS = ("fl_x_tp1", "fl_x_tp2", "fl_x_tp3")


def row(oid: str = "fl_x_entry", state: OrderState = OrderState.ACCEPTED, *, leg: str = "entry",
        order_type: str = "limit", size: str = "0.010", filled: str | None = None, updated_at: float = NOW - 1,
        signal_id: int | None = 1, side: str = "long", payload: dict[str, Any] | None = None) -> OrderRow:
    if payload is None:
        payload = {"position_side": side, "stop_loss": "64000" if side == "long" else "66000",
                   "take_profits": ["66000", "67000", "68000"] if side == "long" else ["64000", "63000", "62000"],
                   "tp_percentages": [], "tp_oids": list(TP_OIDS)}
    return OrderRow(
        client_oid=oid, signal_id=signal_id, symbol="BTCUSDT", leg=leg, side="buy", trade_side=None,
        order_type=order_type, size=D(size), price=D("65000"), reduce_only=False, payload=payload, state=state,
        exchange_order_id=None, filled_size=None if filled is None else D(filled), avg_price=None, error=None,
        created_at=updated_at, updated_at=updated_at,
    )


def order(oid: str | None = "fl_x_entry", state: str = "live", *, filled: str = "0", size: str = "0.010",
          order_id: str = "900", order_type: str = "limit") -> Order:
    return Order(
        order_id=order_id, client_oid=oid, symbol="BTCUSDT", side="buy", trade_side=None, order_type=order_type,
        size=D(size), price=D("65000"), filled_size=D(filled), avg_price=D("65000") if D(filled) else None,
        state=state, reduce_only=False, pos_side="long", c_time=1, u_time=1,
    )


def plan(plan_type: str, size: str | None, *, oid: str | None = None, side: str = "long", trigger: str = "64000",
         order_id: str = "700") -> PlanOrder:
    return PlanOrder(
        order_id=order_id, client_oid=oid, symbol="BTCUSDT", plan_type=plan_type, trigger_price=D(trigger),
        trigger_type="mark_price", execute_price=None, size=None if size is None else D(size), side=None,
        trade_side=None, pos_side=side, status="live",
    )


def position(side: str = "long", total: str = "0.010", c_time: int = 5) -> Position:
    return Position(
        symbol="BTCUSDT", hold_side=side, total=D(total), available=D(total), locked=D(0),  # type: ignore[arg-type]
        average_open_price=D("65000"), mark_price=D("65000"), liquidation_price=None, leverage=D(5),
        margin_mode="isolated", unrealized_pnl=D(0), pos_mode="one_way_mode", c_time=c_time,
    )


def intent(side: str = "long", *, filled: str = "0.010", shares: tuple[str, ...] = (), entries_open: bool = False,
           stop_oids: frozenset[str] = frozenset()) -> PositionIntent:
    targets = (D("66000"), D("67000"), D("68000")) if side == "long" else (D("64000"), D("63000"), D("62000"))
    return PositionIntent(
        signal_id=1, symbol="BTCUSDT", hold_side=side, stop_price=D("64000") if side == "long" else D("66000"),
        targets=targets, shares=tuple(D(s) for s in shares), tp_oids=TP_OIDS, entry_filled=D(filled),
        entries_open=entries_open, stop_oids=stop_oids,
    )


# --- our orders ----------------------------------------------------------------------------------------------
def test_open_orders_on_the_exchange_need_no_lookup_the_others_do() -> None:
    working, gone = row("a"), row("b")
    assert rows_to_look_up([working, gone, row("c", OrderState.FILLED)], [order("a")]) == [gone]


def test_plan_rows_are_never_looked_up_as_book_orders() -> None:
    assert rows_to_look_up([row("t", order_type="profit_plan", leg="tp1")], []) == []


@pytest.mark.parametrize(("exchange_state", "filled", "expected"), [
    ("live", "0", OrderState.ACCEPTED),
    ("partially_filled", "0.004", OrderState.PARTIAL),
    ("filled", "0.010", OrderState.FILLED),
    ("canceled", "0", OrderState.CANCELED),
    ("canceled", "0.004", OrderState.CANCELED),  # done; what filled is protected as a position
])
def test_a_found_order_takes_the_exchange_state_and_filled_size(exchange_state: str, filled: str,
                                                                 expected: OrderState) -> None:
    view = ExchangeView(details={"fl_x_entry": order(state=exchange_state, filled=filled)})
    (decision,) = order_decisions([row(state=OrderState.SUBMITTED)], view, now=NOW, unknown_deadline_s=DEADLINE)
    assert isinstance(decision, SetOrderState)
    assert decision.state is expected and decision.filled_size == D(filled)
    assert decision.previous_state is OrderState.SUBMITTED and decision.newly_filled == D(filled)
    assert decision.exchange_order_id == "900"


def test_newly_filled_counts_only_what_filled_since_the_journal_looked() -> None:
    view = ExchangeView(pending=(order(state="partially_filled", filled="0.007"),))
    (decision,) = order_decisions([row(state=OrderState.PARTIAL, filled="0.004")], view, now=NOW,
                                  unknown_deadline_s=DEADLINE)
    assert isinstance(decision, SetOrderState) and decision.newly_filled == D("0.003")


def test_nothing_changed_means_no_decision() -> None:
    known = row(state=OrderState.PARTIAL, filled="0.004")
    known = OrderRow(**{**known.__dict__, "exchange_order_id": "900"})
    view = ExchangeView(pending=(order(state="partially_filled", filled="0.004"),))
    assert order_decisions([known], view, now=NOW, unknown_deadline_s=DEADLINE) == []


@pytest.mark.parametrize("state", [OrderState.SUBMITTED, OrderState.INTENT])
def test_an_unknown_outcome_not_found_stays_until_the_deadline(state: OrderState) -> None:
    view = ExchangeView(details={"fl_x_entry": None})
    recent = row(state=state, updated_at=NOW - DEADLINE + 1)
    assert order_decisions([recent], view, now=NOW, unknown_deadline_s=DEADLINE) == []


@pytest.mark.parametrize("state", [OrderState.SUBMITTED, OrderState.INTENT])
def test_an_unknown_outcome_not_found_after_the_deadline_never_reached_the_exchange(state: OrderState) -> None:
    view = ExchangeView(details={"fl_x_entry": None})
    old = row(state=state, updated_at=NOW - DEADLINE - 1)
    (decision,) = order_decisions([old], view, now=NOW, unknown_deadline_s=DEADLINE)
    assert isinstance(decision, MarkNeverSent) and decision.client_oid == "fl_x_entry"


def test_an_accepted_order_that_cannot_be_found_is_not_declared_rejected() -> None:
    view = ExchangeView(details={"fl_x_entry": None})
    old = row(state=OrderState.ACCEPTED, updated_at=NOW - 10 * DEADLINE)
    assert order_decisions([old], view, now=NOW, unknown_deadline_s=DEADLINE) == []


def test_an_order_not_looked_at_in_this_pass_gets_no_decision() -> None:
    old = row(state=OrderState.SUBMITTED, updated_at=NOW - 10 * DEADLINE)
    assert order_decisions([old], ExchangeView(), now=NOW, unknown_deadline_s=DEADLINE) == []


def test_a_submitted_stop_plan_found_among_the_plans_is_accepted_else_rejected_after_the_deadline() -> None:
    stop_row = row("fl_x_sl", OrderState.SUBMITTED, leg="sl", order_type="loss_plan", updated_at=NOW - 100)
    found = ExchangeView(plans=(plan("loss_plan", "0.010", oid="fl_x_sl"),))
    (decision,) = order_decisions([stop_row], found, now=NOW, unknown_deadline_s=DEADLINE)
    assert isinstance(decision, SetOrderState) and decision.state is OrderState.ACCEPTED
    (decision,) = order_decisions([stop_row], ExchangeView(), now=NOW, unknown_deadline_s=DEADLINE)
    assert isinstance(decision, MarkNeverSent)


# --- external orders and positions -------------------------------------------------------------------------
def test_an_unknown_open_order_is_adopted_as_external_once() -> None:
    view = ExchangeView(pending=(order("manual-1", order_id="42"), order("fl_x_entry")))
    (decision,) = external_decisions(view, journaled_oids=frozenset({"fl_x_entry"}), intents={},
                                     adopted_keys=frozenset())
    assert isinstance(decision, AdoptExternalOrder) and decision.order_id == "42"
    assert external_decisions(view, journaled_oids=frozenset({"fl_x_entry", "manual-1"}), intents={},
                              adopted_keys=frozenset()) == []


def test_an_unknown_trigger_plan_is_external_but_stops_and_targets_are_not() -> None:
    view = ExchangeView(plans=(plan("normal_plan", "0.010", oid="hand", order_id="77"), plan("pos_loss", "0.010"),
                               plan("profit_plan", "0.005", oid="x")))
    (decision,) = external_decisions(view, journaled_oids=frozenset(), intents={}, adopted_keys=frozenset())
    assert isinstance(decision, AdoptExternalOrder) and decision.kind == "normal_plan"


@SIDES
def test_a_position_without_a_journaled_signal_is_adopted_once(side: str) -> None:
    view = ExchangeView(positions=(position(side),))
    (decision,) = external_decisions(view, journaled_oids=frozenset(), intents={}, adopted_keys=frozenset())
    assert isinstance(decision, AdoptExternalPosition) and decision.hold_side == side
    assert external_decisions(view, journaled_oids=frozenset(), intents={},
                              adopted_keys=frozenset({decision.key})) == []
    ours = {("BTCUSDT", side): intent(side)}
    assert external_decisions(view, journaled_oids=frozenset(), intents=ours, adopted_keys=frozenset()) == []


def test_a_reopened_external_position_is_a_new_one() -> None:
    first = external_decisions(ExchangeView(positions=(position(c_time=1),)), journaled_oids=frozenset(),
                               intents={}, adopted_keys=frozenset())
    assert isinstance(first[0], AdoptExternalPosition)
    again = external_decisions(ExchangeView(positions=(position(c_time=2),)), journaled_oids=frozenset(),
                               intents={}, adopted_keys=frozenset({first[0].key}))
    assert len(again) == 1


# --- intents from the journal -------------------------------------------------------------------------------
@SIDES
def test_intent_sums_the_fills_of_every_entry_leg(side: str) -> None:
    rows = [row("e1", OrderState.FILLED, filled="0.005", side=side),
            row("e2", OrderState.PARTIAL, leg="entry2", filled="0.002", side=side),
            row("s", OrderState.ACCEPTED, leg="sl", order_type="loss_plan", side=side)]
    found = intents_from_journal({1: rows})[("BTCUSDT", side)]
    assert found.entry_filled == D("0.007") and found.entries_open and found.stop_oids == frozenset({"s"})
    assert found.tp_oids == TP_OIDS and len(found.targets) == 3


def test_an_entry_canceled_after_a_partial_fill_is_done_and_its_fill_still_protected() -> None:
    canceled = row(state=OrderState.CANCELED, filled="0.004")
    assert rows_to_look_up([canceled], []) == []  # never looked up again
    found = intents_from_journal({1: [canceled]})[("BTCUSDT", "long")]
    assert found.entry_filled == D("0.004") and not found.entries_open
    (stop,) = [d for d in protection_decisions(position("long", "0.004"), found, [], BTC, "one_way_mode")
               if isinstance(d, PlaceStop)]
    assert stop.size == D("0.004")


def test_a_signal_whose_entries_all_failed_has_no_intent_and_the_latest_signal_wins() -> None:
    rejected = [row("old", OrderState.REJECTED, signal_id=1)]
    assert intents_from_journal({1: rejected}) == {}
    first = [row("e1", OrderState.FILLED, filled="0.010", signal_id=1)]
    second = [row("e2", OrderState.ACCEPTED, signal_id=2)]
    assert intents_from_journal({1: first, 2: second})[("BTCUSDT", "long")].signal_id == 2


def test_target_shares_that_do_not_match_the_targets_are_ignored() -> None:
    payload = {"position_side": "long", "stop_loss": "64000", "take_profits": ["66000", "67000"],
               "tp_percentages": ["50"], "tp_oids": ["a", "b"]}
    found = intents_from_journal({1: [row(payload=payload, state=OrderState.FILLED, filled="0.01")]})
    assert found[("BTCUSDT", "long")].shares == ()


# --- protection --------------------------------------------------------------------------------------------
@SIDES
@MODES
def test_a_partial_fill_without_a_stop_gets_a_stop_for_exactly_the_filled_size(side: str, pos_mode: str) -> None:
    decisions = protection_decisions(position(side, "0.004"), intent(side, filled="0.004", entries_open=True), [],
                                     BTC, pos_mode)
    (stop,) = [d for d in decisions if isinstance(d, PlaceStop)]
    assert stop.size == D("0.004") and stop.hold_side == side
    assert stop.trigger_price == (D("64000") if side == "long" else D("66000"))


@SIDES
def test_an_uncovered_fill_whose_stop_the_market_already_passed_is_closed_not_given_a_stop(side: str) -> None:
    past = D("63900") if side == "long" else D("66100")  # beyond the stop (64000 / 66000)
    moved = replace(position(side, "0.010"), mark_price=past)
    decisions = protection_decisions(moved, intent(side, filled="0.010"), [plan("pos_loss", "0.004", side=side)],
                                     BTC, "one_way_mode")
    assert decisions == [CloseUncovered("BTCUSDT", side, D("0.006"), intent(side).stop_price, past)]


@SIDES
def test_our_own_sized_stop_grows_with_the_position(side: str) -> None:
    own = plan("loss_plan", "0.004", oid="fl_x_sl", side=side)
    decisions = protection_decisions(position(side, "0.007"), intent(side, filled="0.007",
                                     stop_oids=frozenset({"fl_x_sl"})), [own], BTC, "hedge_mode")
    (resize,) = [d for d in decisions if isinstance(d, ResizeStop)]
    assert resize.size == D("0.007") and resize.previous_size == D("0.004") and resize.client_oid == "fl_x_sl"


def test_stops_refused_again_and_again_are_left_to_the_guard() -> None:
    refused = frozenset(f"sl{n}" for n in range(5))
    gave_up = replace(intent(filled="0.010"), stop_oids=refused, rejected_oids=refused)
    decisions = protection_decisions(position("long", "0.010"), gave_up, [], BTC, "one_way_mode")
    assert not [d for d in decisions if isinstance(d, PlaceStop)]
    four = frozenset(f"sl{n}" for n in range(4))
    still = replace(intent(filled="0.010"), stop_oids=four, rejected_oids=four)
    assert [d for d in protection_decisions(position("long", "0.010"), still, [], BTC, "one_way_mode")
            if isinstance(d, PlaceStop)]


def test_an_attached_stop_sized_to_the_fill_needs_nothing() -> None:
    attached = plan("pos_loss", "0.004")  # the exchange sizes an entry's preset stop to what filled
    decisions = protection_decisions(position("long", "0.004"), intent(filled="0.004"), [attached], BTC,
                                     "one_way_mode")
    assert not [d for d in decisions if isinstance(d, (PlaceStop, ResizeStop))]


def test_a_stop_covering_only_part_gets_a_second_stop_for_the_rest_not_a_resize_of_a_foreign_one() -> None:
    attached = plan("pos_loss", "0.004")
    decisions = protection_decisions(position("long", "0.010"), intent(filled="0.010"), [attached], BTC,
                                     "one_way_mode")
    (stop,) = [d for d in decisions if isinstance(d, (PlaceStop, ResizeStop))]
    assert isinstance(stop, PlaceStop) and stop.size == D("0.006")


def test_a_whole_position_stop_covers_any_size() -> None:
    assert stop_coverage(position("long", "0.5"), [plan("pos_loss", None)], "one_way_mode") is None
    assert stop_coverage(position("long", "0.5"), [plan("loss_plan", "0.2"), plan("pos_loss", "0.1")],
                         "one_way_mode") == D("0.3")
    assert stop_coverage(position("long", "0.5"), [plan("loss_plan", "0.2", side="short")],
                         "hedge_mode") == D("0")


def test_a_position_reporting_a_stop_price_is_covered_only_as_far_as_its_listed_stops_go() -> None:
    reported = replace(position("long", "0.5"), stop_loss=D("64000"))
    assert stop_coverage(reported, [plan("pos_loss", "0.2")], "one_way_mode") == D("0.2")
    assert stop_coverage(reported, [], "one_way_mode") is None  # nothing listed: the position's word


@SIDES
def test_take_profits_are_placed_for_the_filled_size_and_sum_exactly_to_it(side: str) -> None:
    decisions = protection_decisions(position(side, "0.010"), intent(side, filled="0.010"),
                                     [plan("pos_loss", None, side=side)], BTC, "one_way_mode")
    tps = [d for d in decisions if isinstance(d, PlaceTakeProfit)]
    assert [t.step for t in tps] == [1, 2, 3]
    assert sum(t.size for t in tps) == D("0.010")
    assert [t.client_oid for t in tps] == list(TP_OIDS)


def test_take_profits_follow_the_signals_percentages() -> None:
    decisions = protection_decisions(position("long", "0.010"), intent(filled="0.010", shares=("50", "30", "20")),
                                     [plan("pos_loss", None)], BTC, "one_way_mode")
    assert [d.size for d in decisions if isinstance(d, PlaceTakeProfit)] == [D("0.005"), D("0.003"), D("0.002")]


def test_a_small_fill_feeds_fewer_targets_and_the_ladder_is_resized_as_fills_grow() -> None:
    first = protection_decisions(position("long", "0.002"), intent(filled="0.002", entries_open=True),
                                 [plan("pos_loss", None)], BTC, "one_way_mode")
    assert [(d.step, d.size) for d in first if isinstance(d, PlaceTakeProfit)] == [(1, D("0.001")), (2, D("0.001"))]
    live = [plan("pos_loss", None), plan("profit_plan", "0.001", oid=TP_OIDS[0], order_id="1"),
            plan("profit_plan", "0.001", oid=TP_OIDS[1], order_id="2")]
    grown = protection_decisions(position("long", "0.009"), intent(filled="0.009"), live, BTC, "one_way_mode")
    resized = [d for d in grown if isinstance(d, ResizeTakeProfit)]
    placed = [d for d in grown if isinstance(d, PlaceTakeProfit)]
    assert [(d.client_oid, d.size) for d in resized] == [(TP_OIDS[0], D("0.003")), (TP_OIDS[1], D("0.003"))]
    assert [(d.step, d.size) for d in placed] == [(3, D("0.003"))]


def test_a_refused_take_profit_is_placed_again_under_a_new_client_id_a_bounded_number_of_times() -> None:
    refused_once = replace(intent(filled="0.010"), rejected_oids=frozenset({TP_OIDS[0]}))
    decisions = protection_decisions(position("long", "0.010"), refused_once, [plan("pos_loss", None)], BTC,
                                     "one_way_mode")
    assert [d.client_oid for d in decisions if isinstance(d, PlaceTakeProfit)] == [f"{TP_OIDS[0]}r1", *TP_OIDS[1:]]
    always = frozenset({TP_OIDS[0], *(f"{TP_OIDS[0]}r{n}" for n in range(1, 4))})
    decisions = protection_decisions(position("long", "0.010"), replace(intent(filled="0.010"), rejected_oids=always),
                                     [plan("pos_loss", None)], BTC, "one_way_mode")
    assert [d.step for d in decisions if isinstance(d, PlaceTakeProfit)] == [2, 3]


def test_a_ladder_already_matching_needs_nothing_and_a_fired_target_is_not_replaced() -> None:
    live = [plan("pos_loss", None), plan("profit_plan", "0.003", oid=TP_OIDS[1]),
            plan("profit_plan", "0.003", oid=TP_OIDS[2])]
    # Target 1 fired: the position shrank below what the entries filled; the rest stays as it is.
    assert protection_decisions(position("long", "0.006"), intent(filled="0.010"), live, BTC, "one_way_mode") == []


def test_a_position_below_the_minimum_gets_no_targets_only_its_stop() -> None:
    coarse = Contract("BTCUSDT", "BTC", "USDT", 1, 1, 3, D("0.001"), D("0.005"), D("5"), max_lever=125)
    decisions = protection_decisions(position("long", "0.004"), intent(filled="0.004"), [], coarse, "one_way_mode")
    assert [type(d) for d in decisions] == [PlaceStop]


# --- one whole pass ----------------------------------------------------------------------------------------
def test_a_signal_is_closed_when_its_entries_are_done_and_its_position_is_gone() -> None:
    done = {("BTCUSDT", "long"): intent(filled="0.010")}
    working = {("BTCUSDT", "long"): intent(filled="0.004", entries_open=True)}
    common: dict[str, Any] = dict(now=NOW, unknown_deadline_s=DEADLINE, journaled_oids=frozenset(),
                                  adopted_keys=frozenset(), contracts={"BTCUSDT": BTC}, pos_mode="one_way_mode")
    assert reconcile([], ExchangeView(), intents=done, **common) == [CloseSignal(1, "BTCUSDT")]
    assert reconcile([], ExchangeView(), intents=working, **common) == []
    still_open = ExchangeView(positions=(position("long", "0.010"),), plans=(plan("pos_loss", None),))
    assert not [d for d in reconcile([], still_open, intents=done, **common) if isinstance(d, CloseSignal)]


def test_a_signal_whose_entries_all_ended_unfilled_is_closed() -> None:
    canceled = [row("a", OrderState.CANCELED, signal_id=1), row("b", OrderState.REJECTED, leg="entry2", signal_id=1)]
    part_filled = [row("c", OrderState.CANCELED, filled="0.004", signal_id=2)]
    working = [row("d", OrderState.CANCELED, signal_id=3), row("e", OrderState.ACCEPTED, leg="entry2", signal_id=3)]
    no_legs_yet: list[OrderRow] = []
    decisions = unfilled_signal_decisions({1: canceled, 2: part_filled, 3: working, 4: no_legs_yet})
    assert decisions == [CloseSignal(1, "BTCUSDT")]


@MODES
def test_a_whole_pass_after_a_crash_between_send_and_ack(pos_mode: str) -> None:
    """The entry was sent, the bot died before the reply; the exchange filled part of it: the journal learns
    the fill, the filled size gets a stop and targets, and nothing is sent twice (no entry decision exists)."""
    entry = row(state=OrderState.SUBMITTED)
    view = ExchangeView(details={"fl_x_entry": order(state="partially_filled", filled="0.004")},
                        positions=(position("long", "0.004"),))
    intents = intents_from_journal({1: [entry]})
    decisions = reconcile([entry], view, now=NOW, unknown_deadline_s=DEADLINE, journaled_oids=frozenset(),
                          intents=intents, adopted_keys=frozenset(), contracts={"BTCUSDT": BTC}, pos_mode=pos_mode)
    kinds = [type(d) for d in decisions]
    assert kinds[0] is SetOrderState and PlaceStop in kinds and AdoptExternalPosition not in kinds
    (stop,) = [d for d in decisions if isinstance(d, PlaceStop)]
    assert stop.size == D("0.004")
