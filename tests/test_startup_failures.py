"""`following run` that cannot start says why and exits 2 at once, without a traceback or anything left running:
the health port is taken, or the journal is damaged, not writable or on a full disk."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from trading.journal import Journal, JournalOpenError, _open_problem

REPO = Path(__file__).resolve().parents[1]


def _config(tmp_path: Path, *, port: int, db: Path) -> Path:
    path = tmp_path / "conf.yaml"
    path.write_text(
        "dry_run: true\n"
        "demo:\n  enabled: true\n"
        f"storage:\n  db_path: {db}\n"
        f"monitor:\n  health:\n    port: {port}\n"
        f"kill_switch:\n  file: {tmp_path / 'KILL_SWITCH'}\n",
        encoding="utf-8")
    return path


def _run(conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", "run", "--conf", str(conf)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_a_busy_health_port_exits_2_naming_the_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = _run(_config(tmp_path, port=port, db=tmp_path / "journal.sqlite"))
    assert done.returncode == 2, done.stderr
    assert f"127.0.0.1:{port}" in done.stderr and "already in use" in done.stderr
    assert "Traceback" not in done.stderr and "restart" not in done.stderr.lower()


def test_a_damaged_journal_exits_2_naming_the_file(tmp_path: Path) -> None:
    db = tmp_path / "journal.sqlite"
    db.write_bytes(b"this is not a database, it is a shopping list\n" * 200)
    done = _run(_config(tmp_path, port=0, db=db))
    assert done.returncode == 2, done.stderr
    assert str(db) in done.stderr and "damaged" in done.stderr and "Move it aside" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_journal_in_a_place_that_cannot_be_written_exits_2(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the journal's folder should be")
    db = blocker / "journal.sqlite"
    done = _run(_config(tmp_path, port=0, db=db))
    assert done.returncode == 2, done.stderr
    assert str(blocker) in done.stderr and "Traceback" not in done.stderr


def test_open_problems_say_what_to_do() -> None:
    full = _open_problem("/data/j.sqlite", sqlite3.OperationalError("database or disk is full"))
    assert "/data/j.sqlite" in full and "full" in full and "free some space" in full
    readonly = _open_problem("/data/j.sqlite", sqlite3.OperationalError("attempt to write a readonly database"))
    assert "writable" in readonly


def test_a_damaged_journal_is_a_typed_error(tmp_path: Path) -> None:
    db = tmp_path / "j.sqlite"
    db.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(JournalOpenError, match="damaged"):
        Journal(str(db))


def test_a_full_disk_at_open_is_a_typed_error(tmp_path: Path) -> None:
    db = tmp_path / "j.sqlite"
    with sqlite3.connect(db) as conn:  # a database that may not grow past its first pages: "disk is full"
        conn.execute("PRAGMA page_size = 512")
        conn.execute("CREATE TABLE filler (x)")
    # max_page_count is per connection; the journal's own connection must meet it: patch connect.
    real_connect = sqlite3.connect

    def tiny(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)  # type: ignore[arg-type]
        conn.execute("PRAGMA max_page_count = 3")
        return conn

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite3, "connect", tiny)
        with pytest.raises(JournalOpenError, match="full"):
            Journal(str(db))


def test_reset_mode_on_a_damaged_journal_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    db = tmp_path / "journal.sqlite"
    db.write_bytes(b"not a database" * 100)
    assert main(["reset-mode", "--conf", str(_config(tmp_path, port=0, db=db))]) == 2
    err = capsys.readouterr().err
    assert str(db) in err and "damaged" in err
