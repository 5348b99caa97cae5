"""/readyz and the price feed, over HTTP on the whole runtime: WebSocket up is ready; the REST fallback fails
readiness only when local_guard stops need the WebSocket; local_guard_on_rest safe_mode enters SAFE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from actors.price_feed import EVENT_FALLBACK
from tests.e2e import System, running_system
from tests.waiting import wait_until
from trading.modes import Mode

pytestmark = pytest.mark.slow


def overrides(*, local_guard: bool, **price_feed: Any) -> dict[str, Any]:
    feed = {"mode": "ws", "interval_seconds": 0.1, "stale_after_seconds": 1.0, "rest_grace_seconds": 30,
            "reconnect_backoff_base_seconds": 0.05, "reconnect_backoff_max_seconds": 0.2, **price_feed}
    stoploss: dict[str, Any] = {"repair_timeout_seconds": 2}
    if local_guard:
        stoploss["sl_order_type"] = "local_guard"
    return {
        "monitor": {
            "poll_intervals": {"account_seconds": 0.25, "positions_seconds": 0.25, "open_orders_seconds": 0.2},
            "price_feed": feed,
            "health": {"port": 0},
        },
        "risk": {"cooldown_seconds": 0, "stoploss": stoploss},
        "paper": {"seed": 3, "tick_seconds": 0.05},  # the market moves, so the socket pushes
    }


def readyz(system: System) -> requests.Response:
    host, port = system.runtime.health_address or ("", 0)
    return requests.get(f"http://{host}:{port}/readyz", timeout=5)


def metrics(system: System) -> str:
    host, port = system.runtime.health_address or ("", 0)
    return requests.get(f"http://{host}:{port}/metrics", timeout=5).text


def feed_state(system: System, state: str) -> bool:
    return f'following_price_feed_state{{state="{state}"}} 1.0' in metrics(system)


def watch_btc(system: System) -> None:
    """The feed watches what the bot trades; tell it directly, as the guard and the risk gate do."""
    from actors.messages import WatchSymbol

    ref = system.runtime.directory.get("price_feed")
    assert ref is not None
    ref.tell(WatchSymbol("BTCUSDT"))


def socket_down(system: System) -> None:
    system.engine.faults.refuse_ws()
    system.engine.faults.drop_ws()


def test_ready_on_websocket(tmp_path: Path) -> None:
    with running_system(tmp_path, **overrides(local_guard=True, ws_required_for_local_guard=True)) as system:
        watch_btc(system)
        response = wait_until(lambda: (r := readyz(system)).status_code == 200 and r, what="ready")
        assert response.json()["checks"]["price_feed"] is True
        assert feed_state(system, "ws")


def test_rest_fallback_with_local_guard_and_ws_required_is_not_ready(tmp_path: Path) -> None:
    with running_system(tmp_path, **overrides(local_guard=True, ws_required_for_local_guard=True,
                                              local_guard_on_rest="alert")) as system:
        watch_btc(system)
        wait_until(lambda: readyz(system).status_code == 200, what="ready on ws")
        socket_down(system)
        # (a Response is falsy for 503: wait on the body)
        body = wait_until(lambda: (r := readyz(system)).status_code == 503 and r.json(), what="not ready on rest")
        assert body["failing"] == ["price_feed"]
        assert "price feed on REST" in body["detail"]["price_feed"]
        # /metrics is rendered at most once a second: it may lag /readyz by that much.
        wait_until(lambda: feed_state(system, "rest"), what="the REST state in /metrics")
        system.engine.faults.refuse_ws(False)
        wait_until(lambda: readyz(system).status_code == 200, what="ready again once the socket is back")
        wait_until(lambda: feed_state(system, "ws"), what="the ws state in /metrics")


def test_rest_fallback_without_the_switch_stays_ready(tmp_path: Path) -> None:
    with running_system(tmp_path, **overrides(local_guard=True, ws_required_for_local_guard=False,
                                              local_guard_on_rest="alert")) as system:
        watch_btc(system)
        wait_until(lambda: feed_state(system, "ws"), what="ws")
        socket_down(system)
        wait_until(lambda: feed_state(system, "rest"), what="the REST fallback")
        response = readyz(system)
        assert response.status_code == 200 and response.json()["checks"]["price_feed"] is True


def test_local_guard_on_rest_safe_mode_enters_safe(tmp_path: Path) -> None:
    with running_system(tmp_path, **overrides(local_guard=True, local_guard_on_rest="safe_mode",
                                              rest_grace_seconds=0.3)) as system:
        watch_btc(system)
        wait_until(lambda: feed_state(system, "ws"), what="ws")
        assert system.runtime.gate.mode is Mode.NORMAL
        socket_down(system)
        wait_until(lambda: system.runtime.gate.mode is Mode.SAFE, what="safe mode on the REST fallback")
        wait_until(lambda: 'following_trading_mode{mode="safe"} 1.0' in metrics(system), what="safe in /metrics")
        journal = system.runtime.journal
        assert journal is not None
        assert [e.detail["action"] for e in journal.events(EVENT_FALLBACK)] == ["safe_mode"]


def test_rest_fallback_without_local_guard_changes_no_mode(tmp_path: Path) -> None:
    with running_system(tmp_path, **overrides(local_guard=False, rest_grace_seconds=0.1,
                                              ws_required_for_local_guard=True)) as system:
        watch_btc(system)
        wait_until(lambda: feed_state(system, "ws"), what="ws")
        socket_down(system)
        wait_until(lambda: feed_state(system, "rest"), what="the REST fallback")
        wait_until(lambda: system.runtime.status.snapshot()["price_feed"] == (True, "rest"))
        assert readyz(system).status_code == 200
        assert system.runtime.gate.mode is Mode.NORMAL
