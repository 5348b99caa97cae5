"""Exits are intents, like entries: journaled before anything is sent, executed exactly once through crashes,
rate limits and timeouts, completed from what the exchange shows, and reported when they cannot be done.

The real OrderManager against the loopback simulator; an exit is journaled the way the RiskGate does it.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.fencing import Fence
from actors.messages import ExecuteExit
from parsing.signals import Side
from tests.order_side import CHANNEL, OrderSide, order_side
from tests.waiting import wait_until
from trading.execution import close_request
from trading.intents import CLOSE_LEG, ExitIntent, ExitKind
from trading.journal import IntentState, OrderState

D = Decimal
SIDES = pytest.mark.parametrize("side", [Side.LONG, Side.SHORT])


def _exit(om: OrderSide, target_signal_id: int, side: Side, kind: ExitKind, *, message_id: int,
          percent: str | None = None) -> ExitIntent:
    """The update post's reading and its exit intent, journaled as the RiskGate does before telling."""
    update_id = om.journal.record_signal(CHANNEL, message_id, {"kind": "update"}, "parsed", "", symbol="BTCUSDT")
    intent = ExitIntent(update_signal_id=update_id, target_signal_id=target_signal_id, channel=CHANNEL,
                        message_id=message_id, index=0, symbol="BTCUSDT", hold_side=side.value, kind=kind,
                        percent=D(percent) if percent is not None else None)
    assert om.journal.record_exit_intent(intent, "test")
    return intent


def _closes(om: OrderSide) -> list[Any]:
    return [o for o in om.engine.orders("BTCUSDT") if o.is_closing and o.order_source == "normal"]


def _open_position(om: OrderSide, side: Side, size: str = "0.020") -> int:
    bundle = om.entry(side, size=size, market=True)
    om.send(bundle)
    wait_until(lambda: om.position_size(side.value) == D(size), what="the entry filled")
    wait_until(lambda: om.journal.signal(bundle.signal_id).decision == "traded", what="the signal traded")
    return bundle.signal_id


def _done(om: OrderSide, intent: ExitIntent) -> bool:
    row = om.journal.exit(intent.key)
    return row is not None and row.state is IntentState.DONE


@SIDES
def test_exit_journaled_but_never_told_is_executed_once_after_a_restart(tmp_path: Path, side: Side) -> None:
    with order_side(tmp_path, check_interval_s=3600) as om:
        signal_id = _open_position(om, side)
        om.stop_manager()  # the process died right after the RiskGate journaled the exit
        intent = _exit(om, signal_id, side, "close_all", message_id=500)
        om.start_manager()
        wait_until(lambda: _done(om, intent), what="the exit resumed at start-up")
        assert om.position_size(side.value) == 0
        assert len(_closes(om)) == 1
        assert om.journal.signal(intent.update_signal_id).decision == "applied"
        assert om.journal.signal(signal_id).closed


def test_close_journaled_and_never_sent_is_sent_once_under_its_own_client_id(tmp_path: Path) -> None:
    with order_side(tmp_path, check_interval_s=3600) as om:
        signal_id = _open_position(om, Side.LONG)
        om.stop_manager()
        intent = _exit(om, signal_id, Side.LONG, "close_all", message_id=501)
        # The OrderManager journaled the close order, then died before sending it.
        position = om.client.position("BTCUSDT")[0]
        oid = intent.client_oid(CLOSE_LEG)
        request = close_request(position, om.pos_mode, oid)
        om.journal.record_intent(oid, signal_id=signal_id, symbol="BTCUSDT", leg="close", side=request.side,
                                 trade_side=request.trade_side, order_type="market", size=request.size, price=None,
                                 reduce_only=True, payload={"exit": intent.key, "cause": "channel_close"})
        om.start_manager()
        wait_until(lambda: _done(om, intent), what="the journaled close sent at start-up")
        assert [o.client_oid for o in _closes(om)] == [oid]
        assert om.position_size("long") == 0
        assert om.journal.order(oid).state is OrderState.FILLED


def test_close_whose_reply_timed_out_after_accept_is_looked_up_not_sent_again(tmp_path: Path) -> None:
    with order_side(tmp_path, check_interval_s=3600, client_timeout_s=0.3) as om:
        signal_id = _open_position(om, Side.LONG)
        om.engine.faults.timeout_after_accept("place-order", delay_s=None)
        intent = _exit(om, signal_id, Side.LONG, "close_all", message_id=502)
        om.ref.tell(ExecuteExit(intent))
        wait_until(lambda: _closes(om), what="the close applied by the exchange")
        om.restart_manager()  # and the OrderManager restarted before it knew
        wait_until(lambda: _done(om, intent), what="the exit completed from the exchange's answer")
        assert len(_closes(om)) == 1
        assert len([r for r in om.engine.requests_to("place-order") if "_xc" in str(r.params)]) == 1
        assert om.position_size("long") == 0


