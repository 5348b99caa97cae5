"""No entry in the wrong margin mode: a refused set-margin-mode stops the entry unless the mode is already right."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import running_system
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

LOCKED = ("45117", "Currently holding positions or orders, the margin mode cannot be adjusted")


def test_entry_is_refused_when_isolated_margin_cannot_be_set(tmp_path: Path) -> None:
    with running_system(tmp_path) as system:
        journal = system.runtime.journal
        assert journal is not None
        assert system.engine.settings("BTCUSDT").margin_mode == "crossed"  # the simulator's starting mode
        system.engine.faults.reject_next("set-margin-mode", *LOCKED)
        system.channel.add_post(system.long_signal("BTCUSDT"))

        refused = wait_until(lambda: [e for e in journal.events("SIGNAL_REFUSED")
                                      if e.detail["reason"] == "margin_mode_not_set"], what="the refusal")
        assert "45117" in refused[0].detail["detail"] and "crossed" in refused[0].detail["detail"]
        assert journal.orders() == [], "nothing journaled, nothing sent"
        assert system.entry_orders() == []
        sample = system.runtime.metrics.registry.get_sample_value(
            "following_refusals_total", {"reason": "margin_mode_not_set"})
        assert sample == 1


def test_entry_goes_ahead_when_the_symbol_is_already_in_the_mode_asked(tmp_path: Path) -> None:
    with running_system(tmp_path) as system:
        system.engine.set_margin_mode("BTCUSDT", "isolated")
        system.engine.faults.reject_next("set-margin-mode", *LOCKED)
        system.channel.add_post(system.long_signal("BTCUSDT"))
        (order,) = wait_until(lambda: system.entry_orders("BTCUSDT"), what="the entry on the simulator")
        assert order.margin_mode == "isolated"
        assert system.runtime.journal is not None
        assert system.runtime.journal.events("SIGNAL_REFUSED") == []
