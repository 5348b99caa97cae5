"""The health HTTP server: /healthz (liveness), /readyz (readiness), /metrics (Prometheus), and /positions (the
open positions with their stops and targets left, for ``following status``).

Liveness means "the supervisor loop made progress recently" (see ``actors.base.ProgressWatch``), not merely "the
process is alive". Readiness means "safe to trade": exchange reachable, startup reconciliation done, every
open position protected... The callables decide; this module only serves their verdicts.

A check that raises answers 503 with a generic message: exception texts can carry URLs, keys or payloads,
so they are neither served nor logged (only the exception type is logged).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from actors.metrics import Metrics

log = logging.getLogger(__name__)

Check = Callable[[], tuple[bool, dict[str, Any]]]
CHECK_FAILED_MESSAGE = "check failed"


def _failing_names(detail: Mapping[str, Any]) -> list[str] | None:
    """Names of failing checks when the detail holds a ``checks`` mapping of name -> bool."""
    checks = detail.get("checks")
    if not isinstance(checks, Mapping):
        return None
    return [str(name) for name, passed in checks.items() if not passed]


class HealthServer:
    """Serves /healthz, /readyz and /metrics from a daemon thread."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        liveness: Check,
        readiness: Check,
        positions: Check | None = None,
    ) -> None:
        self._metrics = metrics
        self._host = host
        self._port = port
        self._liveness = liveness
        self._readiness = readiness
        self._positions = positions  # /positions: what `following status` shows (the bot's exchange view)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> tuple[str, int]:
        """Bind and serve; returns the bound (host, port) (useful with port 0)."""
        with self._lock:
            if self._server is not None:
                raise RuntimeError("health server already started")
            server = ThreadingHTTPServer((self._host, self._port), self._handler_class())
            server.daemon_threads = True
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="health-http", daemon=True
            )
            thread.start()
            self._server, self._thread = server, thread
            host, port = server.server_address[:2]
            return str(host), int(port)

    @property
    def address(self) -> tuple[str, int] | None:
        """The bound (host, port) while serving, else None."""
        with self._lock:
            if self._server is None:
                return None
            host, port = self._server.server_address[:2]
            return str(host), int(port)

    def stop(self) -> None:
        """Stop serving and release the port; a no-op when not started."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> HealthServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- request handling --------------------------------------------------------------------------
    def _probe(self, check: Check) -> tuple[int, dict[str, Any]]:
        try:
            ok, detail = check()
            body: dict[str, Any] = {"ok": bool(ok), **dict(detail)}
            failing = _failing_names(detail)
            if failing is not None:
                body["failing"] = failing
            json.dumps(body, default=str)  # fail here (generically), not halfway through the response
        except Exception as exc:
            log.warning("health check raised %s", type(exc).__name__)
            return HTTPStatus.SERVICE_UNAVAILABLE, {"ok": False, "error": CHECK_FAILED_MESSAGE}
        return (HTTPStatus.OK if body["ok"] else HTTPStatus.SERVICE_UNAVAILABLE), body

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        health = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # a stuck client must not hold a thread forever
            server_version = "following-health"
            sys_version = ""

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    self._send_json(*health._probe(health._liveness))
                elif path == "/readyz":
                    self._send_json(*health._probe(health._readiness))
                elif path == "/positions" and health._positions is not None:
                    self._send_json(*health._probe(health._positions))
                elif path == "/metrics":
                    try:
                        payload = health._metrics.render()
                    except Exception as exc:
                        log.warning("metrics rendering raised %s", type(exc).__name__)
                        self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "metrics unavailable"})
                        return
                    self._send(HTTPStatus.OK, CONTENT_TYPE_LATEST, payload)
                else:
                    self._send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})

            def _send_json(self, status: int, body: dict[str, Any]) -> None:
                payload = json.dumps(body, default=str, sort_keys=True).encode()
                self._send(status, "application/json", payload)

            def _send(self, status: int, content_type: str, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                """Silent: probes hit this every few seconds."""

        return Handler
