"""SupervisedActor: failures reach the supervisor (mirroring pykka's failure semantics), heartbeats are
answered, modes are tracked, timers tell messages and never pile up."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pykka
import pytest

from actors.base import SupervisedActor, TimerHandle
from actors.messages import ChildFailed, Heartbeat, ModeChanged, RequestMode
from trading.modes import Mode

WAIT_S = 5.0


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all()


def wait_until(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        threading.Event().wait(0.001)
    return condition()


class Recorder(pykka.ThreadingActor):
    """Stands in for the supervisor: records what children tell it."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Any] = []
        self.arrived = threading.Event()

    def on_receive(self, message: Any) -> Any:
        self.received.append(message)
        self.arrived.set()
        return None


@dataclass(frozen=True)
class Boom:
    pass


@dataclass(frozen=True)
class Tick:
    pass


@dataclass
class Probe:
    """Events the test waits on, set from the actor's thread."""

    tick_started: threading.Event = field(default_factory=threading.Event)
    second_tick: threading.Event = field(default_factory=threading.Event)
    stopped_hook: threading.Event = field(default_factory=threading.Event)


class Worker(SupervisedActor):
    def __init__(
        self,
        name: str,
        supervisor: pykka.ActorRef[Any] | None,
        *,
        mode: Mode = Mode.NORMAL,
        fail_on_start: bool = False,
        tick_gate: threading.Event | None = None,
        probe: Probe | None = None,
    ) -> None:
        super().__init__(name, supervisor, mode=mode)
        self.fail_on_start = fail_on_start
        self.tick_gate = tick_gate
        self.ticks = 0
        self.probe = probe or Probe()
        self.mode_changes: list[ModeChanged] = []

    def on_started(self) -> None:
        if self.fail_on_start:
            raise RuntimeError("cannot connect")

    def handle(self, message: Any) -> Any:
        if isinstance(message, Boom):
            raise RuntimeError("boom")
        if isinstance(message, Tick):
            self.ticks += 1
            self.probe.tick_started.set()
            if self.ticks >= 2:
                self.probe.second_tick.set()
            if self.tick_gate is not None and self.ticks == 1:
                self.tick_gate.wait(WAIT_S)
            return None
        return super().handle(message)

    def on_mode_changed(self, changed: ModeChanged) -> None:
        self.mode_changes.append(changed)

    def on_stopped(self) -> None:
        self.probe.stopped_hook.set()

    # helpers the test calls through the proxy (asks)
    def every(self, interval_s: float) -> TimerHandle:
        return self.schedule_every(interval_s, Tick())

    def once(self, delay_s: float) -> TimerHandle:
        return self.schedule_once(delay_s, Tick())

    def ask_safe_mode(self) -> bool:
        return self.request_mode(Mode.SAFE, "drawdown", "risk")

    def raise_in_ask(self) -> None:
        raise ValueError("bad question")


@pytest.fixture
def recorder() -> pykka.ActorRef[Recorder]:
    return Recorder.start()


def received(recorder: pykka.ActorRef[Recorder]) -> list[Any]:
    return list(recorder.proxy().received.get(timeout=WAIT_S))


def test_a_tell_handler_failure_is_reported_and_the_actor_stops(recorder: pykka.ActorRef[Recorder]) -> None:
    worker = Worker.start("parser", recorder)
    worker.tell(Boom())
    assert wait_until(lambda: received(recorder) != [])
    assert received(recorder) == [ChildFailed(name="parser", error="RuntimeError: boom")]
    assert not worker.is_alive()


def test_an_on_start_failure_is_reported_with_the_instance_already_dead(
    recorder: pykka.ActorRef[Recorder],
) -> None:
    worker = Worker.start("listener", recorder, fail_on_start=True)
    assert wait_until(lambda: received(recorder) != [])
    failure = received(recorder)[0]
    assert failure == ChildFailed(name="listener", error="RuntimeError: cannot connect", during_start=True)
    assert not worker.is_alive()
    with pytest.raises(pykka.ActorDeadError):
        worker.ask(Heartbeat(), timeout=WAIT_S)


