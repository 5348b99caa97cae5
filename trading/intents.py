"""Typed intents: what the bot decided to do, exactly as decided, journaled before anything is sent.

An intent is a frozen value. The journal stores it through the one codec below (``encode`` / ``decode``):
JSON with every ``Decimal`` as its exact string, every field named, a ``type`` tag and a format version, so
what the OrderManager reads back after a restart is the same value the RiskGate decided, digit for digit.

``ExitIntent`` is one update of a channel that acts on an open signal (close all, close part, cancel the
entries, move the stop, stop to break-even). Its client ids are derived from the update's own post (channel,
message id, reading index) and a leg tag, like an entry's, so a restart finds what was sent by client id
instead of sending it again.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass, fields, is_dataclass
from decimal import Decimal
from typing import Any, Literal, get_args, get_origin, get_type_hints

from exchange.bitget.models import MarginMode, PositionSide
from trading.bundle import LegPlan, OrderBundle, StopPlan, client_oid, signal_oid_prefix
from trading.risk import SizedEntry

CODEC_VERSION = 1

ExitKind = Literal["close_all", "close_partial", "cancel_entries", "set_stop", "break_even", "break_even_on_tp1"]
HoldSide = PositionSide  # the one definition, shared with the exchange models
EXIT_KINDS: tuple[ExitKind, ...] = get_args(ExitKind)
ExitOrigin = Literal["channel", "guard"]
# The guard's own exits (stop to break-even once the first target filled) are named by their target signal's post
# under this epoch: never the prefix of an update's post nor of the target's own legs.
GUARD_EPOCH = 1000
CLOSE_LEG = "xc"  # the reduce-only market close of an exit; attempt n > 1 is "xc<n>"
STOP_LEG = "xs"  # the new stop of a stop move; attempt n > 1 is "xs<n>"


class IntentCodecError(ValueError):
    """A stored intent that cannot be read back (corrupt, or written by an unknown format)."""


@dataclass(frozen=True)
class ExitIntent:
    """One acting update of a channel, linked to the open signal it speaks of."""

    update_signal_id: int  # the journal row of the update's reading
    target_signal_id: int  # the signal (entry) it acts on
    channel: str
    message_id: int  # the update's post
    index: int  # the reading of that post
    symbol: str
    hold_side: HoldSide  # the target's position side
    kind: ExitKind
    percent: Decimal | None = None  # close_partial: share of the position, 0 < percent <= 100
    stop_price: Decimal | None = None  # set_stop: the new stop
    # "channel": an update post's reading (update_signal_id is its row); "guard": the PositionGuard's own move
    # after the first target filled (channel, message_id and index name the target's post, update_signal_id is
    # the target: no reading of an update is decided by it).
    origin: ExitOrigin = "channel"

    def __post_init__(self) -> None:
        if self.kind not in EXIT_KINDS:
            raise ValueError(f"unknown exit kind {self.kind!r}")
        if self.kind == "close_partial" and (self.percent is None or not 0 < self.percent <= 100):
            raise ValueError("close_partial needs a percent in (0, 100]")
        if self.kind == "set_stop" and (self.stop_price is None or self.stop_price <= 0):
            raise ValueError("set_stop needs a positive stop price")
        if self.origin == "guard" and self.kind != "break_even_on_tp1":
            raise ValueError("the guard's own exits are break-even moves after the first target")

    @property
    def key(self) -> str:
        """Names the intent in the journal: the client-id prefix of the update's post."""
        epoch = GUARD_EPOCH if self.origin == "guard" else 0
        return signal_oid_prefix(self.channel, self.message_id, signal_index=self.index, epoch=epoch)

    @property
    def from_channel(self) -> bool:
        """An update of the channel's (its reading is decided by the exit), not the guard's own move."""
        return self.origin == "channel"

    def client_oid(self, leg: str, attempt: int = 1) -> str:
        """The client id of one request of this exit; a later attempt (after a refusal) gets its own."""
        if attempt < 1:
            raise ValueError("attempts count from 1")
        return self.key + (leg if attempt == 1 else f"{leg}{attempt}")

    @property
    def closes(self) -> bool:
        return self.kind in ("close_all", "close_partial")


def first_target_break_even(target_signal_id: int, *, channel: str, message_id: int, index: int, symbol: str,
                            hold_side: HoldSide) -> ExitIntent:
    """The guard's exit once a signal's first target filled: its stop to break-even, one per signal."""
    return ExitIntent(update_signal_id=target_signal_id, target_signal_id=target_signal_id, channel=channel,
                      message_id=message_id, index=index, symbol=symbol, hold_side=hold_side,
                      kind="break_even_on_tp1", origin="guard")


@dataclass(frozen=True)
class TargetPlan:
    """One take-profit of an entry: its price, its share of the position (None: equal shares) and the client id
    its plan is placed under."""

    price: Decimal
    share: Decimal | None
    client_oid: str


@dataclass(frozen=True)
class EntryIntent:
    """An approved entry exactly as planned: the legs to send (their client ids, sizes, prices and attached
    stop), the stop, the targets with their shares and client ids, and what sizing decided. The RiskGate
    journals it with the approval; the OrderManager sends it; reconciliation protects the position from it."""

    signal_id: int
    symbol: str
    side: HoldSide
    margin_mode: MarginMode
    leverage: int
    size: Decimal
    risk_usdt: Decimal
    legs: tuple[LegPlan, ...]
    stop: StopPlan
    targets: tuple[TargetPlan, ...]
    default_stop: bool = False

    @property
    def key(self) -> str:
        return f"entry:{self.signal_id}"

    @property
    def stop_price(self) -> Decimal:
        return self.stop.trigger_price

    @property
    def shares(self) -> tuple[Decimal, ...]:
        """Each target's share, or empty for equal shares (some targets without a share count as equal)."""
        shares = tuple(t.share for t in self.targets)
        return tuple(s for s in shares if s is not None) if all(s is not None for s in shares) else ()


