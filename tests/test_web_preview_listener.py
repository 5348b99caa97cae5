from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from actors.listener import ChannelPoller, PollPlan
from actors.messages import PostSeen
from ops.metrics import Metrics
from parsing.channel_server import ChannelServer
from parsing.media import MediaStore, url_host
from parsing.web_preview import (
    PreviewBadPage,
    PreviewError,
    PreviewRateLimited,
    PreviewRedirected,
    PreviewUnavailable,
    WebPreviewClient,
    catch_up,
)
from trading.journal import Journal


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


def test_a_slow_page_times_out_as_unavailable_and_the_next_poll_works(server: ChannelServer) -> None:
    server.add_post("hello")
    server.delay_next(30.0)  # cut short when the server stops
    client = WebPreviewClient(server.base_url, "SigDesk", timeout=0.2)
    started = time.monotonic()
    with pytest.raises(PreviewUnavailable, match="timeout"):
        client.fetch_latest()
    # Far below the 30 s a client without a timeout would wait, far above what a loaded machine adds to 0.2 s.
    assert time.monotonic() - started < 10
    assert [p.text for p in client.fetch_latest()] == ["hello"]


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


# --- the listener's poll: order, exactly once, edits, politeness, metrics, media -------------------------
POSTS = "following_posts_total"
ERRORS = "following_poll_errors_total"
POLLS = "following_poll_seconds_count"


