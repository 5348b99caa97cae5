"""Never silent on the live runtime: a reply under an open trade that the bot cannot read reaches the webhook once,
with the post's link and text; chatter does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e import CHANNEL, running_system
from tests.notify_server import NotifyServer
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


def test_unreadable_reply_under_an_open_trade_is_an_unread_notice_on_the_webhook(tmp_path: Path) -> None:
    with NotifyServer() as hook:
        overrides: dict[str, Any] = {"notify": {"webhook": {"enabled": True, "url": f"{hook.url}/hook"}}}
        with running_system(tmp_path, **overrides) as system:
            journal = system.runtime.journal
            assert journal is not None
            signal_post = system.channel.add_post(system.long_signal("BTCUSDT"))
            wait_until(lambda: journal.open_signals(), timeout=15, what="the BTC signal traded")
            chatter = system.channel.add_post("Good morning, team ☕")
            text = "Guys this BTC one is getting ugly… your call 😬"
            unreadable = system.channel.add_post(text, reply_to=signal_post)
            wait_until(lambda: journal.signal_for_post(CHANNEL, unreadable, 0), what="the reply read")
            unread = wait_until(lambda: [r.body for r in hook.requests() if r.body.get("kind") == "UNREAD"],
                                what="the UNREAD notice delivered")
            assert journal.signal_for_post(CHANNEL, chatter, 0) is not None
            [event] = journal.events("UNREAD")
            assert event.detail["message_id"] == unreadable
    [notice] = unread
    assert f"https://t.me/{CHANNEL}/{unreadable}" in notice["text"] and text in notice["text"]
    assert not [r for r in hook.requests() if f"post {chatter} " in r.body.get("text", "")]  # chatter: no notice
