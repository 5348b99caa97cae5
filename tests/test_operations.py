"""Operating the bot: health endpoints, OS signals, graceful stop, and secrets that never leak."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml

from actors.supervisor import install_signal_handlers
from exchange.sim.testing import SimCredentials, running_sim
from parsing.channel_server import ChannelServer
from runtime.config import load_secrets
from runtime.wiring import Runtime
from tests.e2e import CHANNEL, System, fast_config, running_system, wait_listening
from tests.waiting import wait_until
from trading.modes import Mode

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def _url(system: System, path: str) -> str:
    host, port = system.runtime.health_address or ("", 0)
    return f"http://{host}:{port}{path}"


def test_health_ready_and_metrics_over_http(tmp_path: Path) -> None:
    with running_system(tmp_path) as system:
        health = requests.get(_url(system, "/healthz"), timeout=5)
        assert health.status_code == 200
        assert health.json()["ok"] is True
        ready = wait_until(lambda: (r := requests.get(_url(system, "/readyz"), timeout=5)).status_code == 200 and r)
        assert ready.json()["checks"] == {"exchange": True, "orders_reconciled": True, "positions_protected": True,
                                          "actors_alive": True, "price_feed": True, "channel_polled": True}
        system.channel.add_post(system.long_signal("BTCUSDT"))
        wait_until(system.open_positions, what="a position")
        metrics = wait_until(lambda: (m := requests.get(_url(system, "/metrics"), timeout=5).text)
                             and "following_open_positions 1.0" in m and m, what="the position in /metrics")
        assert 'following_trading_mode{mode="normal"} 1.0' in metrics
        assert 'following_trading_mode{mode="panic"} 0.0' in metrics
        assert "following_posts_total 1.0" in metrics
        assert re.search(r'following_orders_total\{leg="entry",result="accepted"\} 1\.0', metrics)
        assert re.search(r"following_equity_usdt \d", metrics)
        assert "following_exchange_requests_total" in metrics


def test_readyz_is_red_while_a_critical_actor_is_down(tmp_path: Path) -> None:
    with running_system(tmp_path) as system:
        wait_until(lambda: requests.get(_url(system, "/readyz"), timeout=5).status_code == 200)
        assert system.runtime.readiness()[0]
        system.runtime.status.set("positions_protected", False, "test: a position without a stop")
        response = requests.get(_url(system, "/readyz"), timeout=5)
        assert response.status_code == 503
        assert "positions_protected" in response.json()["failing"]


def test_sigusr1_enters_safe_and_sigusr2_panic_closes_the_position(tmp_path: Path) -> None:
    with running_system(tmp_path) as system:
        runtime = system.runtime
        assert runtime.supervisor is not None
        stop = threading.Event()
        handlers = install_signal_handlers(runtime.supervisor, stop.set, gate=runtime.gate)
        try:
            system.channel.add_post(system.long_signal("BTCUSDT"))
            wait_until(system.open_positions, what="a position")

            os.kill(os.getpid(), signal.SIGUSR1)
            wait_until(lambda: runtime.gate.mode is Mode.SAFE, what="safe mode")
            system.channel.add_post(system.long_signal("ETHUSDT"))
            assert runtime.journal is not None
            wait_until(lambda: runtime.journal.events("SIGNAL_REFUSED"), what="the ETH signal refused")
            assert system.entry_orders("ETHUSDT") == []
            assert system.open_positions(), "safe mode keeps the open position and its stop"
            assert system.stop_plans("BTCUSDT")

            os.kill(os.getpid(), signal.SIGUSR2)
            wait_until(lambda: not system.open_positions(), what="the panic close")
            closes = [o for o in system.engine.orders("BTCUSDT") if o.reduce_only and o.order_source == "normal"]
            assert len(closes) == 1
            assert runtime.gate.mode is Mode.PANIC
            assert not stop.is_set()
        finally:
            handlers.restore()


def test_live_mode_trades_on_a_bitget_compatible_server_and_never_leaks_secrets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    creds = SimCredentials(api_key="KEY-7f3a9c1e55", api_secret="SECRET-b41d0e9a77c2", passphrase="PASS-93e1c0ffee")
    env = {"BITGET_API_KEY": creds.api_key, "BITGET_API_SECRET": creds.api_secret,
           "BITGET_PASSPHRASE": creds.passphrase, "FOLLOWING_BOT_TOKEN": "BOT-5c0ffee1234"}
    caplog.set_level(logging.DEBUG)
    with running_sim(seed=4, credentials=creds) as sim, ChannelServer(CHANNEL) as channel:
        config = fast_config(tmp_path, channel.start(), dry_run=False, bitget={"base_url": sim.base_url})
        runtime = Runtime(config, load_secrets(config, env), env=env)
        runtime.start()
        try:
            wait_listening(runtime)
            system = System(runtime, channel)
            system.__dict__["engine"] = sim.engine  # the exchange here is the external server, not the paper one
            price = sim.engine.contract("BTCUSDT").round_price(sim.engine.price("BTCUSDT"))
            stop = sim.engine.contract("BTCUSDT").round_price(price * 99 / 100)
            channel.add_post(f"#BTC/USDT LONG\nEntry: {price}\nTarget 1: {price * 101 / 100:.1f}\nStop: {stop}\n"
                             "Leverage: 5x")
            wait_until(lambda: [p for p in sim.engine.positions() if p.size > 0], what="a live position")
            host, port = runtime.health_address or ("", 0)
            exposed = requests.get(f"http://{host}:{port}/metrics", timeout=5).text
            exposed += requests.get(f"http://{host}:{port}/readyz", timeout=5).text
            assert runtime.journal is not None
            exposed += repr([(e.kind, e.detail) for e in runtime.journal.events()])
            exposed += repr(runtime.client) + repr(runtime.secrets) + repr(runtime.config)
        finally:
            runtime.stop()
    exposed += caplog.text
    for secret in env.values():
        assert secret not in exposed


def _demo_process(tmp_path: Path) -> subprocess.Popen[str]:
    demo = yaml.safe_load((REPO / "conf" / "demo.yaml").read_text())
    demo["monitor"]["health"]["port"] = 0
    demo["storage"] = {"db_path": str(tmp_path / "demo.sqlite"), "media_dir": str(tmp_path / "media")}
    demo["kill_switch"] = {"file": str(tmp_path / "KILL_SWITCH")}
    conf = tmp_path / "demo.yaml"
    conf.write_text(yaml.safe_dump(demo))
    return subprocess.Popen([sys.executable, str(REPO / "bin" / "following"), "--conf", str(conf)],
                            cwd=REPO, stderr=subprocess.PIPE, text=True)


def test_a_signal_during_start_up_is_handled_not_the_end_of_the_process(tmp_path: Path) -> None:
    """SIGUSR1 as soon as the bot logs its first start-up line (the health server may answer before start-up
    ends): safe mode once running, and SIGTERM still stops it gracefully, never the OS default's sudden end."""
    process = _demo_process(tmp_path)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        wait_until(lambda: any("PAPER trading" in x for x in lines), timeout=30, what="the first start-up line")
        process.send_signal(signal.SIGUSR1)
        wait_until(lambda: process.poll() is not None or any("health on http://" in x for x in lines), timeout=30,
                   what="the health server line")
        assert process.poll() is None, f"the process ended (exit {process.returncode}) on a start-up signal"
        line = next(x for x in lines if "health on http://" in x)
        base = re.search(r"http://[0-9.]+:\d+", line).group(0)  # type: ignore[union-attr]
        wait_until(lambda: 'following_trading_mode{mode="safe"} 1.0' in requests.get(f"{base}/metrics",
                                                                                      timeout=2).text,
                   what="safe mode from the signal sent during start-up")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sigterm_stops_the_process_within_ten_seconds_with_exit_code_0(tmp_path: Path) -> None:
    process = _demo_process(tmp_path)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        line = wait_until(lambda: next((x for x in lines if "health on http://" in x), None), timeout=30,
                          what="the health server line")
        base = re.search(r"http://[0-9.]+:\d+", line).group(0)  # type: ignore[union-attr]
        wait_until(lambda: requests.get(f"{base}/healthz", timeout=2).status_code == 200)
        process.send_signal(signal.SIGUSR1)
        wait_until(lambda: 'following_trading_mode{mode="safe"} 1.0' in requests.get(f"{base}/metrics",
                                                                                      timeout=2).text,
                   what="safe mode after SIGUSR1")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 10
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
