"""The whole runtime on loopback: a channel server, the built-in simulator, every actor, the health server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from parsing.channel_server import ChannelServer
from runtime.config import Config, load_secrets, parse_config
from runtime.wiring import Runtime

CHANNEL = "e2e_signals"


def fast_config(tmp_path: Path, channel_url: str, **overrides: Any) -> Config:
    data: dict[str, Any] = {
        "dry_run": True,
        "listener": {"target_url": f"{channel_url}/s/{CHANNEL}", "polling_seconds": 0.05, "jitter_seconds": 0,
                     "backoff_max_seconds": 0.2},
        "risk": {"cooldown_seconds": 0, "stoploss": {"repair_timeout_seconds": 2}},
        "monitor": {
            # The guard's positions poll and the OrderManager's pass both read all-position (5 requests/s):
            # together they stay under that limit, so a one-off read never queues behind a full bucket.
            "poll_intervals": {"account_seconds": 0.25, "positions_seconds": 0.3, "open_orders_seconds": 1.0,
                               "fills_seconds": 0.2},
            "price_feed": {"mode": "rest", "interval_seconds": 0.2},
            "health": {"port": 0},
        },
        # prices move only when a test moves them; the network is never asked
        "paper": {"seed": 3, "tick_seconds": 3600, "live_prices": False},
        "kill_switch": {"file": str(tmp_path / "KILL_SWITCH"), "poll_seconds": 0.05},
        "storage": {"db_path": str(tmp_path / "journal.sqlite"), "media_dir": str(tmp_path / "media")},
        "supervisor": {"heartbeat_interval_seconds": 0.2, "heartbeat_timeout_seconds": 3,
                       "backoff_base_seconds": 0.05, "backoff_max_seconds": 0.2},
    }
    for section, values in overrides.items():
        if isinstance(values, dict):
            data.setdefault(section, {}).update(values)
        else:
            data[section] = values
    return parse_config(data)


@dataclass
class System:
    runtime: Runtime
    channel: ChannelServer

    @property
    def engine(self) -> Any:
        assert self.runtime.paper is not None
        return self.runtime.paper.engine

    def price(self, symbol: str, factor: str = "1") -> Decimal:
        contract = self.engine.contract(symbol)
        return contract.round_price(self.engine.price(symbol) * Decimal(factor))

    def long_signal(self, symbol: str = "BTCUSDT", *, stop_factor: str = "0.99") -> str:
        return (
            f"#{symbol[:-4]}/USDT LONG\n"
            f"Entry Zone: {self.price(symbol, '0.9995')} - {self.price(symbol, '1.0005')}\n"
            f"Take-Profit Targets:\n1) {self.price(symbol, '1.01')}\n2) {self.price(symbol, '1.02')}\n"
            f"Stop Targets:\n1) {self.price(symbol, stop_factor)}\n"
            f"Leverage: Isolated (5X)"
        )

    def events(self, kind: str | None) -> list[Any]:
        """The journal's events of ``kind`` (every kind with None), oldest first."""
        assert self.runtime.journal is not None
        return self.runtime.journal.events(kind)

    def entry_orders(self, symbol: str | None = None) -> list[Any]:
        return [o for o in self.engine.orders(symbol) if not o.reduce_only and o.trade_side != "close"
                and o.order_source == "normal"]

    def open_positions(self) -> list[Any]:
        return [p for p in self.engine.positions() if p.size > 0]

    def stop_plans(self, symbol: str) -> list[Any]:
        return [p for p in self.engine.plan_orders(symbol) if p.plan_type in ("loss_plan", "pos_loss")]


def wait_listening(runtime: Runtime) -> None:
    """Posts already on the page at the first poll are history (never traded): wait for that first poll."""
    from tests.waiting import wait_until

    journal = runtime.journal
    assert journal is not None
    wait_until(lambda: journal.get_flag(f"listener_baseline:{CHANNEL}"), what="the listener's first poll")


@contextmanager
def running_system(tmp_path: Path, env: dict[str, str] | None = None, *, before_start: Any = None,
                   **overrides: Any) -> Iterator[System]:
    """``before_start(channel, engine_price)`` may post to the channel before the bot's first poll."""
    channel = ChannelServer(CHANNEL)
    url = channel.start()
    config = fast_config(tmp_path, url, **overrides)
    env = env or {}
    runtime = Runtime(config, load_secrets(config, env), env=env)
    try:
        if before_start is not None:
            before_start(channel)
        runtime.start()
        wait_listening(runtime)
        yield System(runtime, channel)
    finally:
        runtime.stop()
        channel.stop()
