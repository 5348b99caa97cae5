"""The Supervisor: starts the actors, notices when one fails or hangs, restarts it, owns the trading Mode.

Modelled on OTP one_for_one with Akka-style backoff (engine-design-lessons §2, §6.1):

- Children start in spec order (dependency order) and stop in reverse.
- A failure is noticed three ways: the child's own ``ChildFailed`` report (handler exception, or
  ``on_start`` failure), a heartbeat finding it dead, or a heartbeat ask unanswered for
  ``heartbeat_timeout_s`` (hung). Heartbeats are collected on the next tick, never waited for.
- An unanswered heartbeat is excused while the child is inside a bounded exchange call (``actors/busy.py``):
  waiting on a slow exchange is busy, not hung; a call past its bound plus the heartbeat timeout is a hang.
- Work is never dropped silently: a failed instance's mailbox (reported in ``ChildFailed.pending``, or drained
  from a retired hung instance) and whatever is told to the child while it is down are held by the directory and
  handed to the next instance; a child left stopped has its held work journaled and reported.
- A hung thread cannot be killed. Its instance is *retired*: marked stopped and unregistered, so once
  its handler returns it handles nothing else (queued messages are dropped, not replayed by a zombie),
  and a fresh instance is started. Journaled as ACTOR_FAILED with ``hung: true``.
- Restarts are scheduled after ``min(backoff_max, backoff_base * 2**n) * (1 + U[0,1) * jitter)`` where n
  is the number of restarts within ``within_s``. Past ``max_restarts`` within ``within_s``:
  a critical child requests PANIC and keeps being restarted at ``backoff_max_s`` (protection must keep
  running while we flatten); a non-critical child requests SAFE and is left stopped until an operator
  reset (a flapping Listener/Parser is better off than a restart storm; no new entries anyway in SAFE).
- Modes: automatic requests only tighten (``next_mode``); an operator reset loosens, refused while a
  kill-switch trigger is still present. Each change sets the shared ``TradingGate`` first (so entries
  stop before anything else happens), is broadcast as ``ModeChanged`` to every live child, journaled
  (MODE_CHANGED + flag "mode") and given to the ``on_mode_change`` callbacks. The persisted mode is
  restored on start, so SAFE and PANIC survive a process restart until an operator resets them.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import random
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from queue import SimpleQueue
from typing import Any, Literal, Protocol

import pykka

from actors.base import (
    ActorDirectory,
    ProgressWatch,
    TimerFired,
    TimerHandle,
    TimerSet,
    TradingGate,
    describe_error,
    describe_work,
    drain_mailbox,
)
from actors.busy import BUSY, BusyBoard
from actors.messages import ChildFailed, Heartbeat, ModeChanged, RequestMode
from exchange.backoff import capped_exponential
from trading.kill_switch import KillSwitchReading, reset_allowed, stricter
from trading.modes import Mode, next_mode

logger = logging.getLogger(__name__)

MODE_FLAG = "mode"
EVENT_MODE_CHANGED = "MODE_CHANGED"
EVENT_ACTOR_RESTARTED = "ACTOR_RESTARTED"
EVENT_ACTOR_FAILED = "ACTOR_FAILED"
EVENT_MODE_RESET_REFUSED = "MODE_RESET_REFUSED"
EVENT_WORK_RESUMED = "ACTOR_WORK_RESUMED"
EVENT_WORK_DROPPED = "ACTOR_WORK_DROPPED"


# --- messages owned here for now (candidates for actors/messages.py) ---------------------------------
@dataclass(frozen=True)
class ResetMode:
    """Operator command: loosen the mode (e.g. PANIC -> NORMAL). Refused while a kill switch is present."""

    mode: Mode = Mode.NORMAL
    reason: str = "operator reset"
    source: str = "operator"


@dataclass(frozen=True)
class _HeartbeatTick:
    pass


@dataclass(frozen=True)
class _KillSwitchTick:
    pass


@dataclass(frozen=True)
class _RestartDue:
    name: str
    failure_number: int  # ignore a stale timer if the child failed again / was reset meanwhile


# --- configuration -----------------------------------------------------------------------------------
class JournalLike(Protocol):
    def record_event(self, kind: str, detail: dict[str, Any]) -> int: ...
    def events(self, kind: str | None = None, since_id: int = 0, limit: int = 1000) -> list[Any]: ...
    def set_flag(self, name: str, value: str | None) -> None: ...
    def get_flag(self, name: str) -> str | None: ...


class SupervisorCounters(Protocol):
    """What the Supervisor counts (:class:`~ops.metrics.Metrics`)."""

    def set_mode(self, mode: Mode | str) -> None: ...
    def actor_restarted(self, actor: str) -> None: ...


@dataclass(frozen=True)
class SupervisorContext:
    """What a child factory gets: start the child with this name, supervisor and current mode."""

    name: str
    supervisor: pykka.ActorRef[Any]
    mode: Mode
    gate: TradingGate
    directory: ActorDirectory


@dataclass(frozen=True)
class ChildSpec:
    name: str
    factory: Callable[[SupervisorContext], pykka.ActorRef[Any]]
    critical: bool
    restart: Literal["permanent", "temporary"] = "permanent"  # temporary: never restarted


@dataclass(frozen=True)
class RestartPolicy:
    max_restarts: int = 5
    within_s: float = 60.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    jitter: float = 0.1

    def backoff_s(self, recent_restarts: int, rng: random.Random) -> float:
        capped = capped_exponential(recent_restarts + 1, base=self.backoff_base_s, cap=self.backoff_max_s)
        return capped * (1.0 + rng.random() * self.jitter)


class ChildState(enum.Enum):
    RUNNING = "running"
    RESTART_PENDING = "restart_pending"
    GIVEN_UP = "given_up"  # past its restart intensity (non-critical) or temporary: left stopped
    STOPPED = "stopped"  # stopped on purpose (shutdown)


@dataclass
class _Child:
    spec: ChildSpec
    ref: pykka.ActorRef[Any] | None = None
    state: ChildState = ChildState.STOPPED
    restart_times: deque[float] = field(default_factory=deque)
    restarts_total: int = 0
    failures_total: int = 0
    heartbeat: pykka.Future[Any] | None = None
    heartbeat_sent_at: float = 0.0
    restart_timer: TimerHandle | None = None


class ChildBoard:
    """Each child's state as the Supervisor last set it, readable from any thread (for /readyz): ``running`` once
    it started (after a restart: once the new instance answered its first heartbeat, i.e. finished starting),
    ``starting``, ``restarting`` (failed, restart pending), ``given_up``, ``stopped``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, str] = {}

    def set(self, name: str, state: str) -> None:
        with self._lock:
            self._states[name] = state

    def state(self, name: str) -> str | None:
        with self._lock:
            return self._states.get(name)

    def not_running(self, names: Iterable[str]) -> dict[str, str]:
        with self._lock:
            return {name: self._states.get(name, "not started") for name in names
                    if self._states.get(name) != "running"}


