"""The Supervisor: restarts failed and hung children, escalates to SAFE/PANIC past the restart intensity,
owns the mode (kill switch, signals, operator reset) and tells every child about mode changes."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors.base import ProgressWatch, SupervisedActor, TradingGate
from actors.messages import ChildFailed, Heartbeat, ModeChanged, RequestMode
from actors.supervisor import (
    ChildSpec,
    ResetMode,
    RestartPolicy,
    Supervisor,
    SupervisorContext,
    install_signal_handlers,
)
from trading.journal import Journal
from trading.kill_switch import KillSwitchSource
from trading.modes import Mode

WAIT_S = 5.0
FAST = RestartPolicy(max_restarts=3, within_s=60.0, backoff_base_s=0.001, backoff_max_s=0.005, jitter=0.0)


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all()


def wait_until(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        threading.Event().wait(0.002)
    return condition()


@dataclass(frozen=True)
class Boom:
    pass


@dataclass(frozen=True)
class Hang:
    pass


@dataclass
class Script:
    """How one child behaves, shared by all its instances, and what they observed."""

    failing_starts: int = 0  # this many starts raise in on_started (-1: every start)
    hang_release: threading.Event = field(default_factory=threading.Event)
    starts: int = 0
    start_modes: list[Mode] = field(default_factory=list)
    mode_changes: list[ModeChanged] = field(default_factory=list)
    handled_after_hang: list[Any] = field(default_factory=list)
    stop_log: list[str] | None = None


class Child(SupervisedActor):
    def __init__(self, name: str, supervisor: pykka.ActorRef[Any] | None, *, mode: Mode, script: Script):
        super().__init__(name, supervisor, mode=mode)
        self.script = script
        self.hung_once = False

    def on_started(self) -> None:
        self.script.start_modes.append(self.mode)
        self.script.starts += 1  # last: tests wait on this count
        if self.script.failing_starts == -1 or self.script.starts <= self.script.failing_starts:
            raise ConnectionError("exchange unreachable")

    def handle(self, message: Any) -> Any:
        if isinstance(message, Boom):
            raise RuntimeError("boom")
        if isinstance(message, Hang):
            self.hung_once = True
            self.script.hang_release.wait(WAIT_S)
            return None
        if self.hung_once:
            self.script.handled_after_hang.append(message)
        return None

    def on_mode_changed(self, changed: ModeChanged) -> None:
        self.script.mode_changes.append(changed)

    def on_stopped(self) -> None:
        if self.script.stop_log is not None:
            self.script.stop_log.append(self.name)


def spec(name: str, script: Script, *, critical: bool = False) -> ChildSpec:
    def factory(context: SupervisorContext) -> pykka.ActorRef[Any]:
        return Child.start(context.name, context.supervisor, mode=context.mode, script=script)

    return ChildSpec(name=name, factory=factory, critical=critical)


@pytest.fixture
def journal() -> Iterator[Journal]:
    with Journal(":memory:") as db:
        yield db


def start_supervisor(journal: Journal, *specs: ChildSpec, **options: Any) -> pykka.ActorRef[Supervisor]:
    options.setdefault("policy", FAST)
    options.setdefault("heartbeat_interval_s", 0.005)
    options.setdefault("heartbeat_timeout_s", 1.0)
    return Supervisor.start(list(specs), journal=journal, **options)


def event_details(journal: Journal, kind: str) -> list[dict[str, Any]]:
    return [row.detail for row in journal.events(kind)]


def test_a_child_failing_in_a_handler_is_restarted_and_the_new_instance_answers(journal: Journal) -> None:
    sup = start_supervisor(journal, spec("parser", Script()))
    proxy = sup.proxy()
    first = proxy.child_ref("parser").get(timeout=WAIT_S)
    first.tell(Boom())
    assert wait_until(lambda: proxy.restart_counts().get(timeout=WAIT_S) == {"parser": 1})
    assert wait_until(lambda: proxy.children_status().get(timeout=WAIT_S) == {"parser": True})
    second = proxy.child_ref("parser").get(timeout=WAIT_S)
    assert second.actor_urn != first.actor_urn
    assert second.ask(Heartbeat(), timeout=WAIT_S) is True
    assert event_details(journal, "ACTOR_FAILED")[0]["error"] == "RuntimeError: boom"
    assert event_details(journal, "ACTOR_RESTARTED")[0]["name"] == "parser"


def test_an_on_start_failure_is_detected_and_the_child_restarted(journal: Journal) -> None:
    script = Script(failing_starts=1)
    sup = start_supervisor(journal, spec("listener", script))
    proxy = sup.proxy()
    assert wait_until(lambda: proxy.restart_counts().get(timeout=WAIT_S) == {"listener": 1})
    assert wait_until(lambda: proxy.children_status().get(timeout=WAIT_S) == {"listener": True})
    assert script.starts == 2
    failure = event_details(journal, "ACTOR_FAILED")[0]
    assert failure["during_start"] is True
    assert "ConnectionError" in failure["error"]


def test_a_hung_child_is_detected_by_heartbeat_timeout_retired_and_replaced(journal: Journal) -> None:
    script = Script()
    sup = start_supervisor(journal, spec("guard", script), heartbeat_timeout_s=0.05)
    proxy = sup.proxy()
    hung = proxy.child_ref("guard").get(timeout=WAIT_S)
    try:
        hung.tell(Hang())
        hung.tell("queued behind the hang")
        assert wait_until(lambda: proxy.restart_counts().get(timeout=WAIT_S) == {"guard": 1})
        assert not hung.is_alive()
        failure = event_details(journal, "ACTOR_FAILED")[0]
        assert failure["hung"] is True
        fresh = proxy.child_ref("guard").get(timeout=WAIT_S)
        assert fresh.ask(Heartbeat(), timeout=WAIT_S) is True
    finally:
        script.hang_release.set()
    # The retired instance, once unstuck, must not take more work (no zombie duplicates).
    assert wait_until(lambda: hung.actor_stopped.is_set())
    assert script.handled_after_hang == []


def test_a_stale_failure_report_does_not_restart_a_healthy_child(journal: Journal) -> None:
    sup = start_supervisor(journal, spec("parser", Script()))
    proxy = sup.proxy()
    sup.tell(ChildFailed(name="parser", error="old instance"))
    assert proxy.restart_counts().get(timeout=WAIT_S) == {"parser": 0}
    assert proxy.children_status().get(timeout=WAIT_S) == {"parser": True}


def test_a_non_critical_child_past_its_intensity_puts_the_system_in_safe_and_stays_stopped(
    journal: Journal,
) -> None:
    gate = TradingGate()
    sup = start_supervisor(journal, spec("listener", Script(failing_starts=-1)), gate=gate)
    proxy = sup.proxy()
    assert wait_until(lambda: proxy.get_mode().get(timeout=WAIT_S) is Mode.SAFE)
    assert not gate.entries_allowed()
    assert wait_until(lambda: proxy.children_states().get(timeout=WAIT_S) == {"listener": "given_up"})
    assert proxy.restart_counts().get(timeout=WAIT_S) == {"listener": FAST.max_restarts}
    assert event_details(journal, "MODE_CHANGED")[-1]["source"] == "escalation"


def test_a_critical_child_past_its_intensity_triggers_panic_and_keeps_being_restarted(
    journal: Journal,
) -> None:
    sup = start_supervisor(journal, spec("orders", Script(failing_starts=-1), critical=True))
    proxy = sup.proxy()
    assert wait_until(lambda: proxy.get_mode().get(timeout=WAIT_S) is Mode.PANIC)
    assert wait_until(lambda: proxy.restart_counts().get(timeout=WAIT_S)["orders"] > FAST.max_restarts + 2)


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    import random

    policy = RestartPolicy(backoff_base_s=0.5, backoff_max_s=30.0, jitter=0.0)
    delays = [policy.backoff_s(n, random.Random(1)) for n in range(8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    jittered = RestartPolicy(backoff_base_s=1.0, backoff_max_s=30.0, jitter=0.1)
    assert all(1.0 <= jittered.backoff_s(0, random.Random(seed)) < 1.1 for seed in range(20))


def test_a_mode_request_is_broadcast_journaled_and_given_to_callbacks(journal: Journal) -> None:
    scripts = [Script(), Script()]
    seen: list[ModeChanged] = []
    gate = TradingGate()
    sup = start_supervisor(
        journal, spec("a", scripts[0]), spec("b", scripts[1]), gate=gate, on_mode_change=[seen.append]
    )
    sup.tell(RequestMode(mode=Mode.SAFE, reason="drawdown", source="risk"))
    sup.tell(RequestMode(mode=Mode.NORMAL, reason="automatic loosening", source="risk"))  # refused
    assert sup.proxy().get_mode().get(timeout=WAIT_S) is Mode.SAFE
    expected = ModeChanged(mode=Mode.SAFE, previous=Mode.NORMAL, reason="drawdown")
    assert wait_until(lambda: all(s.mode_changes == [expected] for s in scripts))
    assert seen == [expected]
    assert not gate.entries_allowed()
    assert event_details(journal, "MODE_CHANGED") == [
        {"mode": "safe", "previous": "normal", "reason": "drawdown", "source": "risk", "by_operator": False}
    ]


def test_a_restarted_child_starts_in_the_current_mode(journal: Journal) -> None:
    script = Script()
    sup = start_supervisor(journal, spec("parser", script))
    proxy = sup.proxy()
    assert proxy.request_mode(Mode.SAFE, "test", "test").get(timeout=WAIT_S) is True
    proxy.child_ref("parser").get(timeout=WAIT_S).tell(Boom())
    assert wait_until(lambda: script.starts == 2)
    assert script.start_modes == [Mode.NORMAL, Mode.SAFE]


def test_panic_survives_a_process_restart_until_an_operator_resets_it(journal: Journal) -> None:
    sup = start_supervisor(journal)
    assert sup.proxy().request_mode(Mode.PANIC, "stop loss failed", "guard").get(timeout=WAIT_S)
    sup.stop(timeout=WAIT_S)

    script = Script()
    gate = TradingGate()
    again = start_supervisor(journal, spec("orders", script, critical=True), gate=gate)
    proxy = again.proxy()
    assert proxy.get_mode().get(timeout=WAIT_S) is Mode.PANIC
    assert script.start_modes == [Mode.PANIC]
    assert not gate.entries_allowed()
    assert proxy.request_mode(Mode.NORMAL, "auto", "anything").get(timeout=WAIT_S) is False

    assert proxy.reset_mode(Mode.NORMAL, "checked by hand", "operator").get(timeout=WAIT_S) is True
    assert proxy.get_mode().get(timeout=WAIT_S) is Mode.NORMAL
    assert gate.entries_allowed()
    assert wait_until(lambda: [c.mode for c in script.mode_changes] == [Mode.NORMAL])


def test_the_gate_holds_the_starting_mode_as_soon_as_the_supervisor_exists(journal: Journal) -> None:
    # Built, not started: on_start has not run, yet a status page or a signal racing start-up reads the gate.
    configured_safe = TradingGate()
    Supervisor([], journal=journal, gate=configured_safe, initial_mode=Mode.SAFE)
    assert configured_safe.mode is Mode.SAFE

    sup = start_supervisor(journal)
    assert sup.proxy().request_mode(Mode.PANIC, "stop loss failed", "guard").get(timeout=WAIT_S)
    sup.stop(timeout=WAIT_S)
    persisted_panic = TradingGate()
    Supervisor([], journal=journal, gate=persisted_panic, initial_mode=Mode.SAFE)
    assert persisted_panic.mode is Mode.PANIC and not persisted_panic.entries_allowed()


def test_reset_is_refused_while_the_kill_switch_file_is_present(journal: Journal, tmp_path: Path) -> None:
    switch = tmp_path / "KILL_SWITCH"
    switch.touch()
    source = KillSwitchSource(switch, {}, journal.get_flag)
    sup = start_supervisor(journal, kill_switch=source, kill_switch_poll_s=0.005)
    proxy = sup.proxy()
    assert proxy.get_mode().get(timeout=WAIT_S) is Mode.SAFE
    assert proxy.reset_mode().get(timeout=WAIT_S) is False
    assert proxy.get_mode().get(timeout=WAIT_S) is Mode.SAFE
    switch.unlink()
    sup.tell(ResetMode(reason="file removed"))
    assert proxy.get_mode().get(timeout=WAIT_S) is Mode.NORMAL


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [("file", Mode.SAFE), ("env", Mode.PANIC), ("flag", Mode.PANIC), ("flag-safe", Mode.SAFE)],
)
def test_each_kill_switch_source_sets_the_mode_and_every_child_hears_it(
    journal: Journal, tmp_path: Path, trigger: str, expected: Mode
) -> None:
    switch = tmp_path / "KILL_SWITCH"
    env: dict[str, str] = {}
    scripts = [Script(), Script()]
    source = KillSwitchSource(switch, env, journal.get_flag)
    progress = ProgressWatch()
    sup = start_supervisor(
        journal, spec("a", scripts[0]), spec("b", scripts[1]), kill_switch=source, kill_switch_poll_s=0.005,
        progress=progress,
    )
    assert sup.proxy().get_mode().get(timeout=WAIT_S) is Mode.NORMAL
    if trigger == "file":
        switch.write_text("")
    elif trigger == "env":
        env["TRADER_KILL_SWITCH"] = "panic"
    else:
        journal.set_flag("kill_switch", "panic" if trigger == "flag" else "safe")
    assert wait_until(lambda: all([c.mode for c in s.mode_changes] == [expected] for s in scripts))
    assert sup.proxy().get_mode().get(timeout=WAIT_S) is expected
    assert event_details(journal, "MODE_CHANGED")[-1]["source"].startswith("kill_switch")
    assert progress.is_alive(max_silence_s=WAIT_S)


def test_children_start_in_order_and_stop_in_reverse(journal: Journal) -> None:
    stop_log: list[str] = []
    names = ("feed", "orders", "listener")
    sup = start_supervisor(journal, *(spec(name, Script(stop_log=stop_log)) for name in names))
    assert sup.proxy().children_status().get(timeout=WAIT_S) == {"feed": True, "orders": True, "listener": True}
    sup.stop(timeout=WAIT_S)
    assert stop_log == ["listener", "orders", "feed"]


@pytest.mark.parametrize(("signum", "expected"), [(signal.SIGUSR1, Mode.SAFE), (signal.SIGUSR2, Mode.PANIC)])
def test_sigusr_signals_reach_the_supervisor(journal: Journal, signum: int, expected: Mode) -> None:
    gate = TradingGate()
    sup = start_supervisor(journal, gate=gate)
    handlers = install_signal_handlers(sup, lambda: None, gate=gate)
    try:
        os.kill(os.getpid(), signum)
        assert wait_until(lambda: sup.proxy().get_mode().get(timeout=WAIT_S) is expected)
        assert gate.mode is expected
        assert event_details(journal, "MODE_CHANGED")[-1]["source"] == "signal"
    finally:
        handlers.restore()


def test_signals_during_start_up_wait_for_the_supervisor_instead_of_ending_the_process(journal: Journal) -> None:
    """Installed before the runtime starts: a signal then meets our handler, never the OS default (which ends the
    process for SIGUSR1 and SIGTERM); the mode change reaches the Supervisor once it is attached."""
    gate = TradingGate()
    stop_requested = threading.Event()
    handlers = install_signal_handlers(None, stop_requested.set, gate=gate)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        assert wait_until(lambda: gate.mode is Mode.SAFE), "the gate tightened at once"
        sup = start_supervisor(journal, gate=gate)
        handlers.attach(sup)
        assert wait_until(lambda: sup.proxy().get_mode().get(timeout=WAIT_S) is Mode.SAFE)
        assert event_details(journal, "MODE_CHANGED")[-1]["source"] == "signal"
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop_requested.wait(WAIT_S)
    finally:
        handlers.restore()


def test_sigterm_calls_on_stop_and_handlers_are_restored(journal: Journal) -> None:
    previous = signal.getsignal(signal.SIGTERM)
    stop_requested = threading.Event()
    sup = start_supervisor(journal)
    handlers = install_signal_handlers(sup, stop_requested.set)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop_requested.wait(WAIT_S)
    finally:
        handlers.restore()
    assert signal.getsignal(signal.SIGTERM) is previous
