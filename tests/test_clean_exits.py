"""Clean exits: no stop or take-profit of ours outlives its position, the plans of ours on a position never sum to
more than it, and plans someone else placed are reported, never touched.

The pure rule (``trading.reconcile.plan_hygiene_decisions``) first, then the OrderManager on the simulator set to
keep plans on a flat side (as some venues and mocks do; Bitget drops them).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.messages import ExecuteExit
from exchange.bitget.contracts import Contract
from exchange.bitget.models import PlanOrder, Position, TpslRequest
from parsing.signals import Side
from tests.order_side import CHANNEL, OrderSide, order_side
from tests.waiting import wait_until
from trading import reconcile as rec
from trading.intents import ExitIntent, ExitKind
from trading.journal import IntentState

D = Decimal
CONTRACT = Contract(symbol="BTCUSDT", base_coin="BTC", quote_coin="USDT", price_place=1, price_end_step=1,
                    volume_place=3, size_multiplier=D("0.001"), min_trade_num=D("0.001"), min_trade_usdt=D("5"),
                    max_lever=125)


def _position(total: str, side: str = "long", symbol: str = "BTCUSDT") -> Position:
    return Position(symbol=symbol, hold_side=side, total=D(total), available=D(total), average_open_price=D("60000"),
                    margin_mode="isolated", leverage=D(5), mark_price=D("60000"), locked=D(0), liquidation_price=None,
                    unrealized_pnl=D(0), pos_mode="hedge_mode")


def _plan(order_id: str, plan_type: str, size: str | None, *, oid: str | None = None, trigger: str = "61000",
          side: str = "long", symbol: str = "BTCUSDT", c_time: int = 0) -> PlanOrder:
    return PlanOrder(order_id=order_id, client_oid=oid, symbol=symbol, plan_type=plan_type, trigger_price=D(trigger),
                     trigger_type="mark_price", execute_price=None, size=D(size) if size else None, side=None,
                     trade_side=None, pos_side=side, status="live", c_time=c_time)


def _hygiene(positions: list[Position], plans: list[PlanOrder], **kwargs: Any) -> list[rec.Decision]:
    return rec.plan_hygiene_decisions(positions, plans, "hedge_mode", contracts={"BTCUSDT": CONTRACT},
                                      our_stop_prices=kwargs.pop("our_stop_prices", {}), **kwargs)


# --- the rule --------------------------------------------------------------------------------------------
def test_plans_of_ours_on_a_flat_side_are_cancelled_and_others_reported_once() -> None:
    plans = [_plan("1", "profit_plan", "0.01", oid="fl_abc_tp1"), _plan("2", "pos_loss", None, trigger="59000"),
             _plan("3", "profit_plan", "0.01", oid="manual7"), _plan("4", "loss_plan", "0.02", oid="other")]
    decisions = _hygiene([], plans, our_stop_prices={"BTCUSDT": frozenset({D("59000")})})
    assert {(type(d).__name__, d.order_id) for d in decisions} == {
        ("CancelPlan", "1"), ("CancelPlan", "2"), ("ReportForeignPlan", "3"), ("ReportForeignPlan", "4")}
    again = _hygiene([], plans, our_stop_prices={"BTCUSDT": frozenset({D("59000")})},
                     reported_foreign=frozenset({"3", "4"}))
    assert {d.order_id for d in again} == {"1", "2"}


def test_plans_on_the_other_side_or_coin_are_not_the_positions() -> None:
    plans = [_plan("1", "profit_plan", "0.01", oid="fl_x_tp1", side="short"),
             _plan("2", "profit_plan", "0.01", oid="fl_y_tp1", symbol="ETHUSDT")]
    decisions = _hygiene([_position("0.01", "long")], plans)
    assert {d.order_id for d in decisions if isinstance(d, rec.CancelPlan)} == {"1", "2"}


def test_take_profits_bigger_than_the_position_shrink_in_proportion() -> None:
    # The outside campaign's case: a 0.06 position carrying take-profits for 0.48.
    plans = [_plan(str(n), "profit_plan", "0.06", oid=f"fl_s_tp{n}", c_time=n) for n in range(1, 9)]
    decisions = _hygiene([_position("0.06")], plans)
    sizes = {d.order_id: d.size for d in decisions if isinstance(d, rec.ResizeTakeProfit)}
    assert sizes == {str(n): D("0.007") for n in range(1, 9)}
    assert sum(sizes.values()) <= D("0.06")


def test_a_take_profit_shrunk_below_the_minimum_is_cancelled() -> None:
    plans = [_plan("1", "profit_plan", "0.010", oid="fl_s_tp1"), _plan("2", "profit_plan", "0.001", oid="fl_s_tp2")]
    decisions = _hygiene([_position("0.005")], plans)
    assert [(type(d).__name__, d.order_id) for d in decisions] == [("ResizeTakeProfit", "1"), ("CancelPlan", "2")]
    assert decisions[0].size == D("0.004")


def test_stops_of_ours_over_the_position_are_trimmed_from_the_latest() -> None:
    plans = [_plan("1", "loss_plan", "0.02", oid="fl_s_sl", trigger="59000", c_time=1),
             _plan("2", "loss_plan", "0.01", oid="fl_s_sl2", trigger="59000", c_time=2),
             _plan("3", "loss_plan", "0.05", oid="theirs", trigger="58000", c_time=3)]
    decisions = _hygiene([_position("0.015")], plans)
    assert [(type(d).__name__, d.order_id) for d in decisions] == [("CancelPlan", "2"), ("ResizeStop", "1")]
    assert decisions[1].size == D("0.015")


def test_plans_within_the_position_are_left_alone() -> None:
    plans = [_plan("1", "profit_plan", "0.01", oid="fl_s_tp1"), _plan("2", "profit_plan", "0.01", oid="fl_s_tp2"),
             _plan("3", "pos_loss", None, trigger="59000"), _plan("4", "profit_plan", "9", oid="theirs")]
    assert _hygiene([_position("0.02")], plans) == []


# --- on the simulator ----------------------------------------------------------------------------------------
def _exit(om: OrderSide, signal_id: int, kind: ExitKind, message_id: int, percent: str | None = None) -> ExitIntent:
    update_id = om.journal.record_signal(CHANNEL, message_id, {"kind": "update"}, "parsed", "", symbol="BTCUSDT")
    intent = ExitIntent(update_signal_id=update_id, target_signal_id=signal_id, channel=CHANNEL,
                        message_id=message_id, index=0, symbol="BTCUSDT", hold_side="long", kind=kind,
                        percent=D(percent) if percent else None)
    om.journal.record_exit_intent(intent, "test")
    assert om.ref is not None
    om.ref.tell(ExecuteExit(intent))
    return intent


def _protected_long(om: OrderSide, size: str = "0.030") -> int:
    bundle = om.entry(Side.LONG, size=size, market=True)
    om.send(bundle)
    wait_until(lambda: len(om.take_profits("long")) == 3 and om.stops("long"), what="stop and three targets")
    return bundle.signal_id


def _ours(om: OrderSide) -> list[Any]:
    return [p for p in om.engine.plan_orders("BTCUSDT") if (p.client_oid or "").startswith("fl")
            or p.plan_type == "pos_loss"]


def _finished(om: OrderSide, intent: ExitIntent) -> bool:
    row = om.journal.exit(intent.key)
    return row is not None and row.state is IntentState.DONE


@pytest.mark.parametrize("pos_mode", ["one_way_mode", "hedge_mode"])
def test_a_full_close_leaves_no_plan_of_ours(tmp_path: Path, pos_mode: str) -> None:
    with order_side(tmp_path, pos_mode=pos_mode, check_interval_s=3600) as om:
        om.engine.faults.plans_survive_flat(True)
        signal_id = _protected_long(om)
        intent = _exit(om, signal_id, "close_all", 700)
        wait_until(lambda: _finished(om, intent), what="the close")
        assert om.position_size("long") == 0
        assert _ours(om) == []
        assert om.journal.events("PLAN_CANCELLED")


def test_a_partial_close_shrinks_the_targets_to_the_rest(tmp_path: Path) -> None:
    with order_side(tmp_path, check_interval_s=3600) as om:
        om.engine.faults.plans_survive_flat(True)
        signal_id = _protected_long(om, size="0.030")
        assert sum(p.size for p in om.take_profits("long")) == D("0.030")
        intent = _exit(om, signal_id, "close_partial", 701, percent="50")
        wait_until(lambda: _finished(om, intent), what="the partial close")
        rest = om.position_size("long")
        assert rest == D("0.015")
        targets = om.take_profits("long")
        assert targets and sum(p.size for p in targets) <= rest


def test_orphan_plans_of_ours_are_cancelled_and_foreign_ones_only_reported(tmp_path: Path) -> None:
    with order_side(tmp_path, check_interval_s=0.2) as om:
        om.engine.faults.plans_survive_flat(True)
        _protected_long(om)
        hold = "buy"  # one-way mode names the TP/SL side by the closing trade
        om.client.place_tpsl_order(TpslRequest(symbol="BTCUSDT", plan_type="profit_plan",
                                               trigger_price=om.engine.price("BTCUSDT") * D("1.05"),
                                               hold_side=hold, size=D("0.005"), client_oid="byhand1"))
        om.engine.close_positions("BTCUSDT")  # closed on the exchange: our plans stay behind on this venue
        wait_until(lambda: _ours(om) == [], what="our orphaned plans cancelled")
        wait_until(lambda: om.journal.events("FOREIGN_PLAN"), what="the foreign plan reported")
        (foreign,) = [p for p in om.engine.plan_orders("BTCUSDT")]
        assert foreign.client_oid == "byhand1" and foreign.status == "live"
        hits = len(om.engine.requests_to("all-position"))
        wait_until(lambda: len(om.engine.requests_to("all-position")) >= hits + 4, what="more passes")
        assert len(om.journal.events("FOREIGN_PLAN")) == 1
        assert len([n for n in om.notices if n.kind == "FOREIGN_PLAN"]) == 1