def retire(ref: pykka.ActorRef[Any]) -> None:
    """Make an instance handle nothing more, even if its thread is stuck in a handler right now."""
    with contextlib.suppress(Exception):  # already dead: nothing to wake
        ref.stop(block=False)  # wakes an idle loop so the thread exits and on_stop runs
    ref.actor_stopped.set()  # a stuck handler, once it returns, leaves the loop instead of taking more work
    pykka.ActorRegistry.unregister(ref)


# --- the supervisor ----------------------------------------------------------------------------------
class Supervisor(pykka.ThreadingActor):
    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        journal: JournalLike | None = None,
        kill_switch: Callable[[], KillSwitchReading] | None = None,
        policy: RestartPolicy | None = None,
        heartbeat_interval_s: float = 5.0,
        heartbeat_timeout_s: float = 3.0,
        kill_switch_poll_s: float = 1.0,
        gate: TradingGate | None = None,
        progress: ProgressWatch | None = None,
        directory: ActorDirectory | None = None,
        metrics: SupervisorCounters | None = None,
        on_mode_change: Iterable[Callable[[ModeChanged], None]] = (),
        initial_mode: Mode = Mode.NORMAL,
        stop_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        busy: BusyBoard | None = None,
        board: ChildBoard | None = None,
        on_work_dropped: Callable[[str, list[str], str], None] | None = None,
    ) -> None:
        super().__init__()
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate child names in {names}")
        self._children: dict[str, _Child] = {spec.name: _Child(spec) for spec in specs}
        self._journal = journal
        self._kill_switch = kill_switch
        self._policy = policy or RestartPolicy()
        self._heartbeat_interval_s = heartbeat_interval_s
        self._heartbeat_timeout_s = heartbeat_timeout_s
        self._kill_switch_poll_s = kill_switch_poll_s
        self.gate = gate or TradingGate(initial_mode)
        self.progress = progress or ProgressWatch()
        self.directory = directory or ActorDirectory()
        self._metrics = metrics
        self._mode_callbacks = list(on_mode_change)
        # The starting mode is decided here, in the caller's thread, not in on_start: whoever reads the gate
        # right after start() returns (a status page, a signal racing start-up) never sees NORMAL when SAFE was
        # configured or PANIC persisted.
        self._mode = stricter(initial_mode, self._restored_mode()) or Mode.NORMAL
        self.gate.tighten(self._mode)
        self._stop_timeout_s = stop_timeout_s
        self._clock = clock
        self._rng = rng or random.Random()
        self._timers = TimerSet(self._tell_self, "supervisor", rng=self._rng)
        self._stopping = False
        self._busy = busy or BUSY
        self.board = board or ChildBoard()
        self._on_work_dropped = on_work_dropped

    # --- lifecycle -----------------------------------------------------------------------------------
    def on_start(self) -> None:
        self.gate.set_mode(self._mode)
        self._call_metrics("set_mode", self._mode.value)
        if self._mode is not Mode.NORMAL:
            logger.warning("starting in %s mode (persisted or configured)", self._mode.value)
        self._poll_kill_switch()  # before children start, so none of them ever sees a stale NORMAL
        for child in self._children.values():
            self._start_child(child, restarted=False)
        self._timers.every(self._heartbeat_interval_s, _HeartbeatTick())
        if self._kill_switch is not None:
            self._timers.every(self._kill_switch_poll_s, _KillSwitchTick())
        self.progress.mark()

    def on_stop(self) -> None:
        self._timers.cancel_all()
        self.stop_children(self._stop_timeout_s)

    def on_failure(self, *_exc_info: Any) -> None:
        # Only reachable through a bug that escaped on_receive's guard; still leave no orphans behind.
        self._timers.cancel_all()
        self.stop_children(self._stop_timeout_s)

    def stop_children(self, timeout_s: float | None = None) -> None:
        """Stop every child in reverse start order; a child that does not stop in time is retired."""
        self._stopping = True
        self.directory.close()
        for child in reversed(list(self._children.values())):
            if child.restart_timer is not None:
                child.restart_timer.cancel()
            child.state = ChildState.STOPPED
            self.board.set(child.spec.name, ChildState.STOPPED.value)
            ref, child.ref, child.heartbeat = child.ref, None, None
            self.directory.set(child.spec.name, None)
            self._report_dropped(child.spec.name, self.directory.drop(child.spec.name), "shutdown", notify=False)
            if ref is None or not ref.is_alive():
                continue
            try:
                ref.stop(block=True, timeout=timeout_s)
            except pykka.Timeout:
                logger.error("%s did not stop within %ss; retiring it", child.spec.name, timeout_s)
                retire(ref)
            except Exception:
                logger.exception("stopping %s failed", child.spec.name)

    # --- queries (call through the proxy) -----------------------------------------------------------
    def get_mode(self) -> Mode:
        return self._mode

    def children_status(self) -> dict[str, bool]:
        return {name: c.ref is not None and c.ref.is_alive() for name, c in self._children.items()}

    def children_states(self) -> dict[str, str]:
        return {name: c.state.value for name, c in self._children.items()}

    def restart_counts(self) -> dict[str, int]:
        return {name: c.restarts_total for name, c in self._children.items()}

    def child_ref(self, name: str) -> pykka.ActorRef[Any] | None:
        return self._children[name].ref

    # --- commands (call through the proxy, or tell the messages) ------------------------------------
    def request_mode(self, mode: Mode, reason: str, source: str) -> bool:
        """Automatic trigger: only tightens. True when the mode changed."""
        return self._apply_mode(mode, reason, source, by_operator=False)

    def reset_mode(
        self, mode: Mode = Mode.NORMAL, reason: str = "operator reset", source: str = "operator"
    ) -> bool:
        """Operator reset. Refused (False) while a kill-switch trigger stricter than ``mode`` is present."""
        reading = self._read_kill_switch()
        if reading is not None and not reset_allowed(reading, mode):
            logger.warning("reset to %s refused: %s", mode.value, reading.detail)
            refused = {"mode": mode.value, "trigger": reading.source, "detail": reading.detail}
            self._journal_event(EVENT_MODE_RESET_REFUSED, refused)
            return False
        changed = self._apply_mode(mode, reason, source, by_operator=True)
        if changed:
            self._revive_given_up_children()
        return changed

    # --- message handling ----------------------------------------------------------------------------
    def on_receive(self, message: Any) -> Any:
        # The supervisor must survive its own bugs: a handler error is logged, never fatal.
        try:
            return self._dispatch(message)
        except Exception:
            logger.exception("supervisor failed handling %s", type(message).__name__)
            return None

    def _dispatch(self, message: Any) -> Any:
        if isinstance(message, TimerFired):
            return TimerSet.handle_fired(message, self._dispatch)
        if isinstance(message, ChildFailed):
            self._on_child_failed_report(message)
        elif isinstance(message, RequestMode):
            self._apply_mode(message.mode, message.reason, message.source, by_operator=False)
        elif isinstance(message, ResetMode):
            self.reset_mode(message.mode, message.reason, message.source)
        elif isinstance(message, _HeartbeatTick):
            self._check_children()
        elif isinstance(message, _KillSwitchTick):
            self._poll_kill_switch()
        elif isinstance(message, _RestartDue):
            self._restart_due(message)
        elif isinstance(message, Heartbeat):
            return True
        else:
            logger.warning("supervisor ignored an unexpected message of type %s", type(message).__name__)
        return None

    def _tell_self(self, message: Any) -> None:
        self.actor_ref.tell(message)

    # --- children ------------------------------------------------------------------------------------
    def _start_child(self, child: _Child, *, restarted: bool) -> None:
        name = child.spec.name
        context = SupervisorContext(name, self.actor_ref, self._mode, self.gate, self.directory)
        child.heartbeat = None
        try:
            ref = child.spec.factory(context)
        except Exception as error:
            logger.exception("starting %s failed", name)
            child.ref = None
            child.state = ChildState.RUNNING  # so the failure path below treats it like any other
            self._child_failed(child, describe_error(error), during_start=True)
            return
        child.ref = ref
        child.state = ChildState.RUNNING
        resumed = self.directory.set(name, ref)
        if restarted:
            # Not ready until the new instance has finished starting: its first heartbeat answer says so.
            self.board.set(name, "starting")
            with contextlib.suppress(pykka.ActorDeadError):
                child.heartbeat = ref.ask(Heartbeat(), block=False)
                child.heartbeat_sent_at = self._clock()
            child.restarts_total += 1
            logger.warning("restarted %s (restart %d)", name, child.restarts_total)
            self._journal_event(
                EVENT_ACTOR_RESTARTED,
                {"name": name, "restarts_total": child.restarts_total, "recent": len(child.restart_times)},
            )
            self._call_metrics("actor_restarted", name)
            if resumed:
                logger.warning("%s: %d messages from before the restart handed to the new instance", name, resumed)
                self._journal_event(EVENT_WORK_RESUMED, {"name": name, "messages": resumed})
        else:
            self.board.set(name, ChildState.RUNNING.value)

    def _on_child_failed_report(self, report: ChildFailed) -> None:
        child = self._children.get(report.name)
        if child is None:
            logger.warning("failure report from unknown child %r", report.name)
            return
        if child.state is ChildState.RESTART_PENDING:
            # The heartbeat noticed first; the work the instance left still goes to the next one, first in line.
            self.directory.hold(report.name, report.pending)
            return
        if child.state is not ChildState.RUNNING:
            self._report_dropped(report.name, list(report.pending), "stopped")
            return  # given up or stopped on purpose
        if child.ref is not None and child.ref.is_alive():
            # Reports mark the instance dead before they are sent, so this one comes from an older
            # (retired) instance; the current one is fine, and takes what the old one left.
            logger.info("ignoring a stale failure report from an old %s instance", report.name)
            for message in report.pending:
                self.directory.tell(report.name, message)
            return
        self._child_failed(child, report.error, during_start=report.during_start, pending=report.pending)

    def _check_children(self) -> None:
        self.progress.mark()
        now = self._clock()
        for child in list(self._children.values()):
            if child.state is not ChildState.RUNNING or self._stopping:
                continue
            ref = child.ref
            if ref is None or not ref.is_alive():
                self._child_failed(child, "stopped without a failure report")
                continue
            if child.heartbeat is not None:
                try:
                    child.heartbeat.get(timeout=0)
                except pykka.Timeout:
                    if now - child.heartbeat_sent_at >= self._heartbeat_timeout_s:
                        # Waiting on the exchange within the request's own bounds is busy, not hung.
                        excuse = self._busy.excuse(ref.actor_urn, self._heartbeat_timeout_s)
                        if excuse is not None:
                            logger.info("%s has not answered for %.1fs: %s", child.spec.name,
                                        now - child.heartbeat_sent_at, excuse)
                            continue
                        waited = now - child.heartbeat_sent_at
                        self._child_failed(child, f"no heartbeat answer for {waited:.3f}s", hung=True)
                    continue
                except pykka.ActorDeadError:
                    self._child_failed(child, "died with a heartbeat pending")
                    continue
                except Exception as error:
                    self._child_failed(child, f"heartbeat failed: {describe_error(error)}")
                    continue
                child.heartbeat = None
                if self.board.state(child.spec.name) != ChildState.RUNNING.value:
                    self.board.set(child.spec.name, ChildState.RUNNING.value)  # a restarted instance is up
            try:
                child.heartbeat = ref.ask(Heartbeat(), block=False)
                child.heartbeat_sent_at = now
            except pykka.ActorDeadError:
                self._child_failed(child, "stopped without a failure report")

    def _child_failed(
        self, child: _Child, error: str, *, during_start: bool = False, hung: bool = False,
        pending: Sequence[Any] = (),
    ) -> None:
        if child.state is not ChildState.RUNNING or self._stopping:
            return
        name = child.spec.name
        child.failures_total += 1
        child.heartbeat = None
        old_ref, child.ref = child.ref, None
        carried = list(pending)
        if old_ref is not None and old_ref.is_alive():
            retire(old_ref)  # hung or misbehaving: make sure it takes no more work
            carried += drain_mailbox(old_ref)  # ... and that what waited for it is not lost with it
        # Held for the next instance, with anything told to it meanwhile.
        self.directory.hold(name, carried)
        self.board.set(name, "restarting")
        logger.error("%s failed%s: %s", name, " (hung)" if hung else "", error)
        self._journal_event(
            EVENT_ACTOR_FAILED,
            {
                "name": name,
                "error": error,
                "during_start": during_start,
                "hung": hung,
                "critical": child.spec.critical,
                "mailbox": describe_work(carried)[:50],
            },
        )
        if child.spec.restart == "temporary":
            child.state = ChildState.GIVEN_UP
            self.board.set(name, ChildState.GIVEN_UP.value)
            self._report_dropped(name, self.directory.drop(name), "not restarted (temporary)")
            return
        now = self._clock()
        window = self._policy.within_s
        while child.restart_times and now - child.restart_times[0] > window:
            child.restart_times.popleft()
        if len(child.restart_times) >= self._policy.max_restarts:
            reason = f"{name} failed more than {self._policy.max_restarts} times within {window:g}s"
            if child.spec.critical:
                self._apply_mode(Mode.PANIC, reason, "escalation", by_operator=False)
                delay = self._policy.backoff_max_s
            else:
                self._apply_mode(Mode.SAFE, reason, "escalation", by_operator=False)
                child.state = ChildState.GIVEN_UP
                self.board.set(name, ChildState.GIVEN_UP.value)
                logger.error("%s left stopped until an operator reset", name)
                self._report_dropped(name, self.directory.drop(name), "left stopped past its restart intensity")
                return
        else:
            delay = self._policy.backoff_s(len(child.restart_times), self._rng)
        child.restart_times.append(now)
        child.state = ChildState.RESTART_PENDING
        child.restart_timer = self._timers.once(delay, _RestartDue(name, child.failures_total))

    def _restart_due(self, due: _RestartDue) -> None:
        child = self._children.get(due.name)
        if child is None or self._stopping:
            return
        if child.state is not ChildState.RESTART_PENDING or child.failures_total != due.failure_number:
            return
        child.restart_timer = None
        self._start_child(child, restarted=True)

    def _revive_given_up_children(self) -> None:
        for child in self._children.values():
            if child.state is ChildState.GIVEN_UP and child.spec.restart == "permanent":
                child.restart_times.clear()
                self._start_child(child, restarted=True)

    def _report_dropped(self, name: str, dropped: list[Any], why: str, *, notify: bool = True) -> None:
        """Work that no instance will do: journaled with what it was, and told to the user."""
        if not dropped:
            return
        described = describe_work(dropped)
        logger.error("%s: %d messages dropped (%s): %s", name, len(dropped), why, "; ".join(described[:20]))
        self._journal_event(EVENT_WORK_DROPPED, {"name": name, "reason": why, "count": len(dropped),
                                                 "messages": described[:50]})
        if notify and self._on_work_dropped is not None:
            try:
                self._on_work_dropped(name, described, why)
            except Exception:
                logger.exception("work-dropped callback failed")

    # --- modes ---------------------------------------------------------------------------------------
    def _apply_mode(self, requested: Mode, reason: str, source: str, *, by_operator: bool) -> bool:
        new_mode = next_mode(self._mode, requested, by_operator=by_operator)
        if new_mode is None:
            if requested is not self._mode:
                logger.info(
                    "mode request %s -> %s from %s not applied (%s)",
                    self._mode.value, requested.value, source, reason,
                )
            return False
        previous = self._mode
        self._mode = new_mode
        self.gate.set_mode(new_mode)  # first: entries stop before anything else happens
        changed = ModeChanged(mode=new_mode, previous=previous, reason=reason)
        logger.warning("mode %s -> %s (%s: %s)", previous.value, new_mode.value, source, reason)
        for child in self._children.values():
            ref = child.ref
            if child.state is not ChildState.RUNNING or ref is None:
                continue
            # A child dying mid-broadcast is restarted later with the then-current mode.
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(changed)
        self._journal_event(
            EVENT_MODE_CHANGED,
            {
                "mode": new_mode.value,
                "previous": previous.value,
                "reason": reason,
                "source": source,
                "by_operator": by_operator,
            },
        )
        self._journal_call("set_flag", MODE_FLAG, new_mode.value)
        self._call_metrics("set_mode", new_mode.value)
        for callback in self._mode_callbacks:
            try:
                callback(changed)
            except Exception:
                logger.exception("mode-change callback failed")
        return True

    def _restored_mode(self) -> Mode | None:
        if self._journal is None:
            return None
        try:
            flag = self._journal.get_flag(MODE_FLAG)
            if flag is not None:
                return Mode(flag)
            last: Mode | None = None
            since_id = 0
            while True:  # oldest first; mode changes are rare, so this is a short walk
                batch = self._journal.events(EVENT_MODE_CHANGED, since_id=since_id, limit=1000)
                if not batch:
                    break
                last = Mode(batch[-1].detail["mode"])
                since_id = batch[-1].id
            return last
        except Exception as error:
            # We cannot prove the last run was not in PANIC: start SAFE.
            logger.error("could not restore the persisted mode (%s); starting SAFE", describe_error(error))
            return Mode.SAFE

    def _read_kill_switch(self) -> KillSwitchReading | None:
        if self._kill_switch is None:
            return None
        try:
            return self._kill_switch()
        except Exception as error:
            detail = f"kill switch unreadable ({type(error).__name__}); failing safe"
            return KillSwitchReading(mode=Mode.SAFE, source="kill_switch", detail=detail)

    def _poll_kill_switch(self) -> None:
        self.progress.mark()
        reading = self._read_kill_switch()
        if reading is not None and reading.mode is not None:
            self._apply_mode(reading.mode, reading.detail, f"kill_switch:{reading.source}", by_operator=False)

    # --- side effects that must never break supervision ----------------------------------------------
    def _journal_event(self, kind: str, detail: dict[str, Any]) -> None:
        self._journal_call("record_event", kind, detail)

    def _journal_call(self, method: str, *args: Any) -> None:
        if self._journal is None:
            return
        try:
            getattr(self._journal, method)(*args)
        except Exception:
            logger.exception("journal %s failed", method)

    def _call_metrics(self, method: str, *args: Any) -> None:
        if self._metrics is None:
            return
        try:
            getattr(self._metrics, method)(*args)
        except Exception:
            logger.exception("metrics %s failed", method)