def entry_intent(signal_id: int, bundle: OrderBundle, sized: SizedEntry, *, channel: str, message_id: int,
                 signal_index: int = 0) -> EntryIntent:
    """The typed intent of an approved entry, from its sizing and its planned bundle."""
    shares: tuple[Decimal | None, ...] = tuple(sized.tp_percentages)
    if len(shares) != len(sized.take_profits):
        shares = (None,) * len(sized.take_profits)
    targets = tuple(
        TargetPlan(price, share, client_oid(channel, message_id, f"tp{n}", signal_index=signal_index))
        for n, (price, share) in enumerate(zip(sized.take_profits, shares, strict=True), start=1)
    )
    return EntryIntent(
        signal_id=signal_id, symbol=sized.symbol, side=sized.side.value, margin_mode=sized.margin_mode,
        leverage=sized.leverage, size=sized.size, risk_usdt=sized.risk_usdt, legs=bundle.entries, stop=bundle.stop,
        targets=targets, default_stop=sized.default_stop,
    )


def entry_payload(intent: EntryIntent, *, attached_stop: bool) -> dict[str, object]:
    """The plain summary kept beside each entry order (read by the outcome notices and older journals); the
    intent itself, journaled through the codec, is what reconciliation reads."""
    return {
        "intent": intent.key,
        "take_profits": [str(t.price) for t in intent.targets],
        "tp_percentages": [str(s) for s in intent.shares],
        "tp_oids": [t.client_oid for t in intent.targets],
        "stop_loss": str(intent.stop_price),
        "position_side": intent.side,
        "attached_stop": attached_stop,
        "risk_usdt": str(intent.risk_usdt),  # what the outcome's R multiple is measured against
    }


# --- the codec --------------------------------------------------------------------------------------------
_TYPES: dict[str, type[Any]] = {"exit": ExitIntent, "entry": EntryIntent}


def register(tag: str, cls: type[Any]) -> None:
    """Make another frozen intent type known to the codec under ``tag``."""
    if not is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    _TYPES[tag] = cls


def _tag_of(value: object) -> str:
    for tag, cls in _TYPES.items():
        if type(value) is cls:
            return tag
    raise TypeError(f"{type(value).__name__} is not a registered intent type")


def _plain(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("an intent holds finite numbers only")
        return str(value)
    if isinstance(value, float):
        raise TypeError("floats cannot hold prices exactly; use Decimal")
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    raise TypeError(f"{type(value).__name__} cannot be stored in an intent")


def encode(intent: object) -> str:
    """The intent as JSON text: fields by name, Decimals as exact strings, a type tag and the codec version."""
    body = _plain(intent)
    return json.dumps({"type": _tag_of(intent), "v": CODEC_VERSION, "body": body}, sort_keys=True,
                      ensure_ascii=False)


def _typed(annotation: Any, raw: Any, where: str) -> Any:
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = get_args(annotation)
        if raw is None and type(None) in options:
            return None
        (inner,) = [option for option in options if option is not type(None)]
        return _typed(inner, raw, where)
    if origin is Literal:
        if raw not in get_args(annotation):
            raise IntentCodecError(f"{where}: {raw!r} is not one of {get_args(annotation)}")
        return raw
    if origin is tuple:
        if not isinstance(raw, list):
            raise IntentCodecError(f"{where}: a list was expected")
        (inner, *_rest) = get_args(annotation)
        return tuple(_typed(inner, item, where) for item in raw)
    if annotation is Decimal:
        if not isinstance(raw, str):
            raise IntentCodecError(f"{where}: a decimal string was expected, not {type(raw).__name__}")
        return Decimal(raw)
    if annotation is bool:
        if not isinstance(raw, bool):
            raise IntentCodecError(f"{where}: a boolean was expected")
        return raw
    if annotation is int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise IntentCodecError(f"{where}: an integer was expected")
        return raw
    if annotation is str:
        if not isinstance(raw, str):
            raise IntentCodecError(f"{where}: a string was expected")
        return raw
    if isinstance(annotation, type) and is_dataclass(annotation):
        return _build(annotation, raw, where)
    raise IntentCodecError(f"{where}: unsupported field type {annotation!r}")


def _build(cls: type[Any], raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise IntentCodecError(f"{where}: an object was expected")
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = set(raw) - names
    if unknown:
        raise IntentCodecError(f"{where}: unknown fields {sorted(unknown)}")
    values = {name: _typed(hints[name], raw[name], f"{where}.{name}") for name in names if name in raw}
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise IntentCodecError(f"{where}: {exc}") from exc


def decode(text: str) -> Any:
    """The intent ``encode`` wrote, as the same type with the same values."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IntentCodecError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("v") != CODEC_VERSION or data.get("type") not in _TYPES:
        raise IntentCodecError("not an intent of a known type and version")
    return _build(_TYPES[data["type"]], data.get("body"), data["type"])


def decode_entry(text: str) -> EntryIntent:
    intent = decode(text)
    if not isinstance(intent, EntryIntent):
        raise IntentCodecError(f"{type(intent).__name__} is not an entry intent")
    return intent


def decode_exit(text: str) -> ExitIntent:
    intent = decode(text)
    if not isinstance(intent, ExitIntent):
        raise IntentCodecError(f"{type(intent).__name__} is not an exit intent")
    return intent
