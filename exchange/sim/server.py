"""A loopback HTTP server speaking Bitget's V2 mix REST protocol in front of a :class:`SimExchange`.

Private endpoints verify ``ACCESS-KEY``, ``ACCESS-PASSPHRASE``, ``ACCESS-TIMESTAMP`` (window) and
``ACCESS-SIGN`` exactly like the exchange (signature over the query string as sent, or the raw body).
Business errors answer HTTP 400 with ``{"code","msg","requestTime","data":null}``; rate limits answer 429.
Credentials never appear in logs, replies or reprs.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from exchange.bitget.signing import sign
from exchange.sim import admin as sim_admin
from exchange.sim.api import ROUTES_BY_PATH, Route, dispatch
from exchange.sim.engine import SimExchange
from exchange.sim.errors import SimError
from exchange.sim.faults import endpoint_key
from exchange.sim.models import LoggedRequest

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


class RateLimiter:
    """Sliding one-second window per (endpoint, caller); endpoints are counted separately, as on Bitget."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._hits: dict[tuple[str, str], deque[float]] = {}

    def allow(self, endpoint: str, caller: str, per_second: int) -> bool:
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault((endpoint, caller), deque())
            while hits and now - hits[0] >= 1.0:
                hits.popleft()
            if len(hits) >= per_second:
                return False
            hits.append(now)
            return True


class _Reply(Exception):
    """Short-circuit a request with a ready envelope."""

    def __init__(self, http_status: int, code: str, msg: str) -> None:
        super().__init__(code)
        self.http_status = http_status
        self.code = code
        self.msg = msg