# --- OS signals --------------------------------------------------------------------------------------
_ATTACHED = -1  # on the bridge's queue: the Supervisor was attached (no signal has a negative number)


class SignalHandlers:
    """Installed handlers; ``restore()`` puts the previous ones back and ends the bridge thread.

    A Python signal handler runs in the main thread between bytecodes, possibly while that thread holds
    a lock (e.g. inside a pykka ``tell``), so the handler itself only does lock-free work: tighten the
    gate (an attribute write) and put the signal number on a ``SimpleQueue`` (reentrant by design).
    A bridge thread turns it into a ``RequestMode`` tell or the ``on_stop`` call.

    Installed before the runtime starts (``supervisor=None``), so that no signal during start-up meets the OS
    default (SIGUSR1, SIGUSR2 and SIGTERM would end the process on the spot, while /healthz may already answer):
    a stop is asked for at once, a mode change tightens the gate at once and reaches the Supervisor once
    ``attach`` gives it.
    """

    _SAFE_SIGNALS = (signal.SIGUSR1,)
    _PANIC_SIGNALS = (signal.SIGUSR2,)
    _STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(
        self, supervisor: pykka.ActorRef[Any] | None, on_stop: Callable[[], None], gate: TradingGate | None
    ) -> None:
        self._supervisor = supervisor
        self._on_stop = on_stop
        self._gate = gate
        self._pending: SimpleQueue[int | None] = SimpleQueue()
        self._held: list[int] = []  # mode signals that came before the Supervisor (bridge thread only)
        self._previous: dict[int, Any] = {}
        self._bridge = threading.Thread(target=self._forward, name="signal-bridge", daemon=True)

    def install(self) -> None:
        self._bridge.start()
        for signum in (*self._SAFE_SIGNALS, *self._PANIC_SIGNALS, *self._STOP_SIGNALS):
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def attach(self, supervisor: pykka.ActorRef[Any]) -> None:
        """The Supervisor now exists: mode signals go to it, those held since the install first."""
        self._supervisor = supervisor
        self._pending.put(_ATTACHED)

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
        self._pending.put(None)
        self._bridge.join(timeout=5)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self._gate is not None:
            if signum in self._PANIC_SIGNALS:
                self._gate.tighten(Mode.PANIC)
            elif signum in self._SAFE_SIGNALS:
                self._gate.tighten(Mode.SAFE)
        self._pending.put(signum)

    def _forward(self) -> None:
        while True:
            signum = self._pending.get()
            if signum is None:
                return
            if signum == _ATTACHED:
                held, self._held = self._held, []
                for waiting in held:
                    self._request_mode(waiting)
                continue
            if signum in self._STOP_SIGNALS:
                try:
                    self._on_stop()
                except Exception:
                    logger.exception("handling signal %s failed", signum)
                continue
            if self._supervisor is None:
                logger.info("signal %s during start-up: the mode changes once the supervisor runs", signum)
                self._held.append(signum)
                continue
            self._request_mode(signum)

    def _request_mode(self, signum: int) -> None:
        supervisor = self._supervisor
        assert supervisor is not None
        try:
            mode = Mode.PANIC if signum in self._PANIC_SIGNALS else Mode.SAFE
            reason = f"received {signal.Signals(signum).name}"
            supervisor.tell(RequestMode(mode=mode, reason=reason, source="signal"))
        except pykka.ActorDeadError:
            logger.warning("signal %s arrived after the supervisor stopped", signum)
        except Exception:
            logger.exception("handling signal %s failed", signum)


def install_signal_handlers(
    supervisor: pykka.ActorRef[Any] | None, on_stop: Callable[[], None], *, gate: TradingGate | None = None
) -> SignalHandlers:
    """SIGUSR1 -> SAFE, SIGUSR2 -> PANIC, SIGTERM/SIGINT -> ``on_stop()``. Call from the main thread; with
    ``supervisor=None`` before the runtime starts, then ``attach`` the Supervisor."""
    handlers = SignalHandlers(supervisor, on_stop, gate)
    handlers.install()
    return handlers
