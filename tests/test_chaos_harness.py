"""The chaos harness (benchmarks/chaos): its verdicts on hand-made exchange states, and a short real run.

The smoke run starts the real simulator and bot processes, kills the bot with SIGKILL and injects faults; it
asserts that the harness itself works end to end (every exit judged, the bound kept, nothing entered twice).
The figures of long runs are in BENCHMARKS.md.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from benchmarks.chaos.checks import EntryRecord, ExitRecord, evaluate, judge_exit, orphan_plans, oversized_plans
from benchmarks.chaos.procs import CHANNEL
from benchmarks.chaos.runner import (
    SAVED_RUN,
    BreachMonitor,
    ChaosOptions,
    ChaosRun,
    SavedRun,
    _entry_prefixes,
    _exit_prefixes,
)
from benchmarks.chaos.scenario import CYCLE_KINDS, EXITS_OF, entry_signal, plan_cycles
from benchmarks.chaos.sim_admin import OrderView, PlanView, PositionView, SimAdmin, SimState
from exchange.sim.catalogue import DEFAULT_CONTRACTS
from parsing.rules import parse_text
from parsing.signals import Kind

D = Decimal
SYMBOLS = tuple(c.symbol for c in DEFAULT_CONTRACTS)
UPDATE_TYPES = {"close_all": "close_all", "close_half": "close_partial", "move_stop_to_entry": "move_sl_to_be",
                "cancel": "cancel_entries"}


def _exit(action: str = "close_all", size_before: str = "0.1", effect_seen: bool = True) -> ExitRecord:
    return ExitRecord(cycle=1, symbol="BTCUSDT", side="long", action=action,  # type: ignore[arg-type]
                      post_id=7, posted_ms=1000, size_before=D(size_before), entry_orders_before=0,
                      effect_seen=effect_seen, settle_s=1.0, fault="none", kill="none")


def _close(filled: str, oid: str = "c1") -> OrderView:
    return OrderView(order_id=oid, client_oid=oid, symbol="BTCUSDT", side="sell", trade_side="", reduce_only=True,
                     pos_mode="one_way_mode", size=D(filled), filled=D(filled), state="filled", c_time=2000,
                     order_source="normal")


def _plan(plan_type: str, size: str | None, symbol: str = "BTCUSDT") -> PlanView:
    return PlanView(order_id="p", client_oid="p", symbol=symbol, plan_type=plan_type, trigger_price=D("60000"),
                    hold_side="long", size=None if size is None else D(size), status="live", c_time=1, u_time=1)


def _state(positions: tuple[PositionView, ...], plans: tuple[PlanView, ...]) -> SimState:
    return SimState(now_ms=5000, orders=(), plans=plans, positions=positions, last={"BTCUSDT": D("59000")},
                    mark={"BTCUSDT": D("59000")})


def test_a_close_taken_once_is_executed_twice_is_a_duplicate() -> None:
    assert judge_exit(_exit(), [_close("0.1")], D(0), None).verdict == "executed"
    assert judge_exit(_exit(), [_close("0.05"), _close("0.05", "c2")], D(0), None).verdict == "duplicate"
    half = _exit("close_half")
    assert judge_exit(half, [_close("0.05")], D(0), None).verdict == "executed"
    assert judge_exit(half, [_close("0.1")], D(0), None).verdict == "duplicate"


def test_a_late_close_is_its_own_exits_even_in_the_next_exits_window() -> None:
    """A 50% close held back by a 429 burst and a kill runs after the next exit ("close all") of the same position
    was posted, 32 ms before that exit's own close: each exit executed once, in order, named by its client id."""
    from trading.bundle import client_oid

    def order(oid: str, side: str, size: str, c_time: int, reduce_only: bool = True) -> OrderView:
        return OrderView(order_id=oid, client_oid=oid, symbol="BTCUSDT", side=side, trade_side="",
                         reduce_only=reduce_only, pos_mode="one_way_mode", size=D(size), filled=D(size),
                         state="filled", c_time=c_time, order_source="normal")

    entry = EntryRecord(cycle=1, symbol="BTCUSDT", side="long", kind="partial_then_close", post_id=10, posted_ms=0,
                        stop=D("60000"), seen_on_exchange=True)
    half, full = (ExitRecord(cycle=1, symbol="BTCUSDT", side="long", action=action,  # type: ignore[arg-type]
                             post_id=post, posted_ms=posted, size_before=D("0.1"), entry_orders_before=0,
                             effect_seen=post == 12, settle_s=25.0, fault="rate_limit_burst" if post == 11 else "none",
                             kill="none")
                  for action, post, posted in (("close_half", 11, 1_000), ("close_all", 12, 60_000)))
    orders = (order(client_oid(CHANNEL, 10, "entry"), "buy", "0.1", 100, reduce_only=False),
              order(client_oid(CHANNEL, 11, "xc2"), "sell", "0.05", 60_100),  # the late 50% (a second attempt)
              order(client_oid(CHANNEL, 12, "xc"), "sell", "0.05", 60_132))
    final = SimState(now_ms=90_000, orders=orders, plans=(), positions=(), last={}, mark={})

    def verdicts(by_client_id: bool) -> list[str]:
        findings = evaluate(entries=[entry], exits=[half, full], breaches=[], final=final, decisions={}, notices=[],
                            entry_prefixes=_entry_prefixes, exit_prefixes=_exit_prefixes if by_client_id else None)
        return [o.verdict for o in findings.exits]

    assert verdicts(by_client_id=True) == ["executed", "executed"]
    assert verdicts(by_client_id=False) == ["lost", "duplicate"]  # what the time windows alone made of it


