"""What a message means: the parser's output, the risk gate's input.

A ``ParsedMessage`` is a reading of one post. ``action`` is the verdict: ``trade`` only when the message
alone is complete and consistent enough to open a position; any doubt is ``notify_only``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from enum import Enum
from typing import Any


class Kind(str, Enum):
    ENTRY = "entry"
    UPDATE = "update"
    CLOSE = "close"
    CANCEL = "cancel"
    NOISE = "noise"


class Action(str, Enum):
    TRADE = "trade"  # an entry to open / an update to apply
    NOTIFY_ONLY = "notify_only"  # tell the user, trade nothing
    IGNORE = "ignore"  # noise


class Side(str, Enum):
    LONG = "long"
    SHORT = "short"


class UpdateType(str, Enum):
    TP_HIT = "tp_hit"
    ENTRY_FILLED = "entry_filled"
    MOVE_SL_TO_BE = "move_sl_to_be"
    SET_STOP = "set_stop"
    CLOSE_PARTIAL = "close_partial"
    CLOSE_ALL = "close_all"
    CANCEL_ENTRIES = "cancel_entries"


@dataclass(frozen=True)
class ParsedMessage:
    kind: Kind
    action: Action
    symbol: str | None = None  # Bitget USDT-M name, e.g. BTCUSDT
    side: Side | None = None
    entries: tuple[Decimal, ...] = ()  # empty for a market entry
    market_entry: bool = False
    stop_loss: Decimal | None = None
    take_profits: tuple[Decimal, ...] = ()
    tp_percentages: tuple[Decimal, ...] = ()  # share of the position per target, when the post says
    leverage: int | None = None
    margin_mode: str | None = None  # "isolated" | "crossed" when the post says
    confidence: float = 0.0
    warnings: tuple[str, ...] = ()
    update_type: UpdateType | None = None
    update_price: Decimal | None = None  # new stop for SET_STOP
    update_percent: Decimal | None = None  # share to close for CLOSE_PARTIAL, 0..100
    tp_index: int | None = None  # which target was hit, 1-based
    signal_ref: str | None = None  # "2001" (a signal id) or "t.me/<channel>/<id>" named in the text
    source: str = "rules"  # rules | vlm | hybrid
    # An entry whose only defect is that the post names no stop: notify_only on its own, but every other field
    # is complete and consistent, so the risk gate may complete it with the configured default stop.
    stop_missing: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict. Prices, sizes and shares stay exact: a ``Decimal`` becomes its text ("0.12345678"),
        never a float (a float cannot hold most prices and would hand a rounded stop to whoever reads it back)."""

        def plain(value: Any) -> Any:
            if isinstance(value, Enum):
                return value.value
            if isinstance(value, Decimal):
                return str(value)
            if isinstance(value, (tuple, list)):
                return [plain(v) for v in value]
            return value

        return {k: plain(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ReadingContext:
    """The signal a post replies to, as the reader may use it: its coin and side (and its levels when known).

    A reply under a signal is read as an update of it first ("close half", "move stop to entry" need no coin of
    their own); a reply naming another side than the signal's is doubted, never applied.
    """

    symbol: str | None = None
    side: Side | None = None
    entries: tuple[Decimal, ...] = ()
    stop_loss: Decimal | None = None
    take_profits: tuple[Decimal, ...] = ()


def reading_context(parsed: dict[str, Any]) -> ReadingContext | None:
    """The context a reply is read in, from the journaled reading of the post it replies to (an entry), or None."""
    if parsed.get("kind") != Kind.ENTRY.value:
        return None

    def price(value: Any) -> Decimal | None:
        try:
            number = Decimal(str(value))
        except (ArithmeticError, ValueError):
            return None
        return number if number.is_finite() and number > 0 else None

    def prices(values: Any) -> tuple[Decimal, ...]:
        found = [price(value) for value in values] if isinstance(values, list) else []
        return tuple(value for value in found if value is not None)

    side = parsed.get("side")
    symbol = parsed.get("symbol")
    return ReadingContext(
        symbol=symbol if isinstance(symbol, str) else None,
        side=Side(side) if side in (Side.LONG.value, Side.SHORT.value) else None,
        entries=prices(parsed.get("entries")),
        stop_loss=price(parsed["stop_loss"]) if parsed.get("stop_loss") is not None else None,
        take_profits=prices(parsed.get("take_profits")),
    )
