"""Pure guarding rules: is a position protected, how near is liquidation, how long may a stop be missing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from exchange.bitget.models import PlanOrder, Position
from exchange.bitget.semantics import tpsl_hold_side

STOP_PLAN_TYPES = frozenset({"loss_plan", "pos_loss"})

StopVerdict = Literal["ok", "missing", "still_missing", "expired", "closing"]


def stop_plans_for(position: Position, plans: Iterable[PlanOrder], pos_mode: str) -> list[PlanOrder]:
    """The stop plans (loss_plan / pos_loss) that protect ``position``."""
    sides = {position.hold_side, tpsl_hold_side(position.hold_side, pos_mode), None, "", "net"}
    return [
        plan for plan in plans
        if plan.symbol == position.symbol and plan.plan_type in STOP_PLAN_TYPES and plan.pos_side in sides
    ]


def position_has_stop(position: Position, plans: Iterable[PlanOrder], pos_mode: str) -> bool:
    """True when stops on the exchange cover the whole position.

    A position-level stop (``pos_loss`` or the position's own stop price) covers any size; sized stop plans
    must add up to at least the position's size (a partial fill grows the position past its stop).
    """
    if position.stop_loss is not None and position.stop_loss > 0:
        return True
    covered = Decimal(0)
    for plan in stop_plans_for(position, plans, pos_mode):
        if plan.plan_type == "pos_loss" or not plan.size:
            return True
        covered += plan.size
    return covered >= position.total


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

    def forget_except(self, live: set[tuple[str, str]]) -> None:
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

    def forget_except(self, live: set[tuple[str, str]]) -> None:
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

    def forget_except(self, live: set[tuple[str, str]]) -> None:
        for key in list(self._since):
            if key not in live:
                del self._since[key]
