"""Input side: t.me pages -> ``Post``; text -> ``ParsedMessage``; the loopback channel server."""

from __future__ import annotations
