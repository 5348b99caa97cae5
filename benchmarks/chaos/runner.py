"""One chaos run: the simulator and the bot as processes, the channel server and a notice webhook in the harness.

For each planned cycle the harness posts an entry signal, waits for it on the exchange, then posts the replies
that act on it, injecting 429 bursts and timeouts-after-accept on the exchange and killing the bot with SIGKILL
at the planned points (a moment after a post, the instant an exit request shows in the simulator's request log,
or before an exit is posted so it arrives while the bot is down). A monitor samples the simulator meanwhile for
positions past their stop. At the end the bot gets a last chance to reconcile, is stopped, and the simulator's
final state is judged (benchmarks/chaos/checks.py).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.chaos.checks import (
    Breach,
    Decision,
    EntryRecord,
    ExitRecord,
    Findings,
    evaluate,
    exits_table,
    outcome_lines,
    summary_table,
)
from benchmarks.chaos.notices import NoticeCollector
from benchmarks.chaos.procs import CHANNEL, BotProcess, SimProcess, bot_config, free_port
from benchmarks.chaos.scenario import (
    CyclePlan,
    ExitAction,
    ExitStep,
    entry_signal,
    plan_cycles,
    profit_price,
    through_stop_price,
)
from benchmarks.chaos.sim_admin import (
    EXIT_ENDPOINTS,
    RATE_LIMITED_ENDPOINTS,
    LoggedCall,
    SimAdmin,
    SimState,
    parse_state,
)
from exchange.bitget.contracts import Contract
from exchange.sim.catalogue import DEFAULT_CONTRACTS
from parsing.channel_server import ChannelServer
from trading.bundle import signal_oid_prefix
from trading.journal import Journal

REPO = Path(__file__).resolve().parents[2]
# Where the run's timeouts-after-accept land, by the exit they hit.
TIMEOUT_ENDPOINTS: dict[ExitAction, tuple[str, ...]] = {
    "close_all": ("place-order", "close-positions"),
    "close_half": ("place-order",),
    "cancel": ("cancel-order", "batch-cancel-orders"),
    "move_stop_to_entry": ("place-tpsl-order", "place-pos-tpsl", "modify-tpsl-order", "cancel-plan-order"),
}
HELD_REPLY_S = 8.0  # longer than the bot's bitget.timeout_seconds (5): the bot sees a timeout, the order stands
RATE_LIMIT_BURST = 6  # 429 answers queued on each endpoint of RATE_LIMITED_ENDPOINTS
BREAK_EVEN_TOLERANCE = Decimal("0.005")  # a stop this close to the entry price is "at entry"
EPOCHS_CHECKED = 4  # client-id epochs of a signal looked for on the exchange (a re-placed leg bumps it)
EXIT_READINGS_CHECKED = 4  # readings of one exit post whose client ids name it (a chaos update is one reading)


@dataclass(frozen=True)
class ChaosOptions:
    cycles: int = 20
    seed: int = 1
    time_bound_s: float = 1800.0
    workdir: Path | None = None
    kill_probability: float = 0.5
    fault_probability: float = 0.3
    settle_s: float = 25.0  # how long an entry or exit may take to show on the exchange
    stop_breach_grace_s: float = 10.0
    plans_survive_flat: bool = True  # the simulator leaves TP/SL plans when a position goes flat
    symbols: tuple[str, ...] = tuple(c.symbol for c in DEFAULT_CONTRACTS)


@dataclass
class ChaosResult:
    options: ChaosOptions
    findings: Findings
    planned: int
    cycles_run: int
    starts: int
    kills: int
    faults: Counter[str]
    elapsed_s: float
    workdir: Path
    commit: str
    not_ready: int
    bound_hit: bool
    notes: list[str] = field(default_factory=list)

    def report(self) -> str:
        f = self.findings
        exits = Counter(o.record.action for o in f.exits)
        lines = [
            f"chaos run: commit {self.commit}, seed {self.options.seed}, {self.cycles_run}/{self.planned} cycles "
            f"in {self.elapsed_s:.0f}s{' (time bound hit)' if self.bound_hit else ''}",
            f"bot starts {self.starts}, kill -9 {self.kills}, faults "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none")
            + f", waits for /readyz that timed out {self.not_ready}",
            "exits posted: " + ", ".join(f"{k} {v}" for k, v in sorted(exits.items())),
            "",
            summary_table(f),
            "",
            exits_table(f),
            "",
            f"failures (must be 0): {f.failures}; every verdict in {self.workdir / 'outcomes.txt'}, "
            f"the bot's log in {self.workdir / 'bot.log'}",
        ]
        lines += self.notes
        return "\n".join(lines)

    def details(self) -> str:
        """Every exit's verdict and every finding, one a line (written to ``outcomes.txt`` in the workdir)."""
        return outcome_lines(self.findings)


