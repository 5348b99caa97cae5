"""The runtime status board read by /readyz: facts actors publish about themselves.

Actors own their state; this board only mirrors a few booleans so the health server can answer without
asking an actor (an ask could block behind a slow handler, and readiness must answer at once).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RuntimeStatus:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._facts: dict[str, bool] = {}
        self._detail: dict[str, str] = {}

    def set(self, name: str, ok: bool, detail: str = "") -> None:
        with self._lock:
            self._facts[name] = ok
            self._detail[name] = detail

    def get(self, name: str) -> bool:
        with self._lock:
            return self._facts.get(name, False)

    def snapshot(self) -> dict[str, tuple[bool, str]]:
        with self._lock:
            return {name: (ok, self._detail.get(name, "")) for name, ok in self._facts.items()}

    def failing(self, required: list[str]) -> dict[str, str]:
        """Every required fact that is false or unknown, with its detail."""
        with self._lock:
            return {
                name: self._detail.get(name, "") or "not yet known"
                for name in required
                if not self._facts.get(name, False)
            }
