"""Prometheus metrics for the executor, on a registry of its own.

Each ``Metrics`` owns a ``CollectorRegistry`` (never the process-global one), so tests can build as many as
they like. Label values are bounded: one-hot labels (mode, price feed state) accept only their known values,
and every other label value is reduced to ``[a-z0-9_.:-]`` (at most 48 characters) with at most
``MAX_VALUES_PER_LABEL`` distinct values per metric; further values are counted under ``"other"``. A
metrics call never raises for a bad free-text label: instrumentation must not break trading.

Every metric is also an attribute named after it without the ``following_`` prefix (``posts_total``,
``signals_total``, ``poll_seconds``...), for callers that use ``.labels(...)`` directly; those bypass the
bounding, so pass only literal label values that way and free text through the helper methods.
"""

from __future__ import annotations

import contextlib
import platform
import re
import threading
from collections.abc import Callable
from decimal import Decimal
from importlib import metadata

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from trading.modes import Mode

PRICE_FEED_STATES: tuple[str, ...] = ("ws", "rest", "stale")
POLL_SOURCES: tuple[str, ...] = ("listener", "positions", "account", "orders", "price", "fills")
MAX_VALUES_PER_LABEL = 64
OVERFLOW_LABEL_VALUE = "other"

_REQUEST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_VLM_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
_POLL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
FILL_LEGS: tuple[str, ...] = ("entry", "tp", "stop", "close", "liquidation", "manual")
# Counters export only their ``_total`` series: a ``_created`` twin per series doubles the exposition for nothing
# a dashboard uses (process-wide setting of prometheus_client, made once here).
disable_created_metrics()
_UNSAFE_LABEL_CHARS = re.compile(r"[^a-z0-9_.:-]+")
_MAX_LABEL_LENGTH = 48


def _version() -> str:
    try:
        return metadata.version("following")
    except metadata.PackageNotFoundError:
        return "unknown"


class _LabelBounds:
    """Keeps each (metric, label) to a small, sanitized set of values."""

    def __init__(self, max_values: int) -> None:
        self._max_values = max_values
        self._seen: dict[tuple[str, str], set[str]] = {}
        self._lock = threading.Lock()

    def __call__(self, metric: str, label: str, value: object) -> str:
        text = _UNSAFE_LABEL_CHARS.sub("_", str(value).strip().lower())[:_MAX_LABEL_LENGTH] or "unknown"
        with self._lock:
            seen = self._seen.setdefault((metric, label), set())
            if text in seen:
                return text
            if len(seen) >= self._max_values:
                return OVERFLOW_LABEL_VALUE
            seen.add(text)
            return text


