"""Say a repeated failure once, then how often it repeated, then that it ended.

During an outage the same poll fails every second; a log line per failure hides everything else. A
``RepeatedFailures`` keeps one state per key (``"price of BTCUSDT"``, ``"reconciliation"``): the first failure
is logged as is, the same failure again only as a count (``... (repeated 57 times in 60 s)`` once per window),
a different failure at once (it is news), and the first success after failures as ``<key>: recovered after N
failures in S s``. Thread-safe; the clock is injectable for tests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_WINDOW_S = 60.0


@dataclass
class _Outage:
    started: float
    message: str
    failures: int = 1  # all failures of this outage
    unreported: int = 0  # repeats of ``message`` not logged yet
    reported_at: float = 0.0


class RepeatedFailures:
    def __init__(self, logger: logging.Logger, *, window_s: float = DEFAULT_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._outages: dict[str, _Outage] = {}

    def failed(self, key: str, message: str, *, level: int = logging.WARNING) -> None:
        """One failure of ``key``: logged the first time, when its message changes, and once per window."""
        now = self._clock()
        with self._lock:
            outage = self._outages.get(key)
            if outage is None:
                self._outages[key] = _Outage(started=now, message=message, reported_at=now)
                line = message
            else:
                outage.failures += 1
                if message != outage.message:
                    line = message
                    outage.message, outage.unreported, outage.reported_at = message, 0, now
                else:
                    outage.unreported += 1
                    elapsed = now - outage.reported_at
                    if elapsed < self._window_s:
                        return
                    line = f"{message} (repeated {outage.unreported} times in {elapsed:.0f} s)"
                    outage.unreported, outage.reported_at = 0, now
        self._log.log(level, "%s", line)

    def succeeded(self, key: str) -> None:
        """``key`` works again: after failures, say how many there were and for how long."""
        now = self._clock()
        with self._lock:
            outage = self._outages.pop(key, None)
        if outage is not None:
            failures = "1 failure" if outage.failures == 1 else f"{outage.failures} failures"
            self._log.info("%s: recovered after %s in %.0f s", key, failures, now - outage.started)

    def failing(self, key: str) -> bool:
        with self._lock:
            return key in self._outages
