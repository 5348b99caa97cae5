from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from parsing.channel_server import ChannelServer
from parsing.media import (
    TELEGRAM_MEDIA_HOSTS,
    MediaBadUrl,
    MediaNotAnImage,
    MediaStore,
    MediaTimeout,
    MediaTooLarge,
    MediaUnavailable,
    MediaUrlRefused,
    host_allowed,
)
from trading.journal import Journal

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8  # 2 KiB: the server sends it in two chunks


@pytest.fixture
def server() -> Iterator[ChannelServer]:
    with ChannelServer("SigDesk") as channel_server:
        yield channel_server


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(str(tmp_path / "journal.sqlite")) as opened:
        yield opened


LOOPBACK = ("127.0.0.1:*",)  # the test servers listen on loopback ports


def store(tmp_path: Path, journal: Journal, *, max_bytes: int = 100_000, timeout: float = 5.0,
          allowed_hosts: tuple[str, ...] = LOOPBACK) -> MediaStore:
    return MediaStore(tmp_path / "media", journal, max_bytes=max_bytes, timeout=timeout, allowed_hosts=allowed_hosts)


def stored_files(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "media").rglob("*") if p.is_file())


def test_image_is_stored_by_hash_and_indexed(tmp_path: Path, server: ChannelServer, journal: Journal) -> None:
    url = server.add_image("chart.png", PNG, "image/png")
    stored = store(tmp_path, journal).fetch(url)
    sha = hashlib.sha256(PNG).hexdigest()
    assert stored.sha256 == sha and stored.size == len(PNG) and stored.downloaded
    assert Path(stored.path) == tmp_path / "media" / sha[:2] / f"{sha}.png"
    assert Path(stored.path).read_bytes() == PNG
    row = journal.media_by_url(url)  # what the vision model reads
    assert row is not None and row.path == stored.path and row.content_type == "image/png"
    assert stored_files(tmp_path) == [Path(stored.path)]  # no temporary file left behind


def test_a_url_seen_again_is_not_downloaded_again(tmp_path: Path, server: ChannelServer, journal: Journal) -> None:
    url = server.add_image("chart.jpg", PNG, "image/jpeg")
    first = store(tmp_path, journal).fetch(url)
    again = store(tmp_path, journal).fetch(url)  # e.g. after a restart
    assert server.image_hits("chart.jpg") == 1
    assert not again.downloaded and again.path == first.path and again.sha256 == first.sha256


def test_a_known_url_whose_file_is_gone_is_fetched_again(tmp_path: Path, server: ChannelServer,
                                                        journal: Journal) -> None:
    url = server.add_image("chart.png", PNG)
    first = store(tmp_path, journal).fetch(url)
    Path(first.path).unlink()
    again = store(tmp_path, journal).fetch(url)
    assert again.downloaded and Path(again.path).read_bytes() == PNG
    assert server.image_hits("chart.png") == 2


def test_identical_bytes_from_two_urls_are_stored_once(tmp_path: Path, server: ChannelServer,
                                                       journal: Journal) -> None:
    first_url = server.add_image("a.png", PNG)
    second_url = server.add_image("b.png", PNG)
    media = store(tmp_path, journal)
    first, second = media.fetch(first_url), media.fetch(second_url)
    assert first.path == second.path
    assert len(stored_files(tmp_path)) == 1
    by_url = (journal.media_by_url(first_url), journal.media_by_url(second_url))
    assert by_url[0] is not None and by_url[0] == by_url[1]


def test_wrong_content_type_is_refused(tmp_path: Path, server: ChannelServer, journal: Journal) -> None:
    url = server.add_image("page.png", b"<html>login</html>", "text/html; charset=utf-8")
    with pytest.raises(MediaNotAnImage, match="text/html"):
        store(tmp_path, journal).fetch(url)
    assert journal.media_by_url(url) is None and stored_files(tmp_path) == []


