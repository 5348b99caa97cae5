"""The kill switch on the running system: every trigger sets its mode; PANIC cancels working entries, closes
every position reduce-only and keeps the stops until flat; SAFE refuses entries but keeps managing positions;
only a human reset leaves PANIC.

Reading the sources (file content, env values, flag values, failing safe) is unit-tested in
test_kill_switch_sources.py; SIGUSR1 (safe) and SIGUSR2 (panic) on the running system in test_operations.py;
panic surviving a restart and the `reset-mode` command in test_reset_mode.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import System, running_system
from tests.waiting import wait_until
from trading.guard import PatienceClock
from trading.journal import KILL_SWITCH_FLAG
from trading.modes import Mode

KEY = ("BTCUSDT", "long")
# Positions polled with headroom under all-position's 5 requests/s: the panic close reads them too.
MONITOR = {"poll_intervals": {"account_seconds": 0.25, "positions_seconds": 0.4, "open_orders_seconds": 0.4},
           "price_feed": {"mode": "rest", "interval_seconds": 0.2}, "health": {"port": 0}}


def test_patience_clock_never_fires_on_first_sight_then_every_interval() -> None:
    clock = PatienceClock(2.0)
    assert not clock.due(KEY, now=0)
    assert not clock.due(KEY, now=1.9)
    assert clock.due(KEY, now=2.0)
    assert not clock.due(KEY, now=3.0)
    assert clock.due(KEY, now=4.0)
    clock.forget_except(set())
    assert not clock.due(KEY, now=10.0), "a condition seen anew starts its wait again"


# --- on the running system ---------------------------------------------------------------------------------
def _mode_metric(system: System, mode: Mode) -> float | None:
    return system.runtime.metrics.registry.get_sample_value("following_trading_mode", {"mode": mode.value})


@pytest.mark.slow
@pytest.mark.parametrize(
    ("source", "value", "mode"),
    [("file", "", Mode.SAFE), ("file", "panic", Mode.PANIC), ("env", "1", Mode.SAFE), ("env", "panic", Mode.PANIC),
     ("flag", "safe", Mode.SAFE), ("flag", "panic", Mode.PANIC)],
)
def test_each_trigger_sets_its_mode_while_running(tmp_path: Path, source: str, value: str, mode: Mode) -> None:
    env = {"FOLLOWING_TEST": "1"}  # the same dict object is the runtime's environment (an empty one is replaced)
    with running_system(tmp_path, env) as system:
        runtime = system.runtime
        assert runtime.gate.mode is Mode.NORMAL and runtime.journal is not None
        if source == "file":
            (tmp_path / "KILL_SWITCH").write_text(value)
        elif source == "env":
            env["TRADER_KILL_SWITCH"] = value  # the runtime reads its environment on every poll
        else:
            runtime.journal.set_flag(KILL_SWITCH_FLAG, value)
        wait_until(lambda: runtime.gate.mode is mode, what=f"{mode.value} from the {source}")
        (changed,) = wait_until(lambda: system.events("MODE_CHANGED"), what="the change journaled")
        assert changed.detail["mode"] == mode.value and changed.detail["source"] == f"kill_switch:{source}"
        wait_until(lambda: _mode_metric(system, mode) == 1.0, what="the mode metric")
        assert _mode_metric(system, Mode.NORMAL) == 0.0

        system.channel.add_post(system.long_signal("BTCUSDT"))
        wait_until(lambda: system.events("SIGNAL_REFUSED"), what="the entry refused")
        assert system.entry_orders() == []


@pytest.mark.slow
def test_panic_cancels_entries_closes_everything_reduce_only_keeps_stops_until_flat_and_needs_a_reset(
    tmp_path: Path,
) -> None:
    risk = {"cooldown_seconds": 0, "stoploss": {"repair_timeout_seconds": 1}}
    with running_system(tmp_path, risk=risk, monitor=MONITOR) as system:
        engine, runtime = system.engine, system.runtime
        system.channel.add_post(system.long_signal("BTCUSDT"))
        system.channel.add_post(system.long_signal("SOLUSDT"))
        resting = system.price("ETHUSDT", "0.97")
        system.channel.add_post(f"#ETH/USDT LONG\nEntry: {resting}\nTarget 1: {system.price('ETHUSDT', '1.01')}\n"
                                f"Stop: {system.price('ETHUSDT', '0.96')}")
        wait_until(lambda: len(system.open_positions()) == 2 and system.stop_plans("BTCUSDT")
                   and system.stop_plans("SOLUSDT") and engine.orders("ETHUSDT", open_only=True), what="the setup")

        # The first close is refused by the exchange: that position stays open for a while.
        engine.faults.reject_next("place-order", "40762", "The order amount exceeds the balance")
        (tmp_path / "KILL_SWITCH").write_text("panic")
        wait_until(lambda: runtime.gate.mode is Mode.PANIC, what="panic")
        wait_until(lambda: not engine.orders("ETHUSDT", open_only=True), what="the working entry cancelled")
        assert [o.state for o in engine.orders("ETHUSDT")] == ["canceled"]
        (survivor,) = wait_until(lambda: len(system.open_positions()) == 1 and system.open_positions(),
                                 what="one position closed, the refused one still open")
        assert system.stop_plans(survivor.symbol), "the stop stays while the position is open"

        wait_until(lambda: not system.open_positions(), what="flat: the guard closed the survivor again")
        closes = [o for o in engine.orders() if o.order_source == "normal" and o.reduce_only]
        assert sorted(o.symbol for o in closes) == ["BTCUSDT", "SOLUSDT"], "one reduce-only close per position"
        assert all(o.order_type == "market" and o.state == "filled" for o in closes)
        assert engine.requests_to("cancel-plan-order") == [], "the bot never removed a stop: they went with the flat"
        assert system.events("PANIC_CLOSE")
        retried = wait_until(lambda: system.events("PROTECTIVE_CLOSE"), what="the second close journaled")
        assert [(e.detail["symbol"], e.detail["reason"]) for e in retried] == [(survivor.symbol, "panic: still open")]

        # Panic is sticky: the trigger gone, still panic and no entries; a human reset ends it.
        system.channel.add_post(system.long_signal("XRPUSDT"))
        (tmp_path / "KILL_SWITCH").unlink()
        wait_until(lambda: system.events("SIGNAL_REFUSED"), what="the entry refused in panic")
        polls = system.channel.hits
        wait_until(lambda: system.channel.hits >= polls + 5, what="more polls")
        assert runtime.gate.mode is Mode.PANIC and system.entry_orders("XRPUSDT") == []
        assert runtime.supervisor is not None
        assert runtime.supervisor.proxy().reset_mode().get(timeout=5)
        assert runtime.gate.mode is Mode.NORMAL
        system.channel.add_post(system.long_signal("DOGEUSDT"))
        wait_until(lambda: system.entry_orders("DOGEUSDT"), what="an entry after the reset")


@pytest.mark.slow
def test_safe_refuses_new_entries_but_keeps_managing_the_open_position(tmp_path: Path) -> None:
    with running_system(tmp_path) as system:
        engine, runtime = system.engine, system.runtime
        assert runtime.journal is not None
        btc_post = system.channel.add_post(system.long_signal("BTCUSDT"))
        (position,) = wait_until(system.open_positions, what="a position")
        wait_until(lambda: system.stop_plans("BTCUSDT"), what="its stop")

        runtime.journal.set_flag(KILL_SWITCH_FLAG, "safe")
        wait_until(lambda: runtime.gate.mode is Mode.SAFE, what="safe mode")
        system.channel.add_post(system.long_signal("ETHUSDT"))
        (refused,) = wait_until(lambda: system.events("SIGNAL_REFUSED"), what="the ETH signal refused")
        assert refused.detail["reason"] == "mode_not_normal"
        assert system.entry_orders("ETHUSDT") == []

        # The open position is still managed: a partial close from the channel is carried out, its stop kept.
        system.channel.add_post("#BTC/USDT close 50% here", reply_to=btc_post)
        wait_until(lambda: system.open_positions() and system.open_positions()[0].size < position.size,
                   what="half closed in safe mode")
        half = engine.contract("BTCUSDT").round_size(position.size / 2)  # rounded down to the size step
        assert system.open_positions()[0].size == position.size - half
        assert system.stop_plans("BTCUSDT")
        assert runtime.gate.mode is Mode.SAFE
        # Safe mode cancels no stop: a cancelled plan can only be a take-profit the smaller position no longer needs.
        cancelled_types = {str(r.params.get("planType")) for r in engine.requests_to("cancel-plan-order")}
        assert cancelled_types <= {"profit_plan"}, cancelled_types
