"""Pure guarding rules: is a position protected, how near is liquidation, how long may a stop be missing."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any, Literal, Protocol

from exchange.bitget.contracts import Contract
from exchange.bitget.models import PlanOrder, Position, PositionSide, PosMode
from exchange.bitget.semantics import tpsl_hold_side

STOP_PLAN_TYPES = frozenset({"loss_plan", "pos_loss"})

StopVerdict = Literal["ok", "missing", "still_missing", "expired", "closing"]


def stop_plans_for(position: Position, plans: Iterable[PlanOrder], pos_mode: PosMode) -> list[PlanOrder]:
    """The stop plans (loss_plan / pos_loss) that protect ``position``."""
    sides = {position.hold_side, tpsl_hold_side(position.hold_side, pos_mode), None, "", "net"}
    return [
        plan for plan in plans
        if plan.symbol == position.symbol and plan.plan_type in STOP_PLAN_TYPES and plan.pos_side in sides
    ]


def stop_coverage(position: Position, plans: Iterable[PlanOrder], pos_mode: PosMode) -> Decimal | None:
    """How much of ``position`` its stops cover; None means all of it (a position-level stop).

    The plan list is the detail: an entry's attached stop is sized to that entry's fills, yet the position
    may report its price as *the* stop. The position's own stop counts as whole only when no plan is listed.
    A stop plan without a size (a position-level ``pos_loss``) covers any size; a sized one (a sized
    ``loss_plan``, or an entry's preset stop sized to that entry's fill) covers its size only.
    """
    listed = stop_plans_for(position, plans, pos_mode)
    if not listed:
        return None if position.stop_loss is not None and position.stop_loss > 0 else Decimal(0)
    covered = Decimal(0)
    for plan in listed:
        if plan.size is None:
            return None
        covered += plan.size
    return covered


def position_has_stop(position: Position, plans: Iterable[PlanOrder], pos_mode: PosMode) -> bool:
    """True when stops on the exchange cover the whole position (a partial fill grows it past its stop)."""
    covered = stop_coverage(position, plans, pos_mode)
    return covered is None or covered >= position.total


def uncovered_size(position: Position, plans: Iterable[PlanOrder], pos_mode: PosMode) -> Decimal:
    """The part of ``position`` no stop covers (0 when covered whole)."""
    covered = stop_coverage(position, plans, pos_mode)
    return Decimal(0) if covered is None else max(Decimal(0), position.total - covered)


# --- local_guard: the stop lives in the journal and fires from the price feed ----------------------------------
LocalStopVerdict = Literal["close", "hold", "stale", "no_stop"]
LOCAL_STOP_FLAG = "local_stop:"


def local_stop_flag(symbol: str, hold_side: PositionSide, c_time: int | None) -> str:
    """The journal flag holding one position's local stop. The opening time is part of the name: a position
    re-opened later on the same side is a new one and never inherits an old stop."""
    return f"{LOCAL_STOP_FLAG}{symbol}:{hold_side}:{c_time or 0}"


class FlagJournal(Protocol):
    def get_flag(self, name: str) -> str | None: ...
    def set_flag(self, name: str, value: str | None) -> None: ...
    def record_event(self, kind: str, detail: dict[str, Any]) -> int: ...


def local_stop(journal: FlagJournal, position: Position) -> Decimal | None:
    """The position's local stop as journaled, or None when none was set yet."""
    stored = journal.get_flag(local_stop_flag(position.symbol, position.hold_side, position.c_time))
    return Decimal(stored) if stored else None


def set_local_stop(journal: FlagJournal, position: Position, stop: Decimal, source: str) -> None:
    """Journal the position's local stop (the signal's, a moved one, or a default for an adopted position);
    the PositionGuard reads it on every price, so it survives a restart of the guard."""
    journal.set_flag(local_stop_flag(position.symbol, position.hold_side, position.c_time), str(stop))
    journal.record_event("LOCAL_STOP_SET", {"symbol": position.symbol, "hold_side": position.hold_side,
                                            "c_time": position.c_time, "stop": str(stop), "source": source})


# --- the stop a position should have now (what a repair puts back) ----------------------------------------------
MOVED_STOP_FLAG = "moved_stop:"


def moved_stop_flag(symbol: str, hold_side: PositionSide, c_time: int | None) -> str:
    """The journal flag holding the stop a position was last moved to (break-even, a channel's set-stop); the
    opening time is part of the name, as for local stops, so a re-opened position starts from its signal's."""
    return f"{MOVED_STOP_FLAG}{symbol}:{hold_side}:{c_time or 0}"


def remember_moved_stop(journal: FlagJournal, position: Position, stop: Decimal) -> None:
    journal.set_flag(moved_stop_flag(position.symbol, position.hold_side, position.c_time), str(stop))


def moved_stop(journal: FlagJournal, position: Position) -> Decimal | None:
    stored = journal.get_flag(moved_stop_flag(position.symbol, position.hold_side, position.c_time))
    return Decimal(stored) if stored else None


