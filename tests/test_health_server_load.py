"""The health server under load: /metrics is rendered at most once a second however often it is scraped, the
server never runs more than a few handler threads, and a scraper hanging up early leaves no traceback."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
import requests

from ops.health import MAX_HANDLER_THREADS, HealthServer, PortUnavailable
from ops.metrics import Metrics
from tests.waiting import wait_until


class CountingMetrics(Metrics):
    def __init__(self) -> None:
        super().__init__()
        self.renders = 0

    def render(self) -> bytes:
        self.renders += 1
        return super().render()


def _ok() -> tuple[bool, dict[str, Any]]:
    return True, {}


def _handler_threads() -> int:
    return sum(1 for t in threading.enumerate() if "process_request_thread" in t.name)


def test_a_flood_of_scrapes_renders_the_metrics_about_once_a_second() -> None:
    metrics = CountingMetrics()
    with HealthServer(metrics, port=0, liveness=_ok, readiness=_ok) as server:
        host, port = server.address or ("", 0)
        session = requests.Session()
        started = time.monotonic()
        for _ in range(60):
            assert session.get(f"http://{host}:{port}/metrics", timeout=10).status_code == 200
        elapsed = time.monotonic() - started
    assert metrics.renders <= int(elapsed) + 2, f"{metrics.renders} renders in {elapsed:.1f}s"


def test_idle_connections_never_take_more_than_a_few_threads() -> None:
    with HealthServer(Metrics(), port=0, liveness=_ok, readiness=_ok) as server:
        host, port = server.address or ("", 0)
        idle = [socket.create_connection((host, port)) for _ in range(3 * MAX_HANDLER_THREADS)]
        try:
            # Every slot is taken by an idle connection, and no more handler threads than slots were started.
            slots = server._server._slots  # type: ignore[union-attr]
            wait_until(lambda: slots._value == 0, what="the slots taken")
            # The last slot is taken a moment before its handler thread starts.
            wait_until(lambda: _handler_threads() >= MAX_HANDLER_THREADS, what="a handler thread per slot")
            # Turned away at once, not queued behind the idle ones for their 10 s read timeout.
            late = socket.create_connection((host, port))
            late.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            late.settimeout(30)
            assert late.recv(64).startswith(b"HTTP/1.0 503")
            late.close()
        finally:
            for sock in idle:
                sock.close()
        wait_until(lambda: requests.get(f"http://{host}:{port}/healthz", timeout=10).status_code == 200,
                   what="the server answering again")


def test_a_scraper_hanging_up_early_leaves_no_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    metrics = Metrics()
    with HealthServer(metrics, port=0, liveness=_ok, readiness=_ok) as server:
        host, port = server.address or ("", 0)
        for _ in range(20):
            sock = socket.create_connection((host, port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.close()  # a reset, before the answer is read
        assert requests.get(f"http://{host}:{port}/healthz", timeout=10).status_code == 200
    assert "Traceback" not in capfd.readouterr().err


def test_a_port_in_use_is_a_clear_error_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        server = HealthServer(Metrics(), port=port, liveness=_ok, readiness=_ok)
        with pytest.raises(PortUnavailable, match=f"127.0.0.1:{port}.*already in use"):
            server.bind()
