"""Trading modes and their transition table.

NORMAL: entries allowed. SAFE: no new exposure; stops, repairs, reductions and closes keep working.
PANIC: cancel working entries, close every position reduce-only once, keep stops until flat. PANIC is sticky:
only an operator reset leaves it.
"""

from __future__ import annotations

from enum import Enum


class Mode(str, Enum):
    NORMAL = "normal"
    SAFE = "safe"
    PANIC = "panic"


# (current, requested, by_operator) -> allowed. Automatic triggers only ever tighten the mode.
_ALLOWED: dict[tuple[Mode, Mode], str] = {
    (Mode.NORMAL, Mode.SAFE): "any",
    (Mode.NORMAL, Mode.PANIC): "any",
    (Mode.SAFE, Mode.PANIC): "any",
    (Mode.SAFE, Mode.NORMAL): "operator",
    (Mode.PANIC, Mode.SAFE): "operator",
    (Mode.PANIC, Mode.NORMAL): "operator",
}


def next_mode(current: Mode, requested: Mode, *, by_operator: bool = False) -> Mode | None:
    """The mode after a request, or None when the request changes nothing or is not allowed."""
    if current == requested:
        return None
    who = _ALLOWED.get((current, requested))
    if who is None or (who == "operator" and not by_operator):
        return None
    return requested


def allows_new_entries(mode: Mode) -> bool:
    return mode is Mode.NORMAL