def test_exit_during_a_rate_limit_period_is_executed_after_it(tmp_path: Path) -> None:
    with order_side(tmp_path) as om:
        signal_id = _open_position(om, Side.SHORT)
        om.engine.faults.fail_next("place-order", http_status=429, times=4)
        intent = _exit(om, signal_id, Side.SHORT, "close_partial", message_id=503, percent="50")
        om.ref.tell(ExecuteExit(intent))
        wait_until(lambda: _done(om, intent), what="the close sent once the limit passed")
        assert om.position_size("short") == D("0.010")
        assert len(_closes(om)) == 1
        assert not [n for n in om.notices if n.kind == "EXIT_NOT_EXECUTED"]


def test_exit_arriving_before_its_entry_is_placed_acts_after_it(tmp_path: Path) -> None:
    with order_side(tmp_path) as om:
        bundle = om.entry(Side.LONG, size="0.020", market=True)  # approved, not placed yet
        intent = _exit(om, bundle.signal_id, Side.LONG, "close_partial", message_id=504, percent="50")
        om.ref.tell(ExecuteExit(intent))
        wait_until(lambda: om.journal.exits(states=[IntentState.PENDING]) and om.engine.requests_to("all-position"),
                   what="the exit seen")
        assert om.journal.exit(intent.key).state is IntentState.PENDING  # waits, not refused
        om.send(bundle)
        wait_until(lambda: _done(om, intent), what="the exit executed after the entry")
        assert om.position_size("long") == D("0.010")


def test_close_of_a_position_already_gone_is_reported_with_its_reason(tmp_path: Path) -> None:
    with order_side(tmp_path) as om:
        signal_id = _open_position(om, Side.LONG)
        om.engine.close_positions("BTCUSDT")  # closed by hand on the exchange
        intent = _exit(om, signal_id, Side.LONG, "close_partial", message_id=505, percent="50")
        om.ref.tell(ExecuteExit(intent))
        wait_until(lambda: [n for n in om.notices if n.kind == "EXIT_NOT_EXECUTED"], what="the notice")
        (notice,) = [n for n in om.notices if n.kind == "EXIT_NOT_EXECUTED"]
        assert "already closed" in notice.text and "505" in notice.text
        assert om.journal.exit(intent.key).state is IntentState.FAILED
        assert om.journal.signal(intent.update_signal_id).decision == "exit_failed"
        assert om.journal.events("EXIT_FAILED")


def test_close_refused_by_the_exchange_is_reported_with_its_reason(tmp_path: Path) -> None:
    with order_side(tmp_path) as om:
        signal_id = _open_position(om, Side.LONG)
        om.engine.faults.reject_next("place-order", "22002", "No position to close")
        intent = _exit(om, signal_id, Side.LONG, "close_all", message_id=506)
        om.ref.tell(ExecuteExit(intent))
        wait_until(lambda: [n for n in om.notices if n.kind == "EXIT_NOT_EXECUTED"], what="the notice")
        (notice,) = [n for n in om.notices if n.kind == "EXIT_NOT_EXECUTED"]
        assert "22002" in notice.text
        assert om.journal.signal(intent.update_signal_id).decision == "exit_failed"
        assert not om.journal.signal(signal_id).closed  # the position is still open: the signal stays followed


def test_exits_of_one_signal_run_in_the_order_posted(tmp_path: Path) -> None:
    with order_side(tmp_path) as om:
        bundle = om.entry(Side.LONG, size="0.040", market=True)
        first = _exit(om, bundle.signal_id, Side.LONG, "close_partial", message_id=507, percent="50")
        second = _exit(om, bundle.signal_id, Side.LONG, "close_partial", message_id=508, percent="50")
        om.ref.tell(ExecuteExit(second))
        om.send(bundle)
        wait_until(lambda: _done(om, first) and _done(om, second), what="both exits")
        assert om.position_size("long") == D("0.010")  # half, then half of the rest
        sizes = [om.journal.order(i.client_oid(CLOSE_LEG)).size for i in (first, second)]
        assert sizes == [D("0.020"), D("0.010")]


def test_a_replaced_order_manager_instance_cannot_send(tmp_path: Path) -> None:
    with order_side(tmp_path, check_interval_s=3600) as om:
        assert om.ref is not None
        old = om.ref
        wait_until(lambda: om.status.get("orders_reconciled"), what="the first instance started")
        Fence(om.journal, "order_manager")  # a newer instance took over (the Supervisor restarted the actor)
        bundle = om.entry(Side.LONG, size="0.020", market=True)
        sent_before = len(om.engine.requests_to("place-order"))
        old.tell(bundle)  # still in the old instance's mailbox
        wait_until(lambda: not old.is_alive(), what="the replaced instance to stop")
        assert len(om.engine.requests_to("place-order")) == sent_before
        assert om.engine.requests_to("set-leverage") == []
        assert om.journal.signal(bundle.signal_id).decision == "approved"


