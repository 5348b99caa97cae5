"""Orders and positions nobody here placed are adopted as external: journaled, alerted once, not managed."""

from __future__ import annotations

from pathlib import Path

from tests.order_side import order_side
from tests.waiting import wait_until
from trading.journal import OrderState


def test_unknown_order_and_position_are_adopted_alerted_once_and_left_alone(tmp_path: Path) -> None:
    with order_side(tmp_path) as om:
        eth = om.engine.contract("ETHUSDT").round_price(om.engine.price("ETHUSDT") * 9 / 10)
        assert om.sim.place_order(symbol="ETHUSDT", side="buy", size="0.10", orderType="limit", price=str(eth),
                                  clientOid="by-hand-1").ok
        assert om.sim.place_order(symbol="SOLUSDT", side="sell", size="1.0", clientOid="by-hand-2").ok

        wait_until(lambda: om.journal.events("EXTERNAL_ORDER") and om.journal.events("EXTERNAL_POSITION"),
                   what="both adopted")
        passes = len(om.engine.requests_to("orders-pending"))
        wait_until(lambda: len(om.engine.requests_to("orders-pending")) >= passes + 3, what="three more passes")

        (order_event,) = om.journal.events("EXTERNAL_ORDER")
        (position_event,) = om.journal.events("EXTERNAL_POSITION")
        assert order_event.detail["client_oid"] == "by-hand-1"
        assert (position_event.detail["symbol"], position_event.detail["hold_side"]) == ("SOLUSDT", "short")
        assert sorted(n.kind for n in om.notices) == ["EXTERNAL_ORDER", "EXTERNAL_POSITION"]
        adopted = om.journal.order("by-hand-1")
        assert adopted is not None and adopted.leg == "external" and adopted.state is OrderState.ACCEPTED
        assert om.engine.plan_orders("SOLUSDT") == []  # no stop or target of ours on someone else's position
        assert [o.client_oid for o in om.engine.orders()] == ["by-hand-1", "by-hand-2"]  # nothing sent by us

        om.engine.cancel_order("ETHUSDT", client_oid="by-hand-1")
        wait_until(lambda: om.journal.order("by-hand-1").state is OrderState.CANCELED,  # type: ignore[union-attr]
                   what="the adopted order's end followed")


def test_a_position_the_guard_already_reported_is_not_reported_again(tmp_path: Path) -> None:
    with order_side(tmp_path, start=False) as om:
        assert om.sim.place_order(symbol="SOLUSDT", side="buy", size="1.0", clientOid="by-hand").ok
        om.journal.record_event("EXTERNAL_POSITION", {"symbol": "SOLUSDT", "hold_side": "long", "size": "1.0"})
        om.start_manager()
        wait_until(lambda: om.status.get("orders_reconciled"), what="start-up reconciliation")
        passes = len(om.engine.requests_to("orders-pending"))
        wait_until(lambda: len(om.engine.requests_to("orders-pending")) >= passes + 2, what="two more passes")
        assert len(om.journal.events("EXTERNAL_POSITION")) == 1
        assert om.notices == []  # (the by-hand market order filled at once: no open order to report)