def stop_rounding(stop: Decimal, entry: Decimal) -> str:
    """How a stop is put on the tick grid: away from the entry (a loss-side stop never moves toward the price, a
    break-even stop never gives up its buffer)."""
    return ROUND_UP if stop > entry else ROUND_DOWN


def current_stop(
    position: Position, *, moved: Decimal | None, signal_stop: Decimal | None, contract: Contract
) -> Decimal | None:
    """The stop ``position`` should have now: the last one it was moved to, else its signal's, rounded to the
    tick away from the entry. None when neither is known (the caller falls back to a default distance)."""
    stop = moved if moved is not None else signal_stop
    if stop is None or not stop.is_finite() or stop <= 0:
        return None
    return contract.round_price(stop, stop_rounding(stop, position.average_open_price))


def stop_crossed(hold_side: PositionSide, stop: Decimal, price: Decimal) -> bool:
    return price <= stop if hold_side == "long" else price >= stop


def local_stop_verdict(
    hold_side: PositionSide,
    stop: Decimal | None,
    *,
    mark: Decimal | None,
    last: Decimal | None,
    price_age_s: float | None,
    stale_after_s: float,
) -> LocalStopVerdict:
    """What the local guard does with one price for one position: close it (the stop is crossed), hold, or
    neither because the price is stale or missing (never a trigger, never a sign of safety).

    The mark price is preferred (what the exchange's own stops and liquidation watch), the last price
    otherwise. ``hold_side`` is long or short in one-way and hedge mode alike.
    """
    if stop is None or stop <= 0:
        return "no_stop"
    if price_age_s is None or price_age_s > stale_after_s:
        return "stale"
    price = mark if mark is not None and mark > 0 else last
    if price is None or price <= 0:
        return "stale"
    return "close" if stop_crossed(hold_side, stop, price) else "hold"


class LocalStopLatch:
    """Per position: the first crossing triggers one close; while the position stays open afterwards the
    close is sent again every ``retry_s`` (it was refused or lost), whatever the price does meanwhile: a
    stop that fired is not undone by the price coming back."""

    def __init__(self, retry_s: float) -> None:
        self._retry_s = retry_s
        self._fired_at: dict[str, float] = {}

    def observe(self, key: str, verdict: LocalStopVerdict, now: float) -> Literal["trigger", "retry"] | None:
        fired_at = self._fired_at.get(key)
        if fired_at is None:
            if verdict == "close":
                self._fired_at[key] = now
                return "trigger"
            return None
        if now - fired_at >= self._retry_s:
            self._fired_at[key] = now
            return "retry"
        return None

    def triggered(self, key: str) -> bool:
        return key in self._fired_at

    def restore(self, key: str, now: float) -> None:
        """A crossing journaled before a restart: not triggered (nor journaled) again; if the position is still
        open its close is due at once."""
        self._fired_at.setdefault(key, now - self._retry_s)

    def forget_except(self, live: set[str]) -> None:
        for key in list(self._fired_at):
            if key not in live:
                del self._fired_at[key]


def liquidation_distance(position: Position) -> Decimal | None:
    """Relative distance from the mark price to the liquidation price, or None when unknown."""
    mark = position.mark_price
    liq = position.liquidation_price
    if mark is None or liq is None or mark <= 0:
        return None
    return abs(mark - liq) / mark


class StopWatch:
    """Tracks, per position, since when its stop has been missing. Time is passed in (pure)."""

    def __init__(self, repair_timeout_s: float) -> None:
        self._timeout = repair_timeout_s
        self._missing_since: dict[tuple[str, str], float] = {}
        self._closing: set[tuple[str, str]] = set()

    def observe(self, key: tuple[str, str], protected: bool, now: float) -> StopVerdict:
        if protected:
            self._missing_since.pop(key, None)
            self._closing.discard(key)
            return "ok"
        if key in self._closing:
            return "closing"
        since = self._missing_since.get(key)
        if since is None:
            self._missing_since[key] = now
            return "missing"
        if now - since > self._timeout:
            self._closing.add(key)
            return "expired"
        return "still_missing"

    def forget_except(self, live: AbstractSet[tuple[str, str]]) -> None:
        """Positions that are gone need no stop."""
        for key in list(self._missing_since):
            if key not in live:
                del self._missing_since[key]
        self._closing &= live


def first_target_taken(
    tp1_plan_id: str | None, live_plan_ids: Iterable[str], position_size: Decimal, entry_filled: Decimal
) -> bool:
    """The first take-profit has filled: its plan is gone from the exchange while the position is still open
    and smaller than its entries filled. Both facts are needed: a plan also disappears with its position, and
    a position also shrinks by a manual close."""
    if not tp1_plan_id or tp1_plan_id in set(live_plan_ids):
        return False
    return Decimal(0) < position_size < entry_filled


@dataclass(frozen=True)
class LiquidationAction:
    alert: bool  # tell the operator (once per stretch under the minimum)
    reduce: bool  # send a reduce-only partial close now


_NOTHING = LiquidationAction(alert=False, reduce=False)


@dataclass
class _NearLiquidation:
    reduced_at_size: Decimal | None = None
    reduced_at: float = 0.0


