"""The verdicts of a chaos run, from the simulator's state and request log (pure).

The exchange's side is the truth: orders, fills, plans and positions as the simulator holds them. The bot's
word (its journal decisions and the notices it sent) is used only to tell a *reported* failure (the user was
told, with a reason) from a silent one, and to find signals it said it refused.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from benchmarks.chaos.scenario import CycleKind, ExitAction, FaultKind, KillPoint, Side
from benchmarks.chaos.sim_admin import OrderView, PlanView, SimState

ExitVerdict = Literal["executed", "duplicate", "moot_reported", "moot_silent", "lost_reported", "lost"]
REFUSED_DECISIONS = frozenset({"refused", "notify_only", "exit_failed"})
REFUSAL_NOTICES = frozenset({"SIGNAL_REFUSED", "NOTIFY_ONLY"})  # notices saying a post was not traded
# Notices that tell the user a signal's position is gone (or never was): an exit finding nothing to act on
# afterwards leaves nobody misled.
GONE_NOTICES = frozenset({"POSITION_CLOSED", "STOP_FILLED", "PROTECTIVE_CLOSE", "LOCAL_STOP_TRIGGERED",
                          "STOP_BREACHED_CLOSE", "SIGNAL_REFUSED", "NOTIFY_ONLY", "PANIC_CLOSE"})
# A partial close that took this share of the position or more was executed twice (50% + 50%).
OVER_EXECUTED_SHARE = Decimal("0.75")


@dataclass(frozen=True)
class EntryRecord:
    cycle: int
    symbol: str
    side: Side
    kind: CycleKind
    post_id: int
    posted_ms: int
    stop: Decimal
    seen_on_exchange: bool  # a position (or, pending, a resting order) showed before the deadline


@dataclass(frozen=True)
class ExitRecord:
    cycle: int
    symbol: str
    side: Side
    action: ExitAction
    post_id: int
    posted_ms: int
    size_before: Decimal  # the position's size on the simulator right before the post
    entry_orders_before: int  # resting entry orders on the symbol right before the post
    effect_seen: bool  # the expected effect showed on the simulator before the settle deadline
    settle_s: float
    fault: FaultKind
    kill: KillPoint


@dataclass(frozen=True)
class Breach:
    cycle: int
    symbol: str
    side: str
    stop: Decimal
    mark: Decimal
    seconds: float


@dataclass(frozen=True)
class Decision:
    decision: str
    reason: str


@dataclass(frozen=True)
class ExitOutcome:
    record: ExitRecord
    verdict: ExitVerdict
    closed_size: Decimal
    close_orders: int
    detail: str


@dataclass
class Findings:
    exits: list[ExitOutcome] = field(default_factory=list)
    duplicate_entries: list[str] = field(default_factory=list)
    refused_then_traded: list[str] = field(default_factory=list)
    orphan_plans: list[str] = field(default_factory=list)
    oversized_plans: list[str] = field(default_factory=list)
    leftover_orders: list[str] = field(default_factory=list)
    leftover_positions: list[str] = field(default_factory=list)
    stop_breaches: list[str] = field(default_factory=list)

    def count(self, verdict: ExitVerdict) -> int:
        return sum(1 for outcome in self.exits if outcome.verdict == verdict)

    def examples(self, verdict: ExitVerdict, limit: int = 3) -> list[str]:
        return [o.detail for o in self.exits if o.verdict == verdict][:limit]

    @property
    def failures(self) -> int:
        """Everything the acceptance says must be zero."""
        return (self.count("lost") + self.count("duplicate") + self.count("moot_silent")
                + len(self.duplicate_entries) + len(self.refused_then_traded) + len(self.orphan_plans)
                + len(self.oversized_plans) + len(self.stop_breaches))


def mentions_post(text: str, post_id: int) -> bool:
    """A notice about ``post_id``: it starts "post <id>" (parser, risk gate, order manager) or names "(post <id>)";
    "replies to post <id>" in a notice about another post does not count."""
    return re.match(rf"post {post_id}\b", text) is not None or f"(post {post_id})" in text


def _reported(post_id: int, decisions: Mapping[int, Decision], notices: Iterable[tuple[str, str]],
              kinds: frozenset[str] | None = None) -> str | None:
    """The reason the bot gave for not acting on ``post_id`` (journal decision or a notice about the post, of
    one of ``kinds`` when given), if any."""
    decision = decisions.get(post_id)
    if decision is not None and decision.decision in REFUSED_DECISIONS:
        return f"journal {decision.decision}: {decision.reason}"
    for kind, text in notices:
        if (kinds is None or kind in kinds) and mentions_post(text, post_id):
            return f"notice {kind}: {text}"
    return None


def _window_ends(entries: list[EntryRecord], exits: list[ExitRecord], end_ms: int) -> dict[int, int]:
    """Each exit post's window: until the next post on its symbol (the next step or the next cycle)."""
    starts: dict[str, list[int]] = {}
    for symbol, posted_ms in [(e.symbol, e.posted_ms) for e in entries] + [(x.symbol, x.posted_ms) for x in exits]:
        starts.setdefault(symbol, []).append(posted_ms)
    ends: dict[int, int] = {}
    for record in exits:
        later = [t for t in starts[record.symbol] if t > record.posted_ms]
        ends[record.post_id] = min(later, default=end_ms)
    return ends


