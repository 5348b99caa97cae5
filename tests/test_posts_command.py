"""`following posts --url URL | --html FILE`: one JSON object per post with exactly the documented fields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from parsing.channel_server import ChannelServer

FIELDS = {"message_id", "date", "text", "image_urls", "reply_to", "forwarded_from", "edited", "skipped"}
OWN_PAGE = Path(__file__).resolve().parent / "fixtures" / "tme" / "signal_channel.html"
MEDIA_ONLY_PAGE = OWN_PAGE.with_name("media_only.html")
SHARED_TME = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "tme"


def run_posts(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]], str]:
    code = main(["posts", *args])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


@pytest.fixture
def server() -> Iterator[ChannelServer]:
    with ChannelServer("SigDesk", page_size=3) as channel_server:
        yield channel_server


def test_html_file_prints_each_post_with_exactly_the_listed_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, rows, _ = run_posts(capsys, "--html", str(OWN_PAGE))
    assert code == 0
    assert all(set(row) == FIELDS for row in rows)
    # 506 is media only the Telegram app shows: listed, with why the bot does not read it
    assert [row["message_id"] for row in rows] == [501, 502, 503, 506, 508]
    assert rows[1] == {"message_id": 502, "date": "2026-01-05T10:00:00+00:00",
                       "text": "TP1 hit ✅\nMove stop to break-even", "image_urls": [], "reply_to": 501,
                       "forwarded_from": None, "edited": True, "skipped": None}
    assert rows[2]["forwarded_from"] == "Other Desk" and len(rows[2]["image_urls"]) == 2
    assert rows[3]["text"] == "" and "Telegram app" in rows[3]["skipped"]


def test_url_reads_the_page_and_its_cursor(server: ChannelServer, capsys: pytest.CaptureFixture[str]) -> None:
    ids = [server.add_post(f"post {n}\nline two") for n in range(5)]
    code, rows, _ = run_posts(capsys, "--url", f"{server.base_url}/s/SigDesk")
    assert code == 0 and [row["message_id"] for row in rows] == ids[-3:]
    assert rows[0]["text"] == "post 2\nline two" and set(rows[0]) == FIELDS
    code, rows, _ = run_posts(capsys, "--url", f"{server.base_url}/s/SigDesk?before={ids[2]}")
    assert code == 0 and [row["message_id"] for row in rows] == ids[:2]


@pytest.mark.parametrize(
    ("fault", "message"),
    [("redirect", "redirected away from the web preview"), ("soft_empty", "No posts found"),
     ("429", "rate limited"), ("not_preview", "expected a web preview URL")],
)
def test_url_failures_are_errors_not_an_empty_listing(server: ChannelServer, capsys: pytest.CaptureFixture[str],
                                                      fault: str, message: str) -> None:
    server.add_post("there is a post")
    url = f"{server.base_url}/s/SigDesk"
    if fault == "redirect":
        url = f"{server.base_url}/s/PrivateDesk"
    elif fault == "soft_empty":
        server.serve_soft_empty_next()
    elif fault == "429":
        server.fail_next(429, retry_after=30)
    else:
        url = f"{server.base_url}/SigDesk"
    code, rows, err = run_posts(capsys, "--url", url)
    assert code == 1 and rows == [] and message in err


def test_html_soft_empty_or_missing_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    soft = tmp_path / "soft.html"
    soft.write_text('<section class="tgme_channel_history"><div class="tme_no_messages_found">No posts found</div>'
                    "</section>", encoding="utf-8")
    code, rows, err = run_posts(capsys, "--html", str(soft))
    assert code == 1 and rows == [] and "No posts found" in err
    code, _, err = run_posts(capsys, "--html", str(tmp_path / "missing.html"))
    assert code == 1 and "missing.html" in err


@pytest.mark.shared
@pytest.mark.parametrize("name", ["Apkawa__rust-any2feed__full.html", "PythonicCafe__tchan__test_snippets.html",
                                  "shady2k__lifemodel__telegram-test-channel.html"])
def test_real_saved_pages_print_the_listed_fields(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = SHARED_TME / name
    if not path.exists():
        pytest.skip(f"shared fixture {name} not available")
    code, rows, _ = run_posts(capsys, "--html", str(path))
    assert code == 0 and rows
    assert all(set(row) == FIELDS for row in rows)
    ids = [row["message_id"] for row in rows]
    assert ids == sorted(set(ids))
    assert all(isinstance(row["text"], str) and isinstance(row["image_urls"], list) for row in rows)


def test_media_only_posts_are_printed_with_their_images_and_skipped_types_are_explained(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, rows, err = run_posts(capsys, "--html", str(MEDIA_ONLY_PAGE))
    assert code == 0 and all(set(row) == FIELDS for row in rows)
    by_id = {row["message_id"]: row for row in rows}
    assert sorted(by_id) == [700, 701, 702, 703]  # 704 is a service message, not a post
    # a picture without text is a post the bot reads (the image goes to the reader)
    assert by_id[700]["skipped"] is None and by_id[700]["image_urls"] == ["https://cdn4.telesco.pe/file/chart-700.jpg"]
    sticker, video, voice = by_id[701], by_id[702], by_id[703]
    assert sticker["image_urls"] == ["https://cdn4.telesco.pe/file/rocket-701.webp"]
    assert sticker["skipped"].startswith("a sticker without text")
    assert video["image_urls"] == ["https://cdn4.telesco.pe/file/round-702.jpg",
                                   "https://cdn4.telesco.pe/file/round-702.mp4"]
    assert video["date"] == "2026-01-06T09:10:00+00:00" and "video message" in video["skipped"]
    assert "voice message" in voice["skipped"]
    notes = err.splitlines()
    assert [n.split(":")[1].strip() for n in notes] == [f"message {i} is not read by the bot" for i in
                                                         (701, 702, 703, 704)]
    assert "rocket-701.webp" in notes[0]
    assert "service message" in notes[3]


def test_url_listing_marks_read_posts_as_not_skipped(server: ChannelServer, capsys: pytest.CaptureFixture[str]) -> None:
    from parsing.tme import skipped_messages

    server.add_post("text post")
    code, rows, err = run_posts(capsys, "--url", f"{server.base_url}/s/SigDesk")
    assert code == 0 and [row["skipped"] for row in rows] == [None] and err == ""
    assert skipped_messages(MEDIA_ONLY_PAGE.read_text(encoding="utf-8"))[0].kind == "sticker"
