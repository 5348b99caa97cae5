"""Liquidation distance: one alert per stretch under the minimum, then reduce-only partial closes until the
distance is back above it (pure rule, then on the simulator)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e import System, running_system
from tests.waiting import wait_until
from trading.guard import LiquidationAction, LiquidationWatch

D = Decimal
KEY = ("BTCUSDT", "long")
NOTHING = LiquidationAction(alert=False, reduce=False)


def test_alerts_once_and_reduces_while_under_the_minimum() -> None:
    watch = LiquidationWatch(D("0.05"), retry_after_s=10)
    assert watch.observe(KEY, D("0.20"), D("1.0"), now=0) == NOTHING
    assert watch.observe(KEY, D("0.04"), D("1.0"), now=1) == LiquidationAction(alert=True, reduce=True)
    # The reduction is not visible yet: no second close, no second alert.
    assert watch.observe(KEY, D("0.04"), D("1.0"), now=2) == NOTHING
    # It shows (smaller position) and the distance is still too small: reduce again, still no alert.
    assert watch.observe(KEY, D("0.04"), D("0.75"), now=3) == LiquidationAction(alert=False, reduce=True)
    assert watch.observe(KEY, D("0.04"), D("0.75"), now=4) == NOTHING


def test_a_reduction_that_never_shows_is_retried_after_the_wait() -> None:
    watch = LiquidationWatch(D("0.05"), retry_after_s=10)
    assert watch.observe(KEY, D("0.03"), D("1.0"), now=0).reduce
    assert not watch.observe(KEY, D("0.03"), D("1.0"), now=9.9).reduce
    assert watch.observe(KEY, D("0.03"), D("1.0"), now=10) == LiquidationAction(alert=False, reduce=True)


def test_recovery_re_arms_the_alert() -> None:
    watch = LiquidationWatch(D("0.05"), retry_after_s=10)
    assert watch.observe(KEY, D("0.04"), D("1.0"), now=0).alert
    assert watch.observe(KEY, D("0.05"), D("0.75"), now=1) == NOTHING  # at the minimum counts as safe
    assert watch.observe(KEY, D("0.04"), D("0.75"), now=2) == LiquidationAction(alert=True, reduce=True)


def test_unknown_distance_neither_alerts_nor_re_arms() -> None:
    watch = LiquidationWatch(D("0.05"), retry_after_s=10)
    assert watch.observe(KEY, D("0.04"), D("1.0"), now=0).alert
    assert watch.observe(KEY, None, D("1.0"), now=1) == NOTHING
    assert not watch.observe(KEY, D("0.04"), D("1.0"), now=2).alert


def test_positions_are_watched_separately_and_forgotten_when_gone() -> None:
    watch = LiquidationWatch(D("0.05"), retry_after_s=10)
    short = ("BTCUSDT", "short")
    assert watch.observe(KEY, D("0.04"), D("1.0"), now=0).alert
    assert watch.observe(short, D("0.04"), D("1.0"), now=0).alert
    watch.forget_except({short})
    assert watch.observe(KEY, D("0.04"), D("1.0"), now=1).alert  # a new position on the same key
    assert not watch.observe(short, D("0.04"), D("1.0"), now=1).alert


# --- on the simulator --------------------------------------------------------------------------------------
def _leveraged_long(system: System) -> str:
    """A 10x long whose stop (5% below) sits below the price where liquidation gets nearer than 8%."""
    return (
        f"#BTC/USDT LONG\nEntry: {system.price('BTCUSDT')}\nTarget 1: {system.price('BTCUSDT', '1.05')}\n"
        f"Stop: {system.price('BTCUSDT', '0.95')}\nLeverage: Isolated (10X)"
    )


@pytest.mark.slow
def test_near_liquidation_alerts_once_and_reduces_reduce_only_until_back_above(tmp_path: Path) -> None:
    risk = {"cooldown_seconds": 0, "max_notional_per_trade": 2000, "account_risk_per_trade": 0.02}
    monitor = {"min_liquidation_distance_pct": 0.08, "liquidation_reduce_fraction": 0.25}
    with running_system(tmp_path, risk=risk, monitor=monitor) as system:
        journal = system.runtime.journal
        assert journal is not None
        system.channel.add_post(_leveraged_long(system))
        position = wait_until(lambda: next(iter(system.open_positions()), None), what="the position")
        opened = position.size
        entry = position.average_price
        liquidation = system.engine.liquidation_price(position)
        assert (entry - liquidation) / entry > D("0.08"), "far from liquidation at the start"

        # Mark 3% below the entry: liquidation is now about 6.8% away, the stop (5% below) has not fired.
        system.engine.set_price("BTCUSDT", entry * D("0.97"))
        wait_until(lambda: journal.events("POSITION_REDUCED"), what="a reduction")
        reduced = wait_until(lambda: (p := system.open_positions()) and p[0].size < opened and p[0],
                             what="a smaller position")
        assert reduced.size >= opened * D("0.5"), "reduced step by step, not closed at once"
        closes = [o for o in system.engine.orders("BTCUSDT") if o.reduce_only and o.order_source == "normal"]
        assert closes and all(o.order_type == "market" for o in closes)
        assert system.stop_plans("BTCUSDT"), "the stop stays while the position is reduced"

        # Back above the minimum: no further reductions, and still one alert for the whole stretch.
        system.engine.set_price("BTCUSDT", entry)
        settled = len(journal.events("POSITION_REDUCED"))
        polls = len(system.engine.requests_to("all-position"))
        wait_until(lambda: len(system.engine.requests_to("all-position")) >= polls + 5, what="more position polls")
        assert len(journal.events("POSITION_REDUCED")) == settled
        assert len(journal.events("LIQUIDATION_NEAR")) == 1
        assert system.open_positions(), "a recovered position is kept"

        # A new stretch under the minimum alerts again (re-armed).
        system.engine.set_price("BTCUSDT", entry * D("0.97"))
        wait_until(lambda: len(journal.events("LIQUIDATION_NEAR")) == 2, what="a second alert")
