"""First start on a channel: /readyz is green only after the first successful poll; a channel with no posts
("No posts found" under the channel's header) is an empty result, not a failure; posts already on the channel are
history, and the first post published after the first start is traded, whether the channel was empty,
unreachable for a while, or full of history."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from actors.listener import CHANNEL_POLLED, ChannelPoller, PollPlan
from actors.messages import PostSeen
from ops.metrics import Metrics
from ops.status import RuntimeStatus
from parsing.channel_server import ChannelServer
from parsing.tme import page_info
from parsing.web_preview import PreviewUnavailable, WebPreviewClient
from runtime.config import load_secrets
from runtime.wiring import Runtime
from tests.e2e import CHANNEL, fast_config, running_system
from tests.waiting import wait_until
from trading.journal import Journal


@pytest.fixture
def server() -> Iterator[ChannelServer]:
    with ChannelServer("SigDesk") as channel_server:
        yield channel_server


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).replace(microsecond=0).isoformat()


def _poller(server: ChannelServer, journal: Journal, handed: list, status: RuntimeStatus | None = None
            ) -> ChannelPoller:
    return ChannelPoller(source=WebPreviewClient(server.base_url, "SigDesk", timeout=2.0), journal=journal,
                         hand_on=handed.append, metrics=Metrics(), plan=PollPlan(1.0, 0.0, 2.0, random.Random(1)),
                         status=status)


def test_a_channel_without_posts_is_an_empty_result_and_a_headerless_no_posts_page_a_failure(
    server: ChannelServer,
) -> None:
    raw = requests.get(f"{server.base_url}/s/SigDesk", timeout=5).text
    info = page_info(raw)
    assert info.soft_empty and info.channel_info  # as t.me shows a channel with no post yet
    client = WebPreviewClient(server.base_url, "SigDesk", timeout=2.0)
    assert client.fetch_latest() == []
    server.add_post("first")
    server.serve_soft_empty_next()  # the throttled page has no channel header: still a failure
    with pytest.raises(PreviewUnavailable):
        client.fetch_latest()


def test_first_start_on_an_empty_channel_hands_on_the_first_post(server: ChannelServer, tmp_path: Path) -> None:
    handed: list = []
    status = RuntimeStatus()
    with Journal(str(tmp_path / "j.sqlite")) as journal:
        poller = _poller(server, journal, handed, status)
        assert poller.poll() <= 1.0  # a success, not a backoff
        assert status.get(CHANNEL_POLLED)
        first = server.add_post("BTC LONG")
        poller.poll()
        assert [m.post.message_id for m in handed if isinstance(m, PostSeen)] == [first]


def test_first_start_on_an_unreachable_channel_trades_what_was_posted_after_the_start_not_before(
    server: ChannelServer, tmp_path: Path,
) -> None:
    old = server.add_post("posted last week", date="2020-01-01T00:00:00+00:00")
    server.fail_next(503, times=2)
    handed: list = []
    status = RuntimeStatus()
    with Journal(str(tmp_path / "j.sqlite")) as journal:
        poller = _poller(server, journal, handed, status)
        poller.poll()
        assert not status.get(CHANNEL_POLLED)
        assert "no successful poll" in status.failing([CHANNEL_POLLED])[CHANNEL_POLLED]
        first_start = float(journal.get_flag("listener_first_start:SigDesk") or 0)
        assert first_start > 0
        # A restart meanwhile keeps the first start's time.
        poller = _poller(server, journal, handed, status)
        poller.poll()
        new = server.add_post("posted while the channel could not be read", date=_iso(first_start + 1))
        poller.poll()
        assert status.get(CHANNEL_POLLED)
        assert [m.post.message_id for m in handed if isinstance(m, PostSeen)] == [new]
        history = journal.signal_for_post("SigDesk", old, 0)
        assert history is not None and history.decision == "history"


def test_first_start_with_history_trades_none_of_it(server: ChannelServer, tmp_path: Path) -> None:
    for n in range(3):
        server.add_post(f"old {n}", date="2021-06-01T00:00:00+00:00")
    handed: list = []
    with Journal(str(tmp_path / "j.sqlite")) as journal:
        poller = _poller(server, journal, handed)
        poller.poll()
        assert handed == []
        newer = server.add_post("after the start")
        poller.poll()
        assert [m.post.message_id for m in handed] == [newer]


def test_readyz_is_red_until_the_first_successful_poll(tmp_path: Path) -> None:
    with ChannelServer(CHANNEL) as channel:
        url = channel.start()
        channel.fail_next(503, times=1000)
        config = fast_config(tmp_path, url)
        runtime = Runtime(config, load_secrets(config, {}), env={})
        runtime.start()
        try:
            # Everything else gets ready; the channel was never read.
            wait_until(lambda: set(runtime.readiness()[1]["detail"]) == {CHANNEL_POLLED}, timeout=20,
                       what="only the channel poll missing")
            assert not runtime.readiness()[0]
            channel.clear_faults()  # the channel comes back
            wait_until(lambda: runtime.readiness()[0], timeout=20, what="ready after the first successful poll")
        finally:
            runtime.stop()


def test_empty_channel_then_the_first_post_is_traded(tmp_path: Path) -> None:
    with running_system(tmp_path) as system:  # the channel has no post at all
        wait_until(lambda: system.runtime.readiness()[1]["checks"][CHANNEL_POLLED], what="the first poll, a success")
        system.channel.add_post(system.long_signal("BTCUSDT"))
        wait_until(lambda: system.entry_orders("BTCUSDT"), what="the first post traded")
