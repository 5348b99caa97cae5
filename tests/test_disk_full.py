"""Disk full mid-run: with the journal unable to take one more page, a local-guard stop still closes the position
(reduce-only, sent without its journal row), the operator hears of it, the bot goes SAFE, and the close is
journaled once the disk allows. The journal's own behaviour on a full disk: a typed error, events held."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from actors.messages import RequestMode
from runtime.wiring import Runtime
from tests.e2e import running_system
from tests.test_local_guard import LOCAL_GUARD, PRICE_FEED, closes, cross, open_locally_guarded, open_size
from tests.waiting import wait_until
from trading.journal import Journal, JournalWriteError, OrderState
from trading.modes import Mode


def fill_the_disk(journal: Journal) -> None:
    """No page beyond those in use, and the room left in them filled: any write fails with "database or disk is
    full", as on a full disk."""
    conn = journal._conn  # the test reaches into the one connection, as a full disk would
    with journal._lock:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        fillers = {
            "flags": "INSERT INTO flags (name, value, updated_at) VALUES (?, ?, 0)",
            "events": "INSERT INTO events (ts, kind, detail_json) VALUES (0, ?, ?)",
            "orders": "INSERT INTO orders (client_oid, symbol, leg, side, order_type, size, reduce_only, "
                      "payload_json, state, created_at, updated_at) VALUES (?, 'X', 'x', 'buy', 'market', '1', 0, ?, "
                      "'CANCELED', 0, 0)",
        }
        n = 0
        for sql in fillers.values():  # each table and index has pages of its own: fill every one
            for size in (4000, 1000, 300, 100, 30, 10, 3, 1, 0):
                while True:
                    try:
                        conn.execute(sql, (f"~filler{n:08d}" + "f" * (size // 2), f'"{"f" * size}"'))
                    except sqlite3.OperationalError:
                        break
                    n += 1


def free_the_disk(journal: Journal) -> None:
    with journal._lock:
        journal._conn.execute("PRAGMA max_page_count = 1073741823")
        journal._conn.execute("DELETE FROM flags WHERE name LIKE '~filler%'")
        journal._conn.execute("DELETE FROM events WHERE kind LIKE '~filler%'")
        journal._conn.execute("DELETE FROM orders WHERE client_oid LIKE '~filler%'")


def _unwritable(journal: Journal) -> bool:
    try:
        journal.set_flag("disk_probe", "x" * 20_000)
    except JournalWriteError:
        return True
    journal.set_flag("disk_probe", None)
    return False


def test_a_full_journal_is_a_typed_error_and_events_are_held_until_it_can_write(tmp_path: Path) -> None:
    heard: list[str] = []
    with Journal(str(tmp_path / "j.sqlite")) as journal:
        journal.on_write_failure(heard.append)
        fill_the_disk(journal)
        with pytest.raises(JournalWriteError, match="full"):
            journal.set_flag("big", "x" * 50_000)
        assert heard and "cannot be written" in heard[0] and str(tmp_path / "j.sqlite") in heard[0]
        assert not journal.writable
        for n in range(50):
            assert journal.record_event("HELD", {"n": n, "pad": "y" * 2000}) == 0  # held, the caller goes on
        free_the_disk(journal)
        journal.record_event("AFTER", {})
        kinds = [(e.kind, e.detail.get("n")) for e in journal.events(limit=10_000) if e.kind in ("HELD", "AFTER")]
        assert kinds == [*(("HELD", n) for n in range(50)), ("AFTER", None)], "every event kept, in order"
        assert journal.writable


@pytest.mark.slow
def test_a_local_stop_closes_the_position_while_the_disk_is_full(tmp_path: Path) -> None:
    with running_system(tmp_path, risk=LOCAL_GUARD, monitor={"price_feed": PRICE_FEED}) as system:
        runtime: Runtime = system.runtime
        engine = system.engine
        assert runtime.journal is not None
        _, stop = open_locally_guarded(runtime, engine, system.channel, "long")
        notices: list[str] = []
        assert runtime.notifier is not None
        runtime.notifier.listeners.append(lambda notice: notices.append(notice.kind))

        fill_the_disk(runtime.journal)
        assert _unwritable(runtime.journal)
        cross(engine, stop, "long")

        wait_until(lambda: open_size(engine) == 0, what="the position closed with the disk full")
        (close,) = closes(engine)
        assert close.order_type == "market" and close.reduce_only
        wait_until(lambda: "JOURNAL_UNWRITABLE" in notices, what="the operator told")
        wait_until(lambda: runtime.gate.mode is Mode.SAFE, what="safe mode")
        assert runtime.journal.order(close.client_oid) is None, "not journaled while the disk is full"

        free_the_disk(runtime.journal)
        row = wait_until(lambda: runtime.journal.order(close.client_oid), what="the close journaled afterwards")
        assert row.reduce_only and row.leg == "close"
        wait_until(lambda: (r := runtime.journal.order(close.client_oid)) and r.state is OrderState.FILLED,
                   what="reconciliation completing the late row from the exchange")
        assert len(closes(engine)) == 1, "sent once"


def test_journal_open_on_a_full_disk_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    Journal(str(path)).close()
    real = sqlite3.connect

    def tiny(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = real(*args, **kwargs)  # type: ignore[arg-type]
        conn.execute("PRAGMA max_page_count = 1")
        return conn

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite3, "connect", tiny)
        with pytest.raises(Exception) as raised:
            j = Journal(str(path))
            j.set_flag("x", "y" * 10_000)
    assert "full" in str(raised.value)


@pytest.mark.slow
def test_a_panic_closes_the_position_while_the_disk_is_full(tmp_path: Path) -> None:
    with running_system(tmp_path, risk=LOCAL_GUARD, monitor={"price_feed": PRICE_FEED}) as system:
        runtime: Runtime = system.runtime
        engine = system.engine
        assert runtime.journal is not None and runtime.supervisor is not None
        open_locally_guarded(runtime, engine, system.channel, "long")
        fill_the_disk(runtime.journal)
        assert _unwritable(runtime.journal)
        runtime.supervisor.tell(RequestMode(mode=Mode.PANIC, reason="operator panic", source="operator"))
        wait_until(lambda: open_size(engine) == 0, what="the panic close sent with the disk full")
        assert all(order.reduce_only for order in closes(engine))


def test_an_actor_meeting_a_full_journal_goes_on_instead_of_crash_looping() -> None:
    import pykka

    from actors.base import SupervisedActor

    class Writer(SupervisedActor):
        def __init__(self, journal: Journal) -> None:
            super().__init__("writer", None)
            self.journal = journal
            self.handled = 0

        def handle(self, message: object) -> object:
            self.handled += 1
            self.journal.set_flag("x", "y" * 50_000)
            return None

    with Journal(":memory:") as journal:
        fill_the_disk(journal)
        with pytest.raises(JournalWriteError):
            journal.set_flag("x", "y" * 50_000)
        ref = Writer.start(journal)
        try:
            proxy = ref.proxy()
            ref.tell("write")
            ref.tell("write")
            assert wait_until(lambda: proxy.handled.get(timeout=5) == 2, what="both messages handled")
            assert ref.is_alive()
        finally:
            ref.stop()
            pykka.ActorRegistry.stop_all()
