"""Scriptable, seed-deterministic fault injection for the simulator.

Faults are keyed by endpoint: the last path segment (``place-order``) or the full path
(``/api/v2/mix/order/place-order``); both spellings name the same endpoint. The HTTP server consults
:meth:`FaultPlan.before_request` before handling a call and :meth:`FaultPlan.after_accept` once the call has
been applied to the engine.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exchange.sim.engine import SimExchange


def endpoint_key(endpoint: str) -> str:
    """``/api/v2/mix/order/place-order`` and ``place-order`` both become ``place-order``."""
    return endpoint.rstrip("/").rsplit("/", 1)[-1].lower()


@dataclass(frozen=True)
class Failure:
    """What to answer instead of handling the request (nothing is applied to the engine)."""

    http_status: int
    code: str
    msg: str


@dataclass(frozen=True)
class AfterAccept:
    """The request was applied; then the reply is delayed (``delay_s``), the connection is dropped, or ``body``
    (a reply the client cannot read) is answered with HTTP 200."""

    delay_s: float | None  # None: close the connection without a reply
    body: bytes | None = None


class FaultPlan:
    def __init__(self, engine: SimExchange, seed: int) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        # A separate stream from the price walk, so adding faults never changes the prices a seed gives.
        self._rng = random.Random(f"faults:{seed}")
        self._latency: dict[str, float] = {}
        self._base_latency = 0.0  # every request, every endpoint: a network round trip (not cleared by clear())
        self._queued: dict[str, list[Failure]] = {}
        self._after_accept: dict[str, list[AfterAccept]] = {}
        self._unsupported: set[str] = set()
        self._flaky: dict[str, tuple[float, Failure]] = {}
        self._ws_droppers: list[Callable[[], None]] = []
        self._ws_refusals: int | None = 0  # None: refuse until told otherwise
        self._ws_muted = False
        self._ws_pings_ignored = False
        self._ws_drop_probability = 0.0
        self._plans_survive_flat = False
        self._dead_stops: set[str] = set()  # symbols ("*": all) whose stop plans never fire

    # ---- scripting -------------------------------------------------------------------------------------
    def latency(self, endpoint: str, seconds: float) -> None:
        """Every call to ``endpoint`` waits ``seconds`` before it is handled (0 removes the latency)."""
        with self._lock:
            if seconds > 0:
                self._latency[endpoint_key(endpoint)] = seconds
            else:
                self._latency.pop(endpoint_key(endpoint), None)

    def base_latency(self, seconds: float) -> None:
        """Every request to any endpoint waits ``seconds`` before it is handled, as if the exchange were a network
        round trip away (``following sim --latency-ms``; 0 removes it). A setting of the simulated network rather
        than a fault: ``clear()`` leaves it; an endpoint's own ``latency`` is added to it."""
        with self._lock:
            self._base_latency = max(0.0, seconds)

    def base_latency_s(self) -> float:
        with self._lock:
            return self._base_latency

    def fail_next(
        self,
        endpoint: str,
        *,
        http_status: int = 500,
        code: str | None = None,
        msg: str | None = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` calls fail without touching the engine (default: HTTP 500)."""
        if code is not None and http_status == 500:
            http_status = 400
        failure = Failure(
            http_status=http_status,
            code=code or str(http_status),
            msg=msg or ("Internal Server Error" if http_status >= 500 else "Injected failure"),
        )
        with self._lock:
            self._queued.setdefault(endpoint_key(endpoint), []).extend([failure] * times)

    def reject_next(self, endpoint: str, code: str, msg: str, *, times: int = 1) -> None:
        """The next ``times`` calls get a business error (HTTP 400) and change nothing."""
        self.fail_next(endpoint, http_status=400, code=code, msg=msg, times=times)

    def timeout_after_accept(self, endpoint: str, *, delay_s: float | None = None, times: int = 1) -> None:
        """The next calls ARE applied, then the reply is held for ``delay_s`` (or the socket is closed)."""
        with self._lock:
            self._after_accept.setdefault(endpoint_key(endpoint), []).extend([AfterAccept(delay_s)] * times)

    def garble_after_accept(self, endpoint: str, body: bytes, *, times: int = 1) -> None:
        """The next calls ARE applied, then answered HTTP 200 with ``body`` (junk, JSON nested too deep...)."""
        with self._lock:
            self._after_accept.setdefault(endpoint_key(endpoint), []).extend([AfterAccept(None, body)] * times)

    def unsupported(self, endpoint: str, enabled: bool = True) -> None:
        """``endpoint`` answers a clear "not supported" error until disabled (for capability probes)."""
        with self._lock:
            if enabled:
                self._unsupported.add(endpoint_key(endpoint))
            else:
                self._unsupported.discard(endpoint_key(endpoint))

    def flaky(self, endpoint: str, probability: float, *, http_status: int = 500) -> None:
        """Each call fails with ``probability``, drawn from the seeded fault stream (deterministic)."""
        with self._lock:
            self._flaky[endpoint_key(endpoint)] = (
                probability,
                Failure(http_status, str(http_status), "Internal Server Error"),
            )

    def stops_do_not_fire(self, symbol: str | None = None, enabled: bool = True) -> None:
        """Stop-loss plans (``loss_plan``, ``pos_loss``, an entry's preset stop) of ``symbol`` (every symbol with
        None) stay live when their trigger price is crossed, until disabled: a stop that did not fire."""
        key = symbol.upper() if symbol else "*"
        with self._lock:
            if enabled:
                self._dead_stops.add(key)
            else:
                self._dead_stops.discard(key)

    def stop_does_not_fire(self, symbol: str) -> bool:
        with self._lock:
            return "*" in self._dead_stops or symbol.upper() in self._dead_stops

    def clear(self) -> None:
        with self._lock:
            self._dead_stops.clear()
            self._latency.clear()
            self._queued.clear()
            self._after_accept.clear()
            self._unsupported.clear()
            self._flaky.clear()
            self._ws_refusals = 0
            self._ws_muted = self._ws_pings_ignored = False
            self._ws_drop_probability = 0.0
        self._engine.set_stale_prices(False)

    def plans_survive_flat(self, enabled: bool = True) -> None:
        """A position going flat leaves its TP/SL plans live (some exchanges and mocks do): cleaning them up is
        then the client's job, and a plan left behind fails when it triggers on the flat symbol. A behaviour
        setting rather than a fault: ``clear()`` leaves it as it is."""
        with self._lock:
            self._plans_survive_flat = enabled

    def plans_survive_flat_enabled(self) -> bool:
        with self._lock:
            return self._plans_survive_flat

    def drop_ws(self) -> None:
        """Close every open WebSocket connection now."""
        with self._lock:
            droppers = list(self._ws_droppers)
        for drop in droppers:
            drop()

    def refuse_ws(self, refuse: bool = True, *, times: int | None = None) -> None:
        """New WebSocket connections are refused (HTTP 503 at the upgrade): the next ``times`` attempts, or
        every attempt until ``refuse_ws(False)``. Open connections are not touched (see ``drop_ws``)."""
        with self._lock:
            self._ws_refusals = times if refuse else 0

    def mute_ws(self, mute: bool = True) -> None:
        """Open WebSocket connections stay up and answer pings but get no ticker pushes (a stale socket)."""
        with self._lock:
            self._ws_muted = mute

    def ignore_ws_pings(self, ignore: bool = True) -> None:
        """The WebSocket server stops answering the text ``ping`` with ``pong``."""
        with self._lock:
            self._ws_pings_ignored = ignore

    def drop_ws_randomly(self, probability: float) -> None:
        """Each ticker push drops its connection with ``probability``, drawn from the seeded fault stream."""
        with self._lock:
            self._ws_drop_probability = probability

    def stale_prices(self, stale: bool = True) -> None:
        """Freeze the published ticker (REST and WebSocket) while the engine's price keeps moving."""
        self._engine.set_stale_prices(stale)

    def jump_price(self, symbol: str, pct: float | Decimal) -> Decimal:
        """Gap the price by ``pct`` percent in one move (stops fill at the gapped price)."""
        return self._engine.jump_price(symbol, Decimal(str(pct)))

    # ---- used by the servers ---------------------------------------------------------------------------
    def register_ws_dropper(self, dropper: Callable[[], None]) -> None:
        with self._lock:
            self._ws_droppers.append(dropper)

    def unregister_ws_dropper(self, dropper: Callable[[], None]) -> None:
        with self._lock:
            if dropper in self._ws_droppers:
                self._ws_droppers.remove(dropper)

    def ws_refuse_connection(self) -> bool:
        """Consulted once per WebSocket upgrade: True when this one is to be refused."""
        with self._lock:
            if self._ws_refusals is None:
                return True
            if self._ws_refusals > 0:
                self._ws_refusals -= 1
                return True
            return False

    def ws_muted(self) -> bool:
        with self._lock:
            return self._ws_muted

    def ws_pings_ignored(self) -> bool:
        with self._lock:
            return self._ws_pings_ignored

    def ws_drop_on_push(self) -> bool:
        with self._lock:
            return self._ws_drop_probability > 0 and self._rng.random() < self._ws_drop_probability

    def latency_for(self, endpoint: str) -> float:
        with self._lock:
            return self._base_latency + self._latency.get(endpoint_key(endpoint), 0.0)

    def before_request(self, endpoint: str) -> Failure | None:
        key = endpoint_key(endpoint)
        with self._lock:
            if key in self._unsupported:
                return Failure(404, "40404", f"Request URL NOT FOUND: {key} is not supported")
            queued = self._queued.get(key)
            if queued:
                return queued.pop(0)
            flaky = self._flaky.get(key)
            if flaky is not None and self._rng.random() < flaky[0]:
                return flaky[1]
        return None

    def after_accept(self, endpoint: str) -> AfterAccept | None:
        with self._lock:
            queued = self._after_accept.get(endpoint_key(endpoint))
            if queued:
                return queued.pop(0)
        return None