def metric(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


@dataclass
class Rig:
    server: ChannelServer
    journal: Journal
    metrics: Metrics
    handed: list[Any]
    tmp_path: Path

    def poller(self, *, max_pages: int = 10, media: bool = False, interval: float = 5.0,
               backoff_max: float = 300.0, extra_seconds: float = 30.0) -> ChannelPoller:
        return ChannelPoller(
            source=WebPreviewClient(self.server.base_url, "SigDesk", timeout=2.0),
            journal=self.journal, hand_on=self.handed.append, metrics=self.metrics,
            plan=PollPlan(interval, 1.0, backoff_max, random.Random(3)), max_catch_up_pages=max_pages,
            catch_up_extra_seconds=extra_seconds,
            media=MediaStore(self.tmp_path / "media", self.journal, max_bytes=100_000, timeout=2.0,
                             allowed_hosts=(url_host(self.server.base_url) or "",)) if media
            else None,
        )

    def seen_ids(self) -> list[int]:
        return [m.post.message_id for m in self.handed if isinstance(m, PostSeen)]


@pytest.fixture
def rig(server: ChannelServer, tmp_path: Path) -> Iterator[Rig]:
    with Journal(str(tmp_path / "journal.sqlite")) as journal:
        yield Rig(server, journal, Metrics(), [], tmp_path)


def test_poll_plan_jitter_stays_within_its_bounds() -> None:
    plan = PollPlan(5.0, 1.5, 300.0, random.Random(1))
    delays = [plan.after_success() for _ in range(500)]
    assert all(5.0 <= delay <= 6.5 for delay in delays)
    assert max(delays) - min(delays) > 1.0  # really spread, not a constant


def test_poll_plan_backs_off_exponentially_to_its_cap_and_resets_after_success() -> None:
    plan = PollPlan(2.0, 0.0, 30.0, random.Random(1))
    assert [plan.after_failure() for _ in range(5)] == [4.0, 8.0, 16.0, 30.0, 30.0]
    assert plan.after_success() == 2.0
    assert plan.after_failure() == 4.0


def test_poll_plan_honours_retry_after_even_above_its_cap() -> None:
    plan = PollPlan(2.0, 0.0, 30.0, random.Random(1))
    assert plan.after_failure(retry_after_s=120.0) == 120.0
    assert plan.after_failure(retry_after_s=1.0) == 8.0  # a short Retry-After never shortens the backoff


def test_first_start_is_history_then_new_posts_once_each_in_order(rig: Rig) -> None:
    old = [rig.server.add_post(f"old {n}") for n in range(3)]
    poller = rig.poller()
    poller.poll()
    assert rig.handed == [] and rig.journal.last_message_id("SigDesk") == old[-1]
    new = [rig.server.add_post(f"new {n}") for n in range(3)]
    poller.poll()
    poller.poll()
    assert rig.seen_ids() == new
    assert metric(rig.metrics, POSTS) == 3 and metric(rig.metrics, POLLS, source="listener") == 3


def test_catch_up_after_downtime_hands_each_post_on_once_in_order(rig: Rig) -> None:
    rig.server.add_post("before the first start")
    rig.poller().poll()
    missed = [rig.server.add_post(f"while down {n}") for n in range(17)]  # page size 5: four pages
    restarted = rig.poller()  # a new instance: all it knows is the journal
    restarted.poll()
    restarted.poll()
    assert rig.seen_ids() == missed
    assert rig.journal.events("CATCH_UP_INCOMPLETE") == []


def test_catch_up_bounded_in_pages_records_the_gap(rig: Rig) -> None:
    rig.server.add_post("seen")
    rig.poller().poll()
    missed = [rig.server.add_post(f"while down {n}") for n in range(17)]
    rig.poller(max_pages=2, extra_seconds=0).poll()  # no paging past the bound (see test_catch_up_beyond_pages)
    assert rig.seen_ids() == missed[-10:]
    (event,) = rig.journal.events("CATCH_UP_INCOMPLETE")
    assert (event.detail["first_missing"], event.detail["last_missing"]) == (missed[0], missed[6])


def test_edit_is_an_update_event_never_a_second_entry(rig: Rig) -> None:
    rig.poller().poll()  # empty channel: the baseline
    poller = rig.poller()
    message_id = rig.server.add_post("BTC LONG\nSL 59000")
    poller.poll()
    rig.server.edit_post(message_id, "BTC LONG\nSL 59500")
    poller.poll()
    poller.poll()
    kinds = [(type(m).__name__, m.post.message_id) for m in rig.handed]
    assert kinds == [("PostSeen", message_id), ("PostEdited", message_id)]
    edited = rig.handed[1]
    assert edited.previous_text == "BTC LONG\nSL 59000" and edited.post.text == "BTC LONG\nSL 59500"
    assert metric(rig.metrics, POSTS) == 1


def test_rate_limit_backs_off_by_retry_after_and_loses_nothing(rig: Rig) -> None:
    poller = rig.poller(interval=1.0, backoff_max=10.0)
    poller.poll()
    message_id = rig.server.add_post("posted during the 429")
    rig.server.fail_next(429, retry_after=45)
    assert poller.poll() >= 45
    assert rig.handed == [] and metric(rig.metrics, ERRORS, source="listener") == 1
    assert poller.poll() <= 2.0  # back to the interval (plus jitter)
    assert rig.seen_ids() == [message_id]


@pytest.mark.parametrize("fault", ["soft_empty", "503"])
def test_soft_empty_page_and_5xx_are_failures_never_an_empty_channel(rig: Rig, fault: str) -> None:
    rig.server.add_post("already there")
    if fault == "soft_empty":
        rig.server.serve_soft_empty_next()
    else:
        rig.server.fail_next(503)
    poller = rig.poller(interval=1.0)
    assert poller.poll() >= 2.0  # backoff, not the interval
    # Not mistaken for the first look at an empty channel: no baseline, nothing recorded.
    assert rig.journal.get_flag("listener_baseline:SigDesk") is None
    assert rig.journal.last_message_id("SigDesk") is None
    assert metric(rig.metrics, ERRORS, source="listener") == 1
    assert metric(rig.metrics, POLLS, source="listener") == 1
    poller.poll()
    assert rig.journal.last_message_id("SigDesk") == 1 and rig.handed == []  # then history, as it should


def test_redirect_away_from_the_preview_is_reported_clearly(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    poller = ChannelPoller(
        source=WebPreviewClient(rig.server.base_url, "PrivateDesk", timeout=2.0), journal=rig.journal,
        hand_on=rig.handed.append, metrics=rig.metrics, plan=PollPlan(1.0, 0.0, 60.0, random.Random(1)),
    )
    with caplog.at_level(logging.ERROR, logger="following.listener"):
        assert poller.poll() == 2.0
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "PrivateDesk has no public web preview" in record.getMessage()
    assert "/PrivateDesk" in record.getMessage() and "listener.target_url" in record.getMessage()
    assert metric(rig.metrics, ERRORS, source="listener") == 1


PNG = b"\x89PNG\r\n\x1a\n" + b"chart" * 100


def test_new_post_images_are_stored_before_the_post_is_handed_on(rig: Rig) -> None:
    rig.poller().poll()
    url = rig.server.add_image("chart.png", PNG)
    poller = rig.poller(media=True)
    handed_with_image: list[bool] = []
    poller._hand_on = lambda message: handed_with_image.append(rig.journal.media_by_url(url) is not None)
    rig.server.add_post("BTC chart", image_urls=[url])
    poller.poll()
    assert handed_with_image == [True]  # the vision model finds the file when the post reaches it
    row = rig.journal.media_by_url(url)
    assert row is not None and Path(row.path).read_bytes() == PNG


def test_a_failed_image_download_is_journaled_and_the_post_still_handed_on(rig: Rig) -> None:
    rig.poller().poll()
    bad = rig.server.add_image("login.png", b"<html>", "text/html")
    missing = f"{rig.server.base_url}/img/gone.png"
    good = rig.server.add_image("ok.png", PNG)
    message_id = rig.server.add_post("album", image_urls=[bad, missing, good])
    rig.poller(media=True).poll()
    assert rig.seen_ids() == [message_id]
    failures = {e.detail["url"]: e.detail["error"] for e in rig.journal.events("MEDIA_DOWNLOAD_FAILED")}
    assert set(failures) == {bad, missing}
    assert "MediaNotAnImage" in failures[bad] and "HTTP 404" in failures[missing]
    assert rig.journal.media_by_url(good) is not None


def test_an_image_url_off_the_allow_list_is_journaled_and_never_fetched(rig: Rig) -> None:
    rig.poller().poll()
    good = rig.server.add_image("ok.png", PNG)
    internal = "http://169.254.169.254/latest/meta-data/iam.png"
    message_id = rig.server.add_post("chart", image_urls=[internal, good])
    rig.poller(media=True).poll()
    assert rig.seen_ids() == [message_id]  # the post itself goes on
    (refused,) = rig.journal.events("MEDIA_URL_REFUSED")
    assert refused.detail == {"channel": "SigDesk", "message_id": message_id, "url": internal}
    assert rig.journal.events("MEDIA_DOWNLOAD_FAILED") == []
    assert rig.journal.media_by_url(internal) is None and rig.journal.media_by_url(good) is not None


def test_an_image_seen_again_in_an_edit_is_not_downloaded_again(rig: Rig) -> None:
    rig.poller().poll()
    url = rig.server.add_image("chart.png", PNG)
    message_id = rig.server.add_post("chart", image_urls=[url])
    poller = rig.poller(media=True)
    poller.poll()
    rig.server.edit_post(message_id, "chart (corrected)")
    poller.poll()
    assert [type(m).__name__ for m in rig.handed] == ["PostSeen", "PostEdited"]
    assert rig.server.image_hits("chart.png") == 1
