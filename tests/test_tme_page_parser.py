from __future__ import annotations

from pathlib import Path

import pytest

from parsing.tme import is_soft_empty, page_cursor, page_info, parse_page

OWN_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tme"
SHARED_TME = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "tme"


def _shared(name: str) -> str:
    path = SHARED_TME / name
    if not path.exists():
        pytest.skip(f"shared fixture {name} not available")
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def own_page() -> str:
    return (OWN_FIXTURES / "signal_channel.html").read_text(encoding="utf-8")


def test_posts_come_ascending_one_per_id_without_service_or_unsupported(own_page: str) -> None:
    posts = parse_page(own_page)
    assert [post.message_id for post in posts] == [501, 502, 503, 508]
    assert all(post.channel == "SigDesk" for post in posts)


def test_text_keeps_line_breaks_emoji_and_link_targets(own_page: str) -> None:
    signal = parse_page(own_page)[0]
    assert signal.text == (
        "⚡ #BTC/USDT LONG\nEntry: 60000 - 61000\nTP1: 62000\nStop: 59000\n"
        "chart (https://www.tradingview.com/x/abc/) @SigDesk"
    )


def test_photo_url_is_read_from_style_and_made_absolute(own_page: str) -> None:
    signal = parse_page(own_page)[0]
    assert signal.image_urls == ("https://cdn4.telesco.pe/file/chart-501.jpg",)
    assert signal.views == "2.5K"
    assert signal.date == "2026-01-05T09:01:00+00:00"


def test_reply_reads_own_text_never_the_quote(own_page: str) -> None:
    reply = parse_page(own_page)[1]
    assert reply.text == "TP1 hit ✅\nMove stop to break-even"
    assert reply.reply_to == 501
    assert reply.image_urls == ()  # the quote's thumbnail is not the post's picture
    assert reply.edited is True


def test_album_keeps_every_item_id_and_photo_and_forward(own_page: str) -> None:
    album = parse_page(own_page)[2]
    assert album.album_ids == (503, 504, 505)
    assert album.image_urls == ("https://cdn4.telesco.pe/file/a1.jpg", "https://cdn4.telesco.pe/file/a2.jpg")
    assert album.forwarded_from == "Other Desk"
    assert album.edited is False


def test_channel_override_keeps_configured_spelling(own_page: str) -> None:
    assert {post.channel for post in parse_page(own_page, channel="sigdesk")} == {"sigdesk"}


def test_paging_cursor_comes_from_the_more_anchor(own_page: str) -> None:
    assert page_cursor(own_page) == 500
    info = page_info(own_page)
    assert info.has_history and not info.soft_empty and info.after is None


GARBAGE = ["", "   ", "<html>", "<<<>>>", "\x00\x01", "<div data-post='x/y'>", "plain"]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_gives_nothing_and_never_raises(garbage: str) -> None:
    assert parse_page(garbage) == []
    assert page_cursor(garbage) is None
    assert is_soft_empty(garbage) is False


def test_no_posts_found_page_is_soft_empty() -> None:
    page = (
        '<main class="tgme_main"><section class="tgme_channel_history js-message_history">'
        '<div class="tgme_widget_message_wrap js-widget_message_wrap">'
        '<div class="tgme_widget_message_centered">'
        '<div class="tme_no_messages_found">No posts found</div></div></div></section></main>'
    )
    assert is_soft_empty(page)
    assert parse_page(page) == []


def test_real_full_page_albums_forwards_and_prev_cursor() -> None:
    html = _shared("Apkawa__rust-any2feed__full.html")
    posts = parse_page(html)
    ids = [post.message_id for post in posts]
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == 12
    by_id = {post.message_id: post for post in posts}
    assert by_id[70992].album_ids == (70992, 70993, 70994)
    assert len(by_id[71000].album_ids) == 6
    assert by_id[71006].forwarded_from
    assert page_cursor(html) == 70989
    assert all(post.date and post.date.endswith("+00:00") for post in posts)


def test_real_snippets_reply_edit_service_and_line_breaks() -> None:
    html = _shared("PythonicCafe__tchan__test_snippets.html")
    by_id = {post.message_id: post for post in parse_page(html)}
    assert 1 not in by_id and 92 not in by_id  # service messages
    assert by_id[62].text == "Bigger\ntext\nmessage\nnumber\n34"
    assert by_id[20].reply_to == 19 and by_id[20].text == "Reply to a video (not recorded in telegram)"
    assert by_id[5].edited and not by_id[79].edited
    assert by_id[89].forwarded_from == "Some user"
    assert is_soft_empty(html)


def test_real_2026_markup_with_nested_text_and_unsupported_post() -> None:
    html = _shared("shady2k__lifemodel__telegram-test-channel.html")
    posts = parse_page(html)
    assert [post.message_id for post in posts] == [1001, 1010]  # 1003 is unsupported-only
    assert posts[0].album_ids == (1001, 1002)
    assert posts[1].text.count("This is a forwarded message") == 1  # nested text twin not doubled
    assert "Telegram (https://t.me/test_channel)" in posts[0].text


def test_real_snippets_every_media_form() -> None:
    by_id = {post.message_id: post for post in parse_page(_shared("PythonicCafe__tchan__test_snippets.html"))}
    # Nothing a signal reader can use: sticker, poll, round video, voice, locations without a caption.
    assert not {9, 11, 17, 13, 10, 83, 88} & set(by_id)
    # A video's poster is its picture, with or without a caption; a big (unplayable) video too.
    assert by_id[18].text == "Video by telegram camera" and len(by_id[18].image_urls) == 1
    assert by_id[19].text == "" and len(by_id[19].image_urls) == 1
    assert by_id[5343].text == "some text" and len(by_id[5343].image_urls) == 1
    # A document keeps its caption; a link preview's picture is not the post's picture.
    assert by_id[12].text == "Povo hebreu" and by_id[12].image_urls == ()
    assert by_id[81].text == "link with preview https://python.org/" and by_id[81].image_urls == ()
    # Photos alone, in an album, and an album mixing videos and pictures (every item id kept).
    assert by_id[16].text == "Picture by telegram camera" and len(by_id[16].image_urls) == 1
    assert by_id[14].album_ids == (14, 15) and len(by_id[14].image_urls) == 2
    assert by_id[84].album_ids == (84, 85, 86, 87) and len(by_id[84].image_urls) == 2  # the two photos
    assert all(url.startswith("https://") for post in by_id.values() for url in post.image_urls)


def test_real_forwarded_photo_message() -> None:
    (post,) = parse_page(_shared("Apkawa__rust-any2feed__message_media_forwarded_from.html"))
    assert post.message_id == 22358 and post.forwarded_from == "Пул N3"
    assert len(post.image_urls) == 1 and post.image_urls[0].startswith("https://cdn4.telegram-cdn.org/")
    assert post.text.startswith("Британская разведка") and post.date and post.date.endswith("+00:00")
