"""A stop that did not fire: the mark past a position's stop for longer than risk.stoploss.stop_breach_grace_seconds
with the position still open -> the guard closes it reduce-only by market, journals STOP_BREACHED_CLOSE and alerts;
/readyz names the position meanwhile."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from exchange.bitget.models import PlanOrder, Position
from tests.e2e import System, running_system
from tests.waiting import wait_until
from trading.guard import StopBreachWatch, breached_stop, guarding_stops

D = Decimal
KEY = ("BTCUSDT", "long")


def test_the_breach_closes_after_the_grace_not_before_then_retries_and_a_recovered_mark_ends_it() -> None:
    watch = StopBreachWatch(grace_s=5.0, retry_s=2.0)
    assert watch.observe(KEY, False, 0.0) is None
    assert watch.observe(KEY, True, 10.0) == "breached"
    assert watch.breached() == [KEY]
    assert watch.observe(KEY, True, 14.9) is None  # not before the grace
    assert watch.observe(KEY, True, 15.0) == "close"
    assert watch.breached_for(KEY, 15.0) == 5.0
    assert watch.observe(KEY, True, 16.0) is None
    assert watch.observe(KEY, True, 17.0) == "retry"  # still open and past: closed again
    assert watch.observe(KEY, False, 17.5) is None  # the mark came back: the breach is over
    assert watch.breached() == []
    assert watch.observe(KEY, True, 18.0) == "breached"  # a new breach gets its own grace
    assert watch.observe(KEY, True, 22.0) is None
    watch.forget_except(set())  # the position is gone
    assert watch.breached() == []


def test_which_stop_is_breached() -> None:
    assert breached_stop("long", [D("95"), D("90")], D("94")) == D("95")
    assert breached_stop("long", [D("95"), D("90")], D("89")) == D("95")
    assert breached_stop("long", [D("95")], D("95.5")) is None
    assert breached_stop("short", [D("105"), D("110")], D("106")) == D("105")
    assert breached_stop("short", [D("105")], D("104")) is None
    assert breached_stop("long", [D("95")], None) is None


def _position(**fields: Any) -> Position:
    base: dict[str, Any] = {"symbol": "BTCUSDT", "hold_side": "long", "total": D("1"), "available": D("1"),
                            "locked": D("0"), "average_open_price": D("100"), "mark_price": D("99"),
                            "liquidation_price": None, "leverage": D("5"), "margin_mode": "isolated",
                            "unrealized_pnl": D("0"), "pos_mode": "one_way_mode"}
    return Position(**{**base, **fields})


def _plan(trigger: str, plan_type: str = "pos_loss") -> PlanOrder:
    return PlanOrder(order_id="1", client_oid=None, symbol="BTCUSDT", plan_type=plan_type, trigger_price=D(trigger),
                     trigger_type="mark_price", execute_price=None, size=None, side="sell", trade_side=None,
                     pos_side="long", status="live")


def test_the_stops_compared_are_the_positions_stop_plans_else_its_own_stop() -> None:
    position = _position(stop_loss=D("90"))
    assert guarding_stops(position, [_plan("95"), _plan("120", "profit_plan")], "one_way_mode") == [D("95")]
    assert guarding_stops(position, [], "one_way_mode") == [D("90")]
    assert guarding_stops(_position(), [], "one_way_mode") == []


def _live_stop(system: System) -> Decimal:
    plans = [p for p in system.stop_plans("BTCUSDT") if p.status == "live"]
    return plans[0].trigger_price if plans else Decimal(0)


@pytest.mark.slow
def test_a_stop_that_did_not_fire_is_named_by_readyz_and_not_closed_before_the_grace(tmp_path: Path) -> None:
    with running_system(tmp_path, risk={"stoploss": {"stop_breach_grace_seconds": 3600}}) as system:
        system.engine.faults.stops_do_not_fire("BTCUSDT")
        system.channel.add_post(system.long_signal("BTCUSDT"))
        stop = wait_until(lambda: system.open_positions() and _live_stop(system), what="a protected position")
        wait_until(lambda: system.runtime.readiness()[0], what="ready with the position protected")
        system.engine.set_price("BTCUSDT", stop * D("0.995"))
        detail = wait_until(lambda: system.runtime.readiness()[1]["detail"].get("positions_protected"),
                            what="/readyz naming the breached position")
        assert "BTCUSDT long" in detail and "past the stop" in detail
        polls = len(system.engine.requests_to("all-position"))
        wait_until(lambda: len(system.engine.requests_to("all-position")) >= polls + 5, what="more position checks")
        assert system.open_positions(), "not closed before the grace"
        assert not system.events("STOP_BREACHED_CLOSE")


@pytest.mark.slow
def test_a_stop_that_did_not_fire_closes_the_position_after_the_grace_journaled_and_notified(tmp_path: Path) -> None:
    with running_system(tmp_path, risk={"stoploss": {"stop_breach_grace_seconds": 1}}) as system:
        notices: list[Any] = []
        system.runtime.notifier.listeners.append(notices.append)
        system.engine.faults.stops_do_not_fire("BTCUSDT")
        system.channel.add_post(system.long_signal("BTCUSDT"))
        stop = wait_until(lambda: system.open_positions() and _live_stop(system), what="a protected position")
        system.engine.set_price("BTCUSDT", stop * D("0.995"))
        wait_until(lambda: not system.open_positions(), what="the position closed by the guard")
        (event,) = system.events("STOP_BREACHED_CLOSE")
        assert event.detail["symbol"] == "BTCUSDT" and event.detail["hold_side"] == "long"
        assert D(event.detail["stop"]) == stop and event.detail["breached_for_s"] >= 1
        wait_until(lambda: [n for n in notices if n.kind == "STOP_BREACHED_CLOSE"], what="the alert")
        closes = [o for o in system.engine.orders("BTCUSDT") if o.reduce_only or o.trade_side == "close"]
        assert closes and all(o.order_type == "market" for o in closes)
