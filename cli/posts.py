"""`following posts --url URL | --html FILE`: the posts of a t.me/s page, one JSON object per line.

A URL is read like the listener reads it (``WebPreviewClient``): a redirect away from ``/s/``, HTTP 429, 5xx
and the soft "No posts found" page are errors on stderr with exit code 1, never an empty listing.

Nothing on the page is left out without a word: a post the bot does not read (media without text or picture:
sticker, video message, voice, poll, location, media only the app shows) is listed too, with the media URLs it
shows as ``image_urls`` and ``skipped`` saying why (``skipped`` is null for posts the bot reads); service and
sponsored messages, which are not posts, are named on stderr with the reason.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO
from urllib.parse import parse_qs, urlparse

from parsing.posts import Post
from parsing.tme import SkippedMessage, page_info, parse_page, skipped_messages
from parsing.web_preview import PreviewError, WebPreviewClient

POST_FIELDS = ("message_id", "date", "text", "image_urls", "reply_to", "forwarded_from", "edited", "skipped")

EXIT_OK = 0
EXIT_ERROR = 1


def post_line(post: Post) -> str:
    row = {**post.to_json(), "skipped": None}
    return json.dumps({key: row[key] for key in POST_FIELDS}, ensure_ascii=False)


def skipped_line(message: SkippedMessage) -> str:
    """A post the bot does not read, in the same shape as the others."""
    row = {"message_id": message.message_id, "date": message.date, "text": "", "image_urls": list(message.media_urls),
           "reply_to": None, "forwarded_from": None, "edited": False, "skipped": message.reason}
    return json.dumps(row, ensure_ascii=False)


def skipped_note(message: SkippedMessage) -> str:
    media = f" (media: {' '.join(message.media_urls)})" if message.media_urls else ""
    return f"following posts: message {message.message_id} is not read by the bot: {message.reason}{media}"


def listing(posts: list[Post], skipped: list[SkippedMessage]) -> list[tuple[int, str]]:
    """(message id, JSON line) of every post, media-only ones included, ascending by id."""
    rows = [(post.message_id, post_line(post)) for post in posts]
    rows += [(message.message_id, skipped_line(message)) for message in skipped if message.is_post]
    return sorted(rows)


def posts_from_url(url: str, timeout: float = 15.0) -> list[Post]:
    return page_from_url(url, timeout)[0]


def preview_client(url: str, timeout: float = 15.0) -> WebPreviewClient:
    """The web preview client of ``https://host/s/<channel>``; ValueError for another URL shape."""
    parsed = urlparse(url)
    parts = [p for p in parsed.path.split("/") if p]
    if parsed.scheme not in ("http", "https") or not parsed.netloc or len(parts) != 2 or parts[0] != "s":
        raise ValueError(f"expected a web preview URL like https://t.me/s/<channel>, got {url!r}")
    return WebPreviewClient(f"{parsed.scheme}://{parsed.netloc}", parts[1], timeout=timeout)


def page_from_url(url: str, timeout: float = 15.0) -> tuple[list[Post], str]:
    """Posts of ``https://host/s/<channel>[?before=N|?after=N]``; ValueError for another URL shape."""
    client = preview_client(url, timeout)
    query = parse_qs(urlparse(url).query)
    for key, fetch in (("before", client.fetch_before), ("after", client.fetch_after)):
        value = (query.get(key) or [""])[0]
        if value.isdigit():
            return fetch(int(value)), client.last_html
    return client.fetch_latest(), client.last_html


def posts_from_html(path: str) -> list[Post]:
    """Posts of a saved page; ValueError when the file is the soft "No posts found" page or no channel page."""
    html = Path(path).read_text(encoding="utf-8", errors="replace")
    info = page_info(html)
    posts = parse_page(html)
    if not posts and info.soft_empty:
        raise ValueError(f"{path} is the 'No posts found' page (t.me serves it when throttling)")
    if not posts and not info.has_history:
        raise ValueError(f"{path} is not a t.me/s channel page")
    return posts


def write_lines(lines: Iterable[str], out: TextIO) -> None:
    try:
        for line in lines:
            print(line, file=out)
        out.flush()
    except BrokenPipeError:
        pass  # e.g. piped into `head`: the reader has what it wanted


def run(url: str | None, html: str | None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        if url:
            posts, page = page_from_url(url)
        else:
            posts = posts_from_html(html or "")
            page = Path(html or "").read_text(encoding="utf-8", errors="replace")
    except (PreviewError, ValueError, OSError) as exc:
        print(f"following posts: {exc}", file=err)
        return EXIT_ERROR
    skipped = skipped_messages(page)
    write_lines((line for _, line in listing(posts, skipped)), out)
    write_lines((skipped_note(message) for message in skipped), err)
    return EXIT_OK
