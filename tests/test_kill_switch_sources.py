"""The kill-switch sources: file, environment variable and journal flag; the strictest wins, and every
source fails safe on content it does not understand."""

from __future__ import annotations

from pathlib import Path

import pytest

from trading.kill_switch import KillSwitchReading, KillSwitchSource, read_kill_switch, reset_allowed
from trading.modes import Mode


@pytest.fixture
def switch_file(tmp_path: Path) -> Path:
    return tmp_path / "KILL_SWITCH"


def test_no_source_present_means_no_trigger(switch_file: Path) -> None:
    reading = read_kill_switch(switch_file, {}, None)
    assert reading.mode is None
    assert reset_allowed(reading)


@pytest.mark.parametrize(
    ("content", "expected"),
    [("", Mode.SAFE), ("safe\n", Mode.SAFE), ("PANIC", Mode.PANIC), ("stop everything", Mode.SAFE)],
)
def test_kill_switch_file_content_selects_the_mode(switch_file: Path, content: str, expected: Mode) -> None:
    switch_file.write_text(content)
    reading = read_kill_switch(switch_file, {}, None)
    assert reading.mode is expected
    assert reading.source == "file"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", Mode.SAFE), ("true", Mode.SAFE), ("safe", Mode.SAFE), ("panic", Mode.PANIC), ("0", None),
     ("weird", Mode.SAFE)],
)
def test_env_variable_selects_the_mode(switch_file: Path, value: str, expected: Mode | None) -> None:
    assert read_kill_switch(switch_file, {"TRADER_KILL_SWITCH": value}, None).mode is expected


@pytest.mark.parametrize(("flag", "expected"), [("safe", Mode.SAFE), ("panic", Mode.PANIC), (None, None)])
def test_journal_flag_selects_the_mode(switch_file: Path, flag: str | None, expected: Mode | None) -> None:
    assert read_kill_switch(switch_file, {}, flag).mode is expected


def test_the_strictest_source_wins(switch_file: Path) -> None:
    switch_file.write_text("safe")
    reading = read_kill_switch(switch_file, {"TRADER_KILL_SWITCH": "1"}, "panic")
    assert reading.mode is Mode.PANIC
    assert reading.source == "flag"


def test_an_unreadable_kill_switch_path_fails_safe(tmp_path: Path) -> None:
    directory_in_place_of_file = tmp_path / "KILL_SWITCH"
    directory_in_place_of_file.mkdir()
    assert read_kill_switch(directory_in_place_of_file, {}, None).mode is Mode.SAFE


def test_reset_is_refused_while_a_stricter_trigger_is_present() -> None:
    safe = KillSwitchReading(Mode.SAFE, "file", "present")
    panic = KillSwitchReading(Mode.PANIC, "env", "panic")
    assert not reset_allowed(safe)
    assert reset_allowed(safe, Mode.SAFE)  # PANIC -> SAFE is fine while only a SAFE trigger is present
    assert not reset_allowed(panic, Mode.SAFE)


def test_source_reads_the_journal_flag_and_fails_safe_when_it_cannot(switch_file: Path) -> None:
    flags = {"kill_switch": "panic"}
    assert KillSwitchSource(switch_file, {}, flags.get)().mode is Mode.PANIC

    def broken_get_flag(name: str) -> str | None:
        raise OSError("database is locked")

    assert KillSwitchSource(switch_file, {}, broken_get_flag)().mode is Mode.SAFE
