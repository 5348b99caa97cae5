"""The processes of a chaos run: the simulator (``following sim --admin``) and the bot (``following run``).

Both are real subprocesses of the harness. The simulator lives for the whole run, so its state and request log
survive every kill -9 of the bot. The bot is pointed at it like at any Bitget-compatible server:
``dry_run: false`` with ``bitget.base_url`` / ``bitget.ws_public_url`` at the simulator and the simulator's
credentials in the environment (the bot's own built-in simulator is used only with ``dry_run: true``).
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import requests
import yaml

SIM_KEY, SIM_SECRET, SIM_PASSPHRASE = "sim-key", "sim-secret", "sim-pass"
CHANNEL = "chaos_signals"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _python_module(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", *args]


class SimProcess:
    """``following sim`` with the admin endpoints, frozen prices (tickers still pushed every second)."""

    def __init__(self, *, seed: int, log_path: Path, cwd: Path) -> None:
        self._seed = seed
        self._log_path = log_path
        self._cwd = cwd
        self._process: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.ws_url = ""

    def start(self, timeout_s: float = 30.0) -> None:
        command = _python_module("sim", "--port", "0", "--ws-port", "0", "--admin", "--seed", str(self._seed),
                                 "--tick-interval", "1", "--volatility", "0", "--equity", "10000")
        self._process = subprocess.Popen(
            command, cwd=self._cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
        )
        lines: queue.Queue[str] = queue.Queue()
        assert self._process.stdout is not None
        threading.Thread(target=_pump, args=(self._process.stdout, self._log_path, lines), daemon=True,
                         name="sim-output").start()
        deadline = time.monotonic() + timeout_s
        while not (self.base_url and self.ws_url):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._process.poll() is not None:
                raise RuntimeError(f"the simulator did not start (see {self._log_path})")
            try:
                line = lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line.startswith("Bitget simulator REST at "):
                self.base_url = line.rsplit(" ", 1)[-1].strip()
            elif line.startswith("Bitget simulator WebSocket at "):
                self.ws_url = line.rsplit(" ", 1)[-1].strip()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self._process.pid, signal.SIGKILL)
                self._process.wait(timeout=5)


def _pump(stream: IO[str], log_path: Path, lines: queue.Queue[str]) -> None:
    with log_path.open("a", encoding="utf-8") as log:
        for line in stream:
            log.write(line)
            log.flush()
            lines.put(line)


def bot_config(
    *,
    workdir: Path,
    sim_url: str,
    sim_ws_url: str,
    channel_url: str,
    webhook_url: str,
    health_port: int,
) -> dict[str, Any]:
    """The bot's config for a chaos run (product defaults wherever the campaign does not need otherwise)."""
    return {
        "dry_run": False,
        "listener": {
            "target_url": f"{channel_url}/s/{CHANNEL}",
            "polling_seconds": 0.3,
            "jitter_seconds": 0.1,
            "timeout_seconds": 5,
            "backoff_max_seconds": 5,
        },
        "risk": {
            "account_risk_per_trade": 0.002,
            "max_notional_per_trade": 300,
            "max_leverage": 10,
            "max_open_positions": 20,
            "cooldown_seconds": 0,
            "max_entry_slippage_pct": 0.01,
        },
        "monitor": {
            "poll_intervals": {"account_seconds": 2, "positions_seconds": 1, "open_orders_seconds": 1},
            "price_feed": {"mode": "ws", "interval_seconds": 1, "stale_after_seconds": 10},
            "health": {"host": "127.0.0.1", "port": health_port},
        },
        "bitget": {
            "base_url": sim_url,
            "ws_public_url": sim_ws_url,
            "timeout_seconds": 5,
            # a 429 burst is a fault under test here, not a reason to stop trading for the rest of the run
            "rate_limit_safe_mode_threshold": 1000,
        },
        "kill_switch": {"file": str(workdir / "KILL_SWITCH")},
        "storage": {"db_path": str(workdir / "journal.sqlite"), "media_dir": str(workdir / "media")},
        "notify": {"webhook": {"enabled": True, "url": webhook_url}},
        "logging": {"level": "INFO"},
    }


class BotProcess:
    """``following run --conf <file>``, started, killed with SIGKILL and restarted by the harness."""

    def __init__(self, *, conf_path: Path, log_path: Path, cwd: Path, health_port: int) -> None:
        self._conf_path = conf_path
        self._log_path = log_path
        self._cwd = cwd
        self.health_url = f"http://127.0.0.1:{health_port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self._session = requests.Session()

    def write_config(self, config: dict[str, Any]) -> None:
        self._conf_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        env = {**os.environ, "BITGET_API_KEY": SIM_KEY, "BITGET_API_SECRET": SIM_SECRET,
               "BITGET_PASSPHRASE": SIM_PASSPHRASE}
        env.pop("TRADER_KILL_SWITCH", None)
        if self._log is None:
            self._log = self._log_path.open("ab")
        self._log.write(f"==== harness: start #{self.starts + 1} at {time.time():.3f}\n".encode())
        self._log.flush()
        self._process = subprocess.Popen(
            _python_module("run", "--conf", str(self._conf_path)), cwd=self._cwd, env=env,
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        self.starts += 1

    def kill9(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed; the journal must carry the bot through."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        self.kills += 1
        if self._log is not None:
            self._log.write(f"==== harness: kill -9 at {time.time():.3f}\n".encode())
            self._log.flush()

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM (graceful stop); SIGKILL when it does not exit in time. Returns the exit code."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        self._session.close()
        return process.returncode

    def readiness(self) -> dict[str, Any] | None:
        """The /readyz body (its ``checks``), or None while the bot does not answer."""
        try:
            response = self._session.get(f"{self.health_url}/readyz", timeout=2)
            data: dict[str, Any] = response.json()
        except (requests.RequestException, ValueError):
            return None
        data["ready"] = response.status_code == 200
        return data

    def wait_ready(self, timeout_s: float) -> bool:
        """True once /readyz says 200 within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running:
                return False
            body = self.readiness()
            if body is not None and body.get("ready"):
                return True
            time.sleep(0.2)
        return False
