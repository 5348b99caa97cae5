"""A channel post as the listener sees it, whatever the source (web preview or user client)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


class PostSourceError(Exception):
    """A source of posts (web preview, user client) could not be read this time; retry later."""


class PostSourceRateLimited(PostSourceError):
    """The source asks us to slow down; ``retry_after`` seconds when it says how long."""

    def __init__(self, retry_after: float | None, message: str) -> None:
        super().__init__(message if retry_after is None else f"{message}, retry after {retry_after:g}s")
        self.retry_after = retry_after


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


def post_link(channel: str, message_id: int) -> str:
    """The public link of a channel post, as Telegram shows it."""
    return f"https://t.me/{channel}/{message_id}"


class PostSource(Protocol):
    """Where the listener reads posts: pages of posts, ascending, each with album item ids when grouped.

    Errors are ``PostSourceError``; ``fetch_latest`` gives the newest page, ``fetch_before(id)`` the page of
    posts older than ``id``.
    """

    @property
    def channel(self) -> str: ...

    def fetch_latest(self) -> list[Post]: ...

    def fetch_before(self, message_id: int) -> list[Post]: ...
