"""Telegram mode with push: new and edited messages are handed on as Telegram pushes them; the poll stays as
catch-up and watchdog, and a post only the poll found (a push that got lost) is taken all the same and reported."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pykka

from actors.listener import PUSH_MISSED, Listener, ListenerSettings
from actors.messages import PostEdited, PostSeen
from ops.metrics import Metrics
from parsing.telegram_source import TelegramSource
from tests.fake_telethon import FakeTelegramClient, fake_event_builders
from tests.test_listener_actor import Recorder
from tests.waiting import wait_until
from trading.journal import Journal

CHANNEL = "PushDesk"


@contextmanager
def listening(tmp_path: Path, fake: FakeTelegramClient, *, interval_s: float, push: bool = True,
              grace_s: float = 10.0) -> Iterator[tuple[Recorder, Journal, pykka.ActorRef[Any]]]:
    journal = Journal(str(tmp_path / "journal.sqlite"))
    journal.set_flag(f"listener_baseline:{CHANNEL}", "1")  # not the first start: posts are new
    source = TelegramSource(CHANNEL, lambda: fake, page_size=12, event_builders=fake_event_builders)
    parser = Recorder()
    settings = ListenerSettings(interval_s=interval_s, push=push, push_missed_grace_s=grace_s)
    ref = Listener.start(name="listener", supervisor=None, settings=settings, client=source, journal=journal,
                         parser=parser, metrics=Metrics())
    try:
        yield parser, journal, ref
    finally:
        ref.stop()
        source.close()
        journal.close()


def _seen(parser: Recorder) -> list[int]:
    return [m.post.message_id for m in parser.messages() if isinstance(m, PostSeen)]


def test_a_pushed_message_is_handed_on_without_waiting_for_the_next_poll(tmp_path: Path) -> None:
    fake = FakeTelegramClient(CHANNEL)
    fake.post("#BTC/USDT LONG on the channel already")
    with listening(tmp_path, fake, interval_s=600) as (parser, _journal, _ref):  # no second poll in this test
        wait_until(lambda: _seen(parser) == [1] and fake.handlers, what="the first poll and the subscription")
        polls = sum(1 for name, _ in fake.calls if name == "get_messages")
        second = fake.post("#ETH/USDT LONG pushed")
        wait_until(lambda: _seen(parser) == [1, second], timeout=5, what="the pushed post handed on")
        assert sum(1 for name, _ in fake.calls if name == "get_messages") == polls, "no poll was needed"
        fake.edit(second, "#ETH/USDT LONG pushed, then edited")
        edited = wait_until(lambda: [m for m in parser.messages() if isinstance(m, PostEdited)], timeout=5,
                            what="the pushed edit handed on")
        assert edited[0].post.text.endswith("then edited")
        assert _seen(parser) == [1, second], "each post handed on once"


def test_a_missed_push_is_repaired_by_the_catch_up_poll_and_reported(tmp_path: Path) -> None:
    fake = FakeTelegramClient(CHANNEL)
    fake.post("history")
    with listening(tmp_path, fake, interval_s=0.05, grace_s=0.2) as (parser, journal, _ref):
        wait_until(lambda: _seen(parser) == [1] and fake.handlers, what="the first poll and the subscription")
        lost = fake.post("#SOL/USDT LONG whose push got lost", push=False)
        wait_until(lambda: lost in _seen(parser), timeout=5, what="the catch-up poll taking it")
        (event,) = wait_until(lambda: journal.events(PUSH_MISSED), timeout=5, what="the missed push reported")
        assert event.detail["message_ids"] == [lost] and event.detail["channel"] == CHANNEL
        pushed = fake.post("#ADA/USDT LONG pushed as usual")
        wait_until(lambda: pushed in _seen(parser), timeout=5, what="the next post")
        assert len(journal.events(PUSH_MISSED)) == 1, "a pushed post is never reported missed"
        assert _seen(parser) == [1, lost, pushed]


def test_a_push_after_a_gap_waits_for_the_poll_which_reads_the_gap_in_order(tmp_path: Path) -> None:
    fake = FakeTelegramClient(CHANNEL)
    fake.post("history")
    with listening(tmp_path, fake, interval_s=0.3) as (parser, _journal, _ref):
        wait_until(lambda: _seen(parser) == [1] and fake.handlers, what="the first poll and the subscription")
        silent = fake.post("#BTC/USDT close", push=False)
        after = fake.post("#ETH/USDT LONG")
        wait_until(lambda: after in _seen(parser), timeout=5, what="both posts")
        assert _seen(parser) == [1, silent, after], "never handed on out of order past a missing post"


def test_without_push_the_poll_alone_reads_the_channel(tmp_path: Path) -> None:
    fake = FakeTelegramClient(CHANNEL)
    with listening(tmp_path, fake, interval_s=0.05, push=False) as (parser, _journal, _ref):
        wait_until(lambda: any(name == "get_messages" for name, _ in fake.calls), what="a poll")
        assert fake.handlers == []
        fake.post("#BTC/USDT LONG")
        wait_until(lambda: _seen(parser) == [1], timeout=5, what="the polled post")