def test_an_ask_failure_goes_to_the_caller_and_the_actor_keeps_running(
    recorder: pykka.ActorRef[Recorder],
) -> None:
    worker = Worker.start("risk", recorder)
    with pytest.raises(ValueError, match="bad question"):
        worker.proxy().raise_in_ask().get(timeout=WAIT_S)
    assert worker.ask(Heartbeat(), timeout=WAIT_S) is True
    assert received(recorder) == []


def test_mode_changes_are_tracked_and_given_to_the_hook(recorder: pykka.ActorRef[Recorder]) -> None:
    worker = Worker.start("guard", recorder, mode=Mode.SAFE)
    proxy = worker.proxy()
    assert proxy.mode.get(timeout=WAIT_S) is Mode.SAFE
    changed = ModeChanged(mode=Mode.PANIC, previous=Mode.SAFE, reason="kill switch")
    worker.tell(changed)
    assert proxy.mode.get(timeout=WAIT_S) is Mode.PANIC
    assert proxy.mode_changes.get(timeout=WAIT_S) == [changed]


def test_request_mode_reaches_the_supervisor(recorder: pykka.ActorRef[Recorder]) -> None:
    worker = Worker.start("risk", recorder)
    assert worker.proxy().ask_safe_mode().get(timeout=WAIT_S) is True
    assert wait_until(lambda: received(recorder) != [])
    assert received(recorder) == [RequestMode(mode=Mode.SAFE, reason="drawdown", source="risk")]


def test_request_mode_without_a_live_supervisor_is_not_an_error(recorder: pykka.ActorRef[Recorder]) -> None:
    worker = Worker.start("risk", recorder)
    recorder.stop()
    assert worker.proxy().ask_safe_mode().get(timeout=WAIT_S) is False
    assert worker.is_alive()


def test_a_periodic_timer_tells_the_message_repeatedly(recorder: pykka.ActorRef[Recorder]) -> None:
    worker = Worker.start("feed", recorder)
    worker.proxy().every(0.002).get(timeout=WAIT_S)
    assert worker.proxy().probe.get(timeout=WAIT_S).second_tick.wait(WAIT_S)


def test_periodic_ticks_are_skipped_while_the_previous_one_is_in_progress(
    recorder: pykka.ActorRef[Recorder],
) -> None:
    gate = threading.Event()
    probe = Probe()
    actor = Worker.start("feed", recorder, tick_gate=gate, probe=probe)
    handle = actor.proxy().every(0.001).get(timeout=WAIT_S)
    assert probe.tick_started.wait(WAIT_S)
    try:
        assert wait_until(lambda: handle.skipped_ticks >= 5)
        assert actor.actor_inbox.qsize() == 0  # nothing piled up behind the slow handler
    finally:
        gate.set()
    assert probe.second_tick.wait(WAIT_S)


def test_a_cancelled_once_timer_never_delivers(recorder: pykka.ActorRef[Recorder]) -> None:
    worker = Worker.start("feed", recorder)
    handle = worker.proxy().once(0.05).get(timeout=WAIT_S)
    handle.cancel()
    fired = worker.proxy().once(0.1).get(timeout=WAIT_S)
    assert wait_until(lambda: not fired.active)  # the later timer has fired...
    assert wait_until(lambda: worker.proxy().ticks.get(timeout=WAIT_S) == 1)  # ...the cancelled one did not


def test_timers_are_cancelled_when_the_actor_fails(recorder: pykka.ActorRef[Recorder]) -> None:
    actor = Worker.start("feed", recorder)
    handle = actor.proxy().every(0.001).get(timeout=WAIT_S)
    actor.tell(Boom())
    assert wait_until(lambda: not actor.is_alive())
    assert handle.cancelled.wait(WAIT_S)


def test_timers_are_cancelled_and_cleanup_runs_on_a_normal_stop(recorder: pykka.ActorRef[Recorder]) -> None:
    probe = Probe()
    actor = Worker.start("feed", recorder, probe=probe)
    handle = actor.proxy().every(0.001).get(timeout=WAIT_S)
    actor.stop(timeout=WAIT_S)
    assert handle.cancelled.is_set()
    assert probe.stopped_hook.is_set()


def test_overriding_a_pykka_hook_is_refused() -> None:
    with pytest.raises(TypeError, match="on_started"):

        class Sneaky(SupervisedActor):
            def on_start(self) -> None:
                pass
