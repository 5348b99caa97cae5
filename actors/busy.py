"""Bounded blocking calls: an actor waiting on the exchange is busy, not hung.

A handler that sends a request blocks its actor's thread until the reply, the request's timeout, a rate-limit
bucket's wait or a 429 backoff ends: all bounded, all legitimate. While blocked it cannot answer the Supervisor's
heartbeat. The exchange client announces each such wait with its bound (``bounded(seconds, what)``); the thread of
a supervised actor is attached to this board when it starts, so the announcement is recorded for that actor
instance. The Supervisor asks ``excuse(urn, grace_s)`` before declaring an unanswered heartbeat a hang: an actor
inside a bounded call, or out of one for less than the grace, is busy. A call running past its own bound plus the
grace is a hang like any other.

Threads that are not actors (the listener's poll thread, the price feed's socket) announce nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class _Busy:
    deadline: float | None = None  # the current bounded call ends by then (monotonic)
    what: str = ""
    started: float = 0.0
    last_end: float | None = None  # when the last bounded call returned


class BusyBoard:
    """Thread-safe. One per process (``BUSY``); tests may build their own with a fake clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._by_urn: dict[str, _Busy] = {}
        self._local = threading.local()

    def attach(self, urn: str) -> None:
        """Bind the calling thread to the actor instance ``urn`` (from the actor's own thread, at start)."""
        self._local.urn = urn
        with self._lock:
            self._by_urn.setdefault(urn, _Busy())

    def detach(self, urn: str) -> None:
        with self._lock:
            self._by_urn.pop(urn, None)
        if getattr(self._local, "urn", None) == urn:
            self._local.urn = None

    @contextmanager
    def bounded(self, seconds: float, what: str) -> Iterator[None]:
        """Announce a blocking call that ends within ``seconds`` (no-op outside an attached thread)."""
        urn = getattr(self._local, "urn", None)
        if urn is None:
            yield
            return
        now = self._clock()
        with self._lock:
            state = self._by_urn.setdefault(urn, _Busy())
            outer = state.deadline
            state.deadline = max(outer or 0.0, now + max(0.0, seconds))
            state.what, state.started = what, now
        try:
            yield
        finally:
            end = self._clock()
            with self._lock:
                current = self._by_urn.get(urn)
                if current is not None:
                    current.deadline = outer
                    if outer is None:
                        current.last_end = end

    def excuse(self, urn: str, grace_s: float) -> str | None:
        """Why an unanswered heartbeat of ``urn`` is not a hang, or None when it is one."""
        now = self._clock()
        with self._lock:
            state = self._by_urn.get(urn)
            if state is None:
                return None
            if state.deadline is not None:
                if now <= state.deadline + grace_s:
                    return f"in a bounded call ({state.what}) for {now - state.started:.1f}s"
                return None
            if state.last_end is not None and now - state.last_end < grace_s:
                return "between bounded calls"
            return None


BUSY = BusyBoard()
