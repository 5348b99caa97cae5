from __future__ import annotations

from decimal import Decimal

import pytest

from ops.metrics import OVERFLOW_LABEL_VALUE, Metrics
from trading.modes import Mode


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_trading_mode_is_one_hot() -> None:
    metrics = Metrics()
    metrics.set_mode(Mode.NORMAL)
    metrics.set_mode("panic")
    values = {mode.value: sample(metrics, "following_trading_mode", mode=mode.value) for mode in Mode}
    assert values == {"normal": 0.0, "safe": 0.0, "panic": 1.0}
    with pytest.raises(ValueError):
        metrics.set_mode("yolo")


def test_price_feed_state_is_one_hot() -> None:
    metrics = Metrics()
    metrics.set_price_feed_state("ws")
    metrics.set_price_feed_state("stale")
    assert sample(metrics, "following_price_feed_state", state="stale") == 1.0
    assert sample(metrics, "following_price_feed_state", state="ws") == 0.0
    assert sample(metrics, "following_price_feed_state", state="rest") == 0.0
    with pytest.raises(ValueError):
        metrics.set_price_feed_state("carrier-pigeon")


def test_counters_count() -> None:
    metrics = Metrics()
    metrics.post_seen()
    metrics.post_seen(2)
    metrics.signal("traded")
    metrics.order("entry", "accepted")
    metrics.order("entry", "accepted")
    metrics.actor_restart("listener")
    metrics.refusal("max_positions")
    metrics.notify_only_signal()
    metrics.poll_error("positions")
    metrics.rate_limit_wait(0.25)
    metrics.rate_limit_wait(0.5)
    assert sample(metrics, "following_posts_total") == 3.0
    assert sample(metrics, "following_signals_total", outcome="traded") == 1.0
    assert sample(metrics, "following_orders_total", leg="entry", result="accepted") == 2.0
    assert sample(metrics, "following_actor_restarts_total", actor="listener") == 1.0
    assert sample(metrics, "following_refusals_total", reason="max_positions") == 1.0
    assert sample(metrics, "following_notify_only_total") == 1.0
    assert sample(metrics, "following_poll_errors_total", source="positions") == 1.0
    assert sample(metrics, "following_rate_limit_wait_seconds_total") == 0.75


def test_exchange_requests_count_and_time() -> None:
    metrics = Metrics()
    metrics.exchange_request("place_order", "ok", 0.2)
    metrics.exchange_request("place_order", "timeout")
    assert sample(metrics, "following_exchange_requests_total", endpoint="place_order", result="ok") == 1.0
    assert (
        sample(metrics, "following_exchange_requests_total", endpoint="place_order", result="timeout") == 1.0
    )
    assert sample(metrics, "following_exchange_request_seconds_count", endpoint="place_order") == 1.0
    assert sample(metrics, "following_exchange_request_seconds_sum", endpoint="place_order") == 0.2


def test_poll_durations_and_gauges() -> None:
    metrics = Metrics()
    metrics.observe_poll("listener", 0.3)
    metrics.set_open_positions(2)
    metrics.set_equity(Decimal("1234.5"))
    metrics.set_available(Decimal("1000"))
    assert sample(metrics, "following_poll_seconds_count", source="listener") == 1.0
    assert sample(metrics, "following_poll_seconds_count", source="price") == 0.0  # pre-created
    assert sample(metrics, "following_open_positions") == 2.0
    assert sample(metrics, "following_equity_usdt") == 1234.5
    assert sample(metrics, "following_available_usdt") == 1000.0


def test_label_values_are_sanitized_and_bounded() -> None:
    metrics = Metrics(max_values_per_label=3)
    metrics.refusal("Bad Reason: spaces & CAPS")
    assert sample(metrics, "following_refusals_total", reason="bad_reason:_spaces_caps") == 1.0
    for n in range(10):
        metrics.refusal(f"reason_{n}")
    assert sample(metrics, "following_refusals_total", reason=OVERFLOW_LABEL_VALUE) == 8.0
    assert sample(metrics, "following_refusals_total", reason="reason_1") == 1.0
    metrics.refusal("x" * 500)  # long free text is cut, never exported whole
    assert b"x" * 49 not in metrics.render()


def test_each_metrics_instance_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.post_seen()
    assert sample(first, "following_posts_total") == 1.0
    assert sample(second, "following_posts_total") == 0.0


def test_render_is_prometheus_text_with_every_metric() -> None:
    text = Metrics().render().decode()
    for name in (
        "following_trading_mode",
        "following_posts_total",
        "following_signals_total",
        "following_orders_total",
        "following_actor_restarts_total",
        "following_exchange_requests_total",
        "following_exchange_request_seconds",
        "following_poll_seconds",
        "following_open_positions",
        "following_equity_usdt",
        "following_available_usdt",
        "following_refusals_total",
        "following_notify_only_total",
        "following_price_feed_state",
        "following_poll_errors_total",
        "following_rate_limit_wait_seconds_total",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name


def test_metric_objects_are_reachable_by_name_for_direct_labels() -> None:
    metrics = Metrics()
    metrics.signals_total.labels(outcome="approved").inc()
    metrics.poll_errors.labels(source="listener").inc()
    metrics.posts_total.inc()
    assert sample(metrics, "following_signals_total", outcome="approved") == 1.0
    assert sample(metrics, "following_poll_errors_total", source="listener") == 1.0
    assert metrics.poll_errors is metrics.poll_errors_total
    assert sample(metrics, "following_posts_total") == 1.0