def test_declared_oversize_is_refused_before_reading(tmp_path: Path, server: ChannelServer,
                                                     journal: Journal) -> None:
    url = server.add_image("big.png", PNG)
    with pytest.raises(MediaTooLarge, match="declared"):
        store(tmp_path, journal, max_bytes=1000).fetch(url)
    assert journal.media_by_url(url) is None and stored_files(tmp_path) == []


def test_undeclared_oversize_is_cut_off_while_streaming(tmp_path: Path, server: ChannelServer,
                                                        journal: Journal) -> None:
    url = server.add_image("big.png", PNG, declare_length=False)
    with pytest.raises(MediaTooLarge):
        store(tmp_path, journal, max_bytes=1000).fetch(url)
    assert journal.media_by_url(url) is None and stored_files(tmp_path) == []
    # Just under the cap is fine, also without a declared length.
    assert store(tmp_path, journal, max_bytes=len(PNG)).fetch(url).size == len(PNG)


def test_a_silent_server_times_out(tmp_path: Path, server: ChannelServer, journal: Journal) -> None:
    url = server.add_image("slow.png", PNG, delay_seconds=30)  # the server's stop cuts this wait short
    started = time.monotonic()
    with pytest.raises(MediaTimeout):
        store(tmp_path, journal, timeout=0.2).fetch(url)
    # Far below the 30 s a fetch waiting for the answer would take: the bound survives a loaded machine.
    assert time.monotonic() - started < 10
    assert journal.media_by_url(url) is None


def test_a_trickling_server_hits_the_total_deadline(tmp_path: Path, server: ChannelServer, journal: Journal) -> None:
    # Each chunk arrives within the read timeout, but the whole download would take far longer.
    url = server.add_image("trickle.png", PNG * 40, chunk_delay_seconds=0.15)
    started = time.monotonic()
    with pytest.raises(MediaTimeout, match="within"):
        store(tmp_path, journal, timeout=0.3).fetch(url)
    # The whole body would take 12 s (80 chunks); the margin over the 0.3 s deadline absorbs a loaded machine.
    assert time.monotonic() - started < 6
    assert journal.media_by_url(url) is None and stored_files(tmp_path) == []


def test_missing_image_and_refused_connection_are_unavailable(tmp_path: Path, server: ChannelServer,
                                                              journal: Journal) -> None:
    media = store(tmp_path, journal, timeout=2)
    with pytest.raises(MediaUnavailable, match="HTTP 404"):
        media.fetch(f"{server.base_url}/img/none.png")
    closed = ChannelServer("x")
    url = closed.base_url + "/img/a.png"
    closed.stop()
    with pytest.raises(MediaUnavailable, match="cannot connect"):
        media.fetch(url)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://host/a.png", "not a url"])
def test_only_http_urls_are_fetched(tmp_path: Path, journal: Journal, url: str) -> None:
    with pytest.raises(MediaBadUrl):
        store(tmp_path, journal).fetch(url)


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/x.png",  # cloud metadata
    "http://10.0.0.5/chart.png",
    "https://cdn4.telesco.pe.evil.example/file/a.jpg",  # the zone name as a prefix of another
    "https://evil.example/cdn4.telesco.pe/a.jpg",
    "https://cdn4.telesco.pe@10.0.0.5/file/a.jpg",  # credentials: names one host, connects to another
    "https://cdn4.telesco.pe:8443/file/a.jpg",  # an allowed host, another port
    "https://x.cdn4.telegram-cdn.org/file/a.jpg",
])
def test_telegram_defaults_refuse_every_other_host_before_connecting(tmp_path: Path, journal: Journal,
                                                                   url: str) -> None:
    media = MediaStore(tmp_path / "media", journal, max_bytes=100_000, timeout=1)
    with pytest.raises(MediaUrlRefused):
        media.fetch(url)
    assert not (tmp_path / "media").exists()


