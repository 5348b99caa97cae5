"""Runtime glue for the plan-order capability probe: build it, journal it, re-probe when the answer expires.

The decisions are in :mod:`exchange.bitget.capability`; this module only connects them to the client, the
journal and (through callbacks) the Supervisor.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from exchange.bitget.capability import (
    PlanOrderCapability,
    ProbeResult,
    StopMode,
    StopModeDecision,
    decide_stop_mode,
    run_probe,
)
from exchange.bitget.client import BitgetClient, Credentials, OnRequest

log = logging.getLogger("following.capability")

EVENT_PROBE = "PLAN_ORDER_CAPABILITY_PROBE"
EVENT_FALLBACK = "PLAN_ORDER_FALLBACK"


class EventJournal(Protocol):
    def record_event(self, kind: str, detail: dict[str, Any]) -> int: ...


def probe_client(
    client: BitgetClient, credentials: Credentials | None, timeout_s: float, on_request: OnRequest | None = None
) -> BitgetClient:
    """A client for the probe alone: the probe timeout, and no retries (a retry would multiply the timeout).

    It shares the main client's per-endpoint buckets: the limits are per account, not per client object.
    """
    return BitgetClient(
        client.base_url, credentials, product_type=client.product_type, margin_coin=client.margin_coin,
        demo=client.demo, timeout=timeout_s, max_read_retries=0, on_request=on_request,
        rate_limiter=client.rate_limiter,
    )  # fmt: skip


def plan_order_capability(
    client: BitgetClient,
    *,
    ttl_s: float,
    unknown_ttl_s: float,
    journal: EventJournal,
    clock: Callable[[], float] | None = None,
) -> PlanOrderCapability:
    """The cached capability, probing with ``client`` (read-only) and journaling every probe."""

    def probe() -> ProbeResult:
        return run_probe(lambda: client.plan_orders_pending("profit_loss"))

    def record(result: ProbeResult) -> None:
        journal.record_event(
            EVENT_PROBE,
            {"capability": result.capability.value, "reason": result.reason, "code": result.code,
             "seconds": round(result.seconds, 3)},
        )  # fmt: skip
        log.info("plan-order capability: %s (%s)", result.capability.value, result.reason)

    options: dict[str, Any] = {"clock": clock} if clock is not None else {}
    return PlanOrderCapability(probe, ttl_s=ttl_s, unknown_ttl_s=unknown_ttl_s, on_probe=record, **options)


def decide_and_record(
    configured: StopMode, result: ProbeResult, *, safe_mode_on_failure: bool, journal: EventJournal
) -> StopModeDecision:
    decision = decide_stop_mode(configured, result, safe_mode_on_failure=safe_mode_on_failure)
    if decision.fallback:
        journal.record_event(
            EVENT_FALLBACK,
            {"configured": configured, "effective": decision.stop_mode, "reason": result.reason, "code": result.code},
        )
        log.warning("the exchange does not support plan orders (%s): stops fall back to the local guard",
                    result.reason)  # fmt: skip
    return decision


class CapabilityWatch:
    """A daemon thread that re-probes each time the cached answer expires and reports fresh results.

    ``on_result`` runs in this thread; it must only tell actors (never block on them).
    """

    def __init__(
        self,
        capability: PlanOrderCapability,
        on_result: Callable[[ProbeResult], None],
        *,
        min_wait_s: float = 0.1,
    ) -> None:
        self._capability = capability
        self._on_result = on_result
        self._min_wait_s = min_wait_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="plan-capability", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        seen = self._capability.last_result
        while not self._stop.wait(max(self._min_wait_s, self._capability.expires_in())):
            try:
                result = self._capability.result()
                if result is not seen:  # report fresh probes only, not a cached answer
                    seen = result
                    self._on_result(result)
            except Exception:  # the watch must outlive a bad probe or hook
                log.exception("plan-order capability re-probe failed")
