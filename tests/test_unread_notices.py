"""Never silent: a post about an open signal that the bot did not act on is an UNREAD notice; chatter is not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from actors.messages import Heartbeat, PostSeen, SignalParsed
from actors.parser import Parser
from ops.metrics import Metrics
from parsing.posts import Post
from parsing.rules import parse_text
from parsing.signals import Action, Kind, ParsedMessage
from trading.journal import Journal
from trading.linking import OpenSignal
from trading.unread import NOTICE_TEXT_CHARS, unread_post

CHANNEL = "chan"
BTC_SIGNAL_POST = 10


class Inbox:
    def __init__(self) -> None:
        self.items: list[Any] = []

    def tell(self, message: Any) -> None:
        self.items.append(message)

    def notify(self, kind: str, text: str) -> None:
        self.items.append((kind, text))

    def notices(self, kind: str | None = None) -> list[tuple[str, str]]:
        return [item for item in self.items if isinstance(item, tuple) and kind in (None, item[0])]


@pytest.fixture
def journal() -> Iterator[Journal]:
    with Journal(":memory:") as opened:
        signal_id = opened.record_signal(CHANNEL, BTC_SIGNAL_POST, {"kind": "entry"}, "traded", "",
                                         symbol="BTCUSDT")
        assert signal_id
        yield opened


@pytest.fixture
def system(journal: Journal) -> Iterator[tuple[Any, Inbox, Inbox, Metrics]]:
    risk_gate, notifier, metrics = Inbox(), Inbox(), Metrics()
    parser = Parser.start(name="parser", supervisor=None, journal=journal, risk_gate=risk_gate,
                          notifier=notifier, metrics=metrics)
    yield parser, risk_gate, notifier, metrics
    parser.stop()


def _read(system: tuple[Any, Inbox, Inbox, Metrics], journal: Journal, post: Post) -> None:
    parser = system[0]
    journal.record_post(post)
    parser.tell(PostSeen(post))
    assert parser.ask(Heartbeat(), timeout=10) is True  # the mailbox is in order: the post was handled before
    assert journal.signal_for_post(post.channel, post.message_id, 0) is not None


def _unread_metric(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value("following_unread_posts_total") or 0.0


def test_unreadable_reply_to_an_open_signal_is_notified_once_with_link_and_text(
        system: tuple[Any, Inbox, Inbox, Metrics], journal: Journal) -> None:
    _, risk_gate, notifier, metrics = system
    text = "😬 guys, this one... do what you think is right"
    _read(system, journal, Post(CHANNEL, 11, text, reply_to=BTC_SIGNAL_POST))
    [(kind, notice)] = notifier.notices()
    assert kind == "UNREAD"
    assert "https://t.me/chan/11" in notice and "BTCUSDT" in notice and text in notice
    assert "replies to open signal" in notice
    [event] = journal.events("UNREAD")
    assert event.detail["message_id"] == 11 and event.detail["symbols"] == ["BTCUSDT"]
    assert _unread_metric(metrics) == 1
    assert not [m for m in risk_gate.items if isinstance(m, SignalParsed)]


def test_chatter_is_not_notified(system: tuple[Any, Inbox, Inbox, Metrics], journal: Journal) -> None:
    _, _, notifier, metrics = system
    _read(system, journal, Post(CHANNEL, 12, "Good morning everyone! Coffee first ☕"))
    _read(system, journal, Post(CHANNEL, 13, "ETH looks weak today"))  # a coin, but no open signal on it
    _read(system, journal, Post(CHANNEL, 14, "same as yesterday", reply_to=5))  # replies to no open signal
    assert notifier.notices() == []
    assert journal.events("UNREAD") == []
    assert _unread_metric(metrics) == 0


def test_post_naming_an_open_coin_with_doubt_is_one_unread_notice(system: tuple[Any, Inbox, Inbox, Metrics],
                                                                   journal: Journal) -> None:
    _, _, notifier, _ = system
    _read(system, journal, Post(CHANNEL, 15, "#BTC long entry 65000"))  # no stop: read with doubt
    [(kind, notice)] = notifier.notices()  # one notice, not a NOTIFY_ONLY and an UNREAD
    assert kind == "UNREAD"
    assert "names the coin of open signal" in notice and "no stop loss" in notice
    assert "https://t.me/chan/15" in notice
    assert journal.events("NOTIFY_ONLY")  # the refusal is journaled as before
    _read(system, journal, Post(CHANNEL, 16, "BTC 🤔 not sure about this one anymore"))  # noise naming BTC
    assert [kind for kind, _ in notifier.notices()] == ["UNREAD", "UNREAD"]


def test_a_reply_that_is_read_goes_on_and_is_not_unread(system: tuple[Any, Inbox, Inbox, Metrics],
                                                         journal: Journal) -> None:
    _, risk_gate, notifier, _ = system
    _read(system, journal, Post(CHANNEL, 17, "close 50%", reply_to=BTC_SIGNAL_POST))
    assert [m.message_id for m in risk_gate.items if isinstance(m, SignalParsed)] == [17]
    assert notifier.notices("UNREAD") == []


def test_long_post_text_is_cut_in_the_notice(system: tuple[Any, Inbox, Inbox, Metrics], journal: Journal) -> None:
    _, _, notifier, _ = system
    text = "BTC " + "blah " * 2000
    _read(system, journal, Post(CHANNEL, 18, text))
    [(kind, notice)] = notifier.notices()
    assert kind == "UNREAD" and len(notice) < NOTICE_TEXT_CHARS + 300 and notice.endswith("…")


# --- the pure rule --------------------------------------------------------------------------------------------
OPEN = (OpenSignal(1, CHANNEL, 10, "BTCUSDT"), OpenSignal(2, CHANNEL, 20, "SOLUSDT"))


def _verdict(text: str, reply_to: int | None = None, channel: str = CHANNEL):
    readings = parse_text(text)
    return unread_post(channel=channel, text=text, reply_to=reply_to, readings=readings, handed_on=False,
                       open_signals=OPEN)


@pytest.mark.parametrize("text", ["$btc dumping, careful", "btc/usdt 🤔", "BTC?", "#Sol hmm", "SOLUSDT weird candle",
                                  "ＢＴＣ looks bad"])
def test_coin_notations_of_an_open_signal_are_recognised(text: str) -> None:
    assert _verdict(text) is not None


@pytest.mark.parametrize("text", ["solid day", "subtle move", "I will be back", "ETH looks weak", "",
                                  "100%"])
def test_words_that_only_contain_a_ticker_are_not_a_coin(text: str) -> None:
    assert _verdict(text) is None


def test_another_channels_signal_is_not_this_posts_concern() -> None:
    assert _verdict("hmm", reply_to=10, channel="other") is None
    assert _verdict("hmm", reply_to=10).replies is True


def test_a_post_handed_on_is_never_unread() -> None:
    traded = ParsedMessage(kind=Kind.UPDATE, action=Action.TRADE, symbol="BTCUSDT")
    assert unread_post(channel=CHANNEL, text="BTC tp1", reply_to=10, readings=[traded], handed_on=True,
                       open_signals=OPEN) is None


def test_a_post_quoting_our_secrets_never_carries_them_to_the_chat(journal: Journal) -> None:
    from ops.notify import Notifier
    from runtime.config import NotifyConfig, Secret, TelegramBotNotify, WebhookNotify
    from tests.notify_server import NotifyServer
    from tests.waiting import wait_until

    token = "123456789:AAHsecretTOKENvalue-xyz"
    with NotifyServer() as server:
        config = NotifyConfig(telegram_bot=TelegramBotNotify(enabled=True, chat_id="-100"),
                              webhook=WebhookNotify(enabled=True, url=f"{server.url}/hooks/secret-hook-path"))
        notifier = Notifier(config, Secret(token), bot_api_url=server.url, timeout=2.0, retry_pause_s=0.05)
        parser = Parser.start(name="parser", supervisor=None, journal=journal, risk_gate=Inbox(), notifier=notifier,
                              metrics=Metrics())
        try:
            text = f"BTC: send {token} to {server.url}/hooks/secret-hook-path 😈"
            post = Post(CHANNEL, 21, text, reply_to=BTC_SIGNAL_POST)
            parser.tell(PostSeen(post))
            assert parser.ask(Heartbeat(), timeout=10) is True
            received = wait_until(lambda: len(server.requests()) == 2 and server.requests(), timeout=10,
                                  what="the bot and webhook deliveries")
        finally:
            parser.stop()
            notifier.close()
    for request in received:
        assert "https://t.me/chan/21" in request.body["text"]
        assert token not in request.body["text"] and "secret-hook-path" not in request.body["text"]
