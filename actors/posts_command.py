"""`following posts --url URL | --html FILE`: the posts of a t.me/s page, one JSON object per line.

A URL is read like the listener reads it (``WebPreviewClient``): a redirect away from ``/s/``, HTTP 429, 5xx
and the soft "No posts found" page are errors on stderr with exit code 1, never an empty listing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO
from urllib.parse import parse_qs, urlparse

from parsing.posts import Post
from parsing.tme import page_info, parse_page
from parsing.web_preview import PreviewError, WebPreviewClient

POST_FIELDS = ("message_id", "date", "text", "image_urls", "reply_to", "forwarded_from", "edited")

EXIT_OK = 0
EXIT_ERROR = 1


def post_line(post: Post) -> str:
    row = post.to_json()
    return json.dumps({key: row[key] for key in POST_FIELDS}, ensure_ascii=False)


def posts_from_url(url: str, timeout: float = 15.0) -> list[Post]:
    """Posts of ``https://host/s/<channel>[?before=N|?after=N]``; ValueError for another URL shape."""
    parsed = urlparse(url)
    parts = [p for p in parsed.path.split("/") if p]
    if parsed.scheme not in ("http", "https") or not parsed.netloc or len(parts) != 2 or parts[0] != "s":
        raise ValueError(f"expected a web preview URL like https://t.me/s/<channel>, got {url!r}")
    client = WebPreviewClient(f"{parsed.scheme}://{parsed.netloc}", parts[1], timeout=timeout)
    query = parse_qs(parsed.query)
    for key, fetch in (("before", client.fetch_before), ("after", client.fetch_after)):
        value = (query.get(key) or [""])[0]
        if value.isdigit():
            return fetch(int(value))
    return client.fetch_latest()


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
        posts = posts_from_url(url) if url else posts_from_html(html or "")
    except (PreviewError, ValueError, OSError) as exc:
        print(f"following posts: {exc}", file=err)
        return EXIT_ERROR
    write_lines((post_line(post) for post in posts), out)
    return EXIT_OK
