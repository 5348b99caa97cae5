"""Post images on local disk: downloaded once, checked, stored by content hash, indexed.

``MediaStore.fetch(url)`` streams an image (HTTP status 200, ``Content-Type: image/*``, at most ``max_bytes``,
within ``timeout`` seconds in total, not only per read), hashes it with sha256 and stores it as
``<media_dir>/<first two hex digits>/<sha256>.<ext>``. The index (``trading.journal.Journal`` satisfies
``MediaIndex``) maps every URL to its content: a URL already recorded is not downloaded again, and the same
bytes under another URL are stored once. Readers (the vision model) look files up with
``index.media_by_url(url).path``.

Only hosts on an allow-list are fetched (``allowed_hosts``, by default Telegram's media hosts): a post is written
by strangers, and a crafted image URL must not make the bot call an internal address. Redirects are followed
only to allowed hosts. A refused URL raises ``MediaUrlRefused`` before any connection is made.

Every failure is a ``MediaError`` subclass with a message naming the URL and the reason; nothing is recorded
and no partial file is left behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urljoin, urlparse

import requests

_CHUNK = 64 * 1024
_MAX_REDIRECTS = 3
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Where Telegram serves post media (web preview photo backgrounds); "*" stands for part of one DNS label.
TELEGRAM_MEDIA_HOSTS: tuple[str, ...] = ("t.me", "cdn*.telesco.pe", "cdn*.telegram-cdn.org", "cdn*.cdn-telegram.org")
_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
    "image/heic": "heic",
    "image/avif": "avif",
}


class MediaError(Exception):
    """An image could not be stored."""


class MediaUnavailable(MediaError):
    """Connection failure or an HTTP status other than 200: may work later."""


class MediaTimeout(MediaUnavailable):
    """The download did not finish within the time allowed."""


class MediaNotAnImage(MediaError):
    """The server answered with a content type that is not ``image/*``."""


class MediaTooLarge(MediaError):
    """Larger than the configured cap (declared or counted while streaming)."""


class MediaBadUrl(MediaError):
    """Not an http(s) URL (or no fetcher for its scheme)."""


class MediaUrlRefused(MediaBadUrl):
    """The URL's host is not on the allow-list (or the URL hides its host): nothing was fetched."""


def url_host(url: str) -> str | None:
    """``host`` or ``host:port`` (a non-default port) of an http(s) URL, lower case; None when it has none, or
    carries credentials (``https://t.me@10.0.0.1/`` names one host and connects to another)."""
    parsed = urlparse(url)
    try:
        port = parsed.port
    except ValueError:
        return None
    host = (parsed.hostname or "").rstrip(".")
    if not host or parsed.username is not None or parsed.password is not None:
        return None
    if port is None or port == _DEFAULT_PORTS.get(parsed.scheme.lower()):
        return host
    return f"{host}:{port}"


def host_allowed(url: str, patterns: Sequence[str]) -> bool:
    """Whether ``url``'s host (with its port, if not the default) matches one of ``patterns`` exactly; in a
    pattern "*" stands for letters, digits and hyphens (never a dot, so ``cdn*.telesco.pe`` stays in that zone)."""
    host = url_host(url)
    if host is None:
        return False
    return any(_host_pattern(pattern).fullmatch(host) for pattern in patterns)


def _host_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile("[a-z0-9-]*".join(re.escape(piece) for piece in pattern.strip().lower().split("*")))


class StoredMediaRecord(Protocol):
    @property
    def sha256(self) -> str: ...

    @property
    def path(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def content_type(self) -> str | None: ...


class MediaIndex(Protocol):
    """What the store needs from the journal."""

    def record_media(self, url: str, sha256: str, path: str, size: int, content_type: str | None) -> bool: ...

    def media_by_url(self, url: str) -> StoredMediaRecord | None: ...

    def media_by_sha256(self, sha256: str) -> StoredMediaRecord | None: ...


@dataclass(frozen=True)
class StoredMedia:
    url: str
    sha256: str
    path: str
    size: int
    content_type: str | None
    downloaded: bool  # False: the URL was known and its file is on disk; nothing was fetched


# A non-HTTP source of bytes for a URL scheme (e.g. a Telegram client for its own media references):
# returns (bytes, content type); raises MediaError.
BytesFetcher = Callable[[str], tuple[bytes, str]]


def extension_for(content_type: str) -> str:
    return _EXTENSIONS.get(content_type, "img")


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def _break_off(response: requests.Response) -> None:
    """Shut the response's socket down from another thread: a blocked read returns at once (closing the
    file object alone does not wake it)."""
    connection = getattr(response.raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    try:
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed
    response.close()


class MediaStore:
    def __init__(
        self,
        media_dir: str | Path,
        index: MediaIndex,
        *,
        max_bytes: int,
        timeout: float,
        session: requests.Session | None = None,
        fetchers: dict[str, BytesFetcher] | None = None,
        allowed_hosts: Sequence[str] = TELEGRAM_MEDIA_HOSTS,
    ) -> None:
        if max_bytes < 1 or timeout <= 0:
            raise ValueError("max_bytes and timeout must be positive")
        self.media_dir = Path(media_dir)
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._index = index
        self._session = session or requests.Session()
        self._fetchers = dict(fetchers or {})
        self.allowed_hosts = tuple(allowed_hosts)

    def __repr__(self) -> str:
        return f"MediaStore({str(self.media_dir)!r}, max_bytes={self.max_bytes})"

    def fetch(self, url: str) -> StoredMedia:
        """The stored image for ``url``, downloading it only when it is not on disk yet."""
        scheme = urlparse(url).scheme.lower()
        if scheme in ("http", "https") and not host_allowed(url, self.allowed_hosts):
            raise MediaUrlRefused(f"{url!r}: host not allowed for media (media.allowed_hosts)")
        known = self._index.media_by_url(url)
        if known is not None and Path(known.path).is_file():
            return StoredMedia(url, known.sha256, known.path, known.size, known.content_type, downloaded=False)
        if scheme in self._fetchers:
            data, content_type = self._fetchers[scheme](url)
            return self.store_bytes(url, data, content_type)
        if scheme not in ("http", "https"):
            raise MediaBadUrl(f"cannot download {url!r}: not an http(s) URL")
        temp_path, sha256, size, content_type = self._download(url)
        return self._keep(url, temp_path, sha256, size, content_type)

    def store_bytes(self, url: str, data: bytes, content_type: str) -> StoredMedia:
        """Store bytes obtained elsewhere under the same checks (image type, size cap) and dedupe."""
        media_type = _media_type(content_type)
        if not media_type.startswith("image/"):
            raise MediaNotAnImage(f"{url}: content type {media_type or 'missing'!r} is not an image")
        if len(data) > self.max_bytes:
            raise MediaTooLarge(f"{url}: {len(data)} bytes is over the {self.max_bytes} byte limit")
        if not data:
            raise MediaUnavailable(f"{url}: no bytes")
        self.media_dir.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=".part-", dir=self.media_dir)
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        return self._keep(url, Path(temp_name), hashlib.sha256(data).hexdigest(), len(data), media_type)

    # --- internals ---------------------------------------------------------------------------------
    def _download(self, url: str) -> tuple[Path, str, int, str]:
        deadline = time.monotonic() + self.timeout
        response = self._get_following_allowed_redirects(url)
        with response:
            if response.status_code != 200:
                raise MediaUnavailable(f"{url}: HTTP {response.status_code}")
            media_type = _media_type(response.headers.get("Content-Type"))
            if not media_type.startswith("image/"):
                raise MediaNotAnImage(f"{url}: content type {media_type or 'missing'!r} is not an image")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise MediaTooLarge(f"{url}: {declared} bytes declared, over the {self.max_bytes} byte limit")
            self.media_dir.mkdir(parents=True, exist_ok=True)
            handle, temp_name = tempfile.mkstemp(prefix=".part-", dir=self.media_dir)
            temp_path = Path(temp_name)
            digest = hashlib.sha256()
            size = 0
            # The read timeout is per read: a server trickling bytes could hold us for ever. At the
            # deadline a watchdog closes the connection, which breaks off the read in progress.
            expired = threading.Event()

            def expire() -> None:
                expired.set()
                _break_off(response)

            watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), expire)
            watchdog.daemon = True
            watchdog.start()
            try:
                with os.fdopen(handle, "wb") as out:
                    for chunk in response.iter_content(_CHUNK):
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise MediaTooLarge(f"{url}: more than the {self.max_bytes} byte limit")
                        digest.update(chunk)
                        out.write(chunk)
                if expired.is_set():
                    raise MediaTimeout(f"{url}: download not finished within {self.timeout:g}s")
            except MediaError:
                temp_path.unlink(missing_ok=True)
                raise
            except Exception as exc:
                temp_path.unlink(missing_ok=True)
                if expired.is_set() or isinstance(exc, requests.Timeout):
                    raise MediaTimeout(f"{url}: download not finished within {self.timeout:g}s") from exc
                raise MediaUnavailable(f"{url}: download broken off ({type(exc).__name__})") from exc
            except BaseException:
                temp_path.unlink(missing_ok=True)
                raise
            finally:
                watchdog.cancel()
        if size == 0:
            temp_path.unlink(missing_ok=True)
            raise MediaUnavailable(f"{url}: empty body")
        return temp_path, digest.hexdigest(), size, media_type

    def _get_following_allowed_redirects(self, url: str) -> requests.Response:
        """The response for ``url``; a redirect is followed only to an allowed http(s) host, a few hops at most."""
        target = url
        for _ in range(_MAX_REDIRECTS + 1):
            try:
                response = self._session.get(target, stream=True, timeout=self.timeout, allow_redirects=False)
            except requests.Timeout as exc:
                raise MediaTimeout(f"{url}: no answer within {self.timeout:g}s") from exc
            except requests.RequestException as exc:
                raise MediaUnavailable(f"{url}: cannot connect ({type(exc).__name__})") from exc
            location = response.headers.get("Location")
            if not response.is_redirect or not location:
                return response
            response.close()
            target = urljoin(target, location)
            if urlparse(target).scheme.lower() not in ("http", "https") or not host_allowed(target,
                                                                                            self.allowed_hosts):
                raise MediaUrlRefused(f"{url}: redirected to {target!r}, a host not allowed for media")
        raise MediaUnavailable(f"{url}: more than {_MAX_REDIRECTS} redirects")

    def _keep(self, url: str, temp_path: Path, sha256: str, size: int, content_type: str) -> StoredMedia:
        """Move a complete temporary file into place (unless that content is stored already) and index it."""
        existing = self._index.media_by_sha256(sha256)
        if existing is not None and Path(existing.path).is_file():
            temp_path.unlink(missing_ok=True)
            path = existing.path
        else:
            final = self.media_dir / sha256[:2] / f"{sha256}.{extension_for(content_type)}"
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp_path, final)  # atomic: a reader never sees a half-written image
            path = str(final)
        self._index.record_media(url, sha256, path, size, content_type)
        return StoredMedia(url, sha256, path, size, content_type, downloaded=True)
