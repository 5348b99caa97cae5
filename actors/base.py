"""The base of every supervised actor, its timers, and two small shared objects (gate, progress).

Pykka has no supervision (see engine-design-lessons §1.7): an actor whose `tell` handler raises stops and
only `on_failure` runs; an actor whose `on_start` raises stops with *no* hook at all. `SupervisedActor`
closes both holes by reporting `ChildFailed` to its supervisor itself, answers the supervisor's
`Heartbeat` asks, tracks the current `Mode` from `ModeChanged` broadcasts, and owns timers that tell
messages to the actor (a handler never sleeps).

How to write an actor::

    class PriceFeed(SupervisedActor):
        def __init__(self, *, name: str, supervisor: Recipient | None, mode: Mode = Mode.NORMAL,
                     client: BitgetClient, poll_s: float = 1.0) -> None:
            super().__init__(name, supervisor, mode=mode)
            self._client = client
            self._poll_s = poll_s

        def on_started(self) -> None:          # instead of on_start
            self.schedule_every(self._poll_s, PollPrices())

        def handle(self, message: object) -> object:   # everything except Heartbeat/ModeChanged
            if isinstance(message, PollPrices):
                ...

        def on_mode_changed(self, changed: ModeChanged) -> None:   # optional; self.mode is already set
            ...

        def on_stopped(self) -> None:          # optional; after a normal stop *and* after a failure
            ...

Do not override `on_start`, `on_stop` or `on_failure` (enforced). Prefer `tell` between actors: a failing
`ask` handler does not stop the actor and only the caller sees the exception.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar

import pykka

from actors import messages as actor_messages
from actors.busy import BUSY
from actors.messages import ChildFailed, Heartbeat, ModeChanged, PriceTick, RequestMode
from actors.ports import Recipient
from trading.journal import JournalWriteError
from trading.modes import Mode, allows_new_entries

logger = logging.getLogger(__name__)

_MAX_ERROR_TEXT = 300


def describe_error(error: BaseException | None) -> str:
    """Exception type and message, truncated. Our own exceptions never carry secrets in their messages."""
    if error is None:
        return "unknown error"
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 3] + "..."


# --- work left in a mailbox ------------------------------------------------------------------------------
# Not carried to a restarted instance: the supervisor's own traffic, and prices (a newer one is always coming and an
# old one must never pass for fresh).
_NOT_CARRIED: tuple[type, ...] = (Heartbeat, ModeChanged, ChildFailed, RequestMode, PriceTick)


def carried(message: Any) -> Any | None:
    """The work in a mailbox message that a restarted instance must still do, or None.

    Messages between actors (``actors.messages``) are carried, and so is such a message a one-shot timer has
    already delivered (a retry); periodic ticks, internal messages of one instance and prices are not.
    """
    if isinstance(message, TimerFired):
        if message.timer.periodic or message.timer.cancelled.is_set():
            return None
        message = message.timer.message
        if isinstance(message, actor_messages.Tick):
            return None
    if isinstance(message, _NOT_CARRIED) or type(message).__module__ != actor_messages.__name__:
        return None
    return message


def drain_mailbox(ref: pykka.ActorRef[Any]) -> list[Any]:
    """Take the work out of a stopped instance's mailbox (tells only; asks and pykka's own messages are put back
    for pykka to answer). Call only once the instance can take no more work (``actor_stopped`` is set)."""
    work: list[Any] = []
    kept: list[Any] = []
    inbox = ref.actor_inbox
    if not isinstance(inbox, queue.Queue):  # a threading actor's inbox is one; no other can be read without blocking
        return work
    while True:
        try:
            envelope = inbox.get_nowait()
        except Exception:  # queue.Empty (or an inbox that cannot be read any more)
            break
        message = getattr(envelope, "message", None)
        if getattr(envelope, "reply_to", None) is None and (task := carried(message)) is not None:
            work.append(task)
        elif getattr(envelope, "reply_to", None) is not None or type(message).__module__.startswith("pykka"):
            kept.append(envelope)
    for envelope in kept:
        inbox.put(envelope)
    return work


def describe_work(messages: list[Any]) -> list[str]:
    """Short names of carried or dropped work for events and notices (type, and a symbol or signal when known)."""
    described = []
    for message in messages:
        parts = [type(message).__name__]
        for attr in ("symbol", "signal_id"):
            value = getattr(message, attr, None)
            if value is not None:
                parts.append(f"{attr}={value}")
        described.append(" ".join(parts))
    return described


# --- shared objects read from other threads ------------------------------------------------------------
class TradingGate:
    """The one place the OrderManager asks "may I send an entry?" right before the HTTP call.

    The Supervisor sets it synchronously on every mode change (and a signal handler may tighten it
    directly), so a kill switch never waits behind queued actor work. Reads and writes are single
    attribute accesses, atomic under the GIL, so no lock is needed (and none is taken in signal handlers).
    """

    def __init__(self, mode: Mode = Mode.NORMAL) -> None:
        self._mode = mode

    @property
    def mode(self) -> Mode:
        return self._mode

    def entries_allowed(self) -> bool:
        return allows_new_entries(self._mode)

    def set_mode(self, mode: Mode) -> None:
        self._mode = mode

    def tighten(self, mode: Mode) -> None:
        """Move to ``mode`` only if it is stricter than the current one (safe from a signal handler)."""
        order = (Mode.NORMAL, Mode.SAFE, Mode.PANIC)
        if order.index(mode) > order.index(self._mode):
            self._mode = mode

    def __repr__(self) -> str:
        return f"TradingGate(mode={self._mode.value})"


class ProgressWatch:
    """Liveness for /healthz: the Supervisor marks progress on every tick; anyone may read it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.last_progress: float = clock()

    def mark(self) -> None:
        self.last_progress = self._clock()

    def seconds_since_progress(self) -> float:
        return self._clock() - self.last_progress

    def is_alive(self, max_silence_s: float) -> bool:
        return self.seconds_since_progress() <= max_silence_s


