"""Does the exchange accept plan (trigger) orders? A read-only probe, a cache and the stop-mode decision.

The probe lists pending TP/SL plan orders (``orders-plan-pending`` with ``planType=profit_loss``): it changes
nothing on the account, and an exchange (or account type) without plan orders refuses it. Its outcome is one
of three:

* ``supported``: the listing answered.
* ``unsupported``: a clear "this does not exist here" answer (HTTP 404 / code 40404, or a code that names the
  feature as unsupported). Only this may switch stops from exchange triggers to the local guard.
* ``unknown``: anything else (timeout, 5xx, rate limit, auth or parse failure). It is never cached as
  "unsupported": it expires after a short TTL so the next question probes again.

Pure apart from the probe call itself, which is injected, as is the clock.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from exchange.bitget.errors import BitgetError

log = logging.getLogger(__name__)

StopMode = Literal["trigger", "local_guard"]

# Answers that say "this endpoint / feature does not exist for you", as opposed to "try again later".
NOT_SUPPORTED_CODES: frozenset[str] = frozenset(
    {
        "40404",  # Request URL NOT FOUND
        "40085",  # unified account: the classic (V2) API is not supported
        "40731",  # this product does not support ... (copy-trading accounts)
    }
)


class Capability(enum.Enum):
    SUPPORTED = "supported"
    UNSUPPORTED = "unsupported"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ProbeResult:
    capability: Capability
    reason: str  # short, for the journal: "listed", "timeout", "40404 Request URL NOT FOUND", ...
    code: str = ""  # the exchange code or HTTP status that decided it, if any
    seconds: float = 0.0  # how long the probe took


def classify_error(error: BitgetError) -> Capability:
    """``unsupported`` only for a clear "not supported" answer; every other failure is ``unknown``."""
    if error.code in NOT_SUPPORTED_CODES or error.http_status == 404:
        return Capability.UNSUPPORTED
    return Capability.UNKNOWN


def run_probe(list_plan_orders: Callable[[], Any], *, clock: Callable[[], float] = time.monotonic) -> ProbeResult:
    """Call the read-only listing once and classify the outcome. Never raises for an exchange failure."""
    started = clock()
    try:
        list_plan_orders()
    except BitgetError as error:
        capability = classify_error(error)
        reason = f"{error.code} {error.message}".strip()
        return ProbeResult(capability, reason[:120], error.code, clock() - started)
    return ProbeResult(Capability.SUPPORTED, "listed", "", clock() - started)


@dataclass(frozen=True)
class StopModeDecision:
    """What the runtime does with a probe result."""

    stop_mode: StopMode  # the effective stop mode handed to the actors
    fallback: bool  # trigger was configured but the exchange clearly lacks plan orders: local guard instead
    safe_mode: bool  # the probe failed and the config asks for safe mode on failure


def decide_stop_mode(configured: StopMode, result: ProbeResult, *, safe_mode_on_failure: bool) -> StopModeDecision:
    if configured == "local_guard":
        # Stops are guarded locally anyway; the probe is informational.
        return StopModeDecision("local_guard", fallback=False, safe_mode=False)
    if result.capability is Capability.UNSUPPORTED:
        return StopModeDecision("local_guard", fallback=True, safe_mode=False)
    if result.capability is Capability.UNKNOWN:
        # Keep exchange stops (they may well work); whether to stop opening positions is the operator's call.
        return StopModeDecision("trigger", fallback=False, safe_mode=safe_mode_on_failure)
    return StopModeDecision("trigger", fallback=False, safe_mode=False)


def safe_mode_reason_on_reprobe(
    effective: StopMode, result: ProbeResult, *, safe_mode_on_failure: bool
) -> str | None:
    """While running, a fresh probe result that should stop new entries: the reason, or None.

    The running actors keep the stop mode they started with, so a capability lost at run time cannot
    switch them to the local guard; it stops new entries instead (existing positions stay guarded).
    """
    if result.capability is Capability.UNKNOWN and safe_mode_on_failure:
        return f"plan-order probe failed: {result.reason}"
    if result.capability is Capability.UNSUPPORTED and effective == "trigger":
        return f"plan orders are no longer accepted ({result.reason}); exchange stops cannot be placed"
    return None


class PlanOrderCapability:
    """The cached answer to "does the exchange support plan orders?", re-probed when it expires.

    ``ttl_s`` applies to a definite answer (supported / unsupported), ``unknown_ttl_s`` (short) to
    ``unknown``. ``on_probe`` is called with every fresh result (to journal it); a failing hook is ignored.
    Thread-safe: concurrent callers share one probe.
    """

    def __init__(
        self,
        probe: Callable[[], ProbeResult],
        *,
        ttl_s: float,
        unknown_ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        on_probe: Callable[[ProbeResult], None] | None = None,
    ) -> None:
        if ttl_s <= 0 or unknown_ttl_s <= 0:
            raise ValueError("TTLs must be positive")
        self._probe = probe
        self.ttl_s = ttl_s
        self.unknown_ttl_s = min(unknown_ttl_s, ttl_s)
        self._clock = clock
        self._on_probe = on_probe
        self._result: ProbeResult | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    @property
    def last_result(self) -> ProbeResult | None:
        return self._result

    def expires_in(self) -> float:
        """Seconds until the cached answer expires (0 when there is none or it has expired)."""
        with self._lock:
            if self._result is None:
                return 0.0
            return max(0.0, self._expires_at - self._clock())

    def result(self) -> ProbeResult:
        """The cached result, probing first when there is none or it has expired."""
        with self._lock:
            if self._result is not None and self._clock() < self._expires_at:
                return self._result
            result = self._probe()
            ttl = self.unknown_ttl_s if result.capability is Capability.UNKNOWN else self.ttl_s
            self._result = result
            self._expires_at = self._clock() + ttl
        if self._on_probe is not None:
            try:
                self._on_probe(result)
            except Exception:  # journaling must not break the answer
                log.exception("plan-order probe hook failed")
        return result

    def supports_plan_orders(self) -> Capability:
        return self.result().capability
