from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from parsing.posts import Post
from trading.journal import (
    KILL_SWITCH_FLAG,
    SCHEMA_VERSION,
    Journal,
    JournalSchemaError,
    OrderState,
    PostStatus,
)


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def journal(clock: FakeClock) -> Iterator[Journal]:
    with Journal(":memory:", clock=clock) as opened:
        yield opened


def make_post(message_id: int = 10, text: str = "BTC long 60000", channel: str = "chan") -> Post:
    return Post(
        channel=channel,
        message_id=message_id,
        text=text,
        date="2024-05-01T10:00:00+00:00",
        image_urls=("https://cdn.example/a.jpg",),
        reply_to=7,
        album_ids=(10, 11),
    )


def record_intent(journal: Journal, client_oid: str = "oid-1", **overrides: Any) -> bool:
    fields: dict[str, Any] = {
        "signal_id": None,
        "symbol": "BTCUSDT",
        "leg": "entry",
        "side": "buy",
        "trade_side": "open",
        "order_type": "limit",
        "size": Decimal("0.010"),
        "price": Decimal("60000.5"),
        "reduce_only": False,
        "payload": {"clientOid": client_oid, "size": "0.010"},
    }
    fields.update(overrides)
    return journal.record_intent(client_oid, **fields)


# --- schema ----------------------------------------------------------------------------------------
def test_new_journal_has_current_schema_version(journal: Journal) -> None:
    assert journal.schema_version == SCHEMA_VERSION


def test_file_journal_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with Journal(str(path)) as journal:
        assert journal.journal_mode == "wal"
        other = sqlite3.connect(path)  # WAL is persistent: a second connection sees it too
        try:
            assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            other.close()


def test_opening_a_newer_schema_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    Journal(str(path)).close()
    raw = sqlite3.connect(path)
    raw.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    raw.commit()
    raw.close()
    with pytest.raises(JournalSchemaError, match="newer"):
        Journal(str(path))


# --- posts -----------------------------------------------------------------------------------------
def test_post_is_new_then_duplicate_then_edited(journal: Journal) -> None:
    assert journal.record_post(make_post()).status == "new"
    assert journal.record_post(make_post()).status is PostStatus.DUPLICATE
    edited = journal.record_post(make_post(text="BTC long 61000"))
    assert edited.status is PostStatus.EDITED
    assert edited.previous_text == "BTC long 60000"
    assert journal.post("chan", 10).text == "BTC long 61000"  # type: ignore[union-attr]


def test_stored_post_rebuilds_equal(journal: Journal) -> None:
    post = make_post()
    journal.record_post(post)
    assert journal.post("chan", 10) == post
    assert journal.post("chan", 99) is None
    assert journal.post("other", 10) is None


def test_last_message_id_is_per_channel(journal: Journal) -> None:
    assert journal.last_message_id("chan") is None
    for message_id in (5, 12, 9):
        journal.record_post(make_post(message_id))
    journal.record_post(make_post(100, channel="other"))
    assert journal.last_message_id("chan") == 12


def test_unread_posts_are_those_without_any_signal_row(journal: Journal) -> None:
    for message_id in (3, 1, 2):
        journal.record_post(make_post(message_id))
    journal.record_post(make_post(1, channel="other"))
    journal.record_signal("chan", 2, {}, "ignored", "noise")
    assert [(p.channel, p.message_id) for p in journal.unread_posts()] == [
        ("chan", 1),
        ("chan", 3),
        ("other", 1),
    ]
    assert [p.message_id for p in journal.unread_posts("chan", limit=1)] == [1]
    assert journal.unread_posts("chan")[0] == make_post(1)


