"""The health HTTP server: /healthz (liveness), /readyz (readiness), /metrics (Prometheus), and /positions (the
open positions with their stops and targets left, for ``following status``).

Liveness means "the supervisor loop made progress recently" (see ``actors.base.ProgressWatch``), not merely "the
process is alive". Readiness means "safe to trade": exchange reachable, startup reconciliation done, every
open position protected... The callables decide; this module only serves their verdicts.

A check that raises answers 503 with a generic message: exception texts can carry URLs, keys or payloads,
so they are neither served nor logged (only the exception type is logged). What a check returns is served through
the process's secret scrubber (its details quote errors).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from exchange.redact import scrub
from ops.metrics import Metrics

log = logging.getLogger(__name__)

Check = Callable[[], tuple[bool, dict[str, Any]]]
CHECK_FAILED_MESSAGE = "check failed"


def _failing_names(detail: Mapping[str, Any]) -> list[str] | None:
    """Names of failing checks when the detail holds a ``checks`` mapping of name -> bool."""
    checks = detail.get("checks")
    if not isinstance(checks, Mapping):
        return None
    return [str(name) for name, passed in checks.items() if not passed]


METRICS_MAX_AGE_S = 1.0  # /metrics is rendered at most once a second, however often it is scraped
MAX_HANDLER_THREADS = 8  # requests beyond this many at once are turned away (503), not given a thread each


class PortUnavailable(RuntimeError):
    """The health server cannot listen where the config says (the port is taken, or not ours to bind)."""


class _BoundedServer(ThreadingHTTPServer):
    """A thread per request, but never more than ``MAX_HANDLER_THREADS`` at once: a flood of scrapes cannot
    take the CPU from the trading loop. A peer that hangs up early is no error worth a traceback."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._slots = threading.BoundedSemaphore(MAX_HANDLER_THREADS)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\n\r\n")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("health client %s went away: %s", client_address, type(error).__name__)
            return
        log.warning("health request failed: %s", type(error).__name__)


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
        self._bound: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._metrics_lock = threading.Lock()
        self._metrics_cache: tuple[float, bytes] | None = None  # (monotonic time rendered, payload)

    def bind(self) -> tuple[str, int]:
        """Take the port now (serving starts with ``start``): a port already in use is found before anything
        else starts. Raises ``PortUnavailable`` naming host and port."""
        with self._lock:
            if self._bound is None and self._server is None:
                try:
                    self._bound = _BoundedServer((self._host, self._port), self._handler_class())
                except OSError as exc:
                    why = "it is already in use (another instance running?)" if exc.errno == errno.EADDRINUSE \
                        else (exc.strerror or type(exc).__name__)
                    raise PortUnavailable(
                        f"the health server cannot listen on {self._host}:{self._port}: {why}; stop the other "
                        f"program or set monitor.health.port to a free port") from None
            server = self._bound or self._server
            assert server is not None
            host, port = server.server_address[:2]
            return str(host), int(port)

    def start(self) -> tuple[str, int]:
        """Bind (unless ``bind`` did) and serve; returns the bound (host, port) (useful with port 0)."""
        self.bind()
        with self._lock:
            if self._server is not None:
                raise RuntimeError("health server already started")
            server, self._bound = self._bound, None
            assert server is not None
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
            bound, self._bound = self._bound, None
        if bound is not None:
            bound.server_close()
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

    def _rendered_metrics(self) -> bytes:
        """The metrics text, rendered at most once per ``METRICS_MAX_AGE_S``; concurrent scrapes share it."""
        with self._metrics_lock:
            now = time.monotonic()
            cached = self._metrics_cache
            if cached is not None and now - cached[0] < METRICS_MAX_AGE_S:
                return cached[1]
            payload = self._metrics.render()
            self._metrics_cache = (now, payload)
            return payload

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
                        payload = health._rendered_metrics()
                    except Exception as exc:
                        log.warning("metrics rendering raised %s", type(exc).__name__)
                        self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "metrics unavailable"})
                        return
                    self._send(HTTPStatus.OK, CONTENT_TYPE_LATEST, payload)
                else:
                    self._send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})

            def _send_json(self, status: int, body: dict[str, Any]) -> None:
                # A check's detail is free text (a poll's error, a reconciliation failure): scrubbed like a log line.
                payload = scrub(json.dumps(body, default=str, sort_keys=True)).encode()
                self._send(status, "application/json", payload)

            def _send(self, status: int, content_type: str, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the scraper hung up: nothing to tell anyone

            def log_message(self, format: str, *args: Any) -> None:
                """Silent: probes hit this every few seconds."""

        return Handler
