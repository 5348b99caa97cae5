"""A kill-switch path that is not a small regular file (a FIFO, a device, a directory, a huge file) never blocks
the reader: it is a trigger we cannot read, so SAFE, at once."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from trading.kill_switch import KillSwitchReading, read_kill_switch
from trading.modes import Mode


def _read_without_blocking(path: Path) -> KillSwitchReading:
    result: list[KillSwitchReading] = []
    reader = threading.Thread(target=lambda: result.append(read_kill_switch(path, {}, None)), daemon=True)
    reader.start()
    reader.join(timeout=20)  # a blocked open() never returns at all
    assert result, f"reading the kill switch at {path} blocked"
    return result[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_safe_and_never_blocks(tmp_path: Path) -> None:
    fifo = tmp_path / "KILL_SWITCH"
    os.mkfifo(fifo)
    reading = _read_without_blocking(fifo)
    assert reading.mode is Mode.SAFE and "FIFO" in reading.detail


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_symlink_to_a_fifo_is_safe_and_never_blocks(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "KILL_SWITCH"
    link.symlink_to(fifo)
    assert _read_without_blocking(link).mode is Mode.SAFE


def test_a_device_is_safe(tmp_path: Path) -> None:
    if not Path(os.devnull).exists():
        pytest.skip("no null device")
    link = tmp_path / "KILL_SWITCH"
    link.symlink_to(os.devnull)
    reading = _read_without_blocking(link)
    assert reading.mode is Mode.SAFE and "device" in reading.detail


def test_a_directory_is_safe(tmp_path: Path) -> None:
    (tmp_path / "KILL_SWITCH").mkdir()
    reading = _read_without_blocking(tmp_path / "KILL_SWITCH")
    assert reading.mode is Mode.SAFE and "directory" in reading.detail


def test_a_huge_file_is_safe_and_not_read(tmp_path: Path) -> None:
    huge = tmp_path / "KILL_SWITCH"
    with huge.open("wb") as handle:
        handle.truncate(50 * 1024**3)  # sparse: 50 GB that take no disk
    reading = _read_without_blocking(huge)
    assert reading.mode is Mode.SAFE and "bytes" in reading.detail


def test_a_dangling_symlink_is_no_trigger(tmp_path: Path) -> None:
    link = tmp_path / "KILL_SWITCH"
    link.symlink_to(tmp_path / "nothing")
    assert _read_without_blocking(link).mode is None


def test_a_small_file_still_says_what_it_says(tmp_path: Path) -> None:
    path = tmp_path / "KILL_SWITCH"
    path.write_text("panic\n")
    assert _read_without_blocking(path).mode is Mode.PANIC
    path.write_text("")
    assert _read_without_blocking(path).mode is Mode.SAFE
    path.unlink()
    assert _read_without_blocking(path).mode is None
