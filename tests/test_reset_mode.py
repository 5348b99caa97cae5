"""Panic is sticky across restarts until an operator resets it, and the reset waits for the trigger to go."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cli.main import main
from tests.e2e import running_system
from tests.waiting import wait_until
from trading.journal import Journal
from trading.modes import Mode

pytestmark = pytest.mark.slow


def test_panic_survives_a_restart_and_reset_mode_needs_the_trigger_removed(tmp_path: Path) -> None:
    kill = tmp_path / "KILL_SWITCH"
    with running_system(tmp_path) as system:
        kill.write_text("panic")
        wait_until(lambda: system.runtime.gate.mode is Mode.PANIC, what="panic")
    with running_system(tmp_path) as system:
        assert system.runtime.gate.mode is Mode.PANIC, "a restart does not clear panic"

    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump({"storage": {"db_path": str(tmp_path / "journal.sqlite")},
                                    "kill_switch": {"file": str(kill)}}))
    assert main(["reset-mode", "--conf", str(conf)]) == 1, "refused while the kill switch file is there"
    kill.unlink()
    assert main(["reset-mode", "--conf", str(conf)]) == 0
    with running_system(tmp_path) as system:
        wait_until(lambda: system.runtime.gate.mode is Mode.NORMAL, what="normal after the reset")
        journal = system.runtime.journal
        assert isinstance(journal, Journal)
        # The gate changes first and the event is journaled a moment later: wait for it, do not race it.
        wait_until(lambda: journal.events("MODE_CHANGED")[-1].detail["mode"] == "normal",
                   what="the return to normal journaled")
