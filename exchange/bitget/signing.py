"""Bitget V2 request signing.

The signature is HMAC-SHA256 over ``timestamp + METHOD + path [+ "?" + query] + body``, base64 encoded.
The query string that is signed must be byte-for-byte the one that is sent, so both come from
:func:`canonical_query`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlencode


def canonical_query(params: Mapping[str, object] | None) -> str:
    """Query string with keys sorted ascending and ``None`` values left out."""
    if not params:
        return ""
    items = sorted((k, str(v)) for k, v in params.items() if v is not None)
    return urlencode(items)


def prehash(timestamp: str, method: str, path: str, query: str = "", body: str = "") -> str:
    target = path + ("?" + query if query else "")
    return f"{timestamp}{method.upper()}{target}{body}"


def sign(secret: str, timestamp: str, method: str, path: str, query: str = "", body: str = "") -> str:
    digest = hmac.new(
        secret.encode("utf-8"),
        prehash(timestamp, method, path, query, body).encode("utf-8"),
        hashlib.sha256,
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def sign_ws_login(secret: str, timestamp_s: str) -> str:
    """WebSocket login signature: the timestamp is in seconds and the path is fixed."""
    return sign(secret, timestamp_s, "GET", "/user/verify")