class ActorDirectory:
    """Name -> current ActorRef, kept up to date by the Supervisor on every (re)start.

    A restart creates a new instance with a new ref, so actors must never keep each other's refs: they
    ``tell`` by name through the directory. While an actor is down (between its failure and its restart) what is
    told to it is held, after the work carried over from the failed instance's mailbox, and handed to the new
    instance in order when it registers (``set``); prices and ticks are not held (``carried``: a newer one comes).
    The Supervisor starts holding (``hold``) when it notices the
    failure; a tell that meets a dead instance before that is held too. Work for an actor that will not come back
    (given up, or shutdown) is taken out with ``drop`` and reported by the Supervisor, never dropped silently.
    """

    MAX_HELD = 10_000  # per name; past it the oldest is dropped (and counted)

    def __init__(self) -> None:
        self._refs: dict[str, pykka.ActorRef[Any]] = {}
        self._held: dict[str, list[Any]] = {}
        self._overflow: dict[str, int] = {}
        self._closed = False
        self._lock = threading.Lock()

    def set(self, name: str, ref: pykka.ActorRef[Any] | None) -> int:
        """Register ``ref`` (None: unregister). A new ref gets what was held for the name; returns how many."""
        with self._lock:
            if ref is None:
                self._refs.pop(name, None)
                return 0
            self._refs[name] = ref
            held = self._held.pop(name, [])
            for message in held:  # under the lock: nothing told meanwhile overtakes the held work
                try:
                    ref.tell(message)
                except pykka.ActorDeadError:
                    self._held.setdefault(name, []).append(message)
            return len(held)

    def hold(self, name: str, carried: Sequence[Any] = ()) -> None:
        """``name`` is down: unregister it and hold what is told to it, after ``carried`` (its mailbox)."""
        with self._lock:
            self._refs.pop(name, None)
            self._held[name] = [*carried, *self._held.get(name, [])]
            self._trim(name)

    def drop(self, name: str) -> list[Any]:
        """Stop holding for ``name``; returns what was held (for the caller to report)."""
        with self._lock:
            return self._held.pop(name, [])

    def close(self) -> None:
        """Shutdown: nothing is held any more."""
        with self._lock:
            self._closed = True

    def get(self, name: str) -> pykka.ActorRef[Any] | None:
        with self._lock:
            return self._refs.get(name)

    def tell(self, name: str, message: Any) -> bool:
        """Deliver, or hold while the actor is down. False only when nobody will take it (never started, given
        up, shut down)."""
        with self._lock:
            ref = self._refs.get(name)
            if ref is not None:
                try:
                    ref.tell(message)
                    return True
                except pykka.ActorDeadError:
                    if self._closed:
                        return False
                    self._refs.pop(name, None)  # failed; the supervisor is about to notice
                    self._held.setdefault(name, [])
            if name in self._held and not self._closed and carried(message) is not None:
                self._held[name].append(message)
                self._trim(name)
                return True
            return False

    def held(self, name: str) -> int:
        with self._lock:
            return len(self._held.get(name, []))

    def overflow(self, name: str) -> int:
        with self._lock:
            return self._overflow.get(name, 0)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._refs)

    def _trim(self, name: str) -> None:
        held = self._held[name]
        if len(held) > self.MAX_HELD:
            extra = len(held) - self.MAX_HELD
            del held[:extra]
            self._overflow[name] = self._overflow.get(name, 0) + extra
            logger.error("%s is down and %d messages for it were dropped (hold limit)", name, extra)


