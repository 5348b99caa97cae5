"""Plan-order capability probe: classification, cache and TTLs, the stop-mode decision, and the runtime wiring.

A clear "not supported" answer switches trigger stops to the local guard (journaled); a timeout is only
``unknown``, re-probed soon, and (when configured) starts the runtime in safe mode.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exchange.bitget.capability import (
    Capability,
    PlanOrderCapability,
    ProbeResult,
    classify_error,
    decide_stop_mode,
    run_probe,
    safe_mode_reason_on_reprobe,
)
from exchange.bitget.client import BitgetClient
from exchange.bitget.errors import AuthError, BitgetError, ExchangeUnavailable, RateLimited
from exchange.sim.testing import SimCredentials, running_sim
from parsing.channel_server import ChannelServer
from runtime.config import load_secrets
from runtime.wiring import Runtime
from tests.e2e import CHANNEL, fast_config
from tests.waiting import wait_until
from trading.modes import Mode

SUPPORTED = ProbeResult(Capability.SUPPORTED, "listed")
UNSUPPORTED = ProbeResult(Capability.UNSUPPORTED, "40404 Request URL NOT FOUND", "40404")
UNKNOWN = ProbeResult(Capability.UNKNOWN, "timeout read timed out", "timeout")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class ScriptedProbe:
    """Answers the given results in order (the last one repeats) and counts the calls."""

    def __init__(self, *results: ProbeResult) -> None:
        self.results = list(results)
        self.calls = 0

    def __call__(self) -> ProbeResult:
        self.calls += 1
        return self.results[min(self.calls, len(self.results)) - 1]


# --- classification ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (BitgetError("40404", "Request URL NOT FOUND", "p", http_status=404), Capability.UNSUPPORTED),
        (BitgetError("40085", "Unified Account mode, Classic API not supported", "p"), Capability.UNSUPPORTED),
        (BitgetError("99999", "whatever", "p", http_status=404), Capability.UNSUPPORTED),
        (ExchangeUnavailable("timeout", "read timed out", "p"), Capability.UNKNOWN),
        (ExchangeUnavailable("503", "Service Unavailable", "p", http_status=503), Capability.UNKNOWN),
        (RateLimited("429", "Too Many Requests", "p", http_status=429), Capability.UNKNOWN),
        (AuthError("40009", "sign signature error", "p", http_status=400), Capability.UNKNOWN),
    ],
)
def test_only_a_clear_not_supported_answer_means_unsupported(error: BitgetError, expected: Capability) -> None:
    assert classify_error(error) is expected

    def listing() -> None:
        raise error

    assert run_probe(listing).capability is expected


# --- the decision ------------------------------------------------------------------------------------------
def test_trigger_stops_fall_back_to_the_local_guard_only_on_a_clear_unsupported() -> None:
    assert decide_stop_mode("trigger", SUPPORTED, safe_mode_on_failure=True).stop_mode == "trigger"
    fallback = decide_stop_mode("trigger", UNSUPPORTED, safe_mode_on_failure=True)
    assert (fallback.stop_mode, fallback.fallback, fallback.safe_mode) == ("local_guard", True, False)
    unknown = decide_stop_mode("trigger", UNKNOWN, safe_mode_on_failure=True)
    assert (unknown.stop_mode, unknown.fallback, unknown.safe_mode) == ("trigger", False, True)
    assert not decide_stop_mode("trigger", UNKNOWN, safe_mode_on_failure=False).safe_mode
    configured_local = decide_stop_mode("local_guard", UNSUPPORTED, safe_mode_on_failure=True)
    assert (configured_local.stop_mode, configured_local.fallback) == ("local_guard", False)


def test_a_reprobe_while_running_asks_for_safe_mode_when_stops_are_at_risk() -> None:
    assert safe_mode_reason_on_reprobe("trigger", SUPPORTED, safe_mode_on_failure=True) is None
    assert safe_mode_reason_on_reprobe("trigger", UNSUPPORTED, safe_mode_on_failure=False)
    assert safe_mode_reason_on_reprobe("local_guard", UNSUPPORTED, safe_mode_on_failure=True) is None
    assert safe_mode_reason_on_reprobe("trigger", UNKNOWN, safe_mode_on_failure=True)
    assert safe_mode_reason_on_reprobe("trigger", UNKNOWN, safe_mode_on_failure=False) is None


# --- the cache ---------------------------------------------------------------------------------------------
def test_cache_is_honoured_within_the_ttl_then_reprobed() -> None:
    clock, probe, seen = FakeClock(), ScriptedProbe(SUPPORTED, UNSUPPORTED), []
    cache = PlanOrderCapability(probe, ttl_s=300, unknown_ttl_s=30, clock=clock, on_probe=seen.append)
    assert cache.supports_plan_orders() is Capability.SUPPORTED
    clock.now += 299
    assert cache.supports_plan_orders() is Capability.SUPPORTED
    assert probe.calls == 1
    clock.now += 2
    assert cache.supports_plan_orders() is Capability.UNSUPPORTED
    assert probe.calls == 2 and seen == [SUPPORTED, UNSUPPORTED]


def test_unknown_is_kept_only_for_the_short_ttl_and_never_becomes_unsupported() -> None:
    clock, probe = FakeClock(), ScriptedProbe(UNKNOWN, UNKNOWN, SUPPORTED)
    cache = PlanOrderCapability(probe, ttl_s=300, unknown_ttl_s=30, clock=clock)
    assert cache.supports_plan_orders() is Capability.UNKNOWN
    assert cache.expires_in() == 30
    clock.now += 29
    assert cache.supports_plan_orders() is Capability.UNKNOWN and probe.calls == 1
    clock.now += 1
    assert cache.supports_plan_orders() is Capability.UNKNOWN and probe.calls == 2
    clock.now += 30
    assert cache.supports_plan_orders() is Capability.SUPPORTED and probe.calls == 3
    assert cache.expires_in() == 300


def test_a_failing_journal_hook_does_not_break_the_answer() -> None:
    def broken(_: ProbeResult) -> None:
        raise RuntimeError("journal is down")

    cache = PlanOrderCapability(ScriptedProbe(SUPPORTED), ttl_s=1, unknown_ttl_s=1, on_probe=broken)
    assert cache.supports_plan_orders() is Capability.SUPPORTED


# --- the probe over loopback -------------------------------------------------------------------------------
@pytest.fixture
def sim() -> Iterator[Any]:
    with running_sim(seed=31) as running:
        yield running


def client_for(sim: Any, timeout: float = 2.0) -> BitgetClient:
    return sim.client(timeout=timeout, max_read_retries=0)


def probe(client: BitgetClient) -> ProbeResult:
    return run_probe(lambda: client.plan_orders_pending("profit_loss"))


def test_probe_is_a_single_read_and_sees_support(sim: Any) -> None:
    assert probe(client_for(sim)).capability is Capability.SUPPORTED
    wait_until(lambda: sim.engine.request_log, timeout=5, what="the request log")  # written after the reply
    assert [(r.method, r.endpoint) for r in sim.engine.request_log] == [("GET", "orders-plan-pending")]


def test_probe_sees_an_exchange_without_plan_orders(sim: Any) -> None:
    sim.engine.faults.unsupported("orders-plan-pending")
    result = probe(client_for(sim))
    assert result.capability is Capability.UNSUPPORTED and result.code == "40404"


def test_probe_past_its_timeout_is_unknown_and_bounded(sim: Any) -> None:
    sim.engine.faults.latency("orders-plan-pending", 2.0)
    result = probe(client_for(sim, timeout=0.2))
    assert result.capability is Capability.UNKNOWN and result.code == "timeout"
    assert result.seconds < 1.0  # one attempt: the probe timeout is not multiplied by retries


# --- the runtime -------------------------------------------------------------------------------------------
CREDS = SimCredentials(api_key="probe-key", api_secret="probe-secret", passphrase="probe-pass")
ENV = {"BITGET_API_KEY": CREDS.api_key, "BITGET_API_SECRET": CREDS.api_secret, "BITGET_PASSPHRASE": CREDS.passphrase}


@pytest.fixture
def live_sim() -> Iterator[Any]:
    with running_sim(seed=32, credentials=CREDS) as running:
        yield running


def start_runtime(tmp_path: Path, live_sim: Any, channel: ChannelServer, **bitget: Any) -> Runtime:
    config = fast_config(
        tmp_path, channel.start(), dry_run=False,
        bitget={"base_url": live_sim.base_url, "plan_orders_probe_timeout_seconds": 0.3, **bitget},
    )  # fmt: skip
    runtime = Runtime(config, load_secrets(config, ENV), env=ENV)
    runtime.start()
    return runtime


def events(runtime: Runtime, kind: str) -> list[dict[str, Any]]:
    assert runtime.journal is not None
    return [e.detail for e in runtime.journal.events(kind)]


def position_guard_uses_local_guard(runtime: Runtime) -> bool:
    # Wiring check: the stop mode the running PositionGuard was started with (a private field, read-only).
    ref = wait_until(lambda: runtime.directory.get("position_guard"), timeout=10, what="the PositionGuard")
    actor = ref._actor_weakref()
    assert actor is not None
    return bool(actor._local_guard)


def test_runtime_keeps_trigger_stops_when_plan_orders_are_supported(tmp_path: Path, live_sim: Any) -> None:
    with ChannelServer(CHANNEL) as channel:
        runtime = start_runtime(tmp_path, live_sim, channel)
        try:
            assert [e["capability"] for e in events(runtime, "PLAN_ORDER_CAPABILITY_PROBE")] == ["supported"]
            assert events(runtime, "PLAN_ORDER_FALLBACK") == []
            assert runtime.stop_mode == "trigger" and not position_guard_uses_local_guard(runtime)
            assert runtime.gate.mode is Mode.NORMAL
        finally:
            runtime.stop()


def test_runtime_falls_back_to_the_local_guard_when_plan_orders_are_unsupported(
    tmp_path: Path, live_sim: Any
) -> None:
    live_sim.engine.faults.unsupported("orders-plan-pending")
    with ChannelServer(CHANNEL) as channel:
        runtime = start_runtime(tmp_path, live_sim, channel)
        try:
            assert [e["capability"] for e in events(runtime, "PLAN_ORDER_CAPABILITY_PROBE")] == ["unsupported"]
            (fallback,) = events(runtime, "PLAN_ORDER_FALLBACK")
            assert (fallback["configured"], fallback["effective"]) == ("trigger", "local_guard")
            assert runtime.stop_mode == "local_guard" and position_guard_uses_local_guard(runtime)
            assert runtime.gate.mode is Mode.NORMAL  # a clear answer is not a failure
        finally:
            runtime.stop()


def test_runtime_starts_safe_on_a_probe_timeout_and_reprobes_after_the_short_ttl(
    tmp_path: Path, live_sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Well past the 0.3 s probe timeout, yet short: the guard's own plan polls wait it out too, and so does stop().
    live_sim.engine.faults.latency("orders-plan-pending", 0.8)
    with ChannelServer(CHANNEL) as channel:
        runtime = start_runtime(tmp_path, live_sim, channel, plan_orders_unknown_ttl_seconds=0.3)
        try:
            assert [e["capability"] for e in events(runtime, "PLAN_ORDER_CAPABILITY_PROBE")] == ["unknown"]
            assert events(runtime, "PLAN_ORDER_FALLBACK") == []  # a timeout never means "unsupported"
            assert runtime.stop_mode == "trigger"
            assert runtime.gate.mode is Mode.SAFE
            assert runtime.supervisor is not None
            assert runtime.supervisor.proxy().get_mode().get(timeout=5) is Mode.SAFE
            assert "SAFE_MODE: starting in safe mode: plan-order probe failed" in caplog.text  # operator told

            live_sim.engine.faults.latency("orders-plan-pending", 0)
            # A re-probe may already have timed out again while the lines above ran on a loaded machine.
            wait_until(lambda: events(runtime, "PLAN_ORDER_CAPABILITY_PROBE")[-1]["capability"] == "supported",
                       timeout=10, what="a re-probe after the short TTL")  # fmt: skip
            capabilities = [e["capability"] for e in events(runtime, "PLAN_ORDER_CAPABILITY_PROBE")]
            assert set(capabilities[:-1]) == {"unknown"} and capabilities[-1] == "supported"
            assert runtime.gate.mode is Mode.SAFE  # safe mode stays until an operator resets it
        finally:
            runtime.stop()


def test_runtime_stays_normal_on_a_probe_timeout_when_safe_mode_is_not_asked_for(
    tmp_path: Path, live_sim: Any
) -> None:
    # Well past the 0.3 s probe timeout, yet short: the guard's own plan polls wait it out too, and so does stop().
    live_sim.engine.faults.latency("orders-plan-pending", 0.8)
    with ChannelServer(CHANNEL) as channel:
        runtime = start_runtime(tmp_path, live_sim, channel, plan_orders_probe_safe_mode_on_failure=False)
        try:
            assert [e["capability"] for e in events(runtime, "PLAN_ORDER_CAPABILITY_PROBE")] == ["unknown"]
            assert runtime.gate.mode is Mode.NORMAL and runtime.stop_mode == "trigger"
        finally:
            runtime.stop()
