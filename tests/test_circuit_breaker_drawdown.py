"""The drawdown breaker: equity ``risk.max_account_drawdown_pct`` below its peak puts the system in safe mode.
New entries are refused with the reason journaled, open positions are still managed, the peak survives a
restart, and only an operator reset (which re-bases the peak) resumes trading."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e import System, running_system
from tests.waiting import wait_until
from trading.modes import Mode

pytestmark = pytest.mark.slow


def _peak(system: System) -> Decimal | None:
    assert system.runtime.journal is not None
    flag = system.runtime.journal.get_flag("peak_equity")
    return Decimal(flag) if flag is not None else None


# Positions polled with headroom under all-position's 5 requests/s, so the entry checks never meet a 429.
MONITOR = {"poll_intervals": {"account_seconds": 0.25, "positions_seconds": 0.4, "open_orders_seconds": 0.4},
           "price_feed": {"mode": "rest", "interval_seconds": 0.2}, "health": {"port": 0}}


def test_drawdown_from_the_peak_trips_safe_mode_refuses_entries_and_keeps_managing_positions(tmp_path: Path) -> None:
    risk = {"cooldown_seconds": 0, "max_account_drawdown_pct": 0.15}
    with running_system(tmp_path, risk=risk, monitor=MONITOR) as system:
        engine, runtime = system.engine, system.runtime
        btc_post = system.channel.add_post(system.long_signal("BTCUSDT"))
        wait_until(system.open_positions, what="a position")

        # The peak follows the highest equity seen, not the starting one.
        engine.deposit(Decimal("500"))
        peak = wait_until(lambda: (p := _peak(system)) is not None and p > 1400 and p, what="the new peak")
        assert peak == engine.account().equity
        # 14% below the peak: no breaker yet.
        engine.deposit(-(peak * Decimal("0.14")))
        equity_polls = len(engine.requests_to("accounts"))
        wait_until(lambda: len(engine.requests_to("accounts")) >= equity_polls + 3, what="three account polls")
        assert runtime.gate.mode is Mode.NORMAL
        # 16% below: the breaker trips.
        engine.deposit(-(peak * Decimal("0.02")))
        wait_until(lambda: runtime.gate.mode is Mode.SAFE, what="safe mode")
        (breaker,) = wait_until(lambda: system.events("DRAWDOWN_BREAKER"), what="the breaker journaled")
        assert Decimal(breaker.detail["peak"]) == peak
        assert Decimal(breaker.detail["equity"]) <= peak * Decimal("0.85")
        (changed,) = wait_until(lambda: system.events("MODE_CHANGED"), what="the mode change journaled")
        assert changed.detail["mode"] == "safe" and changed.detail["source"] == "drawdown"

        # No new entry: refused with its reason journaled and counted.
        system.channel.add_post(system.long_signal("ETHUSDT"))
        (refused,) = wait_until(lambda: system.events("SIGNAL_REFUSED"), what="the ETH signal refused")
        assert refused.detail["reason"] == "mode_not_normal" and "safe" in refused.detail["detail"]
        assert system.entry_orders("ETHUSDT") == []
        registry = runtime.metrics.registry
        # Counted just after the event is journaled (what the wait above saw).
        wait_until(lambda: registry.get_sample_value("following_refusals_total", {"reason": "mode_not_normal"}) == 1,
                   what="the refusal counted")

        # The open position is still managed: its stop stays, and a close from the channel is carried out.
        assert system.stop_plans("BTCUSDT")
        system.channel.add_post("#BTC/USDT close all", reply_to=btc_post)
        wait_until(lambda: not system.open_positions(), what="the close carried out in safe mode")
        closes = [o for o in engine.orders("BTCUSDT") if o.reduce_only and o.order_source == "normal"]
        assert len(closes) == 1

        # Safe mode holds by itself; an operator reset re-bases the peak and trading resumes.
        assert runtime.supervisor is not None
        assert runtime.supervisor.proxy().reset_mode().get(timeout=5)
        wait_until(lambda: system.events("PEAK_EQUITY_REBASED"), what="the peak re-based")
        wait_until(lambda: _peak(system) == engine.account().equity, what="the peak at today's equity")
        system.channel.add_post(system.long_signal("SOLUSDT"))
        wait_until(lambda: system.entry_orders("SOLUSDT"), what="a new entry after the reset")
        assert runtime.gate.mode is Mode.NORMAL
        assert len(system.events("DRAWDOWN_BREAKER")) == 1


def test_the_peak_survives_a_restart(tmp_path: Path) -> None:
    """On a real account (here a Bitget-compatible server that outlives the bot) the peak survives a restart.
    A dry run is a new paper account each start and re-bases it instead (tests/test_second_demo_run.py)."""
    from exchange.sim.engine import SimExchange
    from exchange.sim.testing import SimCredentials, running_sim

    creds = SimCredentials()
    env = {"BITGET_API_KEY": creds.api_key, "BITGET_API_SECRET": creds.api_secret,
           "BITGET_PASSPHRASE": creds.passphrase}
    engine = SimExchange(seed=3, equity=Decimal("1000"))
    with running_sim(engine=engine, credentials=creds) as sim:
        live = {"env": env, "dry_run": False, "bitget": {"base_url": sim.base_url}}
        with running_system(tmp_path, **live) as system:
            wait_until(lambda: _peak(system) == Decimal("1000"), what="the peak journaled")
            assert system.runtime.gate.mode is Mode.NORMAL

        # The account lost 20% while the bot was down: the journaled peak trips the breaker at once.
        engine.deposit(Decimal("-200"))
        with running_system(tmp_path, **live) as system:
            wait_until(lambda: system.runtime.gate.mode is Mode.SAFE, what="safe mode after the restart")
            (breaker,) = system.events("DRAWDOWN_BREAKER")
            assert Decimal(breaker.detail["peak"]) == Decimal("1000")
            assert Decimal(breaker.detail["equity"]) == Decimal("800")

        # Control: the same equity with a fresh journal (no peak yet) is no drawdown.
        fresh = tmp_path / "fresh"
        fresh.mkdir()
        with running_system(fresh, **live) as system:
            wait_until(lambda: _peak(system) == Decimal("800"), what="the first peak")
            assert system.runtime.gate.mode is Mode.NORMAL