def attribute_closes(
    exits: list[ExitRecord], orders: Iterable[OrderView], ends: Mapping[int, int],
    exit_prefixes: Callable[[int], tuple[str, ...]] | None,
) -> dict[int, list[OrderView]]:
    """The close orders (reduce-only, not a triggered plan) each exit post is answerable for.

    A close whose client id starts with an exit post's prefix is that exit's, whenever it ran: a close delayed
    past its settle time (a 429 burst, a kill) and executed right before the next exit of the same position is
    still the first exit's. Only a close whose client id names no exit (e.g. a protective close of the bot's own)
    falls back to the time window: the exit posted last before it on its symbol and side."""
    owner_of_prefix: dict[str, int] = {}
    if exit_prefixes is not None:
        for record in exits:
            for prefix in exit_prefixes(record.post_id):
                owner_of_prefix[prefix] = record.post_id
    closes: dict[int, list[OrderView]] = {record.post_id: [] for record in exits}
    for order in orders:
        if not order.closing or order.from_plan:
            continue
        owner = next((post for prefix, post in owner_of_prefix.items() if order.client_oid.startswith(prefix)), None)
        if owner is not None:
            closes[owner].append(order)
            continue
        for record in exits:
            if (order.symbol == record.symbol and order.pos_side == record.side
                    and record.posted_ms <= order.c_time < ends[record.post_id]):
                closes[record.post_id].append(order)
    return closes


def judge_exit(
    record: ExitRecord, closes: list[OrderView], entry_fills_after: Decimal, reason: str | None,
    *, signal_on_exchange: bool = True, gone_reason: str | None = None,
) -> ExitOutcome:
    """One exit against the close orders the exchange took in its window. ``signal_on_exchange``: the exit's
    signal placed an entry at all (else there is nothing of it to act on, whatever else is open on the coin);
    ``gone_reason``: the user was told the signal's position is gone or was never opened."""
    closed = sum((o.filled for o in closes), Decimal(0))
    filled_closes = [o for o in closes if o.filled > 0]
    where = f"cycle {record.cycle} post {record.post_id} {record.action} {record.symbol} {record.side}"
    facts = (f"size before {record.size_before}, closed {closed} in {len(filled_closes)} order(s), "
             f"fault {record.fault}, kill {record.kill}")

    def outcome(verdict: ExitVerdict, why: str) -> ExitOutcome:
        return ExitOutcome(record, verdict, closed, len(filled_closes), f"{where}: {why} ({facts})")

    moot_reason = reason or gone_reason
    if not signal_on_exchange and not filled_closes:
        if moot_reason:
            return outcome("moot_reported", f"its signal was never traded; {moot_reason}")
        return outcome("moot_silent", "its signal was never traded and nothing said")
    if record.action in ("close_all", "close_half"):
        if record.size_before == 0 and not filled_closes:
            if moot_reason:
                return outcome("moot_reported", f"no position to close; {moot_reason}")
            return outcome("moot_silent", "no position to close and nothing said")
        if not filled_closes:
            if reason:
                return outcome("lost_reported", f"not executed; {reason}")
            return outcome("lost", "not executed and nothing said")
        if record.action == "close_all" and len(filled_closes) > 1:
            return outcome("duplicate", "closed by more than one order")
        if record.action == "close_half" and closed >= record.size_before * OVER_EXECUTED_SHARE:
            return outcome("duplicate", "a 50% close took 75% or more of the position")
        return outcome("executed", "closed" if record.effect_seen else f"closed, later than {record.settle_s:.0f}s")
    if record.action == "cancel":
        if record.entry_orders_before == 0 and record.size_before == 0:
            if moot_reason:
                return outcome("moot_reported", f"no entry order to cancel; {moot_reason}")
            return outcome("moot_silent", "no entry order to cancel and nothing said")
        if record.effect_seen and entry_fills_after == 0:
            return outcome("executed", "entry orders cancelled")
        if reason:
            return outcome("lost_reported", f"entry orders not cancelled; {reason}")
        return outcome("lost", "entry orders not cancelled and nothing said")
    # move_stop_to_entry
    if record.size_before == 0:
        if moot_reason:
            return outcome("moot_reported", f"no position; {moot_reason}")
        return outcome("moot_silent", "no position for the stop move and nothing said")
    if record.effect_seen:
        return outcome("executed", "stop at entry")
    if reason:
        return outcome("lost_reported", f"stop not moved; {reason}")
    return outcome("lost", "stop not moved and nothing said")


