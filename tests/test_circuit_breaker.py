"""Circuit breakers other than drawdown: an actor failing past its restart intensity changes the mode (a
signal-chain actor -> safe, a protecting actor -> panic), journaled, and protection keeps running.

The other breakers have their own files: drawdown (test_circuit_breaker_drawdown.py), a stop that cannot be
repaired (test_risk_daemon_sl_autofix_then_panic.py), the kill switch (test_kill_switch.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import System, running_system
from tests.waiting import wait_until
from trading.modes import Mode

pytestmark = pytest.mark.slow

SUPERVISOR = {"max_restarts": 1, "within_seconds": 60, "heartbeat_interval_seconds": 0.1,
              "heartbeat_timeout_seconds": 3, "backoff_base_seconds": 0.05, "backoff_max_seconds": 0.2}


def _kill(system: System, name: str, times: int) -> None:
    """Stop the actor's current instance ``times`` times, each time once the supervisor replaced it."""
    for _ in range(times):
        ref = wait_until(lambda: (r := system.runtime.directory.get(name)) is not None and r.is_alive() and r,
                         what=f"{name} running")
        ref.stop()
        wait_until(lambda ref=ref: system.runtime.directory.get(name) is not ref, what=f"{name} noticed down")


def test_a_signal_chain_actor_past_its_restart_intensity_trips_safe_mode_and_guarding_goes_on(tmp_path: Path) -> None:
    with running_system(tmp_path, supervisor=SUPERVISOR) as system:
        runtime = system.runtime
        system.channel.add_post(system.long_signal("BTCUSDT"))
        (stop,) = wait_until(lambda: system.stop_plans("BTCUSDT"), what="a protected position")

        _kill(system, "listener", times=2)
        wait_until(lambda: runtime.gate.mode is Mode.SAFE, what="safe mode")
        (changed,) = wait_until(lambda: system.events("MODE_CHANGED"), what="the mode change journaled")
        assert changed.detail["source"] == "escalation" and "listener" in changed.detail["reason"]
        assert [e.detail["name"] for e in system.events("ACTOR_FAILED")] == ["listener", "listener"]
        assert runtime.directory.get("listener") is None, "left stopped until an operator reset"

        # Protection is untouched: a stop lost now is still repaired, and the position stays open.
        system.engine.cancel_plan_orders("BTCUSDT", plan_type=stop.plan_type, ids=[(stop.order_id, None)])
        wait_until(lambda: system.stop_plans("BTCUSDT"), what="the stop repaired in safe mode")
        assert system.open_positions()
        assert runtime.gate.mode is Mode.SAFE


def test_a_protecting_actor_past_its_restart_intensity_trips_panic_and_flattens(tmp_path: Path) -> None:
    with running_system(tmp_path, supervisor=SUPERVISOR) as system:
        runtime = system.runtime
        system.channel.add_post(system.long_signal("BTCUSDT"))
        wait_until(lambda: system.stop_plans("BTCUSDT"), what="a protected position")

        _kill(system, "position_guard", times=2)
        wait_until(lambda: runtime.gate.mode is Mode.PANIC, what="panic")
        wait_until(lambda: not system.open_positions(), what="the position closed")
        closes = [o for o in system.engine.orders("BTCUSDT") if o.reduce_only and o.order_source == "normal"]
        assert len(closes) == 1
        (changed,) = wait_until(lambda: system.events("MODE_CHANGED"), what="the mode change journaled")
        assert changed.detail["mode"] == "panic" and changed.detail["source"] == "escalation"
        # A protecting actor is never given up: it runs again, at the slowest backoff.
        wait_until(lambda: (ref := runtime.directory.get("position_guard")) is not None and ref.is_alive(),
                   what="the guard back")
