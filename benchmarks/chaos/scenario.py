"""What each chaos cycle does: a seeded plan of signals, exits, kills and faults, and the texts posted. Pure.

A cycle trades one symbol: an entry signal with its stop, then one or two replies that act on it. Every cycle
ends with the symbol meant to be flat and without orders of ours ("close all", or "cancel" for an entry that
never filled), so the next cycle on that symbol starts clean and anything left over is a finding.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from exchange.bitget.contracts import Contract

CycleKind = Literal["close_all", "partial_then_close", "move_then_close", "cancel_pending", "stop_out"]
ExitAction = Literal["close_all", "close_half", "move_stop_to_entry", "cancel"]
KillPoint = Literal["none", "after_entry_post", "after_exit_post", "after_exit_request", "exit_posted_while_down"]
FaultKind = Literal["none", "rate_limit_burst", "timeout_after_accept"]
Side = Literal["long", "short"]

CYCLE_KINDS: tuple[CycleKind, ...] = ("close_all", "partial_then_close", "move_then_close", "cancel_pending",
                                      "stop_out")
KILL_POINTS: tuple[KillPoint, ...] = ("after_entry_post", "after_exit_post", "after_exit_request",
                                      "exit_posted_while_down")

EXITS_OF: dict[CycleKind, tuple[ExitAction, ...]] = {
    "close_all": ("close_all",),
    "partial_then_close": ("close_half", "close_all"),
    "move_then_close": ("move_stop_to_entry", "close_all"),
    "cancel_pending": ("cancel",),
    "stop_out": ("close_all",),  # the stop has fired first: the close finds nothing (must be said, not faked)
}

# Several wordings per action, all read by the rules; the reply is what links them to their signal.
EXIT_TEXTS: dict[ExitAction, tuple[str, ...]] = {
    "close_all": ("Close all", "#{coin}/USDT close all now", "{coin} close all, take the profit"),
    "close_half": ("Close 50%", "#{coin}/USDT close 50% here", "{coin}: close 50% and secure profits"),
    "move_stop_to_entry": ("Move stop to entry", "#{coin}/USDT move SL to entry", "{coin} move stop to entry"),
    "cancel": ("Cancel", "#{coin}/USDT cancel, entry not reached", "{coin} cancel this signal"),
}

# Offsets from the price when the signal is written (fractions of the price).
ZONE_HALF_WIDTH = Decimal("0.001")  # filled entries: a zone around the price
# Pending entries: a zone this far on the far side of the price (never reached: prices stay where the harness
# puts them), within the bot's max_entry_slippage_pct (1% in the chaos config) so it is placed, not refused.
PENDING_DISTANCE = Decimal("0.006")
STOP_DISTANCE = Decimal("0.02")
TARGET_DISTANCES = (Decimal("0.03"), Decimal("0.05"))
PROFIT_MOVE = Decimal("0.008")  # the market move before "move stop to entry" (the trade is in profit)
STOP_OVERSHOOT = Decimal("0.005")  # stop_out: the price gaps this far past the stop


@dataclass(frozen=True)
class ExitStep:
    action: ExitAction
    text: str
    fault: FaultKind
    kill: KillPoint
    kill_delay_s: float  # after_exit_post: how long after the post the bot is killed


@dataclass(frozen=True)
class CyclePlan:
    index: int  # 1-based
    symbol: str
    side: Side
    kind: CycleKind
    kill_after_entry: bool
    entry_kill_delay_s: float
    downtime_s: float  # how long the bot stays down after each kill
    exits: tuple[ExitStep, ...]

    @property
    def kills(self) -> int:
        return int(self.kill_after_entry) + sum(1 for step in self.exits if step.kill != "none")


def plan_cycles(
    count: int,
    seed: int,
    symbols: tuple[str, ...],
    *,
    kill_probability: float = 0.5,
    fault_probability: float = 0.3,
) -> list[CyclePlan]:
    """``count`` cycles drawn from ``seed``; symbols in rotation so a symbol's cycles never overlap."""
    rng = random.Random(f"chaos:{seed}")
    plans: list[CyclePlan] = []
    for index in range(1, count + 1):
        symbol = symbols[(index - 1) % len(symbols)]
        coin = symbol.removesuffix("USDT")
        kind = rng.choice(CYCLE_KINDS)
        side: Side = rng.choice(("long", "short"))
        steps: list[ExitStep] = []
        for action in EXITS_OF[kind]:
            fault: FaultKind = "none"
            if kind != "stop_out" and rng.random() < fault_probability:
                fault = rng.choice(("rate_limit_burst", "timeout_after_accept"))
            kill: KillPoint = "none"
            if rng.random() < kill_probability:
                kill = rng.choice(("after_exit_post", "after_exit_request", "exit_posted_while_down"))
            text = rng.choice(EXIT_TEXTS[action]).format(coin=coin)
            steps.append(ExitStep(action, text, fault, kill, round(rng.uniform(0.0, 1.0), 3)))
        plans.append(CyclePlan(
            index=index, symbol=symbol, side=side, kind=kind,
            kill_after_entry=rng.random() < kill_probability / 2,
            entry_kill_delay_s=round(rng.uniform(0.0, 1.5), 3),
            downtime_s=round(rng.uniform(0.2, 2.0), 3),
            exits=tuple(steps),
        ))
    return plans


def _toward(side: Side, price: Decimal, fraction: Decimal, *, profit: bool) -> Decimal:
    """``price`` moved by ``fraction`` in the trade's profit (or loss) direction."""
    up = (side == "long") == profit
    return price * (1 + fraction) if up else price * (1 - fraction)


@dataclass(frozen=True)
class EntrySignal:
    text: str
    stop: Decimal
    zone: tuple[Decimal, Decimal]


def entry_signal(plan: CyclePlan, price: Decimal, contract: Contract) -> EntrySignal:
    """The entry post for ``plan`` written at ``price``: a zone around it (or, pending, well away from it)."""
    side = plan.side
    if plan.kind == "cancel_pending":
        centre = _toward(side, price, PENDING_DISTANCE, profit=False)
        stop = _toward(side, price, PENDING_DISTANCE + STOP_DISTANCE, profit=False)
    else:
        centre = price
        stop = _toward(side, price, STOP_DISTANCE, profit=False)
    low = contract.round_price(centre * (1 - ZONE_HALF_WIDTH))
    high = contract.round_price(centre * (1 + ZONE_HALF_WIDTH))
    stop = contract.round_price(stop)
    targets = [contract.round_price(_toward(side, price, d, profit=True)) for d in TARGET_DISTANCES]
    coin = plan.symbol.removesuffix("USDT")
    text = "\n".join([
        f"#{coin}/USDT {'LONG' if side == 'long' else 'SHORT'}",
        "Leverage: 5x",
        f"Entry zone: {low} - {high}",
        "Targets: " + " ".join(str(t) for t in targets),
        f"Stop loss: {stop}",
    ])
    return EntrySignal(text=text, stop=stop, zone=(low, high))


def profit_price(side: Side, price: Decimal, contract: Contract) -> Decimal:
    """Where the market goes before "move stop to entry"."""
    return contract.round_price(_toward(side, price, PROFIT_MOVE, profit=True))


def through_stop_price(side: Side, stop: Decimal, contract: Contract) -> Decimal:
    """A price past ``stop`` (the gap a stop-out cycle makes)."""
    return contract.round_price(_toward(side, stop, STOP_OVERSHOOT, profit=False))