def test_a_replaced_instance_stops_at_its_next_write_even_mid_message(tmp_path: Path) -> None:
    with order_side(tmp_path, check_interval_s=3600) as om:
        wait_until(lambda: om.status.get("orders_reconciled"), what="the first instance started")
        generation = om.journal.generation("order_manager")
        bundle = om.entry(Side.LONG, size="0.020", market=True)

        # The newer instance is claimed between the leverage call and the order (as a slow request allows).
        original = om.engine.set_leverage

        def slow_leverage(*args: Any, **kwargs: Any) -> Any:
            Fence(om.journal, "order_manager")
            return original(*args, **kwargs)

        om.engine.set_leverage = slow_leverage  # type: ignore[method-assign]
        old = om.ref
        old.tell(bundle)
        wait_until(lambda: not old.is_alive(), what="the replaced instance to stop")
        assert om.journal.generation("order_manager") == generation + 1
        assert om.entry_orders() == []
        assert om.journal.signal(bundle.signal_id).decision == "approved"  # never "traded" by the old one


@pytest.mark.slow
def test_close_half_posted_right_after_its_signal_closes_half_of_it(tmp_path: Path) -> None:
    from tests.e2e import running_system

    with running_system(tmp_path) as system:
        journal = system.runtime.journal
        assert journal is not None
        signal_post = system.channel.add_post(system.long_signal("BTCUSDT"))
        update_post = system.channel.add_post("Close 50% now", reply_to=signal_post)  # read in the same poll
        wait_until(lambda: [row for row in journal.exits() if row.state is not IntentState.PENDING], timeout=15,
                   what="the exit finished")
        (row,) = journal.exits()
        assert row.state is IntentState.DONE, row.outcome
        assert row.intent.message_id == update_post and row.intent.kind == "close_partial"
        assert not [e for e in journal.events("NOTIFY_ONLY") if e.detail.get("message_id") == update_post]
        close = journal.order(row.intent.client_oid(CLOSE_LEG))
        assert close is not None and close.state is OrderState.FILLED
        entered = sum(r.filled_size or D(0) for r in journal.orders(signal_id=row.intent.target_signal_id)
                      if r.leg.startswith("entry"))
        (position,) = system.open_positions()
        assert close.size == entered / 2 or close.size == (entered / 2).quantize(D("0.001"), rounding="ROUND_DOWN")
        assert position.size == entered - close.size  # half closed (down to the size step), the rest left


def test_a_close_the_replaced_instance_could_not_send_is_sent_by_the_new_one_at_once(tmp_path: Path) -> None:
    with order_side(tmp_path, check_interval_s=3600) as om:
        signal_id = _open_position(om, Side.LONG)
        old = om.ref
        assert old is not None
        set_state = om.journal.set_order_state

        def replaced_right_before_the_send(oid: str, state: Any, **kwargs: Any) -> None:
            set_state(oid, state, **kwargs)
            if "_xc" in oid and state is OrderState.SUBMITTED:
                Fence(om.journal, "order_manager")  # the Supervisor started a newer instance just now

        om.journal.set_order_state = replaced_right_before_the_send  # type: ignore[method-assign]
        intent = _exit(om, signal_id, Side.LONG, "close_all", message_id=520)
        old.tell(ExecuteExit(intent))
        wait_until(lambda: not old.is_alive(), what="the replaced instance to stop")
        om.journal.set_order_state = set_state  # type: ignore[method-assign]
        assert _closes(om) == [] and om.journal.order(intent.client_oid(CLOSE_LEG)).state is OrderState.INTENT
        om.start_manager()  # the newer instance (30 s outcome deadline: only a send at start-up is in time)
        wait_until(lambda: _done(om, intent), timeout=10, what="the close sent by the newer instance")
        assert [o.client_oid for o in _closes(om)] == [intent.client_oid(CLOSE_LEG)]