class LiquidationWatch:
    """Per position: alert once while the liquidation distance stays under the minimum (re-armed once it is
    back above), and ask for a reduction while it stays under.

    A further reduction waits until the previous one shows (the position got smaller) or ``retry_after_s``
    has passed (it was refused or is still on its way), so one low reading never sends a burst of closes.
    Under isolated margin a reduction does not move the liquidation price, so a position that stays near it
    is reduced step by step to flat: that is the intent, the stop should have fired first.
    """

    def __init__(self, min_distance: Decimal, retry_after_s: float) -> None:
        self._min = min_distance
        self._retry_after_s = retry_after_s
        self._near: dict[tuple[str, str], _NearLiquidation] = {}

    def observe(self, key: tuple[str, str], distance: Decimal | None, size: Decimal, now: float) -> LiquidationAction:
        if distance is None:
            return _NOTHING  # unknown: neither alarm nor re-arm
        if distance >= self._min:
            self._near.pop(key, None)
            return _NOTHING
        state = self._near.get(key)
        alert = state is None
        if state is None:
            state = self._near[key] = _NearLiquidation()
        reduce = (
            state.reduced_at_size is None
            or size < state.reduced_at_size
            or now - state.reduced_at >= self._retry_after_s
        )
        if reduce:
            state.reduced_at_size, state.reduced_at = size, now
        return LiquidationAction(alert=alert, reduce=reduce)

    def forget_except(self, live: AbstractSet[tuple[str, str]]) -> None:
        for key in list(self._near):
            if key not in live:
                del self._near[key]


class PatienceClock:
    """Per key: True once a condition has lasted ``patience_s`` since it was first seen, then again every
    ``patience_s`` while it lasts. The first sighting never fires: whoever caused the condition gets time to
    act first (e.g. the panic close already on its way)."""

    def __init__(self, patience_s: float) -> None:
        self._patience_s = patience_s
        self._since: dict[tuple[str, str], float] = {}

    def due(self, key: tuple[str, str], now: float) -> bool:
        since = self._since.setdefault(key, now)
        if now - since >= self._patience_s:
            self._since[key] = now
            return True
        return False

    def forget_except(self, live: AbstractSet[tuple[str, str]]) -> None:
        for key in list(self._since):
            if key not in live:
                del self._since[key]


# --- a stop that did not fire ----------------------------------------------------------------------------------
def guarding_stops(position: Position, plans: Iterable[PlanOrder], pos_mode: PosMode) -> list[Decimal]:
    """The stop prices that should protect ``position`` on the exchange: its stop plans' triggers, else the stop
    the position itself reports."""
    triggers = [plan.trigger_price for plan in stop_plans_for(position, plans, pos_mode) if plan.trigger_price > 0]
    if triggers:
        return triggers
    return [position.stop_loss] if position.stop_loss is not None and position.stop_loss > 0 else []


def breached_stop(hold_side: PositionSide, stops: Iterable[Decimal], mark: Decimal | None) -> Decimal | None:
    """The stop the mark price is past (the first one a move against the position crosses), or None: a long's
    highest stop at or above the mark, a short's lowest at or below it."""
    if mark is None or mark <= 0:
        return None
    crossed = [stop for stop in stops if stop > 0 and stop_crossed(hold_side, stop, mark)]
    if not crossed:
        return None
    return max(crossed) if hold_side == "long" else min(crossed)


BreachAction = Literal["breached", "close", "retry"]


class StopBreachWatch:
    """Per position: since when the mark has been past its stop. The first sighting is reported ("breached": the
    exchange's stop should be firing right now); past ``grace_s`` with the position still open the stop did not
    fire: "close" once, then "retry" every ``retry_s`` while it stays open and past. A mark back on the right
    side of the stop ends the breach. Time is passed in (pure)."""

    def __init__(self, grace_s: float, retry_s: float) -> None:
        self._grace_s = grace_s
        self._retry_s = retry_s
        self._since: dict[tuple[str, str], float] = {}
        self._closed_at: dict[tuple[str, str], float] = {}

    def observe(self, key: tuple[str, str], breached: bool, now: float) -> BreachAction | None:
        if not breached:
            self._since.pop(key, None)
            self._closed_at.pop(key, None)
            return None
        since = self._since.get(key)
        if since is None:
            self._since[key] = now
            return "breached"
        closed_at = self._closed_at.get(key)
        if closed_at is None:
            if now - since >= self._grace_s:
                self._closed_at[key] = now
                return "close"
            return None
        if now - closed_at >= self._retry_s:
            self._closed_at[key] = now
            return "retry"
        return None

    def breached_for(self, key: tuple[str, str], now: float) -> float | None:
        since = self._since.get(key)
        return None if since is None else now - since

    def breached(self) -> list[tuple[str, str]]:
        return sorted(self._since)

    def forget_except(self, live: AbstractSet[tuple[str, str]]) -> None:
        for key in list(self._since):
            if key not in live:
                self._since.pop(key, None)
                self._closed_at.pop(key, None)
