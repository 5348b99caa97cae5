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
from collections.abc import Callable
from urllib.parse import quote, urljoin, urlparse

import requests

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

        html = response.text
        info = page_info(html)
        if info.soft_empty:
            if newest and info.channel_info:
                return []  # the channel's own page, with its header, and no post yet: an empty channel
            raise PreviewUnavailable("the page says 'No posts found' (soft rate limit?)")
        if not info.has_history:
            raise PreviewBadPage("no message history section on the page")
        return parse_page(html, channel=self.channel)


def catch_up(
    client: PostSource,
    last_seen_id: int,
    max_pages: int = 5,
    on_gap: Callable[[int, int], None] | None = None,
) -> list[Post]:
    """Posts newer than ``last_seen_id``, each once, ascending, paging back with ``?before=``.

    Starts at the newest page and walks older pages until one reaches back to ``last_seen_id`` (or the
    channel's start), reading at most ``max_pages`` pages. If the bound is hit first the gap stays open:
    the posts found are still returned, a warning is logged and ``on_gap(first, last)`` is called with the
    message ids that may be missing. Errors from the client propagate.
    """
    if max_pages < 1:
        raise ValueError("max_pages must be at least 1")
    found: dict[int, Post] = {}
    page = client.fetch_latest()
    pages_read = 1
    while True:
        for post in page:
            if post.message_id > last_seen_id:
                found.setdefault(post.message_id, post)
        oldest = smallest_id(page)
        if oldest is None or oldest <= last_seen_id + 1:
            break  # reached what we had already seen (or the beginning of the channel)
        if pages_read >= max_pages:
            log.warning(
                "catch-up of %s stopped after %d pages; ids %d..%d may be missing",
                client.channel, pages_read, last_seen_id + 1, oldest - 1,
            )
            if on_gap is not None:
                on_gap(last_seen_id + 1, oldest - 1)
            break
        page = client.fetch_before(oldest)
        pages_read += 1
        next_oldest = smallest_id(page)
        if next_oldest is not None and next_oldest >= oldest:
            break  # the server ignored the cursor: stop rather than loop
    return [found[key] for key in sorted(found)]
