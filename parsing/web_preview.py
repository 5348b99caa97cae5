"""HTTP client for a channel's public web preview (``<base_url>/s/<channel>``).

Every failure is a ``PreviewError``; in particular the soft "No posts found" page is reported as
``PreviewUnavailable`` (t.me serves it under load), never as an empty list, so a poller cannot mistake a
throttled fetch for "nothing new". One exception: the newest page of a channel that has no post at all is
"No posts found" under the channel's own header (``tgme_channel_info``); that is an empty result. A page
further back (``?before=``) is never read as empty that way, so a catch-up cannot stop early on it.
Redirects are not followed: t.me redirects channels without a public preview away from ``/s/``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, urljoin, urlparse

import requests
from lxml import etree

from parsing.posts import Post, PostSource, PostSourceError, PostSourceRateLimited
from parsing.tme import page_info, parse_page

log = logging.getLogger(__name__)

_DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
)


class PreviewError(PostSourceError):
    """Any failure to read the web preview."""


class PreviewUnavailable(PreviewError):
    """Timeout, connection failure, 5xx, or the soft "No posts found" page: retry later."""


class PreviewRateLimited(PreviewError, PostSourceRateLimited):
    def __init__(self, retry_after: float | None, message: str = "rate limited (HTTP 429)") -> None:
        PostSourceRateLimited.__init__(self, retry_after, message)


class PreviewRedirected(PreviewError):
    def __init__(self, location: str) -> None:
        super().__init__(f"redirected away from the web preview to {location!r}")
        self.location = location


class PreviewBadPage(PreviewError):
    """The server answered, but not with a readable channel page."""


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP-date: let the caller's own backoff decide
    return seconds if seconds >= 0 else None


def smallest_id(posts: list[Post]) -> int | None:
    """Smallest message id shown by ``posts``, album items included."""
    ids = [min(post.album_ids or (post.message_id,)) for post in posts]
    return min(ids) if ids else None


def largest_id(posts: list[Post]) -> int | None:
    ids = [max(post.album_ids or (post.message_id,)) for post in posts]
    return max(ids) if ids else None


class WebPreviewClient:
    def __init__(
        self,
        base_url: str,
        channel: str,
        *,
        session: requests.Session | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not channel or "/" in channel:
            raise ValueError(f"bad channel name {channel!r}")
        self.base_url = base_url.rstrip("/")
        self.channel = channel
        self.timeout = timeout
        self._session = session or requests.Session()
        self._page_url = f"{self.base_url}/s/{quote(channel)}"
        self.last_html = ""  # the last page read (for `following posts`, which also lists what it skips)

    def __repr__(self) -> str:
        return f"WebPreviewClient({self.base_url!r}, {self.channel!r})"

    def fetch_latest(self) -> list[Post]:
        return self._fetch({}, newest=True)

    def fetch_before(self, message_id: int) -> list[Post]:
        return self._fetch({"before": str(int(message_id))})

    def fetch_after(self, message_id: int) -> list[Post]:
        return self._fetch({"after": str(int(message_id))})

    def _fetch(self, params: dict[str, str], *, newest: bool = False) -> list[Post]:
        try:
            response = self._session.get(
                self._page_url,
                params=params,
                timeout=self.timeout,
                allow_redirects=False,
                headers={"User-Agent": _DESKTOP_UA, "Accept": "text/html"},
            )
        except requests.Timeout as exc:
            raise PreviewUnavailable(f"timeout after {self.timeout:g}s fetching {self._page_url}") from exc
        except requests.RequestException as exc:
            raise PreviewUnavailable(f"cannot fetch {self._page_url}: {type(exc).__name__}") from exc

        status = response.status_code
        if 300 <= status < 400:
            location = urljoin(self._page_url, response.headers.get("Location", ""))
            raise PreviewRedirected(location)
        if status == 429:
            raise PreviewRateLimited(_retry_after_seconds(response.headers.get("Retry-After")))
        if status >= 500:
            raise PreviewUnavailable(f"HTTP {status} from {self._page_url}")
        if status != 200:
            raise PreviewBadPage(f"HTTP {status} from {self._page_url}")
        if "/s/" not in urlparse(response.url or self._page_url).path:
            raise PreviewRedirected(response.url)

        html = self.last_html = response.text
        try:
            info = page_info(html)
            if info.soft_empty:
                if newest and info.channel_info:
                    return []  # the channel's own page, with its header, and no post yet: an empty channel
                raise PreviewUnavailable("the page says 'No posts found' (soft rate limit?)")
            if not info.has_history:
                raise PreviewBadPage("no message history section on the page")
            return parse_page(html, channel=self.channel)
        except PreviewError:
            raise
        except (ValueError, TypeError, AttributeError, LookupError, RecursionError, etree.LxmlError) as exc:
            # The page parser reads what it can; anything it still trips over is a page we cannot read, said
            # with this client's typed error (never a bare exception out of a poll).
            raise PreviewBadPage(f"unreadable page from {self._page_url}: {type(exc).__name__}") from exc


@dataclass(frozen=True)
class CatchUp:
    """What a catch-up read: posts to hand on, posts read and set aside, and ids it could not read."""

    posts: list[Post]  # newer than the last post seen, ascending: every one within the page bound, and beyond it
    # those ``keep_beyond`` kept
    skipped: list[Post] = field(default_factory=list)  # read beyond the page bound and not kept (ascending)
    missing: tuple[int, int] | None = None  # first and last id of the range left unread (None: nothing missing)
    why_missing: str = ""  # the page bound, the time bound, or the error that stopped the paging
    pages: int = 0


def catch_up_report(
    client: PostSource,
    last_seen_id: int,
    max_pages: int = 5,
    *,
    keep_beyond: Callable[[Post], bool] | None = None,
    extra_seconds: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
) -> CatchUp:
    """Posts newer than ``last_seen_id``, each once, ascending, paging back with ``?before=``.

    Starts at the newest page and walks older pages until one reaches back to ``last_seen_id`` (or the
    channel's start). Every post on the first ``max_pages`` pages is kept. Past them, with ``keep_beyond`` and
    ``extra_seconds`` > 0, paging goes on for at most ``extra_seconds`` more, keeping only the posts
    ``keep_beyond`` accepts (an exit for an open signal) and setting the others aside in ``skipped``; a page
    that fails there ends the paging instead of the catch-up. Whatever stays unread is ``missing``. Errors
    within the first ``max_pages`` pages propagate (nothing was handed on: the next poll starts again).
    """
    if max_pages < 1:
        raise ValueError("max_pages must be at least 1")
    found: dict[int, Post] = {}
    skipped: dict[int, Post] = {}
    page = client.fetch_latest()
    pages_read = 1
    beyond_since: float | None = None  # when paging went past max_pages
    while True:
        for post in page:
            if post.message_id <= last_seen_id or post.message_id in found:
                continue
            if beyond_since is None or (keep_beyond is not None and keep_beyond(post)):
                found[post.message_id] = post
            else:
                skipped.setdefault(post.message_id, post)
        oldest = smallest_id(page)
        if oldest is None or oldest <= last_seen_id + 1:
            break  # reached what we had already seen (or the beginning of the channel)
        why = ""
        if pages_read >= max_pages:
            if beyond_since is None:
                beyond_since = clock()
            if keep_beyond is None or extra_seconds <= 0:
                why = f"stopped after {pages_read} pages (max_catch_up_pages)"
            elif clock() - beyond_since >= extra_seconds:
                why = f"stopped after {pages_read} pages and {extra_seconds:g}s past max_catch_up_pages"
        if not why:
            try:
                next_page = client.fetch_before(oldest)
            except PostSourceError as exc:
                if beyond_since is None:
                    raise
                why = f"page before {oldest} unreadable: {exc}"
        if why:
            log.warning("catch-up of %s: %s; ids %d..%d not read", client.channel, why, last_seen_id + 1, oldest - 1)
            return CatchUp(_ascending(found), _ascending(skipped), (last_seen_id + 1, oldest - 1), why, pages_read)
        page = next_page
        pages_read += 1
        next_oldest = smallest_id(page)
        if next_oldest is not None and next_oldest >= oldest:
            break  # the server ignored the cursor: stop rather than loop
    return CatchUp(_ascending(found), _ascending(skipped), pages=pages_read)


def _ascending(posts: dict[int, Post]) -> list[Post]:
    return [posts[key] for key in sorted(posts)]


def catch_up(
    client: PostSource,
    last_seen_id: int,
    max_pages: int = 5,
    on_gap: Callable[[int, int], None] | None = None,
) -> list[Post]:
    """:func:`catch_up_report` within ``max_pages`` pages: the posts found; ``on_gap(first, last)`` is called
    with the ids that may be missing when the bound was hit first."""
    result = catch_up_report(client, last_seen_id, max_pages)
    if result.missing is not None and on_gap is not None:
        on_gap(*result.missing)
    return result.posts
