"""The bot's own stops are intents: each attempt journaled before it is sent under a client id deterministic in the
position it protects and its number, completed from the exchange's plan listing, resumed after a restart by client
id, never sent a second time while the first one's outcome is unknown."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.messages import RepairStop
from actors.order_manager import OrderManagerSettings
from exchange.bitget.models import OrderRequest, PlanOrder, Position
from exchange.bitget.semantics import tpsl_hold_side
from parsing.signals import Side
from tests.order_side import CHANNEL, OrderSide, order_side
from tests.waiting import wait_until
from trading.execution import action_client_oid, default_stop
from trading.intents import STOP_LEG, ExitIntent
from trading.journal import IntentState, OrderRow, OrderState
from trading.reconcile import position_key
from trading.stop_intents import (
    NeverArrived,
    NewAttempt,
    Placed,
    SendJournaled,
    StopIntents,
    StopWanted,
    Supersede,
    Undecided,
    next_stop_step,
)

D = Decimal
ASK_S = 60.0


def _open_long(om: OrderSide) -> Position:
    """A position no stop covers (opened by hand: nothing of the bot's protects it until asked to repair)."""
    om.client.place_order(OrderRequest(symbol="BTCUSDT", side="buy", size=D("0.020"), order_type="market",
                                       margin_mode="isolated", client_oid="hand1"))
    wait_until(lambda: om.position_size("long") == D("0.020"), what="the long opened")
    return om.client.position("BTCUSDT")[0]


def _repair(om: OrderSide) -> None:
    assert om.ref is not None
    om.ref.ask(RepairStop("BTCUSDT", "long", D("0.020"), "no stop seen"), timeout=ASK_S)  # answered once handled


def _stop_rows(om: OrderSide) -> list[OrderRow]:
    return [row for row in om.journal.orders(symbol="BTCUSDT") if row.leg == "sl_repair"]


def _oid(position: Position, attempt: int) -> str:
    return action_client_oid("stop", "repair", position_key(position), attempt)


def test_a_stop_whose_reply_was_lost_is_never_sent_twice_also_after_a_restart(tmp_path: Path) -> None:
    with order_side(tmp_path, check_interval_s=3600) as om:
        position = _open_long(om)
        om.engine.faults.timeout_after_accept("place-tpsl-order", delay_s=None)  # applied; the reply is lost
        _repair(om)
        (row,) = _stop_rows(om)
        assert row.client_oid == _oid(position, 1) and row.state is OrderState.SUBMITTED
        assert len(om.stops("long")) == 1

        # The process restarts, and the plan listing cannot be read: whether the stop arrived is unknown.
        om.engine.faults.fail_next("orders-plan-pending", http_status=503, times=10_000)
        om.restart_manager()
        _repair(om)
        _repair(om)
        assert len(om.stops("long")) == 1, "a second stop while the first one's outcome is unknown"
        assert [r.client_oid for r in _stop_rows(om)] == [row.client_oid]

        om.engine.faults.clear()  # the listing answers: the row is completed from it, nothing is sent
        _repair(om)
        (plan,) = om.stops("long")
        (done,) = _stop_rows(om)
        assert plan.client_oid == done.client_oid and done.state is OrderState.ACCEPTED
        assert done.exchange_order_id == plan.order_id


def test_a_refused_stop_is_told_and_asked_again_under_the_next_attempt(tmp_path: Path) -> None:
    with order_side(tmp_path, check_interval_s=3600) as om:
        position = _open_long(om)
        om.engine.faults.reject_next("place-tpsl-order", "40000", "stop refused")
        _repair(om)
        (refused,) = _stop_rows(om)
        assert refused.state is OrderState.REJECTED and "40000" in (refused.error or "")
        assert om.stops("long") == []
        wait_until(lambda: [n for n in om.notices if n.kind == "STOP_REFUSED"], what="the user told")

        _repair(om)  # the guard asks again
        assert [(r.client_oid, r.state) for r in _stop_rows(om)] == [
            (_oid(position, 1), OrderState.REJECTED), (_oid(position, 2), OrderState.ACCEPTED)]
        (plan,) = om.stops("long")
        assert plan.client_oid == _oid(position, 2)


def test_a_stop_journaled_and_never_sent_before_a_crash_is_sent_once_on_resume(tmp_path: Path) -> None:
    with order_side(tmp_path, check_interval_s=3600) as om:
        position = _open_long(om)
        stop = default_stop(position, OrderManagerSettings.default_stop_loss_pct, om.client.contract("BTCUSDT"))
        wanted = StopWanted(symbol="BTCUSDT", hold_side="long", tpsl_hold=tpsl_hold_side("long", "one_way_mode"),
                            trigger_price=stop, size=None, position_size=position.total)
        intents = StopIntents(journal=om.journal, client=om.client, notifier=_Quiet(), metrics=_Quiet())
        oid = _oid(position, 1)
        # The crash: the row is written, the request never goes out.
        assert intents.journal(wanted, oid, signal_id=None, purpose="repair", stop_for=position_key(position),
                               attempt=1, reason="no stop seen")

        om.restart_manager()
        wait_until(lambda: om.stops("long"), what="the journaled stop sent")
        (plan,) = om.stops("long")
        assert plan.client_oid == oid and plan.trigger_price == stop
        om.restart_manager()
        _repair(om)
        assert len(om.stops("long")) == 1
        (row,) = _stop_rows(om)
        assert row.state is OrderState.ACCEPTED and row.exchange_order_id == plan.order_id


def test_a_stop_journaled_for_a_position_since_closed_is_never_sent(tmp_path: Path) -> None:
    with order_side(tmp_path, check_interval_s=3600) as om:
        position = _open_long(om)
        wanted = StopWanted(symbol="BTCUSDT", hold_side="long", tpsl_hold=tpsl_hold_side("long", "one_way_mode"),
                            trigger_price=position.average_open_price * D("0.99"), size=None,
                            position_size=position.total)
        intents = StopIntents(journal=om.journal, client=om.client, notifier=_Quiet(), metrics=_Quiet())
        oid = _oid(position, 1)
        assert intents.journal(wanted, oid, signal_id=None, purpose="repair", stop_for=position_key(position),
                               attempt=1, reason="no stop seen")
        om.client.place_order(OrderRequest(symbol="BTCUSDT", side="sell", size=D("0.020"), order_type="market",
                                           margin_mode="isolated", reduce_only=True, client_oid="hand2"))
        wait_until(lambda: om.position_size("long") == 0, what="closed by hand")
        om.restart_manager()
        wait_until(lambda: om.journal.order(oid).state is OrderState.REJECTED, what="decided unsent")
        assert om.engine.plan_orders("BTCUSDT") == []


class _Quiet:
    def notify(self, kind: str, text: str) -> None:
        pass

    def order(self, leg: str, result: str) -> None:
        pass


# --- the decision alone --------------------------------------------------------------------------------------
WANTED = StopWanted(symbol="BTCUSDT", hold_side="long", tpsl_hold="buy", trigger_price=D("64000.0"), size=None,
                    position_size=D("0.02"))


def _row(n: int, state: OrderState, *, price: str = "64000.0", updated_at: float = 100.0) -> OrderRow:
    return OrderRow(client_oid=f"oid{n}", signal_id=None, symbol="BTCUSDT", leg="sl_repair", side="buy",
                    trade_side=None, order_type="pos_loss", size=D("0.02"), price=D(price), reduce_only=True,
                    payload={"stop_for": "k"}, state=state, exchange_order_id=None, filled_size=None, avg_price=None,
                    error=None, created_at=updated_at, updated_at=updated_at)


def _plan(oid: str) -> PlanOrder:
    return PlanOrder(order_id="p1", client_oid=oid, symbol="BTCUSDT", plan_type="pos_loss",
                     trigger_price=D("64000.0"), trigger_type="mark_price", execute_price=None, size=None, side="buy",
                     trade_side=None, pos_side="long", status="live")


def _step(rows: list[OrderRow], listed: dict[str, PlanOrder] | None, now: float = 101.0) -> Any:
    return next_stop_step(rows, WANTED, listed, now=now, grace_s=5.0)


def test_the_next_attempt_follows_only_a_decided_one() -> None:
    assert _step([], {}) == NewAttempt(1)
    for state in (OrderState.REJECTED, OrderState.ACCEPTED, OrderState.CANCELED, OrderState.FILLED):
        assert _step([_row(1, OrderState.REJECTED), _row(2, state)], {}) == NewAttempt(3)


def test_a_sent_stop_is_completed_from_the_listing_or_waited_for() -> None:
    sent = _row(1, OrderState.SUBMITTED)
    assert _step([sent], {"oid1": _plan("oid1")}) == Placed(sent, "p1")
    assert _step([sent], {}) == Undecided(sent)  # within the grace: the exchange may still apply it
    assert _step([sent], None, now=1000.0) == Undecided(sent)  # the listing unreadable: unknown, however late
    assert _step([sent], {}, now=1000.0) == NeverArrived(sent)


def test_a_journaled_unsent_stop_is_sent_as_it_is_or_superseded() -> None:
    journaled = _row(1, OrderState.INTENT)
    assert _step([journaled], {}) == SendJournaled(journaled)
    other = _row(1, OrderState.INTENT, price="63000.0")
    assert _step([other], {}) == Supersede(other)


def test_a_channels_stop_move_journaled_and_never_sent_is_sent_once_under_its_own_id(tmp_path: Path) -> None:
    with order_side(tmp_path, check_interval_s=3600) as om:
        bundle = om.entry(Side.LONG, size="0.020", market=True)
        om.send(bundle)
        (old,) = wait_until(lambda: om.stops("long"), what="the entry's stop")
        wait_until(lambda: len(om.take_profits("long")) == 3, what="the take-profits placed")
        position = om.client.position("BTCUSDT")[0]
        contract = om.client.contract("BTCUSDT")
        stop = contract.round_price(position.average_open_price * D("0.995"))
        om.stop_manager()
        update_id = om.journal.record_signal(CHANNEL, 900, {"kind": "update"}, "parsed", "", symbol="BTCUSDT")
        intent = ExitIntent(update_signal_id=update_id, target_signal_id=bundle.signal_id, channel=CHANNEL,
                            message_id=900, index=0, symbol="BTCUSDT", hold_side="long", kind="set_stop",
                            stop_price=stop)
        assert om.journal.record_exit_intent(intent, "test")
        wanted = StopWanted(symbol="BTCUSDT", hold_side="long", tpsl_hold=tpsl_hold_side("long", "one_way_mode"),
                            trigger_price=stop, size=None, position_size=position.total)
        intents = StopIntents(journal=om.journal, client=om.client, notifier=_Quiet(), metrics=_Quiet())
        oid = intent.client_oid(STOP_LEG)
        # The crash: the exit's new stop is journaled, the request never goes out.
        assert intents.journal(wanted, oid, signal_id=None, purpose="exit", stop_for=intent.key, attempt=1,
                               reason="set stop", extra={"exit": intent.key})

        om.start_manager()
        wait_until(lambda: om.journal.exit(intent.key).state is IntentState.DONE, what="the move resumed")
        (plan,) = om.stops("long")
        assert plan.client_oid == oid and plan.trigger_price == stop and plan.order_id != old.order_id
        row = om.journal.order(oid)
        assert row is not None and row.state is OrderState.ACCEPTED
        assert om.journal.order(intent.client_oid(STOP_LEG, 2)) is None


def test_a_fills_stop_still_in_flight_is_waited_for_not_sent_again(tmp_path: Path) -> None:
    """The entry carries no stop; its fill's stop request is slow: the client gives up (unknown outcome) while the
    exchange still applies it. The passes meanwhile see an uncovered fill, and wait for that stop."""
    with order_side(tmp_path, attach_stop=False, client_timeout_s=0.5, unknown_outcome_deadline_s=120.0,
                    start=False) as om:
        om.start_manager(unknown_stop_grace_s=120.0)  # however slow the machine, the stop lands within the grace
        om.engine.faults.latency("place-tpsl-order", 2.0)  # handled (applied) 2 s after it arrives
        bundle = om.entry(Side.LONG, size="0.030", market=True, targets=1)
        om.send(bundle)
        wait_until(lambda: om.position_size("long") == D("0.030"), what="the entry filled")
        (stop,) = wait_until(lambda: om.stops("long"), what="the slow stop applied")
        rows = [r for r in om.journal.orders(signal_id=bundle.signal_id) if r.leg.startswith("sl")]
        wait_until(lambda: om.journal.order(rows[0].client_oid).state is OrderState.ACCEPTED,
                   what="its row completed from the listing")
        passes = len(om.engine.requests_to("orders-pending"))
        wait_until(lambda: len(om.engine.requests_to("orders-pending")) >= passes + 3, what="three more passes")
        assert om.stops("long") == [stop]
        assert [r.client_oid for r in om.journal.orders(signal_id=bundle.signal_id) if r.leg.startswith("sl")] == [
            stop.client_oid]