@pytest.mark.parametrize("url", [
    "https://cdn4.telesco.pe/file/a.jpg",
    "https://CDN1.Telegram-CDN.org/file/a.jpg",
    "https://cdn5.telegram-cdn.org:443/file/a.jpg",
    "https://cdn4.cdn-telegram.org/file/a.jpg",
    "https://t.me/i/userpic/320/x.jpg",
])
def test_telegram_media_hosts_are_allowed_by_default(url: str) -> None:
    assert host_allowed(url, TELEGRAM_MEDIA_HOSTS)


def test_a_host_off_the_list_is_never_contacted(tmp_path: Path, server: ChannelServer, journal: Journal) -> None:
    url = server.add_image("chart.png", PNG, "image/png")
    with pytest.raises(MediaUrlRefused):
        store(tmp_path, journal, allowed_hosts=TELEGRAM_MEDIA_HOSTS).fetch(url)
    assert server.image_hits("chart.png") == 0
    assert journal.media_by_url(url) is None


@pytest.fixture
def redirector() -> Iterator[tuple[str, list[str]]]:
    """A loopback server answering every GET with a redirect to the URL in its path (after the slash)."""
    hits: list[str] = []

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(302)
            self.send_header("Location", self.path[1:])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_a_redirect_is_followed_only_to_an_allowed_host(tmp_path: Path, server: ChannelServer, journal: Journal,
                                                        redirector: tuple[str, list[str]]) -> None:
    base, hits = redirector
    image = server.add_image("chart.png", PNG, "image/png")
    only_redirector = (base.removeprefix("http://"),)
    with pytest.raises(MediaUrlRefused):
        store(tmp_path, journal, allowed_hosts=only_redirector).fetch(f"{base}/{image}")
    assert len(hits) == 1 and server.image_hits("chart.png") == 0
    both = (*only_redirector, server.base_url.removeprefix("http://"))
    stored = store(tmp_path, journal, allowed_hosts=both).fetch(f"{base}/{image}")
    assert Path(stored.path).read_bytes() == PNG and server.image_hits("chart.png") == 1


def test_bytes_from_another_source_share_the_checks_and_the_dedupe(tmp_path: Path, journal: Journal) -> None:
    calls: list[str] = []

    def telegram_photo(url: str) -> tuple[bytes, str]:
        calls.append(url)
        return PNG, "image/png"

    media = MediaStore(tmp_path / "media", journal, max_bytes=100_000, timeout=1,
                       fetchers={"tg": telegram_photo})
    stored = media.fetch("tg://SigDesk/5/photo")
    assert Path(stored.path).read_bytes() == PNG
    assert media.fetch("tg://SigDesk/5/photo").downloaded is False and calls == ["tg://SigDesk/5/photo"]
    with pytest.raises(MediaNotAnImage):
        media.store_bytes("tg://SigDesk/6/doc", b"%PDF", "application/pdf")
    with pytest.raises(MediaUnavailable):
        media.store_bytes("tg://SigDesk/7/photo", b"", "image/jpeg")
    with pytest.raises(MediaTooLarge):
        MediaStore(tmp_path / "media", journal, max_bytes=10, timeout=1).store_bytes("tg://x/1", PNG, "image/png")


@pytest.mark.slow
def test_the_running_system_stores_a_post_image_where_the_vision_model_finds_it(tmp_path: Path) -> None:
    from tests.e2e import running_system
    from tests.waiting import wait_until

    with running_system(tmp_path) as system:
        url = system.channel.add_image("chart.png", PNG)
        message_id = system.channel.add_post("BTC chart, see picture", image_urls=[url])
        journal = system.runtime.journal
        assert journal is not None
        row = wait_until(lambda: journal.media_by_url(url), what="the stored image")
        assert Path(row.path).read_bytes() == PNG and Path(row.path).is_relative_to(tmp_path / "media")
        wait_until(lambda: journal.signal_for_post(system.channel.channel, message_id), what="the post read")
