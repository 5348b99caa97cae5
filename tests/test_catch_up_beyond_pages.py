"""Catch-up never loses an exit silently (issue 9 item 7).

After downtime the listener pages back over the gap. Past ``max_catch_up_pages`` it keeps paging (for at most
``catch_up_extra_seconds``) and still hands on the posts that may act on an open signal (a reply to it, its
signal id or post link, its coin); the other older posts are set aside and reported with links, and a range it
could not read at all is reported (journal event + notice) with links to the first and last post missed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from actors.listener import SKIPPED, ChannelPoller, PollPlan
from actors.messages import PostSeen
from ops.metrics import Metrics
from parsing.channel_server import ChannelServer
from parsing.posts import Post
from parsing.web_preview import PreviewUnavailable, WebPreviewClient, catch_up_report
from trading.journal import Journal

CHANNEL = "SigDesk"


class FailingBelow(WebPreviewClient):
    """The channel server's pages, except that pages older than ``unreadable_before`` cannot be read."""

    def __init__(self, base_url: str, unreadable_before: int) -> None:
        super().__init__(base_url, CHANNEL, timeout=2.0)
        self.unreadable_before = unreadable_before

    def fetch_before(self, message_id: int) -> list[Post]:
        if message_id <= self.unreadable_before:
            raise PreviewUnavailable("HTTP 503 (injected)")
        return super().fetch_before(message_id)


@dataclass
class Setup:
    server: ChannelServer
    journal: Journal
    handed: list[Any] = field(default_factory=list)
    notices: list[tuple[str, str]] = field(default_factory=list)

    def poller(self, source: WebPreviewClient | None = None, *, max_pages: int = 2,
               extra_seconds: float = 30.0) -> ChannelPoller:
        return ChannelPoller(
            source=source or WebPreviewClient(self.server.base_url, CHANNEL, timeout=2.0), journal=self.journal,
            hand_on=self.handed.append, metrics=Metrics(), plan=PollPlan(5.0, 0.0, 60.0, random.Random(1)),
            max_catch_up_pages=max_pages, catch_up_extra_seconds=extra_seconds,
            notify=lambda kind, text: self.notices.append((kind, text)),
        )

    def seen(self) -> list[int]:
        return [m.post.message_id for m in self.handed if isinstance(m, PostSeen)]

    def traded_signal(self, text: str, symbol: str) -> int:
        """A signal post the bot read and traded (its position still open)."""
        message_id = self.server.add_post(text)
        self.poller().poll()
        self.journal.record_signal(CHANNEL, message_id, {"kind": "entry"}, "traded", "size 0.01", symbol=symbol)
        return message_id


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    server = ChannelServer(CHANNEL, page_size=5)
    server.start()
    try:
        with Journal(str(tmp_path / "journal.sqlite")) as journal:
            ready = Setup(server, journal)
            server.add_post("welcome")
            ready.poller().poll()  # first start: the baseline
            yield ready
    finally:
        server.stop()


def _chatter(server: ChannelServer, count: int) -> list[int]:
    return [server.add_post(f"market chatter {n}") for n in range(count)]


def test_a_close_replying_to_an_open_signal_beyond_the_page_bound_is_delivered(setup: Setup) -> None:
    signal = setup.traded_signal("#BTC/USDT LONG\nEntry 65000\nSL 64000", "BTCUSDT")
    setup.handed.clear()
    # while the bot is down: the close, then more posts than two pages of five hold
    close = setup.server.add_post("Close all", reply_to=signal)
    by_coin = setup.server.add_post("#BTC/USDT move SL to entry")
    other_coin = setup.server.add_post("#ETH/USDT close all")
    old = _chatter(setup.server, 6)
    recent = _chatter(setup.server, 10)
    setup.poller(max_pages=2).poll()
    assert setup.seen() == [close, by_coin, *recent]
    # the rest was read, set aside, journaled (never read again) and reported with links
    skipped = [other_coin, *old]
    (event,) = setup.journal.events("CATCH_UP_SKIPPED")
    assert event.detail["message_ids"] == skipped and event.detail["count"] == len(skipped)
    rows = [setup.journal.signal_for_post(CHANNEL, i) for i in skipped]
    assert [row.decision if row else None for row in rows] == [SKIPPED] * len(skipped)
    [(kind, text)] = setup.notices
    assert kind == "CATCH_UP_SKIPPED" and f"https://t.me/{CHANNEL}/{other_coin}" in text
    assert setup.journal.events("CATCH_UP_INCOMPLETE") == []
    setup.poller().poll()  # nothing is handed on twice, nothing set aside comes back
    assert setup.seen() == [close, by_coin, *recent]


