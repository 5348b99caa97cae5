"""A channel post as the listener sees it, whatever the source (web preview or user client)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Post:
    channel: str
    message_id: int
    text: str  # line breaks kept as "\n"
    date: str | None = None  # ISO 8601 as the page gives it
    image_urls: tuple[str, ...] = ()
    reply_to: int | None = None  # message id of the post this one replies to
    forwarded_from: str | None = None
    edited: bool = False
    views: str | None = None
    album_ids: tuple[int, ...] = field(default=())  # every message id of an album (grouped media)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["image_urls"] = list(self.image_urls)
        data["album_ids"] = list(self.album_ids)
        return data