SAVED_RUN = "run.json"


@dataclass
class SavedRun:
    """Everything a run's verdicts are made from, kept in ``<workdir>/run.json`` so a run can be judged again
    (``python -m benchmarks.chaos --judge DIR``) when a check is refined."""

    entries: list[EntryRecord]
    exits: list[ExitRecord]
    breaches: list[Breach]
    final: dict[str, Any]  # the simulator's /_sim/state at the end
    decisions: dict[int, Decision]
    notices: list[tuple[str, str]]

    def judge(self) -> Findings:
        return evaluate(entries=self.entries, exits=self.exits, breaches=self.breaches,
                        final=parse_state(self.final), decisions=self.decisions, notices=self.notices,
                        entry_prefixes=_entry_prefixes, exit_prefixes=_exit_prefixes)

    def write(self, path: Path) -> None:
        data = {
            "entries": [asdict(e) for e in self.entries], "exits": [asdict(e) for e in self.exits],
            "breaches": [asdict(b) for b in self.breaches], "final": self.final,
            "decisions": {str(k): asdict(v) for k, v in self.decisions.items()},
            "notices": [list(n) for n in self.notices],
        }
        path.write_text(json.dumps(data, default=str), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> SavedRun:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            entries=[EntryRecord(**{**e, "stop": Decimal(e["stop"])}) for e in data["entries"]],
            exits=[ExitRecord(**{**e, "size_before": Decimal(e["size_before"])}) for e in data["exits"]],
            breaches=[Breach(**{**b, "stop": Decimal(b["stop"]), "mark": Decimal(b["mark"])})
                      for b in data["breaches"]],
            final=data["final"],
            decisions={int(k): Decision(**v) for k, v in data["decisions"].items()},
            notices=[(str(kind), str(text)) for kind, text in data["notices"]],
        )


def _git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}{'+dirty' if dirty else ''}" if commit else "unknown"


def _entry_prefixes(post_id: int) -> tuple[str, ...]:
    return tuple(signal_oid_prefix(CHANNEL, post_id, epoch=epoch) for epoch in range(EPOCHS_CHECKED))


def _exit_prefixes(post_id: int) -> tuple[str, ...]:
    """The client-id prefixes of an exit post's requests (``ExitIntent.key``: its readings, epoch 0)."""
    return tuple(signal_oid_prefix(CHANNEL, post_id, signal_index=index) for index in range(EXIT_READINGS_CHECKED))