def test_an_unreadable_gap_is_reported_with_links_to_the_posts_missed(setup: Setup) -> None:
    signal = setup.traded_signal("#BTC/USDT LONG\nEntry 65000\nSL 64000", "BTCUSDT")
    setup.handed.clear()
    lost = [setup.server.add_post("Close all", reply_to=signal), *_chatter(setup.server, 6)]
    recent = _chatter(setup.server, 10)
    setup.poller(FailingBelow(setup.server.base_url, unreadable_before=recent[0]), max_pages=2).poll()
    assert setup.seen() == recent  # what could be read is handed on
    (event,) = setup.journal.events("CATCH_UP_INCOMPLETE")
    assert (event.detail["first_missing"], event.detail["last_missing"]) == (lost[0], lost[-1])
    assert event.detail["links"] == [f"https://t.me/{CHANNEL}/{lost[0]}", f"https://t.me/{CHANNEL}/{lost[-1]}"]
    assert "503" in event.detail["reason"]
    [(kind, text)] = setup.notices
    assert kind == "CATCH_UP_INCOMPLETE" and f"https://t.me/{CHANNEL}/{lost[0]}" in text
    assert f"https://t.me/{CHANNEL}/{lost[-1]}" in text and "not acted on" in text


def test_within_the_page_bound_an_unreadable_page_fails_the_poll_and_the_next_poll_reads_it(setup: Setup) -> None:
    missed = _chatter(setup.server, 12)
    failing = FailingBelow(setup.server.base_url, unreadable_before=missed[-1])
    setup.poller(failing, max_pages=5).poll()
    assert setup.handed == [] and setup.journal.events("CATCH_UP_INCOMPLETE") == []
    setup.poller(max_pages=5).poll()
    assert setup.seen() == missed


def test_paging_past_the_bound_stops_at_its_time_limit(setup: Setup) -> None:
    signal = setup.traded_signal("#BTC/USDT LONG\nEntry 65000\nSL 64000", "BTCUSDT")
    close = setup.server.add_post("Close all", reply_to=signal)
    _chatter(setup.server, 30)  # six pages of five
    now = [0.0]

    def clock() -> float:
        now[0] += 10.0  # every look at the clock: 10 s later
        return now[0]

    client = WebPreviewClient(setup.server.base_url, CHANNEL, timeout=2.0)
    caught = catch_up_report(client, close - 1, 2, keep_beyond=lambda post: True, extra_seconds=25.0, clock=clock)
    assert caught.missing is not None and caught.missing[0] == close
    assert "25s past max_catch_up_pages" in caught.why_missing
    assert 2 < caught.pages < 7


def test_what_may_concern_an_open_signal() -> None:
    from trading.linking import OpenSignal, UpdateToLink, may_concern_open_signal

    open_now = [OpenSignal(1, CHANNEL, 40, "BTCUSDT", signal_ref="2001")]
    assert may_concern_open_signal(UpdateToLink(CHANNEL, reply_to=40), open_now)
    assert may_concern_open_signal(UpdateToLink(CHANNEL, signal_ref="2001"), open_now)
    assert may_concern_open_signal(UpdateToLink(CHANNEL, signal_ref=f"t.me/{CHANNEL}/40"), open_now)
    assert may_concern_open_signal(UpdateToLink(CHANNEL, symbol="BTCUSDT"), open_now)
    assert not may_concern_open_signal(UpdateToLink(CHANNEL, reply_to=41, symbol="ETHUSDT"), open_now)
    assert not may_concern_open_signal(UpdateToLink(CHANNEL, signal_ref="t.me/other_chan/40"), open_now)
    assert not may_concern_open_signal(UpdateToLink("other_chan", reply_to=40), open_now)


@pytest.mark.slow
def test_a_close_buried_past_the_catch_up_pages_closes_the_position(tmp_path: Path) -> None:
    """The whole runtime: a "Close all" followed by more posts than the catch-up pages hold still closes."""
    from tests.e2e import running_system
    from tests.waiting import wait_until

    with running_system(tmp_path, listener={"max_catch_up_pages": 1, "catch_up_extra_seconds": 20}) as system:
        journal = system.runtime.journal
        assert journal is not None
        signal = system.channel.add_post(system.long_signal("BTCUSDT"))
        wait_until(lambda: system.open_positions() and journal.open_signals(), timeout=15, what="the entry traded")
        burst = system.channel.add_posts([("Close all", signal), *[(f"market chatter {n}", None) for n in range(25)]])
        wait_until(lambda: not system.open_positions(), timeout=20, what="the position closed by the buried close")
        (event,) = journal.events("CATCH_UP_SKIPPED")
        assert event.detail["message_ids"] == burst[1:6]  # the page of 20 held the newest chatter
