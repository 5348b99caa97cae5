"""risk.use_default_stop_loss end to end: a post that names no stop trades only with the configured default."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e import running_system
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


def test_stopless_post_trades_with_the_default_stop_when_configured(tmp_path: Path) -> None:
    risk = {"cooldown_seconds": 0, "use_default_stop_loss": True, "default_stop_loss_pct": 0.01,
            "max_notional_per_trade": 1_000_000}
    with running_system(tmp_path, risk=risk) as system:
        journal = system.runtime.journal
        assert journal is not None
        entry = system.price("ETHUSDT")
        system.channel.add_post(f"ETH LONG\nEntry: {entry}\nTargets: {system.price('ETHUSDT', '1.02')}")
        (order,) = wait_until(lambda: system.entry_orders("ETHUSDT"), what="the entry on the simulator")

        # The stop sent with the entry is 1 % below it (rounded away from the entry), and journaled as the default.
        stop = order.preset_stop_loss
        assert stop is not None
        tick = Decimal(1).scaleb(-system.engine.contract("ETHUSDT").price_place)
        assert entry * Decimal("0.99") - tick < stop <= entry * Decimal("0.99")
        (used,) = journal.events("DEFAULT_STOP_LOSS_USED")
        assert used.detail["symbol"] == "ETHUSDT" and Decimal(used.detail["stop_loss"]) == stop
        # Sized from that distance: the loss at the stop stays within the risk budget (0.3 % of equity, fees aside).
        equity = system.engine.account().equity
        assert order.size * (entry - stop) <= equity * Decimal("0.003")
        assert order.size * (entry - stop) > equity * Decimal("0.003") * Decimal("0.8")
        assert journal.events("NOTIFY_ONLY") == []