class BreachMonitor:
    """Samples the simulator: a position whose mark is past its signal's stop for longer than the grace."""

    def __init__(self, admin: SimAdmin, grace_s: float, interval_s: float = 0.3) -> None:
        self._admin = admin
        self._grace_s = grace_s
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._stops: dict[str, tuple[str, Decimal, int]] = {}  # symbol -> (side, stop, cycle)
        self._since: dict[tuple[str, str], tuple[float, Decimal]] = {}
        self.breaches: list[Breach] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-breach-monitor", daemon=True)

    def watch(self, symbol: str, side: str, stop: Decimal, cycle: int) -> None:
        with self._lock:
            self._stops[symbol] = (side, stop, cycle)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        now = time.monotonic()
        for key in list(self._since):
            self._close_stretch(key, now)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                state = self._admin.state()
            except Exception:  # the simulator is busy or gone: the next sample tells
                continue
            self.sample(state, time.monotonic())

    def sample(self, state: SimState, now: float) -> None:
        with self._lock:
            stops = dict(self._stops)
        past: set[tuple[str, str]] = set()
        for position in state.positions:
            watched = stops.get(position.symbol)
            if watched is None or watched[0] != position.hold_side:
                continue
            side, stop, _ = watched
            mark = state.mark[position.symbol]
            if (mark <= stop) if side == "long" else (mark >= stop):
                key = (position.symbol, side)
                past.add(key)
                self._since.setdefault(key, (now, mark))
        for key in [k for k in self._since if k not in past]:
            self._close_stretch(key, now)

    def _close_stretch(self, key: tuple[str, str], now: float) -> None:
        started, mark = self._since.pop(key)
        seconds = now - started
        if seconds > self._grace_s:
            side, stop, cycle = self._stops[key[0]]
            self.breaches.append(Breach(cycle, key[0], side, stop, mark, seconds))


