"""A Telegram user client (Telethon) as a post source: the same ``Post`` objects as the web preview.

``TelegramSource`` has the web preview client's shape (``channel``, ``fetch_latest``, ``fetch_before``,
``fetch_after``), so the listener's flow (journal dedupe, catch-up over gaps, edits by text) is identical in
both modes, and message ids are the channel's own ids in both.

How messages become posts:
- ``text`` is the raw message text (line breaks kept); ``date`` ISO 8601 UTC; ``reply_to`` the replied id;
  ``forwarded_from`` the forward header's name (or the source peer id); ``edited`` when Telegram shows the
  edit (``edit_date`` set and not ``edit_hide``); ``views`` as text.
- An album (messages sharing a ``grouped_id``) is one post: the smallest id, every id in ``album_ids``, the
  caption from whichever item carries it. A page never ends inside an album: an album cut by the page limit
  is left for the next page.
- Pictures (photos, image documents) appear in ``image_urls`` as ``tg://<channel>/<message id>`` references;
  ``download_image`` fetches their bytes, so ``MediaStore`` can store them like web images.
- Service messages and posts with neither text nor picture are skipped, like on the web preview.

Telethon is asyncio-based: the source runs one event loop on a thread of its own and every call waits for
its result with a timeout, so it can be used from any (actor) thread. Telethon is an optional extra and is
imported only by ``telethon_client_factory``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from parsing.media import MediaBadUrl, MediaError, MediaUnavailable
from parsing.posts import Post, PostSourceError, PostSourceRateLimited
from parsing.reading import clean_text

log = logging.getLogger(__name__)
_T = TypeVar("_T")

INSTALL_HINT = "pip install -e '.[telegram]'"
MAX_ALBUM_ITEMS = 10  # Telegram's limit for one media group
_MEDIA_REF = re.compile(r"^tg://(?P<channel>[^/]+)/(?P<id>\d+)$")


class TelegramSetupError(Exception):
    """Telethon missing or credentials unusable: the source cannot be built at all."""


class TelegramSourceError(PostSourceError):
    """A call to Telegram failed this time (connection, timeout, an RPC error): retry later."""


class TelegramNotAuthorized(TelegramSourceError):
    """The session file holds no logged-in user."""


class TelegramRateLimited(TelegramSourceError, PostSourceRateLimited):
    def __init__(self, retry_after: float | None) -> None:
        PostSourceRateLimited.__init__(self, retry_after, "Telegram flood wait")


def _flood_wait_seconds(exc: BaseException) -> float | None:
    """Seconds of a Telethon ``FloodWaitError`` (matched by name: Telethon may not be installed)."""
    if "FloodWait" not in type(exc).__name__:
        return None
    seconds = getattr(exc, "seconds", None)
    return float(seconds) if isinstance(seconds, (int, float)) else None


EventBuilder = Callable[[Any], Any]  # the channel's entity -> a Telethon event filter


def telethon_event_builders() -> tuple[EventBuilder, EventBuilder]:
    """Telethon's filters for the channel's new and edited messages (imported only when push is used)."""
    from telethon import events

    return (lambda entity: events.NewMessage(chats=entity), lambda entity: events.MessageEdited(chats=entity))


@dataclass(frozen=True)
class Pushed:
    """A message Telegram pushed: the post it makes (None when it is no post alone: an album item, a service
    message), its message id and whether it is an edit."""

    message_id: int
    post: Post | None
    edit: bool


def telethon_client_factory(session_path: str, api_id: str | None, api_hash: str | None,
                            receive_updates: bool = False) -> Callable[[], Any]:
    """A factory of Telethon clients, checked now: Telethon importable, credentials present and well formed."""
    if not api_id or not api_hash:
        raise TelegramSetupError("listener.mode telegram needs the Telegram api id and api hash in the environment "
                                 "(telegram.api_id_env / telegram.api_hash_env)")
    if not api_id.strip().isdigit():
        raise TelegramSetupError("the Telegram api id must be a number (telegram.api_id_env)")
    try:
        from telethon import TelegramClient
    except ImportError as exc:
        raise TelegramSetupError(f"listener.mode telegram needs Telethon: {INSTALL_HINT}") from exc

    def create() -> Any:
        # flood_sleep_threshold=0: a flood wait comes back to us as an error (our backoff waits, not the call);
        # receive_updates: with push (telegram.push) new and edited messages arrive as events; without, we poll.
        return TelegramClient(session_path, int(api_id), api_hash, flood_sleep_threshold=0,
                              receive_updates=receive_updates)

    return create


def _is_picture(message: Any) -> bool:
    if getattr(message, "photo", None) is not None:
        return True
    document = getattr(message, "document", None)
    return str(getattr(document, "mime_type", "") or "").startswith("image/")


def _forwarded_from(message: Any) -> str | None:
    header = getattr(message, "fwd_from", None)
    if header is None:
        return None
    name = getattr(header, "from_name", None) or getattr(header, "post_author", None)
    if name:
        return str(name)
    peer = getattr(header, "from_id", None)
    for field in ("channel_id", "user_id", "chat_id"):
        value = getattr(peer, field, None)
        if value is not None:
            return f"{field.removesuffix('_id')} {value}"
    return "unknown"


def _reply_to(message: Any) -> int | None:
    header = getattr(message, "reply_to", None)
    value = getattr(header, "reply_to_msg_id", None)
    return int(value) if isinstance(value, int) else None


def _iso_date(message: Any) -> str | None:
    date = getattr(message, "date", None)
    if not isinstance(date, datetime):
        return None
    if date.tzinfo is None:
        date = date.replace(tzinfo=timezone.utc)  # Telethon dates are UTC
    return date.astimezone(timezone.utc).isoformat()


def posts_from_messages(channel: str, messages: Sequence[Any]) -> list[Post]:
    """Telethon messages (any order) -> posts, ascending, albums grouped, service/empty messages skipped."""
    groups: dict[Any, list[Any]] = {}
    for message in messages:
        if message is None or getattr(message, "action", None) is not None:
            continue  # deleted, or a service message (pinned, photo changed, ...)
        key = getattr(message, "grouped_id", None) or ("single", message.id)
        groups.setdefault(key, []).append(message)
    posts: list[Post] = []
    for items in groups.values():
        items.sort(key=lambda m: m.id)
        first = items[0]
        captioned = next((m for m in items if (getattr(m, "message", None) or "").strip()), first)
        # clean_text: a lone surrogate or a NUL from the client must not reach the journal (SQLite refuses it)
        text = clean_text(getattr(captioned, "message", None) or "").strip()
        image_urls = tuple(f"tg://{channel}/{m.id}" for m in items if _is_picture(m))
        if not text and not image_urls:
            continue
        views = getattr(captioned, "views", None)
        posts.append(Post(
            channel=channel,
            message_id=first.id,
            text=text,
            date=_iso_date(first),
            image_urls=image_urls,
            reply_to=_reply_to(captioned) or _reply_to(first),
            forwarded_from=_forwarded_from(first),
            edited=any(getattr(m, "edit_date", None) is not None and not getattr(m, "edit_hide", False)
                       for m in items),
            views=None if views is None else str(views),
            album_ids=tuple(m.id for m in items) if len(items) > 1 else (),
        ))
    return sorted(posts, key=lambda p: p.message_id)


def _without_cut_album(messages: list[Any], limit: int, *, cut_at_oldest: bool) -> list[Any]:
    """A full page may end inside an album: leave that album to the next page (unless it is all there is)."""
    present = [m for m in messages if m is not None]
    if len(present) < limit or not present:
        return present
    edge = min(present, key=lambda m: m.id) if cut_at_oldest else max(present, key=lambda m: m.id)
    group = getattr(edge, "grouped_id", None)
    if group is None:
        return present
    kept = [m for m in present if getattr(m, "grouped_id", None) != group]
    return kept or present


class TelegramSource:
    def __init__(
        self,
        channel: str,
        client_factory: Callable[[], Any],
        *,
        page_size: int = 20,
        timeout: float = 30.0,
        session_path: str = "",
        event_builders: Callable[[], tuple[EventBuilder, EventBuilder]] | None = None,
    ) -> None:
        if not channel or "/" in channel:
            raise ValueError(f"bad channel name {channel!r}")
        if page_size <= MAX_ALBUM_ITEMS:
            raise ValueError(f"page_size must exceed {MAX_ALBUM_ITEMS} (an album must fit in a page)")
        self._channel = channel
        self._factory = client_factory
        self.page_size = page_size
        self.timeout = timeout
        self._session_path = session_path
        self._client: Any = None
        self._entity: Any = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"telegram-{channel}", daemon=True)
        self._thread.start()
        self._call_lock = threading.Lock()
        self._event_builders = event_builders or telethon_event_builders
        self._subscribed_client: Any = None

    @property
    def channel(self) -> str:
        return self._channel

    def __repr__(self) -> str:
        return f"TelegramSource({self._channel!r})"

    # --- the post source ---------------------------------------------------------------------------
    def fetch_latest(self) -> list[Post]:
        messages = self._call(lambda client, entity: client.get_messages(entity, limit=self.page_size))
        return posts_from_messages(self._channel, _without_cut_album(messages, self.page_size, cut_at_oldest=True))

    def fetch_before(self, message_id: int) -> list[Post]:
        messages = self._call(
            lambda client, entity: client.get_messages(entity, limit=self.page_size, max_id=int(message_id))
        )
        return posts_from_messages(self._channel, _without_cut_album(messages, self.page_size, cut_at_oldest=True))

    def fetch_after(self, message_id: int) -> list[Post]:
        messages = self._call(
            lambda client, entity: client.get_messages(entity, limit=self.page_size, min_id=int(message_id),
                                                       reverse=True)
        )
        return posts_from_messages(self._channel,
                                   _without_cut_album(messages, self.page_size, cut_at_oldest=False))

    def subscribe(self, on_pushed: Callable[[Pushed], None]) -> bool:
        """Have Telegram push the channel's new and edited messages to ``on_pushed`` (called on this source's
        thread: it must only hand the message on). True once subscribed on the current connection (again after a
        reconnect made a new client); a failure is a ``TelegramSourceError``, or ``TelegramSetupError`` when push
        is unavailable (Telethon missing). The polls go on regardless: they catch up whatever a push missed."""
        try:
            new_message, edited_message = self._event_builders()
        except ImportError as exc:
            raise TelegramSetupError(f"push needs Telethon: {INSTALL_HINT}") from exc
        channel = self._channel

        async def register(client: Any, entity: Any) -> bool:
            if self._subscribed_client is client:
                return False

            def handler(edit: bool) -> Callable[[Any], Any]:
                async def pushed(event: Any) -> None:
                    message = getattr(event, "message", None)
                    message_id = getattr(message, "id", None)
                    if not isinstance(message_id, int):
                        return
                    alone = getattr(message, "grouped_id", None) is None  # an album is read whole, by a poll
                    posts = posts_from_messages(channel, [message]) if alone else []
                    try:
                        on_pushed(Pushed(message_id, posts[0] if posts else None, edit))
                    except Exception:  # the receiver's trouble must never stop Telegram's update loop
                        log.exception("pushed message %s not handed on", message_id)

                return pushed

            client.add_event_handler(handler(False), new_message(entity))
            client.add_event_handler(handler(True), edited_message(entity))
            self._subscribed_client = client
            return True

        return bool(self._call(register))

    @property
    def subscribed(self) -> bool:
        return self._subscribed_client is not None and self._subscribed_client is self._client

    def download_image(self, url: str) -> tuple[bytes, str]:
        """Bytes and content type of a ``tg://<channel>/<id>`` picture (a ``MediaStore`` fetcher)."""
        match = _MEDIA_REF.match(url)
        if match is None or match.group("channel") != self._channel:
            raise MediaBadUrl(f"{url!r} is not a picture of {self._channel}")
        message_id = int(match.group("id"))

        async def download(client: Any, entity: Any) -> tuple[bytes, str]:
            message = await client.get_messages(entity, ids=message_id)
            if message is None or not _is_picture(message):
                raise MediaUnavailable(f"{url}: no picture in message {message_id}")
            data = await client.download_media(message, file=bytes)
            document = getattr(message, "document", None)
            content_type = str(getattr(document, "mime_type", "") or "image/jpeg")  # photos are JPEG
            return bytes(data or b""), content_type

        try:
            return self._call(download)
        except TelegramSourceError as exc:
            raise MediaUnavailable(f"{url}: {exc}") from exc

    def close(self) -> None:
        """Disconnect and stop the event loop thread."""
        client = self._client
        if client is not None:

            async def disconnect() -> None:
                # called on the loop's own thread, where Telethon's disconnect() returns an awaitable
                result = client.disconnect()
                if inspect.isawaitable(result):
                    await result

            try:
                asyncio.run_coroutine_threadsafe(disconnect(), self._loop).result(5)
            except Exception as exc:  # closing must not fail a shutdown
                log.warning("telegram disconnect failed: %s", type(exc).__name__)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    # --- internals ---------------------------------------------------------------------------------
    def _call(self, request: Callable[[Any, Any], Awaitable[_T]]) -> _T:
        """Run ``request(client, entity)`` (a coroutine) on the loop; Telegram errors become source errors."""

        async def run() -> _T:
            client, entity = await self._connected()
            return await request(client, entity)

        with self._call_lock:  # one request at a time: a poll and an image download never interleave
            future = asyncio.run_coroutine_threadsafe(run(), self._loop)
            try:
                return future.result(self.timeout)
            except FutureTimeout as exc:
                future.cancel()
                raise TelegramSourceError(f"no answer from Telegram within {self.timeout:g}s") from exc
            except (PostSourceError, MediaError):
                raise
            except Exception as exc:
                seconds = _flood_wait_seconds(exc)
                if seconds is not None:
                    raise TelegramRateLimited(seconds) from exc
                if isinstance(exc, (ConnectionError, OSError)):
                    self._entity = None  # reconnect and resolve again next time
                raise TelegramSourceError(f"Telegram call failed: {type(exc).__name__}: {exc}"[:300]) from exc

    async def _connected(self) -> tuple[Any, Any]:
        if self._client is None:
            self._client = self._factory()
        client = self._client
        if not client.is_connected():
            await client.connect()
        if not await client.is_user_authorized():
            raise TelegramNotAuthorized(
                f"the Telegram session {self._session_path or '(in memory)'} is not logged in; log in once with "
                "`python -m parsing.telegram_source login --session <telegram.session_path>` "
                "(api id and hash from the environment)"
            )
        if self._entity is None:
            self._entity = await client.get_entity(self._channel)
        return client, self._entity


