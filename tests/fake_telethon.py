"""A stand-in for a Telethon ``TelegramClient`` holding one channel's history (only the methods we call)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class ReplyHeader:
    reply_to_msg_id: int


@dataclass(frozen=True)
class PeerChannel:
    channel_id: int


@dataclass(frozen=True)
class FwdHeader:
    from_id: Any = None
    from_name: str | None = None
    post_author: str | None = None


@dataclass(frozen=True)
class Photo:
    id: int


@dataclass(frozen=True)
class Document:
    mime_type: str


@dataclass(frozen=True)
class FakeMessage:
    id: int
    message: str = ""
    date: datetime = T0
    reply_to: ReplyHeader | None = None
    fwd_from: FwdHeader | None = None
    edit_date: datetime | None = None
    edit_hide: bool = False
    grouped_id: int | None = None
    photo: Photo | None = None
    document: Document | None = None
    views: int | None = 1
    action: Any = None  # set on service messages


class FloodWaitError(Exception):
    """Named like Telethon's, with its ``seconds``."""

    def __init__(self, seconds: int) -> None:
        super().__init__(f"A wait of {seconds} seconds is required")
        self.seconds = seconds


@dataclass(frozen=True)
class FakeEvent:
    message: FakeMessage


def fake_event_builders() -> tuple[Any, Any]:
    """Stand-ins for Telethon's ``events.NewMessage(chats=...)`` / ``events.MessageEdited(chats=...)``."""
    return (lambda entity: ("new", entity), lambda entity: ("edit", entity))


class FakeTelegramClient:
    def __init__(self, channel: str, *, authorized: bool = True) -> None:
        self.channel = channel
        self.authorized = authorized
        self.messages: dict[int, FakeMessage] = {}
        self.photos: dict[int, bytes] = {}
        self.connected = False
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_next: list[BaseException] = []
        self._next_id = 1
        self._lock = threading.Lock()
        self.handlers: list[tuple[str, Any]] = []  # (kind "new" | "edit", async callback)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.push_enabled = True  # False: the update stream is silent (Telegram's pushes are known to stop)

    # --- the channel, as a test edits it ---------------------------------------------------------
    def post(self, text: str = "", *, push: bool = True, **fields: Any) -> int:
        """A new message; pushed to the subscribed handlers unless ``push`` is False (a push that got lost)."""
        with self._lock:
            message_id = self._next_id
            self._next_id += 1
            date = fields.pop("date", T0 + timedelta(minutes=message_id))
            self.messages[message_id] = FakeMessage(id=message_id, message=text, date=date, **fields)
        if push:
            self._push("new", message_id)
        return message_id

    def _push(self, kind: str, message_id: int) -> None:
        """Run the handlers of ``kind`` on the client's event loop, as Telethon does; returns once they ran."""
        with self._lock:
            loop, message = self._loop, self.messages[message_id]
            handlers = [callback for wanted, callback in self.handlers if wanted == kind]
        if loop is None or not self.push_enabled:
            return
        for callback in handlers:
            asyncio.run_coroutine_threadsafe(callback(FakeEvent(message)), loop).result(5)

    def album(self, caption: str, pictures: list[bytes]) -> list[int]:
        group = 9000 + self._next_id
        ids = []
        for index, data in enumerate(pictures):
            message_id = self.post(caption if index == 0 else "", grouped_id=group, photo=Photo(self._next_id))
            self.photos[message_id] = data
            ids.append(message_id)
        return ids

    def edit(self, message_id: int, text: str, *, push: bool = True) -> None:
        with self._lock:
            message = self.messages[message_id]
            self.messages[message_id] = replace(message, message=text, edit_date=message.date + timedelta(hours=1))
        if push:
            self._push("edit", message_id)

    def add_event_handler(self, callback: Any, event: Any) -> None:
        """Telethon's registration (called on the client's loop); ``event`` from ``fake_event_builders``."""
        kind, entity = event
        assert entity == f"entity:{self.channel}"
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self.handlers.append((kind, callback))

    # --- the Telethon methods TelegramSource calls -------------------------------------------------
    def is_connected(self) -> bool:
        return self.connected

    async def connect(self) -> None:
        self.calls.append(("connect", {}))
        self.connected = True

    async def disconnect(self) -> None:
        self.connected = False

    async def is_user_authorized(self) -> bool:
        return self.authorized

    async def get_entity(self, entity: str) -> str:
        self.calls.append(("get_entity", {"entity": entity}))
        if entity.lower() != self.channel.lower():
            raise ValueError(f'No user has "{entity}" as username')
        return f"entity:{self.channel}"

    async def get_messages(self, entity: Any, limit: float | None = None, *, max_id: int = 0, min_id: int = 0,
                           reverse: bool = False, ids: int | None = None) -> Any:
        self.calls.append(("get_messages", {"limit": limit, "max_id": max_id, "min_id": min_id,
                                            "reverse": reverse, "ids": ids}))
        assert entity == f"entity:{self.channel}"
        if self.fail_next:
            raise self.fail_next.pop(0)
        with self._lock:
            if ids is not None:
                return self.messages.get(ids)
            chosen = [m for key, m in sorted(self.messages.items())
                      if key > min_id and (max_id == 0 or key < max_id)]
        # Telethon: newest first, or oldest first with reverse=True; at most ``limit``
        chosen = chosen if reverse else list(reversed(chosen))
        return chosen[: int(limit)] if limit is not None else chosen

    async def download_media(self, message: FakeMessage, file: Any = None) -> bytes:
        assert file is bytes
        return self.photos[message.id]
