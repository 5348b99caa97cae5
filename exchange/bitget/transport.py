"""HTTP transports for the Bitget client: one keep-alive ``http.client`` connection per thread (the default),
or a ``requests.Session`` (when one is given, or when the environment asks for a proxy).

Why not always ``requests``: it costs about 0.7 ms of CPU per call in its own layers (request preparation,
setting merges, adapters), three quarters of the client's cost per request (see BENCHMARKS.md). The lean
transport does only what the client needs: one request, one reply, on a reused connection.

Both raise :class:`TransportError` with a ``kind`` that tells the client what may have reached the exchange:

* ``connect_timeout`` / ``connect``: no connection was made, so nothing was sent (safe to call "unavailable").
* ``timeout``: sent (or partly sent), no reply in time: a write's outcome is unknown.
* ``connection``: the connection failed after it was made: a write's outcome is unknown.
"""

from __future__ import annotations

import http.client
import os
import select
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import requests


class TransportError(Exception):
    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class RawReply:
    status: int
    retry_after: str | None
    content: bytes


class Transport(Protocol):
    def send(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str], timeout: float) -> RawReply:
        """One HTTP exchange; ``url`` is absolute. Raises :class:`TransportError`, never anything else."""


class RequestsTransport:
    """Through a ``requests.Session`` (proxies, ``responses`` mocks in unit tests)."""

    def __init__(self, session: requests.Session) -> None:
        self.session = session

    def send(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str], timeout: float) -> RawReply:
        try:
            response = self.session.request(
                method, url, data=body, headers=dict(headers), timeout=timeout, allow_redirects=False
            )
        except requests.exceptions.ConnectTimeout:
            raise TransportError("connect_timeout", "connect timed out") from None
        except requests.exceptions.Timeout:
            raise TransportError("timeout", "no reply before the timeout") from None
        except requests.exceptions.RequestException as exc:
            # requests does not say whether a connection error happened before or after sending.
            raise TransportError("connection", type(exc).__name__) from None
        return RawReply(response.status_code, response.headers.get("Retry-After"), response.content)


class HttpClientTransport:
    """A keep-alive ``http.client`` connection per thread to one host. Thread-safe (nothing is shared)."""

    def __init__(self, base_url: str, *, ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"unsupported base URL {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix_len = len(f"{parts.scheme}://{parts.netloc}")
        self._ssl_context = ssl_context or (_default_ssl_context() if self._https else None)
        self._local = threading.local()

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and conn.sock is not None and _dropped(conn.sock):
            conn.close()  # the server closed the idle connection: reconnect rather than write into it
        if conn is None:
            if self._https:
                conn = http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=self._ssl_context)
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
            self._local.conn = conn
        conn.timeout = timeout
        if conn.sock is None:
            try:
                conn.connect()
            except TimeoutError:
                conn.close()
                raise TransportError("connect_timeout", "connect timed out") from None
            except OSError as exc:
                conn.close()
                raise TransportError("connect", type(exc).__name__) from None
        else:
            conn.sock.settimeout(timeout)
        return conn

    def send(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str], timeout: float) -> RawReply:
        conn = self._connection(timeout)
        try:
            conn.request(method, url[self._prefix_len :], body=body, headers=dict(headers))
            response = conn.getresponse()
            content = response.read()
        except TimeoutError:
            conn.close()
            raise TransportError("timeout", "no reply before the timeout") from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise TransportError("connection", type(exc).__name__) from None
        if response.will_close:
            conn.close()
        return RawReply(response.status, response.getheader("Retry-After"), content)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()


def default_transport(base_url: str) -> Transport:
    """The lean transport, unless the environment routes ``base_url`` through a proxy (then ``requests``)."""
    if requests.utils.get_environ_proxies(base_url):
        return RequestsTransport(requests.Session())
    return HttpClientTransport(base_url)


def _default_ssl_context() -> ssl.SSLContext:
    # The same trust store requests would use: an explicit bundle from the environment, else certifi's.
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if not bundle:
        import certifi

        bundle = certifi.where()
    return ssl.create_default_context(cafile=bundle)


def _dropped(sock: socket.socket) -> bool:
    """True when an idle keep-alive socket is readable: the peer closed it (or sent something unasked)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