# --- media -----------------------------------------------------------------------------------------
def test_media_deduplicates_by_content_and_remembers_every_url(journal: Journal) -> None:
    assert journal.record_media("https://a/1.jpg", "abc", "/m/abc.jpg", 1234, "image/jpeg") is True
    assert journal.record_media("https://a/2.jpg", "abc", "/m/other.jpg", 1234, "image/jpeg") is False
    first = journal.media_by_sha256("abc")
    assert first is not None
    assert (first.path, first.size, first.content_type) == ("/m/abc.jpg", 1234, "image/jpeg")
    assert journal.media_by_url("https://a/2.jpg") == first
    assert journal.media_by_url("https://a/unknown.jpg") is None
    assert journal.media_by_sha256("nope") is None


# --- signals ---------------------------------------------------------------------------------------
def test_recording_a_signal_twice_returns_the_same_id_unchanged(journal: Journal) -> None:
    signal_id = journal.record_signal("chan", 10, {"symbol": "BTCUSDT"}, "traded", "ok", symbol="BTCUSDT")
    again = journal.record_signal("chan", 10, {"symbol": "ETHUSDT"}, "refused", "other")
    assert again == signal_id
    row = journal.signal(signal_id)
    assert row is not None
    assert (row.decision, row.reason, row.parsed, row.symbol) == (
        "traded",
        "ok",
        {"symbol": "BTCUSDT"},
        "BTCUSDT",
    )
    second_leg = journal.record_signal("chan", 10, {}, "notify_only", "ambiguous", index=1)
    assert second_leg != signal_id
    assert journal.signal_for_post("chan", 10, 1).id == second_leg  # type: ignore[union-attr]
    assert journal.signal_for_post("chan", 10).id == signal_id  # type: ignore[union-attr]
    assert journal.signal_for_post("chan", 11) is None


def test_signal_decimals_are_stored_as_text(journal: Journal) -> None:
    signal_id = journal.record_signal("chan", 1, {"entry": Decimal("0.1")}, "traded", "ok")
    assert journal.signal(signal_id).parsed == {"entry": "0.1"}  # type: ignore[union-attr]


def test_open_signals_are_traded_and_not_closed(journal: Journal, clock: FakeClock) -> None:
    btc = journal.record_signal("chan", 1, {}, "pending", "", symbol="BTCUSDT")
    eth = journal.record_signal("chan", 2, {}, "traded", "ok", symbol="ETHUSDT")
    journal.record_signal("chan", 3, {}, "refused", "risk", symbol="BTCUSDT")
    assert [row.id for row in journal.open_signals()] == [eth]
    clock.now += 5
    journal.set_signal_decision(btc, "traded", "filled")
    assert journal.signal(btc).updated_at == clock.now  # type: ignore[union-attr]
    assert [row.id for row in journal.open_signals()] == [btc, eth]
    assert [row.id for row in journal.open_signals("BTCUSDT")] == [btc]
    journal.set_signal_closed(btc)
    closed = journal.signal(btc)
    assert closed is not None and closed.closed and closed.closed_at == clock.now
    assert [row.id for row in journal.open_signals()] == [eth]


def test_updating_an_unknown_signal_fails_loudly(journal: Journal) -> None:
    with pytest.raises(KeyError):
        journal.set_signal_decision(404, "traded", "x")
    with pytest.raises(KeyError):
        journal.set_signal_closed(404)


# --- orders ----------------------------------------------------------------------------------------
def test_intent_is_stored_with_exact_decimals(journal: Journal, clock: FakeClock) -> None:
    signal_id = journal.record_signal("chan", 1, {}, "traded", "ok", symbol="BTCUSDT")
    assert record_intent(journal, signal_id=signal_id) is True
    row = journal.order("oid-1")
    assert row is not None
    assert row.state is OrderState.INTENT
    assert row.size == Decimal("0.010") and str(row.size) == "0.010"
    assert row.price == Decimal("60000.5")
    assert (row.signal_id, row.symbol, row.leg, row.side, row.trade_side) == (
        signal_id,
        "BTCUSDT",
        "entry",
        "buy",
        "open",
    )
    assert row.payload == {"clientOid": "oid-1", "size": "0.010"}
    assert row.created_at == row.updated_at == clock.now
    assert row.exchange_order_id is None and row.filled_size is None


