"""Pure guarding rules: is a position protected, how near is liquidation, how long may a stop be missing."""

from __future__ import annotations

from collections.abc import Iterable
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
