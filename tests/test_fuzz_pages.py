"""Fuzz: t.me/s pages with hostile attributes, markup and text. The page parser never raises and gives posts with
plain integer ids; the web preview client raises only its typed ``PreviewError`` (never a bare exception)."""

from __future__ import annotations

import contextlib
import html
import re

import pytest
import requests
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsing.posts import Post
from parsing.tme import page_info, parse_page
from parsing.web_preview import PreviewError, WebPreviewClient

BASE = "https://tme.fuzz.invalid"
CHANNEL = "fuzzchan"

# Digits that str.isdigit() accepts but int() refuses, digits of other scripts, huge and signed numbers.
ODD_NUMBERS = ["²", "١٢٣", "٣", "１２", "𝟙𝟚", "9" * 5000, "-5", "+7", "1e3", "0x1f", "", "12abc", "⁴²"]
numbers = st.one_of(st.sampled_from(ODD_NUMBERS), st.integers(min_value=-5, max_value=10**20).map(str),
                    st.text(max_size=6))
texts = st.text(max_size=60)
attr = st.one_of(numbers, texts).map(lambda value: html.escape(value, quote=True))


@st.composite
def posts(draw: st.DrawFn) -> str:
    post_id, reply_id, album_id = draw(attr), draw(attr), draw(attr)
    channel = draw(st.sampled_from([CHANNEL, "", "a/b", "ch'an", "ﬁ", draw(attr)]))
    style = draw(st.sampled_from(["background-image:url('https://cdn.example/x.jpg')", "background-image:url(",
                                  "", draw(attr)]))
    body = html.escape(draw(texts), quote=False)
    pieces = [
        f'<div class="tgme_widget_message_wrap js-widget_message_wrap"><div class="tgme_widget_message '
        f'js-widget_message" data-post="{channel}/{post_id}">',
        f'<a class="tgme_widget_message_reply" href="https://t.me/{CHANNEL}/{reply_id}">r</a>'
        if draw(st.booleans()) else "",
        f'<a class="tgme_widget_message_photo_wrap" style="{style}" href="https://t.me/{CHANNEL}/{album_id}"></a>'
        if draw(st.booleans()) else "",
        f'<div class="tgme_widget_message_grouped_wrap"><a class="grouped_media_wrap" style="{style}" '
        f'href="https://t.me/{CHANNEL}/{album_id}?single"></a></div>' if draw(st.booleans()) else "",
        f'<div class="tgme_widget_message_text js-message_text" dir="auto">{body}<br/>'
        f'{"<b>" * draw(st.integers(0, 300))}{body}</div>',
        f'<a class="tgme_widget_message_date" href="https://t.me/{CHANNEL}/{post_id}"><time datetime="{draw(attr)}">'
        "</time></a>",
        "</div></div>",
    ]
    return "".join(pieces)


@st.composite
def pages(draw: st.DrawFn) -> str:
    before, after = draw(attr), draw(attr)
    more = (f'<a href="/s/{CHANNEL}?before={before}" class="tme_messages_more js-messages_more" '
            f'data-before="{before}"></a><a class="tme_messages_more" data-after="{after}"></a>')
    body = "".join(draw(st.lists(posts(), max_size=4)))
    junk = draw(st.sampled_from(["", "<div" * 2000, "</section></main>", "\x00\ufeff", "<!--", "<![CDATA[", "&#0;",
                                 "<script>", html.escape(draw(texts))]))
    return ('<!DOCTYPE html><html><head><meta charset="utf-8">'
            f'<link rel="prev" href="/s/{CHANNEL}?before={draw(attr)}"></head><body><header class="tgme_header">'
            '<div class="tgme_channel_info"></div></header><main class="tgme_main"><section '
            f'class="tgme_channel_history js-message_history">{more}{body}{junk}</section></main></body></html>')


def _check_posts(found: list[Post]) -> None:
    ids = [post.message_id for post in found]
    assert ids == sorted(set(ids))
    for post in found:
        assert type(post.message_id) is int and post.message_id >= 0
        assert post.reply_to is None or type(post.reply_to) is int
        assert all(type(i) is int for i in post.album_ids)


PAGES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PAGES
@given(page=pages())
def test_the_page_parser_never_raises(page: str) -> None:
    _check_posts(parse_page(page, channel=CHANNEL))
    info = page_info(page)
    assert info.before is None or (type(info.before) is int and info.before >= 0)
    assert info.after is None or type(info.after) is int


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(page=st.one_of(pages(), st.text(max_size=300), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_the_web_preview_client_raises_only_its_typed_error(page: str) -> None:
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, re.compile(re.escape(BASE) + r"/s/.*"), body=page.encode("utf-8", "surrogatepass"),
                 content_type="text/html; charset=utf-8")
        client = WebPreviewClient(BASE, CHANNEL, session=requests.Session())
        for fetch in (client.fetch_latest, lambda: client.fetch_before(100)):
            with contextlib.suppress(PreviewError):
                _check_posts(fetch())


@pytest.mark.parametrize("value", ODD_NUMBERS)
def test_an_odd_data_before_is_no_cursor_and_no_exception(value: str) -> None:
    page = (f'<html><body><section class="tgme_channel_history js-message_history"><a class="tme_messages_more" '
            f'data-before="{html.escape(value)}"></a><div class="tgme_widget_message" data-post="{CHANNEL}/'
            f'{html.escape(value)}"><div class="tgme_widget_message_text">BTC long</div></div></section></body></html>')
    assert page_info(page).before is None
    assert parse_page(page, channel=CHANNEL) == []
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, re.compile(re.escape(BASE) + r"/s/.*"), body=page, content_type="text/html")
        client = WebPreviewClient(BASE, CHANNEL, session=requests.Session())
        assert client.fetch_latest() == []