# --- timers -------------------------------------------------------------------------------------------
@dataclass(eq=False)
class TimerHandle:
    """A scheduled message. ``cancel()`` is effective even for a tick already waiting in the inbox."""

    message: Any
    periodic: bool
    cancelled: threading.Event = field(default_factory=threading.Event)
    # Set while a periodic tick is queued or being handled, so ticks never pile up behind slow work.
    in_flight: threading.Event = field(default_factory=threading.Event)
    skipped_ticks: int = 0  # for observability and tests
    # A one-shot timer that has told its message (cancel() still stops it if it is yet to be handled).
    done: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self.cancelled.set()

    @property
    def active(self) -> bool:
        return not (self.cancelled.is_set() or self.done.is_set())


@dataclass(frozen=True, eq=False)
class TimerFired:
    """Internal envelope a timer tells its actor; unwrapped by `TimerSet.handle_fired`."""

    timer: TimerHandle


class TimerSet:
    """Timer threads that *tell* messages to one actor. Used by `SupervisedActor` and the `Supervisor`."""

    def __init__(
        self,
        tell: Callable[[Any], None],
        owner: str,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._tell = tell
        self._owner = owner
        self._rng = rng or random.Random()
        self._timers: list[TimerHandle] = []
        self._lock = threading.Lock()
        self._closed = False

    def once(self, delay_s: float, message: Any) -> TimerHandle:
        handle = TimerHandle(message=message, periodic=False)
        self._start(handle, lambda: delay_s)
        return handle

    def every(self, interval_s: float, message: Any, jitter: float = 0.0) -> TimerHandle:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")

        def next_delay() -> float:
            if jitter <= 0:
                return interval_s
            return max(0.0, interval_s * (1.0 + self._rng.uniform(-jitter, jitter)))

        handle = TimerHandle(message=message, periodic=True)
        self._start(handle, next_delay)
        return handle

    def cancel_all(self) -> None:
        with self._lock:
            self._closed = True
            timers, self._timers = self._timers, []
        for handle in timers:
            handle.cancel()

    def _start(self, handle: TimerHandle, next_delay: Callable[[], float]) -> None:
        with self._lock:
            if self._closed:
                handle.cancel()
                return
            self._timers = [t for t in self._timers if t.active]
            self._timers.append(handle)
        thread = threading.Thread(
            target=self._run, args=(handle, next_delay), name=f"timer-{self._owner}", daemon=True
        )
        thread.start()

    def _run(self, handle: TimerHandle, next_delay: Callable[[], float]) -> None:
        while not handle.cancelled.wait(next_delay()):
            if handle.periodic and handle.in_flight.is_set():
                handle.skipped_ticks += 1
                continue  # the previous tick is still queued or running: skip this one
            handle.in_flight.set()
            try:
                self._tell(TimerFired(handle))
            except pykka.ActorDeadError:
                handle.cancel()  # the actor is gone; nobody to tell any more
                return
            if not handle.periodic:
                handle.done.set()
                return

    @staticmethod
    def handle_fired(fired: TimerFired, dispatch: Callable[[Any], Any]) -> Any:
        """Run ``dispatch(message)`` for a tick unless its timer was cancelled meanwhile."""
        timer = fired.timer
        try:
            if timer.cancelled.is_set():
                return None
            return dispatch(timer.message)
        finally:
            timer.in_flight.clear()


# --- the base actor -----------------------------------------------------------------------------------
class SupervisedActor(pykka.ThreadingActor):
    """Base class for every actor under the Supervisor (see the module docstring for usage)."""

    _RESERVED_HOOKS: ClassVar[tuple[str, ...]] = ("on_start", "on_stop", "on_failure")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        overridden = [hook for hook in cls._RESERVED_HOOKS if hook in cls.__dict__]
        if overridden:
            raise TypeError(
                f"{cls.__name__} overrides {overridden}; implement on_started/on_stopped instead "
                "so failures keep reaching the supervisor"
            )

    def __init__(
        self, name: str, supervisor: Recipient | None, *, mode: Mode = Mode.NORMAL
    ) -> None:
        super().__init__()
        self.name = name
        self.supervisor = supervisor
        self.mode = mode
        self._timers = TimerSet(self._tell_self, name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} mode={self.mode.value}>"

    # hooks for subclasses ------------------------------------------------------------------------------
    def on_started(self) -> None:
        """Setup in the actor's thread. Raising here is reported as ChildFailed(during_start=True)."""

    def handle(self, message: Any) -> Any:
        """Handle an application message. Unknown messages are logged and ignored."""
        logger.warning("%s ignored an unexpected message of type %s", self.name, type(message).__name__)
        return None

    def on_mode_changed(self, changed: ModeChanged) -> None:
        """Called after ``self.mode`` was updated from a ModeChanged broadcast."""

    def on_stopped(self) -> None:
        """Release resources; runs after a normal stop and after a failure."""

    # helpers for subclasses ----------------------------------------------------------------------------
    def schedule_once(self, delay_s: float, message: Any) -> TimerHandle:
        return self._timers.once(delay_s, message)

    def schedule_every(self, interval_s: float, message: Any, jitter: float = 0.0) -> TimerHandle:
        """Tell ``message`` to self every ``interval_s``; a tick is skipped while the previous one is
        still queued or being handled."""
        return self._timers.every(interval_s, message, jitter)

    def request_mode(self, mode: Mode, reason: str, source: str) -> bool:
        """Ask the Supervisor for a (stricter) mode. False when there is no live supervisor."""
        return self.tell_supervisor(RequestMode(mode=mode, reason=reason, source=source))

    def tell_supervisor(self, message: Any) -> bool:
        if self.supervisor is None:
            logger.warning("%s has no supervisor to tell %s", self.name, type(message).__name__)
            return False
        try:
            self.supervisor.tell(message)
        except pykka.ActorDeadError:
            logger.warning("%s: supervisor is gone; dropped %s", self.name, type(message).__name__)
            return False
        return True

    # pykka hooks (final) -------------------------------------------------------------------------------
    def on_start(self) -> None:
        BUSY.attach(self.actor_urn)  # exchange calls from this thread are announced as bounded waits
        try:
            self.on_started()
        except Exception as error:
            self._timers.cancel_all()
            # Mark this instance dead *before* reporting, so the supervisor never sees a live actor
            # behind a failure report (pykka would do the same right after we re-raise).
            self.actor_stopped.set()
            pykka.ActorRegistry.unregister(self.actor_ref)
            pending = tuple(drain_mailbox(self.actor_ref))
            self.tell_supervisor(ChildFailed(name=self.name, error=describe_error(error), during_start=True,
                                             pending=pending))
            self._cleanup()
            raise  # pykka logs it with the traceback and stops the loop

    def on_stop(self) -> None:
        self._timers.cancel_all()
        self._cleanup()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # pykka has already marked the actor stopped and unregistered it; what waited in the mailbox goes to the
        # supervisor for the next instance instead of being dropped by pykka's teardown.
        self._timers.cancel_all()
        pending = tuple(drain_mailbox(self.actor_ref))
        self.tell_supervisor(ChildFailed(name=self.name, error=describe_error(exception_value), pending=pending))
        self._cleanup()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, TimerFired):
            return TimerSet.handle_fired(message, self.on_receive)
        if isinstance(message, Heartbeat):
            return True
        if isinstance(message, ModeChanged):
            self.mode = message.mode
            self.on_mode_changed(message)
            return None
        try:
            return self.handle(message)
        except JournalWriteError as exc:
            # The disk is full (or the journal turned read-only): the journal's hook has alerted and asked for
            # SAFE. The actor goes on with its next message; a crash loop (and an escalation to panic) would
            # guard nothing. What this message did not do is redone by the next poll or reconciliation.
            logger.error("%s: %s not completed: %s", self.name, type(message).__name__, exc)
            return None

    # internals -----------------------------------------------------------------------------------------
    def _tell_self(self, message: Any) -> None:
        if self.actor_stopped.is_set():
            raise pykka.ActorDeadError(f"{self.name} stopped")
        self.actor_ref.tell(message)

    def _cleanup(self) -> None:
        BUSY.detach(self.actor_urn)
        try:
            self.on_stopped()
        except Exception:
            logger.exception("%s: on_stopped failed", self.name)