class Metrics:
    """Every metric the executor exports. Thread-safe."""

    def __init__(self, *, max_values_per_label: int = MAX_VALUES_PER_LABEL) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._bound = _LabelBounds(max_values_per_label)
        registry = self.registry
        self.trading_mode = Gauge(
            "following_trading_mode", "1 for the current trading mode, 0 for the others", ["mode"],
            registry=registry,
        )  # fmt: skip
        self.posts_total = Counter(
            "following_posts", "Channel posts seen for the first time", registry=registry
        )
        self.signals_total = Counter(
            "following_signals", "Signals by outcome (traded, refused, notify_only...)", ["outcome"],
            registry=registry,
        )  # fmt: skip
        self.orders_total = Counter(
            "following_orders", "Order submissions by leg and result", ["leg", "result"], registry=registry
        )
        self.actor_restarts_total = Counter(
            "following_actor_restarts", "Actor restarts by the supervisor", ["actor"], registry=registry
        )
        self.exchange_requests_total = Counter(
            "following_exchange_requests", "Exchange REST requests by endpoint and result",
            ["endpoint", "result"], registry=registry,
        )  # fmt: skip
        self.exchange_request_seconds = Histogram(
            "following_exchange_request_seconds", "Exchange REST request latency", ["endpoint"],
            buckets=_REQUEST_BUCKETS, registry=registry,
        )  # fmt: skip
        self.poll_seconds = Histogram(
            "following_poll_seconds", "Duration of one poll cycle by source", ["source"],
            buckets=_POLL_BUCKETS, registry=registry,
        )  # fmt: skip
        self.poll_errors_total = Counter(
            "following_poll_errors", "Failed poll cycles by source", ["source"], registry=registry
        )
        self.open_positions = Gauge("following_open_positions", "Open positions", registry=registry)
        self.open_orders = Gauge(
            "following_open_orders", "Open (unfilled) orders in the exchange's order book", registry=registry
        )
        self.equity_usdt = Gauge("following_equity_usdt", "Account equity in USDT", registry=registry)
        self.available_usdt = Gauge("following_available_usdt", "Available margin in USDT", registry=registry)
        self.refusals_total = Counter(
            "following_refusals", "Signals refused by the risk gate, by reason code", ["reason"],
            registry=registry,
        )  # fmt: skip
        self.notify_only_total = Counter(
            "following_notify_only", "Signals only notified, not traded", registry=registry
        )
        self.price_feed_state = Gauge(
            "following_price_feed_state", "1 for the current price feed state (ws, rest, stale)", ["state"],
            registry=registry,
        )  # fmt: skip
        self.price_feed_reconnects_total = Counter(
            "following_price_feed_reconnects", "Price WebSocket connections made again after one was lost",
            registry=registry,
        )  # fmt: skip
        self.rate_limit_wait_seconds_total = Counter(
            "following_rate_limit_wait_seconds", "Time spent waiting for rate-limit tokens", registry=registry
        )
        self.vlm_request_seconds = Histogram(
            "following_vlm_request_seconds", "Vision model request latency (each attempt)",
            buckets=_VLM_BUCKETS, registry=registry,
        )  # fmt: skip
        self.vlm_errors_total = Counter(
            "following_vlm_errors", "Failed vision model requests by reason", ["reason"], registry=registry
        )
        self.parse_errors_total = Counter(
            "following_parse_errors", "Messages the rules failed on (read as notify_only instead)", registry=registry
        )
        self.unread_posts_total = Counter(
            "following_unread_posts", "Posts about an open signal that were not acted on (UNREAD notices)",
            registry=registry,
        )  # fmt: skip
        # Outcomes (from the exchange's fills; see actors/outcomes.py).
        self.realized_pnl_usdt = Gauge(
            "following_realized_pnl_usdt", "Realized P&L after fees of closed trades by channel (journal total)",
            ["channel"], registry=registry,
        )  # fmt: skip
        self.fees_usdt = Gauge(
            "following_fees_usdt", "Fees paid on closed trades by channel (journal total)", ["channel"],
            registry=registry,
        )  # fmt: skip
        self.fills_total = Counter(
            "following_fills", "Fills of our orders by channel and leg (entry, tp, stop, close, liquidation, manual)",
            ["channel", "leg"], registry=registry,
        )  # fmt: skip
        self.closes_total = Counter(
            "following_closes", "Positions closed by channel and cause (take_profit, stop, break_even_stop, ...)",
            ["channel", "cause"], registry=registry,
        )  # fmt: skip
        self.entry_latency_seconds = Histogram(
            "following_entry_latency_seconds", "From a post first seen to its first entry order accepted",
            ["channel"], buckets=_LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.peak_equity_usdt = Gauge(
            "following_peak_equity_usdt", "Highest equity seen (the drawdown breaker measures from it)",
            registry=registry,
        )  # fmt: skip
        self.drawdown_breaker_total = Counter(
            "following_drawdown_breaker", "Times the drawdown breaker put the bot in safe mode", registry=registry
        )
        self.last_post_seen_timestamp_seconds = Gauge(
            "following_last_post_seen_timestamp_seconds",
            "When a new channel post was last seen (the start time until the first one)", registry=registry,
        )  # fmt: skip
        self.last_post_seen_timestamp_seconds.set_to_current_time()
        self.ready = Gauge("following_ready", "1 when /readyz would answer 200 (updated on every scrape)",
                           registry=registry)
        self.ready_check = Gauge(
            "following_ready_check", "1 for each passing readiness check, 0 for a failing one (updated on every "
            "scrape)", ["check"], registry=registry,
        )  # fmt: skip
        self.notices_undelivered = Gauge(
            "following_notices_undelivered", "Notices not yet accepted by the chat/webhook: queued, retrying or to be "
            "re-sent after a restart (updated on every scrape)", registry=registry,
        )  # fmt: skip
        self._before_render: list[Callable[[], None]] = []
        self.build_info = Gauge(
            "following_build_info", "The running bot's version (always 1)", ["version", "python"], registry=registry
        )
        self.build_info.labels(version=_version(), python=platform.python_version()).set(1)
        # process_start_time_seconds, process_resident_memory_bytes, process_open_fds, ... and python_info.
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        # Pre-create the known children so dashboards see zeros instead of missing series.
        for mode in Mode:
            self.trading_mode.labels(mode=mode.value).set(0)
        for state in PRICE_FEED_STATES:
            self.price_feed_state.labels(state=state).set(0)
        for source in POLL_SOURCES:
            self.poll_seconds.labels(source=self._bound("poll_seconds", "source", source))
            self.poll_errors_total.labels(source=self._bound("poll_errors", "source", source))
        self._one_hot_lock = threading.Lock()
        # Short aliases (same objects) for code that reads better without the suffix.
        self.posts = self.posts_total
        self.signals = self.signals_total
        self.orders = self.orders_total
        self.actor_restarts = self.actor_restarts_total
        self.exchange_requests = self.exchange_requests_total
        self.poll_errors = self.poll_errors_total
        self.refusals = self.refusals_total
        self.notify_only = self.notify_only_total
        self.rate_limit_wait_seconds = self.rate_limit_wait_seconds_total

    # --- one-hot gauges ----------------------------------------------------------------------------
    def set_mode(self, mode: Mode | str) -> None:
        """Mark ``mode`` (normal, safe, panic) as the current one; ValueError for an unknown mode."""
        current = Mode(mode).value
        with self._one_hot_lock:
            for known in Mode:
                self.trading_mode.labels(mode=known.value).set(1 if known.value == current else 0)

    def set_price_feed_state(self, state: str) -> None:
        """Mark the price feed state (ws, rest, stale); ValueError for an unknown state."""
        if state not in PRICE_FEED_STATES:
            raise ValueError(f"unknown price feed state {state!r}")
        with self._one_hot_lock:
            for known in PRICE_FEED_STATES:
                self.price_feed_state.labels(state=known).set(1 if known == state else 0)

    # --- counters ----------------------------------------------------------------------------------
    def post_seen(self, count: int = 1) -> None:
        self.posts_total.inc(count)
        if count > 0:
            self.last_post_seen_timestamp_seconds.set_to_current_time()

    def signal(self, outcome: str) -> None:
        self.signals_total.labels(outcome=self._bound("signals", "outcome", outcome)).inc()

    def order(self, leg: str, result: str) -> None:
        self.orders_total.labels(
            leg=self._bound("orders", "leg", leg), result=self._bound("orders", "result", result)
        ).inc()

    def actor_restarted(self, actor: str) -> None:
        self.actor_restart(actor)

    def actor_restart(self, actor: str) -> None:
        self.actor_restarts_total.labels(actor=self._bound("actor_restarts", "actor", actor)).inc()

    def exchange_request(self, endpoint: str, result: str, seconds: float | None = None) -> None:
        """Count one exchange request and, when given, observe its latency."""
        endpoint_label = self._bound("exchange_requests", "endpoint", endpoint)
        self.exchange_requests_total.labels(
            endpoint=endpoint_label, result=self._bound("exchange_requests", "result", result)
        ).inc()
        if seconds is not None:
            self.exchange_request_seconds.labels(endpoint=endpoint_label).observe(max(0.0, seconds))

    def observe_poll(self, source: str, seconds: float) -> None:
        self.poll_seconds.labels(source=self._bound("poll_seconds", "source", source)).observe(
            max(0.0, seconds)
        )

    def poll_error(self, source: str) -> None:
        self.poll_errors_total.labels(source=self._bound("poll_errors", "source", source)).inc()

    def refusal(self, reason: str) -> None:
        self.refusals_total.labels(reason=self._bound("refusals", "reason", reason)).inc()

    def notify_only_signal(self) -> None:
        self.notify_only_total.inc()

    def parse_error(self, error: str = "") -> None:
        self.parse_errors_total.inc()

    def unread_post(self) -> None:
        self.unread_posts_total.inc()

    def vlm_request(self, outcome: str, seconds: float) -> None:
        """One vision model request attempt: its latency, and its error reason unless ``outcome`` is ok."""
        self.vlm_request_seconds.observe(max(0.0, seconds))
        if outcome != "ok":
            self.vlm_errors_total.labels(reason=self._bound("vlm_errors", "reason", outcome)).inc()

    def rate_limit_wait(self, seconds: float) -> None:
        if seconds > 0:
            self.rate_limit_wait_seconds_total.inc(seconds)

    def fill(self, channel: str, leg: str) -> None:
        label = next((known for known in FILL_LEGS if leg.startswith(known)), "manual")
        if leg.startswith("sl"):
            label = "stop"
        self.fills_total.labels(channel=self._bound("fills", "channel", channel), leg=label).inc()

    def trade_closed(self, channel: str, cause: str) -> None:
        self.closes_total.labels(channel=self._bound("closes", "channel", channel),
                                 cause=self._bound("closes", "cause", cause)).inc()

    def set_outcome_totals(self, channel: str, realized_pnl: Decimal, fees: Decimal) -> None:
        label = self._bound("outcome_totals", "channel", channel)
        self.realized_pnl_usdt.labels(channel=label).set(float(realized_pnl))
        self.fees_usdt.labels(channel=label).set(float(fees))

    def set_peak_equity(self, usdt: Decimal | float) -> None:
        self.peak_equity_usdt.set(float(usdt))

    def drawdown_breaker(self) -> None:
        self.drawdown_breaker_total.inc()

    def set_readiness(self, ready: bool, checks: dict[str, bool]) -> None:
        self.ready.set(1 if ready else 0)
        for name, passed in checks.items():
            self.ready_check.labels(check=self._bound("ready_check", "check", name)).set(1 if passed else 0)

    def before_render(self, hook: Callable[[], None]) -> None:
        """``hook`` runs before every exposition (e.g. readiness, computed on demand); its failure is ignored."""
        self._before_render.append(hook)

    def entry_accepted(self, channel: str, seconds: float) -> None:
        """Post first seen -> its first entry order accepted by the exchange."""
        self.entry_latency_seconds.labels(channel=self._bound("entry_latency", "channel", channel)).observe(
            max(0.0, seconds))

    # --- gauges ------------------------------------------------------------------------------------
    def set_open_positions(self, count: int) -> None:
        self.open_positions.set(count)

    def set_open_orders(self, count: int) -> None:
        self.open_orders.set(count)

    def set_equity(self, usdt: Decimal | float) -> None:
        self.equity_usdt.set(float(usdt))

    def set_available(self, usdt: Decimal | float) -> None:
        self.available_usdt.set(float(usdt))

    def set_notices_undelivered(self, count: int) -> None:
        self.notices_undelivered.set(max(0, count))

    # --- exposition --------------------------------------------------------------------------------
    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        for hook in list(self._before_render):
            with contextlib.suppress(Exception):  # instrumentation never breaks the scrape
                hook()
        return generate_latest(self.registry)