def evaluate(
    *,
    entries: list[EntryRecord],
    exits: list[ExitRecord],
    breaches: list[Breach],
    final: SimState,
    decisions: Mapping[int, Decision],
    notices: list[tuple[str, str]],
    entry_prefixes: Callable[[int], tuple[str, ...]],
    exit_prefixes: Callable[[int], tuple[str, ...]] | None = None,
) -> Findings:
    """Every check of the run. ``notices`` are (kind, text) as the user got them; ``entry_prefixes(post_id)``
    gives the client-id prefixes of a signal's legs, ``exit_prefixes(post_id)`` those of an exit post's requests
    (its closes ``xc``, ``xc2``, ...): a close is that exit's whenever it ran, see ``attribute_closes``."""
    # a signal refused at first and traded later ends "traded" in the journal: only the notice remembers
    refusal_texts = [text for kind, text in notices if kind in REFUSAL_NOTICES]
    findings = Findings()
    ends = _window_ends(entries, exits, final.now_ms + 1)
    orders_by_prefix: dict[int, list[OrderView]] = {}
    for entry in entries:
        prefixes = entry_prefixes(entry.post_id)
        orders_by_prefix[entry.post_id] = [
            o for o in final.orders if not o.closing and any(o.client_oid.startswith(p) for p in prefixes)
        ]
    entry_of_cycle = {e.cycle: e for e in entries}

    closes_of = attribute_closes(exits, final.orders, ends, exit_prefixes)
    for record in exits:
        closes = closes_of[record.post_id]
        entry_of_exit = entry_of_cycle.get(record.cycle)
        fills_after = Decimal(0)
        if entry_of_exit is not None and record.action == "cancel":
            # a pending entry is never reached by the price: any fill of it means it was not cancelled in time
            fills_after = sum((o.filled for o in orders_by_prefix[entry_of_exit.post_id]), Decimal(0))
        on_exchange = entry_of_exit is None or bool(orders_by_prefix[entry_of_exit.post_id])
        gone = (None if entry_of_exit is None
                else _reported(entry_of_exit.post_id, decisions, notices, GONE_NOTICES))
        outcome = judge_exit(record, closes, fills_after, _reported(record.post_id, decisions, notices),
                             signal_on_exchange=on_exchange, gone_reason=gone)
        findings.exits.append(outcome)
        decision = decisions.get(record.post_id)
        if decision is not None and decision.decision in REFUSED_DECISIONS and outcome.closed_size > 0:
            findings.refused_then_traded.append(
                f"exit post {record.post_id} ({record.action} {record.symbol}) journaled {decision.decision} "
                f"({decision.reason}) but {outcome.closed_size} was closed"
            )

    for entry in entries:
        orders = orders_by_prefix[entry.post_id]
        legs = Counter(o.client_oid.rsplit("_", 1)[-1] for o in orders)
        for leg, count in legs.items():
            if count > 1:
                ids = ", ".join(o.client_oid for o in orders if o.client_oid.endswith("_" + leg))
                findings.duplicate_entries.append(
                    f"cycle {entry.cycle} post {entry.post_id} {entry.symbol}: leg {leg} placed {count} times ({ids})"
                )
        decision = decisions.get(entry.post_id)
        filled = sum((o.filled for o in orders), Decimal(0))
        told = next((text for text in refusal_texts if re.match(rf"post {entry.post_id}\b", text)), None)
        if filled > 0 and decision is not None and decision.decision in REFUSED_DECISIONS:
            findings.refused_then_traded.append(
                f"entry post {entry.post_id} {entry.symbol} journaled {decision.decision} ({decision.reason}) "
                f"but {filled} filled"
            )
        elif filled > 0 and told is not None:
            findings.refused_then_traded.append(
                f"entry post {entry.post_id} {entry.symbol}: the user was told {told!r} but {filled} filled"
            )

    findings.orphan_plans = [_plan_text(p) for p in orphan_plans(final)]
    findings.oversized_plans = oversized_plans(final)
    findings.leftover_orders = [
        f"{o.symbol} {o.side} {o.size} ({o.client_oid}) still {o.state}"
        for o in final.open_orders() if not o.closing
    ]
    findings.leftover_positions = [f"{p.symbol} {p.hold_side} {p.size}" for p in final.positions]
    findings.stop_breaches = [
        f"cycle {b.cycle} {b.symbol} {b.side}: mark {b.mark} past stop {b.stop} for {b.seconds:.1f}s"
        for b in breaches
    ]
    return findings


