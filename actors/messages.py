"""Every message actors exchange: small, frozen, typed.

Events are named in the past tense (a fact), commands in the imperative.
"""

from __future__ import annotations

from dataclasses import dataclass

from trading.modes import Mode


# --- supervision and modes -------------------------------------------------------------------------
@dataclass(frozen=True)
class Heartbeat:
    """Asked by the Supervisor (with a timeout) to detect a hung actor; the answer is True."""


@dataclass(frozen=True)
class ChildFailed:
    name: str
    error: str  # type and message, never secrets
    during_start: bool = False


@dataclass(frozen=True)
class RequestMode:
    """Ask the Supervisor to move to a stricter (or, by operator reset, a looser) mode."""

    mode: Mode
    reason: str
    source: str  # "signal", "kill_switch", "drawdown", "escalation", "operator", ...


@dataclass(frozen=True)
class ModeChanged:
    mode: Mode
    previous: Mode
    reason: str