class SimServer:
    def __init__(
        self,
        engine: SimExchange,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "sim-key",
        api_secret: str = "sim-secret",
        passphrase: str = "sim-pass",
        timestamp_window_ms: int = 30_000,
        rate_limits: bool = True,
        rate_limit_overrides: dict[str, int] | None = None,
        demo: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        admin: bool = False,
    ) -> None:
        self.engine = engine
        self.host = host
        self.port = port
        self._api_key = api_key
        self._api_secret = api_secret
        self._passphrase = passphrase
        self.timestamp_window_ms = timestamp_window_ms
        self.rate_limits = rate_limits
        self._rate_overrides = {endpoint_key(k): v for k, v in (rate_limit_overrides or {}).items()}
        self.demo = demo  # True: require ``paptrading: 1``; False: refuse it; None: accept either
        self.admin = admin  # serve the unauthenticated /_sim/ admin endpoints (exchange/sim/admin.py)
        self._limiter = RateLimiter(clock)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()

    def __repr__(self) -> str:
        return f"SimServer(base_url={self.base_url!r})"  # never the credentials

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            return ""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        if self._httpd is not None:
            return self.base_url
        handler = type("BoundSimHandler", (_Handler,), {"sim": self})
        httpd = ThreadingHTTPServer((self.host, self.port), handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False  # a handler held by a latency fault must not block stop()
        self._httpd = httpd
        self.stopping.clear()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="sim-http", daemon=True
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self.stopping.set()  # wakes handlers sleeping in latency / delayed-reply faults
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SimServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- request processing (called from handler threads) -------------------------------------------------
    def authenticate(self, method: str, path: str, raw_query: str, body: str, headers: Any) -> None:
        key = headers.get("ACCESS-KEY")
        signature = headers.get("ACCESS-SIGN")
        timestamp = headers.get("ACCESS-TIMESTAMP")
        passphrase = headers.get("ACCESS-PASSPHRASE")
        if not key:
            raise _Reply(400, "40001", "ACCESS_KEY cannot be empty")
        if not signature:
            raise _Reply(400, "40002", "ACCESS_SIGN cannot be empty")
        if not timestamp:
            raise _Reply(400, "40003", "ACCESS_TIMESTAMP cannot be empty")
        if not passphrase:
            raise _Reply(400, "40011", "ACCESS_PASSPHRASE cannot be empty")
        if not timestamp.isdigit():
            raise _Reply(400, "40005", "Invalid ACCESS_TIMESTAMP")
        if abs(self.engine.now_ms() - int(timestamp)) > self.timestamp_window_ms:
            raise _Reply(400, "40008", "Request timestamp expired")
        if not hmac.compare_digest(key.encode(), self._api_key.encode()):
            raise _Reply(400, "40006", "Invalid ACCESS_KEY")
        if not hmac.compare_digest(passphrase.encode(), self._passphrase.encode()):
            raise _Reply(400, "40012", "apikey/password is incorrect")
        expected = sign(self._api_secret, timestamp, method, path, raw_query, body)
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            raise _Reply(400, "40009", "sign signature error")
        paptrading = headers.get("paptrading")
        if self.demo is True and paptrading != "1":
            raise _Reply(400, "40099", "exchange environment is incorrect")
        if self.demo is False and paptrading:
            raise _Reply(400, "40099", "exchange environment is incorrect")

    def check_rate(self, route: Route, caller: str) -> None:
        if not self.rate_limits:
            return
        limit = self._rate_overrides.get(route.endpoint, route.per_second)
        if not self._limiter.allow(route.endpoint, caller, limit):
            raise _Reply(429, "429", "Too Many Requests")


def _envelope(code: str, msg: str, data: Any, request_time: int) -> bytes:
    body = {"code": code, "msg": msg, "requestTime": request_time, "data": data}
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    sim: SimServer
    protocol_version = "HTTP/1.1"
    server_version = "BitgetSim/1.0"

    def setup(self) -> None:
        super().setup()
        # Headers and body are separate writes; without NODELAY Nagle + delayed ACK add ~40 ms a call.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("sim http %s", format % args)  # request line only: headers (credentials) are not logged

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def _handle(self, method: str) -> None:
        sim, engine = self.sim, self.sim.engine
        split = urlsplit(self.path)
        path, raw_query = split.path, split.query
        if sim.admin and path.startswith(sim_admin.ADMIN_PREFIX):
            self._handle_admin(method, path, raw_query)
            return
        route = ROUTES_BY_PATH.get(path)
        params: dict[str, Any] = {}
        status, code = 200, "00000"
        try:
            body = self._read_body()
            if route is None:
                raise _Reply(404, "40404", "Request URL NOT FOUND")
            if route.method != method:
                raise _Reply(405, "40404", f"Request method {method} not supported for {path}")
            params = self._parse_params(method, raw_query, body)
            caller = self.client_address[0]
            if route.private:
                sim.authenticate(method, path, raw_query, body, self.headers)
                caller = self.headers.get("ACCESS-KEY", caller)
            sim.check_rate(route, caller)
            delay = engine.faults.latency_for(route.endpoint)
            if delay and sim.stopping.wait(delay):
                return
            failure = engine.faults.before_request(route.endpoint)
            if failure is not None:
                raise _Reply(failure.http_status, failure.code, failure.msg)
            try:
                data = dispatch(engine, route, params)
            except SimError as error:
                raise _Reply(error.http_status, error.code, error.msg) from None
            after = engine.faults.after_accept(route.endpoint)
            if after is not None:
                engine.record_request(LoggedRequest(method, path, route.endpoint, params, 0, "accepted"))
                if after.body is not None:
                    self._send(200, after.body)
                    return
                if after.delay_s is None or sim.stopping.wait(after.delay_s):
                    self._drop_connection()
                    return
                self._send(200, _envelope("00000", "success", data, engine.now_ms()))
                return  # already logged as accepted
            answer = _envelope("00000", "success", data, engine.now_ms())
        except _Reply as reply:
            status, code = reply.http_status, reply.code
            answer = _envelope(reply.code, reply.msg, None, engine.now_ms())
        except Exception:
            log.exception("simulator failed on %s %s", method, path)
            status, code = 500, "50000"
            answer = _envelope("50000", "Internal Server Error", None, engine.now_ms())
        # Logged before the reply goes out, so a caller holding the answer always finds its request logged.
        engine.record_request(LoggedRequest(method, path, endpoint_key(path), params, status, code))
        self._send(status, answer)

    def _handle_admin(self, method: str, path: str, raw_query: str) -> None:
        """A /_sim/ call: never rate-limited, faulted or logged as an exchange request."""
        try:
            params = self._parse_params(method, raw_query, self._read_body())
        except _Reply as reply:
            status, data = 400, {"error": reply.msg}
        else:
            status, data = sim_admin.handle(self.sim.engine, method, path, params)
        self._send(status, json.dumps(data, separators=(",", ":")).encode("utf-8"))

    def _read_body(self) -> str:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise _Reply(413, "40017", "Parameter verification failed: body too large")
        return self.rfile.read(length).decode("utf-8", errors="replace") if length else ""

    @staticmethod
    def _parse_params(method: str, raw_query: str, body: str) -> dict[str, Any]:
        params: dict[str, Any] = dict(parse_qsl(raw_query, keep_blank_values=True))
        if method == "POST" and body.strip():
            try:
                parsed = json.loads(body)
            except json.JSONDecodeError:
                raise _Reply(400, "40017", "Parameter verification failed: body is not valid JSON") from None
            if not isinstance(parsed, dict):
                raise _Reply(400, "40017", "Parameter verification failed: body must be a JSON object")
            params.update(parsed)
        return params

    def _send(self, status: int, payload: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True  # the client went away; nothing left to tell it

    def _drop_connection(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
