"""A loopback stand-in for ``t.me/s/<channel>``: real markup, real HTTP, test-controlled content.

Used by tests and the demo. It renders the same structure t.me serves (message wraps with ``data-post``,
``js-message_text`` with ``<br/>`` line breaks, photo wraps with ``background-image``, reply quotes, the
"edited" marker, ``link rel=prev`` and the ``tme_messages_more`` anchors), so ``parsing.tme.parse_page``
reads back exactly what was posted. Fault knobs let tests provoke 429/5xx and the soft "No posts found" page.
Images are served under ``/img/<name>`` with their own knobs (content type, no length, slow, trickling).
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlparse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _StoredPost:
    message_id: int
    text: str
    date: str
    image_urls: tuple[str, ...] = ()
    reply_to: int | None = None
    edited: bool = False
    views: int = 1


@dataclass(frozen=True)
class _Image:
    data: bytes
    content_type: str
    declare_length: bool = True  # False: no Content-Length, the body ends when the connection closes
    delay_seconds: float = 0.0  # before the response starts
    chunk_delay_seconds: float = 0.0  # between 1 KiB chunks of the body (a trickling server)


@dataclass
class _Faults:
    statuses: list[tuple[int, float | None]] = field(default_factory=list)
    soft_empty: int = 0
    delays: list[float] = field(default_factory=list)


def _now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _text_html(text: str) -> str:
    return "<br/>".join(html.escape(line, quote=False) for line in text.split("\n"))


def _render_post(channel: str, post: _StoredPost, posts: dict[int, _StoredPost]) -> str:
    post_url = f"https://t.me/{channel}/{post.message_id}"
    parts: list[str] = [
        '<div class="tgme_widget_message_wrap js-widget_message_wrap">',
        f'<div class="tgme_widget_message text_not_supported_wrap js-widget_message" '
        f'data-post="{channel}/{post.message_id}" data-view="sim-{post.message_id}">',
        f'<div class="tgme_widget_message_user"><a href="https://t.me/{channel}">'
        f'<i class="tgme_widget_message_user_photo bgcolor1" data-content="S">'
        f'<img src="https://cdn4.telesco.pe/file/avatar.jpg"></i></a></div>',
        '<div class="tgme_widget_message_bubble">',
        f'<div class="tgme_widget_message_author accent_color"><a class="tgme_widget_message_owner_name" '
        f'href="https://t.me/{channel}"><span dir="auto">{html.escape(channel)}</span></a></div>',
    ]
    if post.reply_to is not None:
        quoted = posts.get(post.reply_to)
        quoted_html = _text_html(quoted.text[:80]) if quoted else "Deleted message"
        parts.append(
            f'<a class="tgme_widget_message_reply" href="https://t.me/{channel}/{post.reply_to}">'
            f'<div class="tgme_widget_message_author accent_color">'
            f'<span class="tgme_widget_message_author_name" dir="auto">{html.escape(channel)}</span></div>'
            f'<div class="tgme_widget_message_text js-message_reply_text" dir="auto">{quoted_html}</div></a>'
        )
    if len(post.image_urls) == 1:
        parts.append(
            f'<a class="tgme_widget_message_photo_wrap 5472216956116518371 blured" href="{post_url}" '
            f"style=\"width:800px;background-image:url('{html.escape(post.image_urls[0])}')\">"
            f'<div class="tgme_widget_message_photo" style="padding-top:71.75%"></div></a>'
        )
    elif post.image_urls:
        parts.append(
            '<div class="tgme_widget_message_grouped_wrap js-message_grouped_wrap"><div '
            'class="tgme_widget_message_grouped js-message_grouped"><div '
            'class="tgme_widget_message_grouped_layer js-message_grouped_layer">'
        )
        # an album spends one message id per item; the server reserved them right after the post's id
        for offset, url in enumerate(post.image_urls):
            parts.append(
                f'<a class="tgme_widget_message_photo_wrap grouped_media_wrap blured js-message_photo" '
                f"style=\"background-image:url('{html.escape(url)}')\" "
                f'href="https://t.me/{channel}/{post.message_id + offset}?single">'
                f'<div class="tgme_widget_message_photo grouped_media"></div></a>'
            )
        parts.append("</div></div></div>")
    if post.text:
        parts.append(
            f'<div class="tgme_widget_message_text js-message_text" dir="auto">{_text_html(post.text)}</div>'
        )
    edited = "edited &nbsp;" if post.edited else ""
    parts.append(
        '<div class="tgme_widget_message_footer compact js-message_footer">'
        '<div class="tgme_widget_message_info short js-message_info">'
        f'<span class="tgme_widget_message_views">{post.views}</span><span class="copyonly"> views</span>'
        f'<span class="tgme_widget_message_meta">{edited}<a class="tgme_widget_message_date" '
        f'href="{post_url}"><time datetime="{html.escape(post.date)}" class="time">'
        f"{html.escape(post.date[11:16])}</time></a></span></div></div>"
    )
    parts.append("</div></div></div>")
    return "".join(parts)


def render_channel_page(
    channel: str,
    page_posts: list[_StoredPost],
    all_posts: dict[int, _StoredPost],
    *,
    older_exists: bool,
    newer_exists: bool,
) -> str:
    """A full t.me/s page for ``page_posts`` (ascending)."""
    head_links = ""
    more_before = ""
    more_after = ""
    if page_posts and older_exists:
        oldest = page_posts[0].message_id
        head_links += f'<link rel="prev" href="/s/{channel}?before={oldest}">'
        more_before = (
            f'<div class="tgme_widget_message_centered js-messages_more_wrap"><a href="/s/{channel}?before='
            f'{oldest}" class="tme_messages_more js-messages_more" data-before="{oldest}"></a></div>'
        )
    if page_posts:
        newest = page_posts[-1].message_id + max(1, len(page_posts[-1].image_urls))
        head_links += f'<link rel="canonical" href="/s/{channel}?before={newest}">'
        if newer_exists:
            last = page_posts[-1].message_id + max(1, len(page_posts[-1].image_urls)) - 1
            more_after = (
                f'<div class="tgme_widget_message_centered js-messages_more_wrap">'
                f'<a href="/s/{channel}?after={last}" class="tme_messages_more js-messages_more" '
                f'data-after="{last}"></a></div>'
            )
    body = "".join(_render_post(channel, post, all_posts) for post in page_posts)
    return _page(channel, head_links, more_before + body + more_after)


def render_empty_channel_page(channel: str) -> str:
    """A channel with no post yet, as t.me shows it: the channel's header over "No posts found"."""
    return _page(channel, "", '<div class="tgme_widget_message_wrap js-widget_message_wrap">'
                              '<div class="tgme_widget_message_centered"><div class="tme_no_messages_found">'
                              "No posts found</div></div></div>")