def test_an_exit_held_up_by_the_exchange_is_told_while_it_waits_and_when_done(tmp_path: Path) -> None:
    with order_side(tmp_path, check_interval_s=3600) as om:
        signal_id = _open_position(om, Side.LONG)
        om.stop_manager()
        om.start_manager(exit_delay_notice_s=0.0)  # told at the first wait (60 s by default)
        om.engine.faults.fail_next("single-position", http_status=503, times=1_000_000)  # positions unreadable
        intent = _exit(om, signal_id, Side.LONG, "close_all", message_id=508)
        om.ref.tell(ExecuteExit(intent))
        (delayed,) = wait_until(lambda: [n for n in om.notices if n.kind == "EXIT_DELAYED"], what="the delay told")
        assert "508" in delayed.text and "still trying" in delayed.text
        assert om.journal.exit(intent.key).state is IntentState.PENDING and om.position_size("long") == D("0.020")
        om.engine.faults.clear()
        wait_until(lambda: _done(om, intent), what="the exit done once the exchange answers")
        (done,) = wait_until(lambda: [n for n in om.notices if n.kind == "EXIT_DONE"], what="the completion told")
        assert "508" in done.text and om.position_size("long") == 0 and len(_closes(om)) == 1
        assert [n.kind for n in om.notices].count("EXIT_DELAYED") == 1  # told once, not at every retry
        assert not [n for n in om.notices if n.kind == "EXIT_NOT_EXECUTED"]


def test_an_exit_done_at_once_tells_nothing_more(tmp_path: Path) -> None:
    with order_side(tmp_path) as om:
        signal_id = _open_position(om, Side.LONG)
        intent = _exit(om, signal_id, Side.LONG, "close_all", message_id=509)
        om.ref.tell(ExecuteExit(intent))
        wait_until(lambda: _done(om, intent), what="the exit done")
        assert not [n for n in om.notices if n.kind in ("EXIT_DELAYED", "EXIT_DONE", "EXIT_NOT_EXECUTED")]


def test_an_exit_that_breaks_is_failed_and_told_and_the_other_exits_go_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import trading.exits as exits

    with order_side(tmp_path) as om:
        broken_signal = _open_position(om, Side.LONG)
        other = om.entry(Side.LONG, size="0.5", symbol="ETHUSDT", market=True)
        om.send(other)
        wait_until(lambda: om.position_size("long", "ETHUSDT") == D("0.5"), what="the second entry filled")
        wait_until(lambda: om.journal.signal(other.signal_id).decision == "traded", what="the second traded")
        real_next_step = exits.next_step

        def next_step(intent: ExitIntent, **kwargs: Any) -> exits.ExitStep:
            if intent.symbol == "BTCUSDT":
                raise ZeroDivisionError("a fault in this exit alone")
            return real_next_step(intent, **kwargs)

        monkeypatch.setattr(exits, "next_step", next_step)
        broken = _exit(om, broken_signal, Side.LONG, "close_all", message_id=510)
        fine = ExitIntent(update_signal_id=om.journal.record_signal(CHANNEL, 511, {"kind": "update"}, "parsed", "",
                                                                     symbol="ETHUSDT"),
                          target_signal_id=other.signal_id, channel=CHANNEL, message_id=511, index=0,
                          symbol="ETHUSDT", hold_side="long", kind="close_all")
        assert om.journal.record_exit_intent(fine, "test")
        om.ref.tell(ExecuteExit(fine))
        wait_until(lambda: _done(om, fine), what="the other exit done")
        assert om.position_size("long", "ETHUSDT") == 0
        (notice,) = [n for n in om.notices if n.kind == "EXIT_NOT_EXECUTED"]
        assert "510" in notice.text and "internal error" in notice.text
        assert om.journal.exit(broken.key).state is IntentState.FAILED
        assert not om.journal.signal(broken_signal).closed and om.position_size("long") == D("0.020")
        assert om.ref.is_alive()


def test_a_break_even_stop_whose_reply_was_lost_replaces_the_old_stop_and_is_told(tmp_path: Path) -> None:
    from actors.messages import MoveStopToBreakEven

    with order_side(tmp_path, client_timeout_s=1.0) as om:
        _open_position(om, Side.LONG)
        (old,) = wait_until(lambda: om.stops("long"), what="the entry's stop")
        wait_until(lambda: len([p for p in om.engine.plan_orders("BTCUSDT") if p.plan_type == "profit_plan"]) == 3,
                   what="the take-profits placed (the fault below is for the stop)")
        om.engine.set_price("BTCUSDT", om.engine.price("BTCUSDT") * D("1.005"))  # break-even is below the price
        # The new stop is placed, its reply never arrives: the move is asked again and finds it there.
        om.engine.faults.timeout_after_accept("place-tpsl-order", delay_s=3.0)
        om.ref.tell(MoveStopToBreakEven("BTCUSDT", "long", "first target filled"))
        moved = wait_until(lambda: om.journal.events("STOP_MOVED"), what="the move journaled (told to the user)")
        assert moved[0].detail["break_even"] is True and moved[0].detail["previous"] == str(old.trigger_price)
        (stop,) = wait_until(lambda: [p for p in om.stops("long") if p.status == "live"] if all(
            p.order_id != old.order_id for p in om.stops("long") if p.status == "live") else None,
            what="the old stop cancelled")
        assert stop.trigger_price > old.trigger_price and stop.trigger_price == D(moved[0].detail["stop"])
