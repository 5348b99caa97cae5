"""``run_sim`` prints where the simulator listens and serves until told to stop."""

from __future__ import annotations

import re
import threading
import time

import pytest
import requests

from exchange.sim.__main__ import run_sim


def test_run_sim_prints_urls_and_serves_until_stopped(capsys: pytest.CaptureFixture[str]) -> None:
    stop = threading.Event()
    runner = threading.Thread(target=run_sim, kwargs={"port": 0, "ws_port": 0, "seed": 2, "stop_event": stop})
    runner.start()
    try:
        printed = ""
        deadline = time.monotonic() + 5
        while "credentials" not in printed and time.monotonic() < deadline:
            printed += capsys.readouterr().out
            threading.Event().wait(0.02)
        match = re.search(r"REST at (http://127\.0\.0\.1:\d+)", printed)
        assert match, printed
        assert re.search(r"WebSocket at ws://127\.0\.0\.1:\d+/v2/ws/public", printed)
        assert "key=sim-key" in printed
        reply = requests.get(match.group(1) + "/api/v2/public/time", timeout=5)
        assert reply.json()["code"] == "00000"
    finally:
        stop.set()
        runner.join(timeout=5)
    assert not runner.is_alive()


def test_latency_ms_is_checked_and_announced(capsys: pytest.CaptureFixture[str]) -> None:
    from exchange.sim.__main__ import main

    for bad in ("-1", "nan", "1e9"):
        with pytest.raises(SystemExit) as exited:
            main(["--port", "0", "--ws-port", "0", "--latency-ms", bad])
        assert exited.value.code == 2
    assert "--latency-ms must be" in capsys.readouterr().err
    stop = threading.Event()
    runner = threading.Thread(target=run_sim, kwargs={"port": 0, "ws_port": 0, "seed": 2, "stop_event": stop,
                                                      "latency_ms": 150.0})
    runner.start()
    try:
        printed = ""
        deadline = time.monotonic() + 5
        while "credentials" not in printed and time.monotonic() < deadline:
            printed += capsys.readouterr().out
            threading.Event().wait(0.02)
        assert "answered after 150 ms" in printed
    finally:
        stop.set()
        runner.join(timeout=5)
    assert not runner.is_alive()
