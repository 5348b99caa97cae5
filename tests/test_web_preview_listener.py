from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from parsing.channel_server import ChannelServer
from parsing.web_preview import (
    PreviewBadPage,
    PreviewError,
    PreviewRateLimited,
    PreviewRedirected,
    PreviewUnavailable,
    WebPreviewClient,
    catch_up,
)


@pytest.fixture
def server() -> Iterator[ChannelServer]:
    channel_server = ChannelServer("SigDesk", page_size=5)
    channel_server.start()
    yield channel_server
    channel_server.stop()


@pytest.fixture
def client(server: ChannelServer) -> WebPreviewClient:
    return WebPreviewClient(server.base_url, "SigDesk", timeout=5.0)


def test_latest_page_returns_what_was_posted(server: ChannelServer, client: WebPreviewClient) -> None:
    signal_id = server.add_post("BTCUSDT LONG\nEntry 60000\nSL 59000", image_urls=["https://cdn/x.jpg"])
    reply_id = server.add_post("TP1 hit", reply_to=signal_id)
    posts = client.fetch_latest()
    assert [post.message_id for post in posts] == [signal_id, reply_id]
    assert posts[0].text == "BTCUSDT LONG\nEntry 60000\nSL 59000"
    assert posts[0].image_urls == ("https://cdn/x.jpg",)
    assert posts[1].reply_to == signal_id and posts[1].text == "TP1 hit"


def test_edit_shows_new_text_and_marker(server: ChannelServer, client: WebPreviewClient) -> None:
    message_id = server.add_post("SL 59000")
    server.edit_post(message_id, "SL 59500")
    (post,) = client.fetch_latest()
    assert post.text == "SL 59500" and post.edited


def test_paging_before_and_after(server: ChannelServer, client: WebPreviewClient) -> None:
    ids = [server.add_post(f"post {n}") for n in range(12)]
    assert [p.message_id for p in client.fetch_latest()] == ids[-5:]
    assert [p.message_id for p in client.fetch_before(ids[-5])] == ids[-10:-5]
    assert [p.message_id for p in client.fetch_after(ids[2])] == ids[3:8]


def test_empty_channel_is_an_empty_list(client: WebPreviewClient) -> None:
    assert client.fetch_latest() == []


def test_soft_empty_page_is_unavailable_not_empty(server: ChannelServer, client: WebPreviewClient) -> None:
    server.add_post("hello")
    server.serve_soft_empty_next()
    with pytest.raises(PreviewUnavailable, match="No posts found"):
        client.fetch_latest()
    assert [p.text for p in client.fetch_latest()] == ["hello"]


def test_429_carries_retry_after(server: ChannelServer, client: WebPreviewClient) -> None:
    server.fail_next(429, retry_after=7)
    with pytest.raises(PreviewRateLimited) as caught:
        client.fetch_latest()
    assert caught.value.retry_after == 7


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_unavailable(server: ChannelServer, client: WebPreviewClient, status: int) -> None:
    server.fail_next(status)
    with pytest.raises(PreviewUnavailable):
        client.fetch_latest()


def test_4xx_is_a_bad_page(server: ChannelServer, client: WebPreviewClient) -> None:
    server.fail_next(404)
    with pytest.raises(PreviewBadPage):
        client.fetch_latest()


def test_unknown_channel_redirect_is_not_followed(server: ChannelServer) -> None:
    other = WebPreviewClient(server.base_url, "NoSuchChannel")
    with pytest.raises(PreviewRedirected) as caught:
        other.fetch_latest()
    assert caught.value.location.endswith("/NoSuchChannel")
    assert "/s/" not in caught.value.location


def test_connection_refused_is_unavailable() -> None:
    closed = ChannelServer("x")
    url = closed.base_url
    closed.stop()  # the port is released: nobody listens any more
    with pytest.raises(PreviewUnavailable):
        WebPreviewClient(url, "x", timeout=2.0).fetch_latest()


def test_timeout_is_unavailable(server: ChannelServer) -> None:
    class SlowSession(requests.Session):
        def get(self, *args: object, **kwargs: object) -> requests.Response:  # type: ignore[override]
            raise requests.ReadTimeout("slow")

    with pytest.raises(PreviewUnavailable, match="timeout"):
        WebPreviewClient(server.base_url, "SigDesk", session=SlowSession()).fetch_latest()


def test_non_channel_html_is_a_bad_page(server: ChannelServer) -> None:
    class OddSession(requests.Session):
        def get(self, url: str, **kwargs: object) -> requests.Response:  # type: ignore[override]
            response = requests.Response()
            response.status_code = 200
            response.url = url
            response._content = b"<html><body>maintenance</body></html>"
            return response

    with pytest.raises(PreviewError):
        WebPreviewClient(server.base_url, "SigDesk", session=OddSession()).fetch_latest()


def test_catch_up_closes_the_gap_across_pages(server: ChannelServer, client: WebPreviewClient) -> None:
    ids = [server.add_post(f"post {n}") for n in range(23)]
    last_seen = ids[4]
    caught = catch_up(client, last_seen, max_pages=10)
    assert [post.message_id for post in caught] == ids[5:]
    assert server.hits == 4  # pages 19-23, 14-18, 9-13, 4-8: the fourth reaches last_seen


def test_catch_up_is_bounded_in_pages(server: ChannelServer, client: WebPreviewClient) -> None:
    ids = [server.add_post(f"post {n}") for n in range(30)]
    caught = catch_up(client, 0, max_pages=2)
    assert [post.message_id for post in caught] == ids[-10:]
    assert server.hits == 2


def test_catch_up_with_nothing_new(server: ChannelServer, client: WebPreviewClient) -> None:
    ids = [server.add_post(f"post {n}") for n in range(3)]
    assert catch_up(client, ids[-1], max_pages=3) == []
    assert server.hits == 1


def test_catch_up_counts_album_items_as_seen(server: ChannelServer, client: WebPreviewClient) -> None:
    first = server.add_post("chart", image_urls=["https://cdn/a.jpg", "https://cdn/b.jpg"])
    second = server.add_post("after the album")
    caught = catch_up(client, first + 1, max_pages=3)  # the album's second item id was the last seen
    assert [post.message_id for post in caught] == [second]