def test_an_exit_not_executed_is_lost_unless_the_user_was_told() -> None:
    assert judge_exit(_exit(effect_seen=False), [], D(0), None).verdict == "lost"
    reported = judge_exit(_exit(effect_seen=False), [], D(0), "notice: post 7: no open signal")
    assert reported.verdict == "lost_reported"
    assert judge_exit(_exit(size_before="0"), [], D(0), None).verdict == "moot_silent"
    # the stop closed the position first and the user was told so: nothing left to do, nobody misled
    told = "notice POSITION_CLOSED: BTCUSDT long (post 6): position closed (stop)"
    assert judge_exit(_exit(size_before="0"), [], D(0), None, gone_reason=told).verdict == "moot_reported"
    # the signal was refused (another position was left open on the coin): its exits have nothing to act on
    refused = judge_exit(_exit(), [], D(0), None, signal_on_exchange=False, gone_reason="journal refused: open")
    assert refused.verdict == "moot_reported"
    assert judge_exit(_exit("move_stop_to_entry", effect_seen=False), [], D(0), None).verdict == "lost"


def test_plans_without_a_position_or_beyond_its_size_are_found() -> None:
    position = PositionView("BTCUSDT", "long", D("0.06"), D("65000"))
    plans = (_plan("pos_loss", None), _plan("profit_plan", "0.04"), _plan("profit_plan", "0.04"),
             _plan("profit_plan", "0.01", symbol="ETHUSDT"))
    state = _state((position,), plans)
    assert [p.symbol for p in orphan_plans(state)] == ["ETHUSDT"]
    assert oversized_plans(state) == ["BTCUSDT long size 0.06: take-profit plans total 0.08 (2 plans)"]


def test_a_position_past_its_stop_beyond_the_grace_is_a_breach() -> None:
    monitor = BreachMonitor(SimAdmin("http://127.0.0.1:9"), grace_s=5.0)
    monitor.watch("BTCUSDT", "long", D("60000"), cycle=3)
    past = _state((PositionView("BTCUSDT", "long", D("0.1"), D("65000")),), ())
    monitor.sample(past, now=100.0)
    monitor.sample(past, now=104.0)
    monitor.sample(_state((), ()), now=104.5)  # closed within the grace
    assert monitor.breaches == []
    monitor.sample(past, now=200.0)
    monitor.sample(past, now=207.0)
    monitor.sample(_state((), ()), now=207.5)
    [breach] = monitor.breaches
    assert (breach.cycle, breach.symbol, breach.seconds) == (3, "BTCUSDT", 7.5)


def test_the_plan_is_seeded_and_every_cycle_ends_flat() -> None:
    plans = plan_cycles(40, 5, SYMBOLS)
    assert plans == plan_cycles(40, 5, SYMBOLS)
    assert {p.kind for p in plans} == set(CYCLE_KINDS)
    assert all(p.exits[-1].action in ("close_all", "cancel") for p in plans)
    assert [p.exits[i].action for p in plans for i in range(len(p.exits))] == [
        a for p in plans for a in EXITS_OF[p.kind]
    ]


def test_the_posted_signals_read_as_the_harness_means_them() -> None:
    for plan in plan_cycles(30, 9, SYMBOLS):
        contract = next(c for c in DEFAULT_CONTRACTS if c.symbol == plan.symbol)
        price = D("65000") if plan.symbol == "BTCUSDT" else D("1.2345")
        signal = entry_signal(plan, contract.round_price(price), contract)
        [reading] = parse_text(signal.text)
        assert reading.kind is Kind.ENTRY, signal.text
        assert (reading.symbol, reading.side, reading.stop_loss) == (plan.symbol, plan.side, signal.stop)
        for step in plan.exits:
            [update] = parse_text(step.text)
            assert update.update_type is not None and update.update_type.value == UPDATE_TYPES[step.action], step.text


def test_smoke_run_against_the_real_processes(tmp_path: Path) -> None:
    """A few cycles with kill -9 (after an entry, after an exit post, at an exit request) and a timeout after
    accept, bounded in time: the harness judges every exit it posted. It asserts the harness, not the bot's
    figures (a lost exit only makes a cycle wait its settle time)."""
    options = ChaosOptions(cycles=3, seed=1, time_bound_s=30.0, settle_s=8.0, workdir=tmp_path)
    result = ChaosRun(options, log=lambda line: None).run()
    assert result.cycles_run >= 1
    assert result.kills >= 1 and result.starts >= result.kills + 1
    assert result.elapsed_s < options.time_bound_s + 45
    run = plan_cycles(3, 1, SYMBOLS)[: result.cycles_run]
    assert [o.record.action for o in result.findings.exits] == [step.action for p in run for step in p.exits]
    assert result.findings.duplicate_entries == []
    assert "| **lost exits** (not executed, nothing said) |" in result.report()
    verdicts = (tmp_path / "outcomes.txt").read_text(encoding="utf-8").splitlines()
    assert len([line for line in verdicts if " post " in line]) >= len(result.findings.exits)
    # the saved run is judged again to the same verdicts
    again = SavedRun.read(tmp_path / SAVED_RUN).judge()
    assert [o.verdict for o in again.exits] == [o.verdict for o in result.findings.exits]
    assert again.orphan_plans == result.findings.orphan_plans


def test_a_notice_is_about_the_post_it_starts_with() -> None:
    from benchmarks.chaos.checks import mentions_post

    assert mentions_post("post 7: update not linked to a signal: replies to post 5, which is no open signal", 7)
    assert not mentions_post("post 7: update not linked to a signal: replies to post 5, which is no open signal", 5)
    assert mentions_post("BTCUSDT long (post 5): position closed", 5)
    assert not mentions_post("post 57: not traded", 5)
