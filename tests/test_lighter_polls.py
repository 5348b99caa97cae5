"""Lighter web-preview polls: between reads of the newest page only the posts after the last one seen are asked
for (?after=), and nothing is missed for it: edits show at the next newest page, a gap is read as before."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.listener import ChannelPoller, PollPlan
from actors.messages import PostEdited, PostSeen
from ops.metrics import Metrics
from parsing.channel_server import ChannelServer
from parsing.web_preview import WebPreviewClient
from trading.journal import Journal

CHANNEL = "LightDesk"


class QueryLog(ChannelServer):
    """The channel server, remembering the query of every page asked for."""

    def __init__(self, channel: str) -> None:
        super().__init__(channel)
        self.queries: list[dict[str, list[str]]] = []

    def _page(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        self.queries.append(query)
        return super()._page(query)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[QueryLog, ChannelPoller, list[Any]]]:
    server = QueryLog(CHANNEL)
    url = server.start()
    journal = Journal(str(tmp_path / "journal.sqlite"))
    journal.set_flag(f"listener_baseline:{CHANNEL}", "1")  # not the first start: posts are new
    handed: list[Any] = []
    poller = ChannelPoller(source=WebPreviewClient(url, CHANNEL, timeout=2.0), journal=journal, hand_on=handed.append,
                           metrics=Metrics(), plan=PollPlan(1.0, 0.0, 60.0, random.Random(1)), full_page_every=4)
    try:
        yield server, poller, handed
    finally:
        server.stop()
        journal.close()


def _kinds(queries: list[dict[str, list[str]]]) -> list[str]:
    return ["after" if "after" in q else "before" if "before" in q else "newest" for q in queries]


def test_new_posts_come_from_the_lighter_page_and_edits_from_the_newest_page(
    rig: tuple[QueryLog, ChannelPoller, list[Any]],
) -> None:
    server, poller, handed = rig
    first = server.add_post("#BTC/USDT LONG\nEntry: 65000\nStop: 64000")
    poller.poll()  # the first poll reads the newest page
    second = server.add_post("#ETH/USDT LONG\nEntry: 3200\nStop: 3100")
    poller.poll()
    assert [m.post.message_id for m in handed if isinstance(m, PostSeen)] == [first, second]
    server.edit_post(first, "#BTC/USDT LONG\nEntry: 65000\nStop: 64500")
    poller.poll()
    assert not [m for m in handed if isinstance(m, PostEdited)], "an edit shows only on the newest page"
    poller.poll()  # the fourth: the newest page
    (edited,) = [m for m in handed if isinstance(m, PostEdited)]
    assert edited.post.message_id == first and "64500" in edited.post.text
    assert _kinds(server.queries) == ["newest", "after", "after", "newest"]


def test_posts_that_do_not_follow_on_are_read_from_the_newest_page(
    rig: tuple[QueryLog, ChannelPoller, list[Any]],
) -> None:
    server, poller, handed = rig
    first = server.add_post("#BTC/USDT LONG")
    poller.poll()
    hidden = server.add_post("a post deleted before the bot saw it")
    server.delete_post(hidden)
    after_gap = server.add_post("#SOL/USDT LONG")
    poller.poll()
    assert [m.post.message_id for m in handed if isinstance(m, PostSeen)] == [first, after_gap]
    assert _kinds(server.queries) == ["newest", "after", "newest"], "a gap: the newest page and its catch-up rules"


def test_after_a_failed_poll_the_newest_page_is_read(rig: tuple[QueryLog, ChannelPoller, list[Any]]) -> None:
    server, poller, handed = rig
    server.add_post("#BTC/USDT LONG")
    poller.poll()
    server.fail_next(500)
    poller.poll()
    server.add_post("#ETH/USDT LONG")
    poller.poll()
    assert _kinds(server.queries)[-1] == "newest"
    assert len([m for m in handed if isinstance(m, PostSeen)]) == 2