def test_duplicate_intent_is_refused_and_keeps_the_original(journal: Journal) -> None:
    assert record_intent(journal) is True
    assert record_intent(journal, size=Decimal("5")) is False
    assert journal.order("oid-1").size == Decimal("0.010")  # type: ignore[union-attr]


def test_market_intent_may_have_no_price(journal: Journal) -> None:
    record_intent(journal, order_type="market", price=None, reduce_only=True)
    row = journal.order("oid-1")
    assert row is not None and row.price is None and row.reduce_only is True


def test_float_sizes_are_refused(journal: Journal) -> None:
    with pytest.raises(TypeError):
        record_intent(journal, size=0.1)
    assert journal.order("oid-1") is None


def test_order_state_updates_keep_unspecified_fields(journal: Journal, clock: FakeClock) -> None:
    record_intent(journal)
    journal.set_order_state("oid-1", OrderState.SUBMITTED)
    clock.now += 1
    journal.set_order_state("oid-1", "ACCEPTED", exchange_order_id="X1")
    journal.set_order_state(
        "oid-1", OrderState.PARTIAL, filled_size=Decimal("0.004"), avg_price=Decimal("60000")
    )
    journal.set_order_state("oid-1", OrderState.FILLED, filled_size=Decimal("0.010"))
    row = journal.order("oid-1")
    assert row is not None
    assert row.state is OrderState.FILLED and row.state.is_terminal
    assert row.exchange_order_id == "X1"
    assert row.filled_size == Decimal("0.010") and row.avg_price == Decimal("60000")
    assert row.updated_at == clock.now > row.created_at
    assert journal.order_by_exchange_id("X1") == row
    with pytest.raises(KeyError):
        journal.set_order_state("missing", OrderState.CANCELED)


def test_terminal_states() -> None:
    terminal = {state for state in OrderState if state.is_terminal}
    assert terminal == {OrderState.REJECTED, OrderState.FILLED, OrderState.CANCELED}


def test_orders_filter_by_state_symbol_and_signal(journal: Journal) -> None:
    first = journal.record_signal("chan", 1, {}, "traded", "ok")
    record_intent(journal, "a", signal_id=first)
    record_intent(journal, "b", signal_id=first, symbol="ETHUSDT")
    record_intent(journal, "c", leg="sl")
    journal.set_order_state("b", OrderState.ACCEPTED)
    assert [row.client_oid for row in journal.orders()] == ["a", "b", "c"]
    assert [row.client_oid for row in journal.orders(states=[OrderState.INTENT])] == ["a", "c"]
    assert [row.client_oid for row in journal.orders(states=["ACCEPTED", "INTENT"], symbol="ETHUSDT")] == [
        "b"
    ]
    assert [row.client_oid for row in journal.orders(signal_id=first)] == ["a", "b"]
    assert journal.orders(states=[]) == []


def test_last_entry_times_count_every_exposure_adding_intent(journal: Journal, clock: FakeClock) -> None:
    record_intent(journal, "entry-btc")
    journal.set_order_state("entry-btc", OrderState.REJECTED)  # still counts: cooldown errs strict
    clock.now += 10
    record_intent(journal, "tp-btc", reduce_only=True)  # closing never counts
    record_intent(journal, "entry-eth", symbol="ETHUSDT")
    assert journal.last_entry_times() == {"BTCUSDT": clock.now - 10, "ETHUSDT": clock.now}


# --- events and flags ------------------------------------------------------------------------------
def test_events_are_appended_and_read_incrementally(journal: Journal, clock: FakeClock) -> None:
    first = journal.record_event("mode", {"mode": "safe"})
    second = journal.record_event("order", {"client_oid": "a"})
    third = journal.record_event("mode", {"mode": "panic"})
    assert [event.id for event in journal.events()] == [first, second, third]
    assert [event.detail for event in journal.events(kind="mode")] == [{"mode": "safe"}, {"mode": "panic"}]
    assert [event.id for event in journal.events(since_id=first)] == [second, third]
    assert [event.id for event in journal.events(limit=1)] == [first]
    assert journal.events()[0].ts == clock.now