def _page(channel: str, head_links: str, history: str) -> str:
    """The t.me/s page around the message history: the channel's title and header."""
    title = html.escape(channel)
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{title} – Telegram</title>"
        f'<meta property="og:title" content="{title}">{head_links}</head>'
        '<body class="widget_frame_base tgme_webpreview">'
        '<header class="tgme_header"><div class="tgme_container"><div class="tgme_channel_info">'
        f'<div class="tgme_channel_info_header_title"><span dir="auto">{title}</span></div>'
        f'<div class="tgme_channel_info_header_username"><a href="https://t.me/{channel}">@{title}</a></div>'
        "</div></div></header>"
        f'<main class="tgme_main" data-url="/{channel}"><div class="tgme_container">'
        f'<section class="tgme_channel_history js-message_history">{history}</section>'
        "</div></main></body></html>"
    )


def render_soft_empty_page(channel: str) -> str:
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
        f'<main class="tgme_main" data-url="/{channel}"><div class="tgme_container">'
        '<section class="tgme_channel_history js-message_history"><div class="tgme_widget_message_wrap '
        'js-widget_message_wrap"><div class="tgme_widget_message_centered">'
        '<div class="tme_no_messages_found">'
        "No posts found</div></div></div></section></div></main></body></html>"
    )


class ChannelServer:
    """Serve one channel's web preview on loopback. Thread-safe; bind happens in the constructor."""

    def __init__(
        self,
        channel: str,
        posts: Iterable[str] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        page_size: int = 20,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.channel = channel
        self.page_size = page_size
        self._lock = threading.Lock()
        self._posts: dict[int, _StoredPost] = {}
        self._next_id = 1
        self._images: dict[str, _Image] = {}
        self._image_hits: dict[str, int] = {}
        self._faults = _Faults()
        self._hits = 0
        self._schedule: list[tuple[float, str]] = []
        self._stop_event = threading.Event()
        self._schedule_thread: threading.Thread | None = None
        self._serve_thread: threading.Thread | None = None
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        bound_host, bound_port = self._httpd.server_address[:2]
        self.base_url = f"http://{bound_host!s}:{bound_port}"
        for text in posts:
            self.add_post(text)

    # ---- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> str:
        if self._serve_thread is None:
            self._serve_thread = threading.Thread(
                # a short poll interval makes stop() quick (the default 0.5 s is paid by every test)
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                name=f"channel-server-{self.channel}", daemon=True
            )
            self._serve_thread.start()
        return self.base_url

    def stop(self) -> None:
        self._stop_event.set()
        if self._serve_thread is not None:
            self._httpd.shutdown()
            self._serve_thread.join(timeout=5)
            self._serve_thread = None
        self._httpd.server_close()
        if self._schedule_thread is not None:
            self._schedule_thread.join(timeout=5)
            self._schedule_thread = None

    def __enter__(self) -> ChannelServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- content ---------------------------------------------------------------------------------------
    def add_post(
        self,
        text: str,
        *,
        image_urls: Iterable[str] = (),
        reply_to: int | None = None,
        date: str | None = None,
    ) -> int:
        """Publish a post; returns its message id. An album (several images) spends one id per image."""
        with self._lock:
            return self._insert(text, tuple(image_urls), reply_to, date)

    def add_posts(self, posts: Iterable[tuple[str, int | None]]) -> list[int]:
        """Publish several ``(text, reply_to)`` posts at once: no page is served with only some of them (a
        burst larger than a page, as a reader coming back from downtime finds it)."""
        with self._lock:
            return [self._insert(text, (), reply_to, None) for text, reply_to in posts]

    def _insert(self, text: str, urls: tuple[str, ...], reply_to: int | None, date: str | None) -> int:
        message_id = self._next_id
        self._next_id += max(1, len(urls))
        self._posts[message_id] = _StoredPost(
            message_id=message_id, text=text, date=date or _now_iso(), image_urls=urls, reply_to=reply_to
        )
        return message_id

    def edit_post(self, message_id: int, text: str) -> None:
        with self._lock:
            post = self._posts.get(message_id)
            if post is None:
                raise KeyError(f"no post {message_id}")
            self._posts[message_id] = replace(post, text=text, edited=True)

    def delete_post(self, message_id: int) -> None:
        with self._lock:
            self._posts.pop(message_id, None)

    def add_image(
        self,
        name: str,
        data: bytes,
        content_type: str = "image/png",
        *,
        declare_length: bool = True,
        delay_seconds: float = 0.0,
        chunk_delay_seconds: float = 0.0,
    ) -> str:
        """Serve ``data`` at ``/img/<name>``; returns its absolute URL.

        Fault knobs: any ``content_type`` (e.g. ``text/html`` for a wrong one), no ``Content-Length`` so a
        client cannot refuse an oversized body before reading it, a delay before answering, a trickle.
        """
        with self._lock:
            self._images[name] = _Image(bytes(data), content_type, declare_length, delay_seconds,
                                        chunk_delay_seconds)
        return f"{self.base_url}/img/{quote(name)}"

    def image_hits(self, name: str) -> int:
        """How many times ``/img/<name>`` was requested."""
        with self._lock:
            return self._image_hits.get(name, 0)

    @property
    def hits(self) -> int:
        with self._lock:
            return self._hits

    @property
    def last_message_id(self) -> int:
        with self._lock:
            return self._next_id - 1

    # ---- faults ----------------------------------------------------------------------------------------
    def fail_next(self, status: int, *, retry_after: float | None = None, times: int = 1) -> None:
        """The next ``times`` page requests answer ``status`` (with ``Retry-After`` when given)."""
        with self._lock:
            self._faults.statuses.extend([(status, retry_after)] * times)

    def delay_next(self, seconds: float, *, times: int = 1) -> None:
        """The next ``times`` page requests wait ``seconds`` before answering (cut short by ``stop()``)."""
        with self._lock:
            self._faults.delays.extend([seconds] * times)

    def clear_faults(self) -> None:
        """Serve normally again (queued failures, delays and soft-empty pages are dropped)."""
        with self._lock:
            self._faults.statuses.clear()
            self._faults.delays.clear()
            self._faults.soft_empty = 0

    def serve_soft_empty_next(self, times: int = 1) -> None:
        with self._lock:
            self._faults.soft_empty += times

    # ---- demo schedule ---------------------------------------------------------------------------------
    def schedule(self, items: Iterable[tuple[float, str]]) -> None:
        """Queue ``(delay_seconds, text)`` posts, revealed relative to ``start_schedule()``."""
        with self._lock:
            self._schedule.extend(sorted(items, key=lambda item: item[0]))

    def start_schedule(self) -> threading.Thread:
        with self._lock:
            items = list(self._schedule)
            self._schedule.clear()
        thread = threading.Thread(
            target=self._run_schedule, args=(items,), name="channel-schedule", daemon=True
        )
        self._schedule_thread = thread
        thread.start()
        return thread

    def _run_schedule(self, items: list[tuple[float, str]]) -> None:
        origin = time.monotonic()
        for delay, text in items:
            remaining = delay - (time.monotonic() - origin)
            # waiting on the stop event (not sleeping) lets stop() end the demo at once
            if remaining > 0 and self._stop_event.wait(remaining):
                return
            if self._stop_event.is_set():
                return
            self.add_post(text)

    # ---- HTTP ------------------------------------------------------------------------------------------
    def _page(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self._hits += 1
            if self._faults.statuses:
                status, retry_after = self._faults.statuses.pop(0)
                headers = {"Content-Type": "text/plain"}
                if retry_after is not None:
                    headers["Retry-After"] = f"{retry_after:g}"
                return status, headers, f"error {status}".encode()
            if self._faults.soft_empty:
                self._faults.soft_empty -= 1
                page = render_soft_empty_page(self.channel)
                return 200, {"Content-Type": "text/html; charset=utf-8"}, page.encode()
            ordered = [self._posts[key] for key in sorted(self._posts)]
            posts_by_id = dict(self._posts)

        def first_int(key: str) -> int | None:
            values = query.get(key)
            if not values:
                return None
            try:
                return int(values[0])
            except ValueError:
                return None

        before = first_int("before")
        after = first_int("after")
        if not ordered and before is None and after is None:
            return 200, {"Content-Type": "text/html; charset=utf-8"}, render_empty_channel_page(self.channel).encode()
        if after is not None:
            newer = [post for post in ordered if post.message_id > after]
            page_posts = newer[: self.page_size]
        else:
            older = [post for post in ordered if before is None or post.message_id < before]
            page_posts = older[-self.page_size :]
        if page_posts:
            older_exists = ordered.index(page_posts[0]) > 0
            newer_exists = ordered.index(page_posts[-1]) < len(ordered) - 1
        else:
            older_exists = newer_exists = False
        page = render_channel_page(
            self.channel, page_posts, posts_by_id, older_exists=older_exists, newer_exists=newer_exists
        )
        return 200, {"Content-Type": "text/html; charset=utf-8"}, page.encode()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet: tests own the output
                log.debug("channel server: " + format, *args)

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                path = unquote(url.path).rstrip("/")
                segments = [segment for segment in path.split("/") if segment]
                if len(segments) == 2 and segments[0] == "img":
                    self._send_image(segments[1])
                    return
                if len(segments) == 2 and segments[0] == "s":
                    if segments[1].lower() != server.channel.lower():
                        # t.me sends a channel without public preview away from /s/
                        self._send(HTTPStatus.FOUND, {"Location": f"/{segments[1]}"}, b"")
                        return
                    with server._lock:
                        delay = server._faults.delays.pop(0) if server._faults.delays else 0.0
                    if delay and server._stop_event.wait(delay):
                        return
                    status, headers, body = server._page(parse_qs(url.query))
                    self._send(status, headers, body)
                    return
                self._send(404, {"Content-Type": "text/plain"}, b"not found")

            do_HEAD = do_GET

            def _send_image(self, name: str) -> None:
                with server._lock:
                    image = server._images.get(name)
                    server._image_hits[name] = server._image_hits.get(name, 0) + 1
                if image is None:
                    self._send(404, {"Content-Type": "text/plain"}, b"not found")
                    return
                # waiting on the stop event (not sleeping) lets stop() cut a slow answer short
                if image.delay_seconds and server._stop_event.wait(image.delay_seconds):
                    return
                self.send_response(200)
                self.send_header("Content-Type", image.content_type)
                if image.declare_length:
                    self.send_header("Content-Length", str(len(image.data)))
                else:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if self.command == "HEAD":
                    return
                try:
                    for start in range(0, len(image.data), 1024):
                        if start and image.chunk_delay_seconds and server._stop_event.wait(image.chunk_delay_seconds):
                            return
                        self.wfile.write(image.data[start : start + 1024])
                        self.wfile.flush()
                except OSError:
                    pass  # the client gave up (size cap, deadline): nothing to do

        return Handler
