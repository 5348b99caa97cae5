"""Every message actors exchange: small, frozen, typed.

Events are named in the past tense (a fact), commands in the imperative.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from exchange.bitget.models import PositionSide
from parsing.posts import Post
from parsing.signals import ParsedMessage
from trading.modes import Mode

if TYPE_CHECKING:
    from trading.intents import EntryIntent, ExitIntent


# --- supervision and modes -------------------------------------------------------------------------
@dataclass(frozen=True)
class Heartbeat:
    """Asked by the Supervisor (with a timeout) to detect a hung actor; the answer is True."""


@dataclass(frozen=True)
class ChildFailed:
    name: str
    error: str  # type and message, never secrets
    during_start: bool = False
    # Work that waited in the failed instance's mailbox, handed to the next instance (see actors.base.carried).
    pending: tuple[object, ...] = ()


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


# --- listening and parsing -------------------------------------------------------------------------
@dataclass(frozen=True)
class PostSeen:
    post: Post


@dataclass(frozen=True)
class PostEdited:
    post: Post
    previous_text: str


@dataclass(frozen=True)
class SignalParsed:
    """One reading of a post, journaled as ``signal_id``."""

    signal_id: int
    channel: str
    message_id: int
    reply_to: int | None
    parsed: ParsedMessage
    index: int = 0
    posted_at: str | None = None  # the post's date as the page gives it (ISO 8601)


# --- risk and execution ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PlaceBundle:
    """An approved entry, journaled as its intent with the approval: the OrderManager sends exactly this."""

    intent: EntryIntent

    @property
    def signal_id(self) -> int:
        return self.intent.signal_id


@dataclass(frozen=True)
class ExecuteExit:
    """An update that acts on an open signal (close, cancel, stop move), journaled as an exit intent before
    this message is sent; the OrderManager executes it (and every other pending exit, in order)."""

    intent: ExitIntent


@dataclass(frozen=True)
class RepairStop:
    symbol: str
    hold_side: PositionSide
    size: Decimal
    reason: str


@dataclass(frozen=True)
class ProtectiveClose:
    symbol: str
    hold_side: PositionSide
    reason: str


@dataclass(frozen=True)
class ReducePosition:
    """Close ``fraction`` (0..1] of a position reduce-only, e.g. when liquidation comes near."""

    symbol: str
    hold_side: PositionSide
    fraction: Decimal
    reason: str


@dataclass(frozen=True)
class MoveStopToBreakEven:
    """The first target filled on the exchange: move the position's stop to break-even (plus the buffer)."""

    symbol: str
    hold_side: PositionSide
    reason: str


# --- market data and guarding ----------------------------------------------------------------------
@dataclass(frozen=True)
class PriceTick:
    symbol: str
    last: Decimal
    mark: Decimal
    ts_ms: int
    source: str  # "ws" | "rest"


@dataclass(frozen=True)
class WatchSymbol:
    symbol: str


@dataclass(frozen=True)
class TickerSocketChanged:
    """From the price WebSocket thread: connecting | connected | stale | disconnected | stopped."""

    state: str
    detail: str = ""


@dataclass(frozen=True)
class Tick:
    """A scheduled self-message driving periodic work; ``what`` names the job."""

    what: str


@dataclass(frozen=True)
class PostReadByModel:
    """The Parser's worker finished reading a post with the vision model (sent by the Parser to itself)."""

    post: Post
    edited: bool
    readings: tuple[ParsedMessage, ...]