def _plan_text(plan: PlanView) -> str:
    size = "whole position" if plan.size is None else str(plan.size)
    return f"{plan.symbol} {plan.hold_side} {plan.plan_type} at {plan.trigger_price} size {size} ({plan.client_oid})"


def orphan_plans(state: SimState) -> list[PlanView]:
    """Live TP/SL plans on a symbol side that has no position."""
    return [p for p in state.live_plans() if p.is_tpsl and state.position(p.symbol, p.hold_side) is None]


def oversized_plans(state: SimState) -> list[str]:
    """Positions whose sized take-profit plans, or sized stop plans, add up to more than the position."""
    found: list[str] = []
    for position in state.positions:
        plans = [p for p in state.live_plans(position.symbol) if p.is_tpsl and p.hold_side == position.hold_side]
        for label, chosen in (("take-profit", [p for p in plans if not p.is_stop]),
                              ("stop", [p for p in plans if p.is_stop])):
            total = sum((p.size for p in chosen if p.size is not None), Decimal(0))
            if total > position.size:
                found.append(f"{position.symbol} {position.hold_side} size {position.size}: {label} plans total "
                             f"{total} ({len(chosen)} plans)")
    return found


VERDICTS: tuple[ExitVerdict, ...] = ("executed", "moot_reported", "lost_reported", "lost", "moot_silent", "duplicate")


def exits_table(findings: Findings) -> str:
    """Exit verdicts per action (and per fault and kill point), as a Markdown table."""
    groups: dict[str, Counter[str]] = {}
    for outcome in findings.exits:
        record = outcome.record
        for key in (record.action, f"fault {record.fault}", f"kill {record.kill}"):
            groups.setdefault(key, Counter())[outcome.verdict] += 1
    lines = ["| exits | " + " | ".join(VERDICTS) + " |", "|---" * (len(VERDICTS) + 1) + "|"]
    lines += [f"| {key} | " + " | ".join(str(counts[v]) for v in VERDICTS) + " |" for key, counts in groups.items()]
    return "\n".join(lines)


def summary_table(findings: Findings) -> str:
    """The figures of a run as a Markdown table (one row per check, with an example when not zero)."""
    rows: list[tuple[str, int, str]] = [
        ("exits executed once", findings.count("executed"), ""),
        ("exits moot, reported (nothing to act on)", findings.count("moot_reported"), ""),
        ("exits not executed, reported with a reason", findings.count("lost_reported"),
         "; ".join(findings.examples("lost_reported", 1))),
        ("**lost exits** (not executed, nothing said)", findings.count("lost"),
         "; ".join(findings.examples("lost", 1))),
        ("**silent moot exits** (nothing to act on, nothing said)", findings.count("moot_silent"),
         "; ".join(findings.examples("moot_silent", 1))),
        ("**exits executed more than once**", findings.count("duplicate"),
         "; ".join(findings.examples("duplicate", 1))),
        ("**duplicate entries**", len(findings.duplicate_entries), "; ".join(findings.duplicate_entries[:1])),
        ("**refused then traded**", len(findings.refused_then_traded), "; ".join(findings.refused_then_traded[:1])),
        ("**orphan plans at the end**", len(findings.orphan_plans), "; ".join(findings.orphan_plans[:1])),
        ("**oversized plans at the end**", len(findings.oversized_plans), "; ".join(findings.oversized_plans[:1])),
        ("**positions past their stop beyond the grace**", len(findings.stop_breaches),
         "; ".join(findings.stop_breaches[:1])),
        ("entry orders left at the end", len(findings.leftover_orders), "; ".join(findings.leftover_orders[:1])),
        ("positions left at the end", len(findings.leftover_positions), "; ".join(findings.leftover_positions[:1])),
    ]
    lines = ["| check | count | example |", "|---|---|---|"]
    lines += [f"| {name} | {count} | {example.replace('|', '/')[:300]} |" for name, count, example in rows]
    return "\n".join(lines)


def outcome_lines(findings: Findings) -> str:
    """Every exit's verdict and every finding, one a line."""
    f = findings
    lines = [f"{o.verdict}: {o.detail}" for o in f.exits]
    for name, items in (("duplicate entry", f.duplicate_entries), ("refused then traded", f.refused_then_traded),
                        ("orphan plan", f.orphan_plans), ("oversized plans", f.oversized_plans),
                        ("stop breach", f.stop_breaches), ("entry order left", f.leftover_orders),
                        ("position left", f.leftover_positions)):
        lines += [f"{name}: {item}" for item in items]
    return "\n".join(lines) + "\n"
