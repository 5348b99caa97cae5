"""Bad input of any kind gives a reading, never an exception; a reader crash is counted and told."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.messages import Heartbeat, PostSeen
from actors.parser import Parser
from ops.metrics import Metrics
from parsing.posts import Post
from parsing.reading import MAX_TEXT_CHARS, clean_text, read_safely
from parsing.rules import parse_text
from parsing.signals import Action, Kind, ParsedMessage
from trading.journal import Journal

ODD_INPUTS = [
    "",
    "\x00\x00\x00",
    "#BTC\x00 LONG\nEntry: 65000\x00\nSL: 64000",
    "\ud800\udfff lone surrogates \udc80",
    "🚀🚀🚀🔥💎🙌",
    "\u202eGNOL CTB\u202c entry 65000 sl 64000",  # right-to-left override
    "شراء بيتكوين الدخول ٦٥٠٠٠ وقف ٦٤٠٠٠",  # Arabic, Arabic-Indic digits
    "ورود: ۶۵۰۰۰ حد ضرر: ۶۴۰۰۰ #BTC لانگ",  # Persian digits
    "\ufeff\u200b\u200d" * 50,
    "9" * 5000,
    "1." * 3000,
    "#" * 10000,
    "TP " + " ".join(str(i) for i in range(3000)),
]


def _sound(readings: list[ParsedMessage]) -> None:
    assert readings, "every message has at least one reading"
    for reading in readings:
        json.dumps(reading.to_json(), ensure_ascii=False).encode("utf-8")  # printable and storable
        for price in (*reading.entries, *reading.take_profits, reading.stop_loss):
            assert price is None or (price.is_finite() and price > 0)


@pytest.mark.parametrize("text", ODD_INPUTS)
def test_odd_text_gives_readings(text: str) -> None:
    _sound(read_safely(text, parse_text))


def test_binary_gives_a_reading() -> None:
    _sound(read_safely(bytes(range(256)) * 64, parse_text))
    assert clean_text(b"\xff\xfe#BTC\x00") == "\ufffd\ufffd#BTC "
    assert clean_text("a\ud800b\r\nc") == "a\ufffdb\nc"


def test_megabytes_are_refused_with_a_reason_not_read() -> None:
    [reading] = read_safely("#BTC LONG entry 65000 sl 64000 " * 40_000, parse_text)
    assert reading.action is Action.NOTIFY_ONLY
    assert reading.warnings[0].startswith("message too long to read")
    assert str(MAX_TEXT_CHARS) in reading.warnings[0]


def test_a_reader_crash_is_caught_counted_and_a_reason() -> None:
    errors: list[str] = []

    def broken(text: str) -> list[ParsedMessage]:
        raise RecursionError("deep")

    [reading] = read_safely("#BTC LONG", broken, errors.append)
    assert (reading.kind, reading.action) == (Kind.NOISE, Action.NOTIFY_ONLY)
    assert reading.warnings == ("parser error: RecursionError",)
    assert errors == ["RecursionError"]


def test_an_error_the_rules_caught_themselves_is_counted_too(monkeypatch: pytest.MonkeyPatch) -> None:
    import parsing.rules.parser as rules

    def broken(*args: Any, **kwargs: Any) -> list[ParsedMessage]:
        raise IndexError("bug deep inside")

    monkeypatch.setattr(rules, "_parse", broken)
    errors: list[str] = []
    [reading] = read_safely("#BTC LONG entry 65000 sl 64000", parse_text, errors.append)
    assert reading.action is Action.NOTIFY_ONLY and reading.warnings == ("parser error: IndexError",)
    assert errors == ["IndexError"]


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(), st.binary(), st.text(alphabet=st.characters(codec=None, exclude_categories=())),
                 st.lists(st.sampled_from(["#BTC", "LONG", "SHORT", "Entry", "SL", "TP1", ":", "65000", "0",
                                           "-1", "1e999", "NaN", "∞", "\x00", "\ud800", "%", "x125", "\n",
                                           "平仓", "вход", "🎯"]), max_size=30).map(" ".join)))
def test_fuzzed_input_always_gives_sound_readings(data: Any) -> None:
    _sound(read_safely(data, parse_text))


# --- the runtime: counted, journaled, notified ----------------------------------------------------------------
class Inbox:
    def __init__(self) -> None:
        self.items: list[Any] = []

    def tell(self, message: Any) -> None:
        self.items.append(message)

    def notify(self, kind: str, text: str) -> None:
        self.items.append((kind, text))


@pytest.fixture
def journal() -> Iterator[Journal]:
    with Journal(":memory:") as opened:
        yield opened


def test_parser_error_in_the_runtime_is_notify_only_counted_and_notified(journal: Journal) -> None:
    def broken(text: str) -> list[ParsedMessage]:
        raise ValueError("bug")

    notifier, metrics = Inbox(), Metrics()
    parser = Parser.start(name="parser", supervisor=None, journal=journal, risk_gate=Inbox(), notifier=notifier,
                          metrics=metrics, parse=broken)
    try:
        for message_id, text in ((1, "#BTC LONG entry 65000 sl 64000"), (2, "\ud800\x00 odd")):
            post = Post("chan", message_id, text)
            parser.tell(PostSeen(post))
        assert parser.ask(Heartbeat(), timeout=10) is True
    finally:
        parser.stop()
    for message_id in (1, 2):
        row = journal.signal_for_post("chan", message_id, 0)
        assert row is not None and row.decision == "notify_only"
        assert row.reason == "parser error: ValueError"
    assert metrics.registry.get_sample_value("following_parse_errors_total") == 2
    assert [kind for kind, _ in notifier.items] == ["NOTIFY_ONLY", "NOTIFY_ONLY"]
    assert all("parser error: ValueError" in text for _, text in notifier.items)


def test_a_user_client_post_with_a_lone_surrogate_or_nul_is_journaled_not_a_stuck_listener(journal: Journal) -> None:
    import datetime
    from types import SimpleNamespace

    from parsing.telegram_source import posts_from_messages

    message = SimpleNamespace(id=5, message="#BTC\ud800 long\x00", date=datetime.datetime(2026, 1, 1), action=None,
                              grouped_id=None, media=None, photo=None, reply_to=None, fwd_from=None, edit_date=None,
                              views=None)
    [post] = posts_from_messages("chan", [message])
    assert post.text == "#BTC\ufffd long"
    journal.record_post(post)  # SQLite refuses a lone surrogate: the poll would fail on this post forever
    assert journal.post("chan", 5) == post
