from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests

from parsing.channel_server import ChannelServer
from parsing.tme import page_info, parse_page


@pytest.fixture
def server() -> Iterator[ChannelServer]:
    channel_server = ChannelServer("SigDesk", ["first post"], page_size=3)
    channel_server.start()
    yield channel_server
    channel_server.stop()


def _page(server: ChannelServer, query: str = "") -> str:
    response = requests.get(f"{server.base_url}/s/SigDesk{query}", timeout=5)
    assert response.status_code == 200
    return response.text


def test_initial_posts_are_served_in_real_markup(server: ChannelServer) -> None:
    (post,) = parse_page(_page(server))
    assert post.text == "first post" and post.message_id == 1 and post.channel == "SigDesk"
    assert post.date and post.date.endswith("+00:00")


def test_text_with_markup_characters_round_trips(server: ChannelServer) -> None:
    text = "<b>not bold</b> & \"quotes\"\n  indented line\n\nTP1: 62 000 🚀"
    message_id = server.add_post(text, date="2026-02-01T10:00:00+00:00")
    post = parse_page(_page(server))[-1]
    assert (post.message_id, post.text, post.date) == (message_id, text, "2026-02-01T10:00:00+00:00")


def test_paging_links_match_what_tme_shows(server: ChannelServer) -> None:
    for n in range(7):
        server.add_post(f"p{n}")  # ids 1..8, three per page
    newest = page_info(_page(server))
    assert newest.before == 6 and newest.after is None
    middle = page_info(_page(server, "?before=6"))
    assert middle.before == 3 and middle.after == 5
    oldest = page_info(_page(server, "?before=3"))
    assert oldest.before is None and oldest.after == 2


def test_channel_name_is_case_insensitive_and_unknown_redirects(server: ChannelServer) -> None:
    assert requests.get(f"{server.base_url}/s/sigdesk", timeout=5).status_code == 200
    response = requests.get(f"{server.base_url}/s/Other", allow_redirects=False, timeout=5)
    assert response.status_code == 302 and response.headers["Location"] == "/Other"


def test_images_are_served(server: ChannelServer) -> None:
    url = server.add_image("chart.png", b"\x89PNG-bytes", "image/png")
    response = requests.get(url, timeout=5)
    assert response.content == b"\x89PNG-bytes" and response.headers["Content-Type"] == "image/png"
    assert requests.get(f"{server.base_url}/img/missing.png", timeout=5).status_code == 404


def test_faults_apply_once_then_normal_service(server: ChannelServer) -> None:
    server.fail_next(503)
    assert requests.get(f"{server.base_url}/s/SigDesk", timeout=5).status_code == 503
    server.serve_soft_empty_next()
    assert page_info(_page(server)).soft_empty
    assert parse_page(_page(server))[0].text == "first post"
    assert server.hits == 3


def test_concurrent_posting_gives_unique_ids(server: ChannelServer) -> None:
    ids: list[int] = []
    lock = threading.Lock()

    def post_many() -> None:
        for n in range(25):
            message_id = server.add_post(f"x{n}")
            with lock:
                ids.append(message_id)

    threads = [threading.Thread(target=post_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert len(set(ids)) == 100 and server.last_message_id == 101


def test_schedule_reveals_posts_over_time(server: ChannelServer) -> None:
    server.schedule([(0.0, "now"), (0.05, "soon")])
    thread = server.start_schedule()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert [post.text for post in parse_page(_page(server))][-2:] == ["now", "soon"]


def test_stop_interrupts_a_long_schedule() -> None:
    channel_server = ChannelServer("SigDesk")
    channel_server.start()
    channel_server.schedule([(60.0, "far future")])
    thread = channel_server.start_schedule()
    started = time.monotonic()
    channel_server.stop()
    assert not thread.is_alive() and time.monotonic() - started < 5
    assert channel_server.last_message_id == 0
