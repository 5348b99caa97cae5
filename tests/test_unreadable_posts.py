"""A post whose media the web preview does not show (a video or file without a picture, media only the Telegram
app shows) may be a signal the bot cannot read: the user is told once, with its link; history stays quiet."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from actors.listener import ChannelPoller, PollPlan
from ops.metrics import Metrics
from parsing.posts import Post
from parsing.tme import parse_page
from trading.journal import Journal

OLD = "2026-01-05T09:00:00+00:00"


def _wrap(message_id: int, date: str, inner: str) -> str:
    return (f'<div class="tgme_widget_message_wrap js-widget_message_wrap"><div class="tgme_widget_message '
            f'text_not_supported_wrap js-widget_message" data-post="SigDesk/{message_id}"><div '
            f'class="tgme_widget_message_bubble">{inner}<div class="tgme_widget_message_footer"><span '
            f'class="tgme_widget_message_meta"><a class="tgme_widget_message_date" href="https://t.me/SigDesk/'
            f'{message_id}"><time datetime="{date}" class="time">09:00</time></a></span></div></div></div></div>')


def _text(message_id: int, date: str, text: str) -> str:
    return _wrap(message_id, date, f'<div class="tgme_widget_message_text js-message_text">{text}</div>')


def _app_only(message_id: int, date: str) -> str:
    return _wrap(message_id, date, '<div class="message_media_not_supported_wrap"><div class="message_media_not_'
                                   'supported"><div class="message_media_not_supported_label">Please open Telegram '
                                   'to view this post</div></div></div>')


def _sticker(message_id: int, date: str) -> str:
    return _wrap(message_id, date, '<div class="tgme_widget_message_sticker_wrap"><i class="tgme_widget_message_'
                                   'sticker" data-webp="https://cdn4.telesco.pe/file/s.webp"></i></div>')


def _page(*wraps: str) -> str:
    return ('<html><body><section class="tgme_channel_history js-message_history">' + "".join(wraps)
            + "</section></body></html>")


class PageSource:
    """The web preview as the poller sees it: the posts of a page, and the page itself."""

    channel = "SigDesk"

    def __init__(self) -> None:
        self.last_html = ""

    def show(self, html: str) -> None:
        self.page = html

    def fetch_latest(self) -> list[Post]:
        self.last_html = self.page
        return parse_page(self.page, channel=self.channel)

    def fetch_before(self, message_id: int) -> list[Post]:
        return []

    def fetch_after(self, message_id: int) -> list[Post]:
        return []


def test_a_new_post_the_web_preview_cannot_show_is_told_once_with_its_link(tmp_path: Path) -> None:
    # posted after the first start (dates have second resolution: a minute ahead stays clear of it)
    now = (datetime.now(timezone.utc) + timedelta(minutes=1)).replace(microsecond=0).isoformat()
    source = PageSource()
    notices: list[tuple[str, str]] = []
    with Journal(str(tmp_path / "journal.sqlite")) as journal:
        poller = ChannelPoller(source=source, journal=journal, hand_on=lambda message: None, metrics=Metrics(),
                               plan=PollPlan(1.0, 0.0, 5.0, random.Random(1)),
                               notify=lambda kind, text: notices.append((kind, text)))
        # first start: what is on the channel already is history, the unreadable post too
        source.show(_page(_text(500, OLD, "hello"), _app_only(501, OLD)))
        poller.poll()
        assert notices == []

        source.show(_page(_text(500, OLD, "hello"), _app_only(501, OLD), _text(502, now, "gm"),
                          _app_only(503, now), _sticker(504, now)))
        poller.poll()
        assert [kind for kind, _ in notices] == ["POST_UNREADABLE"]  # the sticker is no signal
        text = notices[0][1]
        assert "post 503" in text and "https://t.me/SigDesk/503" in text and "not acted on" in text
        (event,) = journal.events("POST_UNREADABLE")
        assert event.detail["message_id"] == 503

        poller.poll()  # still on the page: not told again
        assert len(notices) == 1