def test_flags_set_overwrite_and_delete(journal: Journal) -> None:
    assert journal.get_flag(KILL_SWITCH_FLAG) is None
    journal.set_flag(KILL_SWITCH_FLAG, "safe")
    journal.set_flag(KILL_SWITCH_FLAG, "panic")
    assert journal.get_flag(KILL_SWITCH_FLAG) == "panic"
    journal.set_flag(KILL_SWITCH_FLAG, None)
    assert journal.get_flag(KILL_SWITCH_FLAG) is None


# --- durability and concurrency ----------------------------------------------------------------------
def test_state_survives_close_and_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "journal.db")
    with Journal(path) as journal:
        journal.record_post(make_post())
        signal_id = journal.record_signal("chan", 10, {"a": 1}, "traded", "ok", symbol="BTCUSDT")
        record_intent(journal, signal_id=signal_id)
        journal.set_order_state("oid-1", OrderState.SUBMITTED)
        journal.set_flag(KILL_SWITCH_FLAG, "safe")
        journal.record_event("start", {})
    with Journal(path) as reopened:
        assert reopened.schema_version == SCHEMA_VERSION
        assert reopened.record_post(make_post()).status is PostStatus.DUPLICATE
        assert reopened.last_message_id("chan") == 10
        assert record_intent(reopened, signal_id=signal_id) is False
        assert reopened.order("oid-1").state is OrderState.SUBMITTED  # type: ignore[union-attr]
        assert [row.id for row in reopened.open_signals()] == [signal_id]
        assert reopened.get_flag(KILL_SWITCH_FLAG) == "safe"
        assert len(reopened.events(kind="start")) == 1


def test_concurrent_writers_lose_nothing_and_never_duplicate_an_intent(tmp_path: Path) -> None:
    threads_count, per_thread = 8, 40
    start = threading.Barrier(threads_count)
    accepted: list[bool] = []
    accepted_lock = threading.Lock()
    errors: list[BaseException] = []
    with Journal(str(tmp_path / "journal.db")) as journal:

        def writer(worker: int) -> None:
            try:
                start.wait(timeout=5)
                for n in range(per_thread):
                    journal.record_event("tick", {"worker": worker, "n": n})
                    journal.record_post(make_post(worker * 1000 + n))
                    record_intent(journal, f"own-{worker}-{n}")
                    won = record_intent(journal, f"shared-{n}")  # every worker races for the same ids
                    with accepted_lock:
                        accepted.append(won)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads_count)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(timeout=30)
        assert errors == []
        assert len(journal.events(kind="tick", limit=10_000)) == threads_count * per_thread
        assert len(journal.orders()) == threads_count * per_thread + per_thread
        assert accepted.count(True) == per_thread  # exactly one winner per shared client_oid


def test_a_posts_readings_are_journaled_all_or_none(journal: Journal) -> None:
    journal.record_post(make_post(5))
    close = ({"kind": "update", "update_type": "close_all"}, "parsed", "", "BTCUSDT")
    broken = ({"kind": "update"}, "parsed", "", object())  # a write failing after the first reading went in
    with pytest.raises(sqlite3.Error):
        journal.record_signals("chan", 5, [close, broken])  # type: ignore[list-item]
    assert journal.signal_for_post("chan", 5, 0) is None, "no reading without the others"
    assert [p.message_id for p in journal.unread_posts()] == [5], "so the post is read again at start"
    stop = ({"kind": "update", "update_type": "set_stop"}, "parsed", "", "BTCUSDT")
    first, second = journal.record_signals("chan", 5, [close, stop])
    assert journal.record_signals("chan", 5, [close, stop]) == [first, second]  # again: the same rows
    assert journal.record_signal("chan", 5, {}, "ignored", "", index=1) == second
    assert journal.unread_posts() == []