def _login(argv: Sequence[str] | None = None) -> int:
    """Interactive one-time login that writes the session file (phone number, code, 2FA password)."""
    import argparse
    import os

    parser = argparse.ArgumentParser(
        prog="python -m parsing.telegram_source",
        description="Log in once with your Telegram account (phone number, code, 2FA password) and save the "
                    "session file listener.mode: telegram uses. The session file is a login credential.")
    parser.add_argument("command", choices=["login"], help="login: the one-time interactive login")
    parser.add_argument("--session", required=True,
                        help="the telegram.session_path of your config (required)")
    parser.add_argument("--api-id-env", default="TELEGRAM_API_ID",
                        help="environment variable holding the API id (default: TELEGRAM_API_ID)")
    parser.add_argument("--api-hash-env", default="TELEGRAM_API_HASH",
                        help="environment variable holding the API hash (default: TELEGRAM_API_HASH)")
    args = parser.parse_args(argv)
    try:
        create = telethon_client_factory(args.session, os.environ.get(args.api_id_env),
                                         os.environ.get(args.api_hash_env))
    except TelegramSetupError as exc:
        print(exc)
        return 2
    client = create()
    client.start()  # Telethon prompts on the terminal
    print("logged in; session saved")
    client.disconnect()
    return 0


if __name__ == "__main__":
    raise SystemExit(_login())
