"""Risk daemon, repair failing: a position whose stop cannot be put back within
``risk.stoploss.repair_timeout_seconds`` is closed reduce-only and the circuit breaker puts the system in safe
mode, all journaled; no new entry is taken afterwards."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e import running_system
from tests.waiting import wait_until
from trading.modes import Mode

pytestmark = pytest.mark.slow

REPAIR_TIMEOUT_S = 1.0
RISK = {"cooldown_seconds": 0, "stoploss": {"repair_timeout_seconds": REPAIR_TIMEOUT_S}}


@pytest.mark.parametrize("pos_mode", ["one_way_mode", "hedge_mode"])
def test_repair_failing_past_the_timeout_closes_the_position_and_trips_safe_mode(tmp_path: Path, pos_mode: str) -> None:
    with running_system(tmp_path, risk=RISK, bitget={"position_mode": pos_mode}) as system:
        engine, runtime = system.engine, system.runtime
        system.channel.add_post(system.long_signal("BTCUSDT"))
        (stop,) = wait_until(lambda: system.stop_plans("BTCUSDT"), what="the position's stop")
        wait_until(lambda: len([p for p in engine.plan_orders("BTCUSDT") if p.plan_type == "profit_plan"]) == 2,
                   what="the take-profit ladder")

        engine.faults.reject_next("place-tpsl-order", "40891", "can not set take profit or stop loss", times=1000)
        engine.cancel_plan_orders("BTCUSDT", plan_type=stop.plan_type, ids=[(stop.order_id, None)])
        lost_at = time.monotonic()

        wait_until(lambda: not system.open_positions(), what="the protective close")
        assert time.monotonic() - lost_at >= REPAIR_TIMEOUT_S, "repairs are tried for the whole timeout first"
        repairs = [r for r in engine.requests_to("place-tpsl-order") if r.params.get("planType") == "pos_loss"]
        assert len(repairs) >= 2 and all(r.code == "40891" for r in repairs)

        closes = [o for o in engine.orders("BTCUSDT") if o.is_closing and o.order_source == "normal"]
        assert len(closes) == 1, "one protective close"
        assert closes[0].order_type == "market" and closes[0].state == "filled"
        if pos_mode == "hedge_mode":
            assert closes[0].trade_side == "close"
        else:
            assert closes[0].reduce_only

        wait_until(lambda: runtime.gate.mode is Mode.SAFE, what="safe mode")
        wait_until(lambda: system.events("MODE_CHANGED") and system.events("PROTECTIVE_CLOSE"),
                   what="the close and the mode change journaled")
        (changed,) = system.events("MODE_CHANGED")
        assert changed.detail["mode"] == "safe" and "stop repair failed" in changed.detail["reason"]
        kinds = [e.kind for e in system.events(None)]
        missing, failed = kinds.index("STOP_MISSING"), kinds.index("STOP_REPAIR_FAILED")
        assert missing < failed < kinds.index("PROTECTIVE_CLOSE") and failed < kinds.index("MODE_CHANGED")
        assert system.events("PROTECTIVE_CLOSE")[0].detail["symbol"] == "BTCUSDT"

        # The breaker holds: a new signal is refused, with its reason journaled, and nothing is sent.
        engine.faults.clear()
        entries_before = len(system.entry_orders())
        system.channel.add_post(system.long_signal("ETHUSDT"))
        refused = wait_until(lambda: system.events("SIGNAL_REFUSED"), what="the new signal refused")
        assert refused[0].detail["reason"] == "mode_not_normal"
        assert len(system.entry_orders()) == entries_before and not system.open_positions()
        metrics = runtime.metrics.registry
        # Counted just after the event is journaled (what the wait above saw).
        wait_until(lambda: metrics.get_sample_value("following_refusals_total", {"reason": "mode_not_normal"}) == 1,
                   what="the refusal counted")


def test_a_refused_protective_close_is_sent_again_until_flat(tmp_path: Path) -> None:
    with running_system(tmp_path, risk=RISK) as system:
        engine, runtime = system.engine, system.runtime
        system.channel.add_post(system.long_signal("BTCUSDT"))
        (stop,) = wait_until(lambda: system.stop_plans("BTCUSDT"), what="the position's stop")
        wait_until(lambda: len([p for p in engine.plan_orders("BTCUSDT") if p.plan_type == "profit_plan"]) == 2,
                   what="the take-profit ladder")

        engine.faults.reject_next("place-tpsl-order", "40891", "can not set take profit or stop loss", times=1000)
        engine.faults.reject_next("place-order", "40762", "The order amount exceeds the balance")  # the first close
        engine.cancel_plan_orders("BTCUSDT", plan_type=stop.plan_type, ids=[(stop.order_id, None)])

        wait_until(lambda: runtime.gate.mode is Mode.SAFE, what="safe mode")
        closes_sent = wait_until(lambda: [r for r in engine.requests_to("place-order") if r.code == "40762"],
                                 what="the first close refused")
        assert len(closes_sent) == 1 and system.open_positions(), "still open after the refused close"
        wait_until(lambda: not system.open_positions(), what="flat after the close is sent again")
        events = wait_until(lambda: len(e := system.events("PROTECTIVE_CLOSE")) == 2 and e, what="both journaled")
        assert [e.detail["reason"] for e in events] == ["stop could not be repaired in time",
                                                        "stop could not be repaired: still open"]
        closes = [o for o in engine.orders("BTCUSDT") if o.reduce_only and o.order_source == "normal"]
        assert len(closes) == 1 and closes[0].state == "filled"
