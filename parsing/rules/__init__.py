"""Rule-based signal parser: ``parse_text`` and ``normalize_symbol``."""

from __future__ import annotations

from parsing.rules.parser import parse_text
from parsing.rules.symbols import find_symbols, normalize_symbol

__all__ = ["find_symbols", "normalize_symbol", "parse_text"]
