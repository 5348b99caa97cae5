"""Protective, panic and liquidation closes have client ids deterministic per (cause, position, attempt): while
the outcome of one is unknown (sent, no reply, not found by a lookup yet) no second close goes out for the same
cause and position; once the exchange decided it, the next request is the next attempt."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.messages import ProtectiveClose, ReducePosition
from parsing.signals import Side
from tests.order_side import OrderSide, order_side
from tests.waiting import wait_until
from trading.execution import action_client_oid
from trading.journal import OrderState
from trading.reconcile import position_key

D = Decimal


def _closes(om: OrderSide) -> list[Any]:
    return [o for o in om.engine.orders("BTCUSDT") if o.is_closing and o.order_source == "normal"]


def _close_rows(om: OrderSide) -> list[Any]:
    return [row for row in om.journal.orders(symbol="BTCUSDT") if row.leg == "close"]


def _open_long(om: OrderSide) -> None:
    bundle = om.entry(Side.LONG, size="0.040", market=True)
    om.send(bundle)
    wait_until(lambda: om.position_size("long") == D("0.040"), what="the entry filled")


def test_a_reduce_whose_outcome_is_unknown_is_not_sent_again_until_the_exchange_decided_it(tmp_path: Path) -> None:
    with order_side(tmp_path, check_interval_s=3600, unknown_outcome_deadline_s=0.5) as om:
        _open_long(om)
        om.engine.faults.fail_next("place-order", http_status=503)  # nothing applied; the outcome is unknown
        om.engine.faults.fail_next("detail", http_status=503, times=1000)  # and no lookup answers
        assert om.ref is not None
        om.ref.tell(ReducePosition("BTCUSDT", "long", D("0.5"), "liquidation near"))
        (first,) = wait_until(lambda: _close_rows(om), what="the reduce journaled")
        wait_until(lambda: om.journal.order(first.client_oid).state is OrderState.SUBMITTED, what="sent")
        om.ref.tell(ReducePosition("BTCUSDT", "long", D("0.5"), "liquidation near"))  # the guard asks again
        wait_until(lambda: om.journal.events("POSITION_REDUCED"), what="the second request handled")
        om.restart_manager()  # and the process restarts before anything was decided
        om.ref.tell(ReducePosition("BTCUSDT", "long", D("0.5"), "liquidation near"))
        wait_until(lambda: len(om.journal.events("POSITION_REDUCED")) >= 2, what="the third request handled")
        assert _closes(om) == [] and len(_close_rows(om)) == 1, "no second close while the first is undecided"

        om.engine.faults.clear()
        om.restart_manager(check_interval_s=0.1)  # lookups answer: not found, and past the deadline, never sent
        wait_until(lambda: om.journal.order(first.client_oid).state is OrderState.REJECTED, what="decided")
        om.ref.tell(ReducePosition("BTCUSDT", "long", D("0.5"), "liquidation near"))
        wait_until(lambda: om.position_size("long") == D("0.020"), what="reduced by half, once")
        assert len(_closes(om)) == 1
        position = om.client.position("BTCUSDT")[0]
        assert [row.client_oid for row in _close_rows(om)] == [
            action_client_oid("close", "liquidation_reduce", position_key(position), n) for n in (1, 2)]


def test_a_protective_close_sent_twice_for_one_position_is_looked_up_not_doubled(tmp_path: Path) -> None:
    with order_side(tmp_path, check_interval_s=3600) as om:
        _open_long(om)
        om.engine.faults.timeout_after_accept("place-order", delay_s=None)  # applied; the reply is lost
        assert om.ref is not None
        om.ref.tell(ProtectiveClose("BTCUSDT", "long", "stop repair failed"))
        wait_until(lambda: om.position_size("long") == 0, what="closed")
        om.restart_manager()
        om.ref.tell(ProtectiveClose("BTCUSDT", "long", "stop repair failed"))
        wait_until(lambda: om.status.get("orders_reconciled"), what="reconciled")
        wait_until(lambda: all(row.state is OrderState.FILLED for row in _close_rows(om)), what="the close resolved")
        assert len(_closes(om)) == 1 and len(_close_rows(om)) == 1
