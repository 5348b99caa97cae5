from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from prometheus_client import CONTENT_TYPE_LATEST

from actors.base import ProgressWatch
from exchange.redact import register_secret
from ops.health import HealthServer
from ops.metrics import Metrics

SECRET = "api-secret-abc123"


class Probe:
    """A liveness/readiness callable the test can flip."""

    def __init__(self, ok: bool = True, detail: dict[str, Any] | None = None) -> None:
        self.ok = ok
        self.detail = detail or {}
        self.error: Exception | None = None

    def __call__(self) -> tuple[bool, dict[str, Any]]:
        if self.error is not None:
            raise self.error
        return self.ok, self.detail


@pytest.fixture
def liveness() -> Probe:
    return Probe(True, {"silence_s": 0.1})


@pytest.fixture
def readiness() -> Probe:
    return Probe(True, {"checks": {"exchange": True, "reconciled": True}})


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def base_url(metrics: Metrics, liveness: Probe, readiness: Probe) -> Iterator[str]:
    server = HealthServer(metrics, host="127.0.0.1", port=0, liveness=liveness, readiness=readiness)
    host, port = server.start()
    assert port != 0
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def get(url: str) -> requests.Response:
    return requests.get(url, timeout=5)


def test_healthz_is_200_when_live_and_503_when_not(base_url: str, liveness: Probe) -> None:
    response = get(f"{base_url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "silence_s": 0.1}
    liveness.ok = False
    response = get(f"{base_url}/healthz")
    assert response.status_code == 503
    assert response.json()["ok"] is False


def test_readyz_lists_failing_checks_by_name(base_url: str, readiness: Probe) -> None:
    assert get(f"{base_url}/readyz").status_code == 200
    readiness.ok = False
    readiness.detail = {"checks": {"exchange": True, "reconciled": False, "stops_confirmed": False}}
    response = get(f"{base_url}/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["reconciled", "stops_confirmed"]


def test_a_raising_check_is_503_without_the_exception_text(
    base_url: str, liveness: Probe, readiness: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    liveness.error = RuntimeError(f"GET https://api.example/?key={SECRET} failed")
    readiness.error = ValueError(SECRET)
    for path in ("/healthz", "/readyz"):
        response = get(f"{base_url}{path}")
        assert response.status_code == 503
        assert SECRET not in response.text
        assert response.json() == {"ok": False, "error": "check failed"}
    assert SECRET not in caplog.text


def test_metrics_are_served_as_prometheus_text(base_url: str, metrics: Metrics) -> None:
    metrics.post_seen(3)
    response = get(f"{base_url}/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    assert "following_posts_total 3.0" in response.text


def test_unknown_paths_are_404(base_url: str) -> None:
    assert get(f"{base_url}/").status_code == 404
    assert get(f"{base_url}/admin").status_code == 404


def test_access_is_not_logged_to_stderr(base_url: str, capfd: pytest.CaptureFixture[str]) -> None:
    get(f"{base_url}/healthz")
    get(f"{base_url}/nope")
    assert capfd.readouterr().err == ""


def test_stop_releases_the_port(metrics: Metrics, liveness: Probe, readiness: Probe) -> None:
    server = HealthServer(metrics, port=0, liveness=liveness, readiness=readiness)
    host, port = server.start()
    with pytest.raises(RuntimeError):
        server.start()
    server.stop()
    server.stop()  # idempotent
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{host}:{port}/healthz", timeout=2)


def test_progress_watch_serves_as_liveness(metrics: Metrics, readiness: Probe) -> None:
    now = [0.0]
    watch = ProgressWatch(clock=lambda: now[0])

    def liveness() -> tuple[bool, dict[str, float]]:
        return watch.is_alive(5.0), {"silence_s": watch.seconds_since_progress()}

    with HealthServer(metrics, port=0, liveness=liveness, readiness=readiness) as server:
        assert server.address is not None
        host, port = server.address
        assert get(f"http://{host}:{port}/healthz").status_code == 200
        now[0] = 6.0
        assert get(f"http://{host}:{port}/healthz").status_code == 503




def test_a_secret_quoted_in_a_check_detail_is_not_served(base_url: str, readiness: Probe) -> None:
    register_secret(SECRET)  # as the runtime registers its keys at start
    readiness.ok = False
    readiness.detail = {"checks": {"channel_polled": False},
                        "detail": {"channel_polled": f"poll failed: GET https://x.example/?token={SECRET}"}}
    response = get(f"{base_url}/readyz")
    assert response.status_code == 503
    assert SECRET not in response.text and "***" in response.json()["detail"]["channel_polled"]
