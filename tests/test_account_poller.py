"""The account poller (PositionGuard): equity, available margin, positions and open orders, each read at its
configured interval from the simulator over loopback and exported as a metric; a failing poll is counted and
the guard carries on."""

from __future__ import annotations

import re
import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from tests.e2e import System, running_system
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

# Within Bitget's rate limits (all-position: 5 requests/s), which the client enforces.
INTERVALS = {"account_seconds": 0.5, "positions_seconds": 0.25, "open_orders_seconds": 0.35}
MONITOR = {"poll_intervals": INTERVALS, "price_feed": {"mode": "rest", "interval_seconds": 0.2}, "health": {"port": 0}}
# The guard's poll source (the label of following_poll_seconds) -> configured interval. Counted from the guard's
# own metric, not from the simulator's request log, because the OrderManager's reconciliation reads the same
# endpoints.
POLLED = {"account": 0.5, "positions": 0.25, "orders": 0.35}


def sample(system: System, name: str, **labels: str) -> float | None:
    return system.runtime.metrics.registry.get_sample_value(name, labels)


def test_each_source_is_polled_at_its_own_configured_interval(tmp_path: Path) -> None:
    with running_system(tmp_path, monitor=MONITOR) as system:

        def polls(source: str) -> float:
            return sample(system, "following_poll_seconds_count", source=source) or 0.0

        before = {source: polls(source) for source in POLLED}
        started = time.monotonic()
        wait_until(lambda: polls("account") >= before["account"] + 4, what="four account polls")
        elapsed = time.monotonic() - started
        for source, interval in POLLED.items():
            count = polls(source) - before[source]
            expected = elapsed / interval
            assert count <= expected + 2, f"{source}: {count} polls in {elapsed:.2f}s faster than every {interval}s"
            assert count >= expected * 0.4, f"{source}: {count} polls in {elapsed:.2f}s, configured every {interval}s"
        positions = polls("positions") - before["positions"]
        account = polls("account") - before["account"]
        assert positions >= 1.5 * account, "positions are polled about twice as often as the account"
        # Each poll really reached the exchange.
        for endpoint in ("accounts", "all-position", "orders-pending"):
            assert system.engine.requests_to(endpoint), endpoint


def test_equity_margin_positions_and_open_orders_are_exported_and_scraped_over_http(tmp_path: Path) -> None:
    with running_system(tmp_path, monitor=MONITOR) as system:
        engine = system.engine
        system.channel.add_post(system.long_signal("BTCUSDT"))  # fills: one position
        resting = system.price("ETHUSDT", "0.97")
        system.channel.add_post(f"#ETH/USDT LONG\nEntry: {resting}\nTarget 1: {system.price('ETHUSDT', '1.01')}\n"
                                f"Stop: {system.price('ETHUSDT', '0.96')}")  # rests below the market: an open order
        wait_until(lambda: system.open_positions() and engine.orders("ETHUSDT", open_only=True), what="both")

        def exported() -> bool:
            account = engine.account()
            return (sample(system, "following_open_positions") == 1
                    and sample(system, "following_open_orders") == 1
                    and sample(system, "following_equity_usdt") == float(account.equity)
                    and sample(system, "following_available_usdt") == float(account.available))

        wait_until(exported, what="the account, the position and the open order in the metrics")
        assert engine.account().available < engine.account().equity, "margin is in use"

        host, port = system.runtime.health_address or ("", 0)
        text = requests.get(f"http://{host}:{port}/metrics", timeout=5).text
        assert "following_open_positions 1.0" in text
        assert "following_open_orders 1.0" in text
        equity = re.search(r"^following_equity_usdt (\S+)$", text, re.M)
        available = re.search(r"^following_available_usdt (\S+)$", text, re.M)
        assert equity and available
        assert float(available.group(1)) < float(equity.group(1))
        for source in ("account", "positions", "orders"):
            count = re.search(rf'^following_poll_seconds_count\{{source="{source}"\}} (\S+)$', text, re.M)
            assert count and float(count.group(1)) >= 1, f"{source} polls are timed"

        # The poller follows the account: money in, equity up.
        equity_before = engine.account().equity
        engine.deposit(Decimal("250"))
        wait_until(lambda: sample(system, "following_equity_usdt") == float(equity_before + 250),
                   what="the new equity exported")


def test_failing_polls_are_counted_and_the_guard_carries_on(tmp_path: Path) -> None:
    with running_system(tmp_path, monitor=MONITOR) as system:
        engine = system.engine
        runtime = system.runtime
        guard = runtime.directory.get("position_guard")
        assert guard is not None
        system.channel.add_post(system.long_signal("BTCUSDT"))
        wait_until(lambda: sample(system, "following_open_positions") == 1, what="the position exported")

        # Business errors: not retried by the client, so each one the guard meets is one failed poll. The order
        # side's reconciliation also reads positions and open orders and may meet some of these; the account is
        # the guard's alone.
        injected = {"all-position": 3, "accounts": 2, "orders-pending": 4}
        for endpoint, times in injected.items():
            engine.faults.reject_next(endpoint, "40010", "Request timed out", times=times)

        def answered(endpoint: str) -> int:
            return [r.code for r in engine.requests_to(endpoint)].count("40010")

        wait_until(lambda: all(answered(e) == n for e, n in injected.items()), what="every injected failure answered")
        wait_until(lambda: sample(system, "following_poll_errors_total", source="account") == 2,
                   what="both failed account polls counted")
        for source, endpoint in (("positions", "all-position"), ("orders", "orders-pending")):
            counted = sample(system, "following_poll_errors_total", source=source) or 0
            assert 1 <= counted <= injected[endpoint], (source, counted)

        # The same guard instance keeps polling: nothing was restarted, and the readings resume.
        assert runtime.directory.get("position_guard") is guard and guard.is_alive()
        assert sample(system, "following_actor_restarts_total", actor="position_guard") in (None, 0.0)
        engine.deposit(Decimal("100"))
        wait_until(lambda: sample(system, "following_equity_usdt") == float(engine.account().equity),
                   what="equity read again after the failures")
        wait_until(lambda: runtime.readiness()[0], what="/readyz green again once the exchange answers")
        assert sample(system, "following_open_positions") == 1