class ChaosRun:
    def __init__(self, options: ChaosOptions, log: Callable[[str], None] = print) -> None:
        self.options = options
        self._log = log
        self._contracts: dict[str, Contract] = {c.symbol: c for c in DEFAULT_CONTRACTS}
        self._entries: list[EntryRecord] = []
        self._exits: list[ExitRecord] = []
        self._faults: Counter[str] = Counter()
        self._not_ready = 0
        self._notes: list[str] = []
        self._deadline = float("inf")  # no wait of a cycle runs past it (see _budget)

    # ---- the run ----------------------------------------------------------------------------------------
    def run(self) -> ChaosResult:
        options = self.options
        started = time.monotonic()
        self._deadline = started + options.time_bound_s
        workdir = options.workdir or Path(tempfile.mkdtemp(prefix="chaos-"))
        workdir.mkdir(parents=True, exist_ok=True)
        commit = _git_commit()
        plans = plan_cycles(options.cycles, options.seed, options.symbols,
                            kill_probability=options.kill_probability, fault_probability=options.fault_probability)
        sim = SimProcess(seed=options.seed, log_path=workdir / "sim.log", cwd=REPO)
        channel = ChannelServer(CHANNEL)
        notices = NoticeCollector()
        health_port = free_port()
        bot = BotProcess(conf_path=workdir / "bot.yaml", log_path=workdir / "bot.log", cwd=REPO,
                         health_port=health_port)
        admin: SimAdmin | None = None
        monitor: BreachMonitor | None = None
        cycles_run = 0
        bound_hit = False
        try:
            sim.start()
            admin = SimAdmin(sim.base_url)
            admin.plans_survive_flat(options.plans_survive_flat)
            channel_url = channel.start()
            channel.add_post("Welcome to the channel: signals follow.")  # history, never traded
            bot.write_config(bot_config(workdir=workdir, sim_url=sim.base_url, sim_ws_url=sim.ws_url,
                                        channel_url=channel_url, webhook_url=notices.start(),
                                        health_port=health_port))
            bot.start()
            if not bot.wait_ready(90):
                raise RuntimeError(f"the bot did not become ready (see {workdir / 'bot.log'})")
            monitor = BreachMonitor(admin, options.stop_breach_grace_s)
            monitor.start()
            for plan in plans:
                if time.monotonic() >= self._deadline:
                    bound_hit = True
                    break
                self._cycle(plan, admin, channel, bot, monitor)
                cycles_run += 1
                self._log(f"cycle {plan.index}/{len(plans)} {plan.kind} {plan.symbol} {plan.side} done "
                          f"({time.monotonic() - started:.0f}s, kills {bot.kills})")
            final = self._final_state(admin, bot)
            monitor.stop()
            saved = SavedRun(entries=self._entries, exits=self._exits, breaches=list(monitor.breaches),
                             final=final, decisions={}, notices=[])
            monitor = None
            bot.stop()
            saved.decisions = self._decisions(workdir / "journal.sqlite")
            saved.notices = [(n.kind, n.text) for n in notices.notices()]
            saved.write(workdir / SAVED_RUN)
            findings = saved.judge()
        finally:
            if monitor is not None:
                monitor.stop()
            bot.stop()
            notices.stop()
            channel.stop()
            if admin is not None:
                admin.close()
            sim.stop()
        result = ChaosResult(
            options=options, findings=findings, planned=len(plans), cycles_run=cycles_run, starts=bot.starts,
            kills=bot.kills, faults=self._faults, elapsed_s=time.monotonic() - started, workdir=workdir,
            commit=commit, not_ready=self._not_ready, bound_hit=bound_hit, notes=self._notes,
        )
        (workdir / "outcomes.txt").write_text(result.details(), encoding="utf-8")
        return result

    def _final_state(self, admin: SimAdmin, bot: BotProcess) -> dict[str, Any]:
        """The bot running and ready, a few reconciliation passes later: what the exchange then holds."""
        admin.clear_faults()
        bot.start()
        if not bot.wait_ready(max(20.0, self._budget(60.0))):
            self._not_ready += 1
        time.sleep(5.0)  # several open-order and position passes (1 s each)
        return admin.state_json()

    def _decisions(self, journal_path: Path) -> dict[int, Decision]:
        decisions: dict[int, Decision] = {}
        journal = Journal(str(journal_path))
        try:
            for post_id in [e.post_id for e in self._entries] + [x.post_id for x in self._exits]:
                row = journal.signal_for_post(CHANNEL, post_id)
                if row is not None:
                    decisions[post_id] = Decision(row.decision, row.reason)
        finally:
            journal.close()
        return decisions

    # ---- one cycle --------------------------------------------------------------------------------------
    def _budget(self, timeout_s: float) -> float:
        """``timeout_s``, cut to what is left of the run's time bound (a short wait once it has passed)."""
        return max(0.5, min(timeout_s, self._deadline - time.monotonic()))

    def _wait(self, admin: SimAdmin, done: Callable[[SimState], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + self._budget(timeout_s)
        while True:
            try:
                if done(admin.state()):
                    return True
            except OSError:
                pass
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)

    def _restart_after(self, bot: BotProcess, downtime_s: float) -> None:
        time.sleep(downtime_s)
        bot.start()

    def _cycle(self, plan: CyclePlan, admin: SimAdmin, channel: ChannelServer, bot: BotProcess,
               monitor: BreachMonitor) -> None:
        options = self.options
        if not bot.running:
            bot.start()
        if not bot.wait_ready(self._budget(options.settle_s)):
            self._not_ready += 1
        symbol, side = plan.symbol, plan.side
        contract = self._contracts[symbol]
        price = admin.state().last[symbol]
        signal = entry_signal(plan, price, contract)
        pending = plan.kind == "cancel_pending"
        monitor.watch(symbol, side, signal.stop, plan.index)
        entry_id = channel.add_post(signal.text)
        entry_ms = admin.state().now_ms
        if plan.kill_after_entry:
            time.sleep(plan.entry_kill_delay_s)
            bot.kill9()
            self._restart_after(bot, plan.downtime_s)

        def entry_seen(state: SimState) -> bool:
            if pending:
                return any(not o.closing for o in state.open_orders(symbol))
            return state.position_size(symbol, side) > 0

        seen = self._wait(admin, entry_seen, options.settle_s)
        self._entries.append(EntryRecord(plan.index, symbol, side, plan.kind, entry_id, entry_ms, signal.stop, seen))
        if plan.kind == "stop_out" and seen:
            admin.set_price(symbol, through_stop_price(side, signal.stop, contract))
            self._wait(admin, lambda s: s.position_size(symbol, side) == 0, 10.0)
        for step in plan.exits:
            if step.action == "move_stop_to_entry" and admin.state().position_size(symbol, side) > 0:
                admin.set_price(symbol, profit_price(side, price, contract))
                time.sleep(1.5)  # the bot's price feed hears of the move (tickers go out every second)
            self._exit(plan, step, entry_id, admin, channel, bot)

    def _apply_fault(self, step: ExitStep, admin: SimAdmin) -> None:
        if step.fault == "rate_limit_burst":
            for endpoint in RATE_LIMITED_ENDPOINTS:
                admin.fail_next(endpoint, http_status=429, code="429", times=RATE_LIMIT_BURST)
        elif step.fault == "timeout_after_accept":
            for endpoint in TIMEOUT_ENDPOINTS[step.action]:
                admin.timeout_after_accept(endpoint, delay_s=HELD_REPLY_S)
        if step.fault != "none":
            self._faults[step.fault] += 1

    def _exit(self, plan: CyclePlan, step: ExitStep, entry_id: int, admin: SimAdmin, channel: ChannelServer,
              bot: BotProcess) -> None:
        symbol, side = plan.symbol, plan.side
        before = admin.state()
        size_before = before.position_size(symbol, side)
        entry_orders_before = sum(1 for o in before.open_orders(symbol) if not o.closing)
        since = admin.request_count()
        self._apply_fault(step, admin)
        if step.kill == "exit_posted_while_down":
            bot.kill9()
        exit_id = channel.add_post(step.text, reply_to=entry_id)
        posted_ms = admin.state().now_ms
        if step.kill == "after_exit_post":
            time.sleep(step.kill_delay_s)
            bot.kill9()
        elif step.kill == "after_exit_request":
            if self._watch_for_exit_request(admin, since, symbol, timeout_s=self._budget(15.0)):
                bot.kill9()
            else:
                self._notes.append(f"cycle {plan.index} post {exit_id}: no exit request seen to kill after")
        if step.kill != "none":
            self._restart_after(bot, plan.downtime_s)

        def effect(state: SimState) -> bool:
            return _effect_seen(step.action, state, symbol, side, size_before)

        settle = self.options.settle_s + (HELD_REPLY_S if step.fault == "timeout_after_accept" else 0.0)
        started = time.monotonic()
        seen = self._wait(admin, effect, settle)
        self._exits.append(ExitRecord(
            cycle=plan.index, symbol=symbol, side=side, action=step.action, post_id=exit_id, posted_ms=posted_ms,
            size_before=size_before, entry_orders_before=entry_orders_before, effect_seen=seen,
            settle_s=time.monotonic() - started, fault=step.fault, kill=step.kill,
        ))
        admin.clear_faults()

    def _watch_for_exit_request(self, admin: SimAdmin, since: int, symbol: str, timeout_s: float) -> bool:
        """True as soon as the request log shows a write acting on ``symbol`` (the exit's request)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            since, calls = admin.requests_since(since)
            if any(_is_exit_call(call, symbol) for call in calls):
                return True
            time.sleep(0.01)
        return False


def _is_exit_call(call: LoggedCall, symbol: str) -> bool:
    if call.endpoint not in EXIT_ENDPOINTS or str(call.params.get("symbol", "")).upper() != symbol:
        return False
    if call.endpoint == "place-order":  # a closing order, not an entry
        return str(call.params.get("reduceOnly", "")).upper() == "YES" or call.params.get("tradeSide") == "close"
    return True


def _effect_seen(action: ExitAction, state: SimState, symbol: str, side: str, size_before: Decimal) -> bool:
    if action == "close_all":
        return state.position_size(symbol, side) == 0
    if action == "close_half":
        return state.position_size(symbol, side) < size_before
    if action == "cancel":
        return not any(not o.closing for o in state.open_orders(symbol))
    position = state.position(symbol, side)
    if position is None:
        return False
    return any(
        p.is_stop and p.hold_side == side and abs(p.trigger_price - position.average_price)
        <= position.average_price * BREAK_EVEN_TOLERANCE
        for p in state.live_plans(symbol)
    )
