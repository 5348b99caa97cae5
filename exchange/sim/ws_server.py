"""Bitget's public V2 WebSocket (ticker channel) for the simulator, on a small RFC 6455 server.

The standard library has no WebSocket server, so this implements just what a client needs: the HTTP upgrade
handshake, masked client frames (text, continuation, ping, pong, close), unmasked server text frames, and
Bitget's text ``ping`` -> ``pong`` keep-alive. Ticker pushes go out on every published price change.

Faults come from the engine's ``FaultPlan``: ``drop_ws`` (close every connection now), ``refuse_ws`` (503 at
the upgrade), ``mute_ws`` (no pushes on open sockets), ``ignore_ws_pings``, ``drop_ws_randomly`` (seeded),
plus the engine-wide ``stale_prices`` and ``jump_price``. Counters (``connections_accepted``,
``connections_refused``, ``pings_received``) and ``subscribed_symbols()`` let tests see what clients did.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import socket
import socketserver
import struct
import threading
from typing import Any

from exchange.sim.api import fmt
from exchange.sim.engine import PriceSnapshot, SimExchange

log = logging.getLogger(__name__)

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WS_PATHS = ("/v2/ws/public", "/v2/ws/private")
MAX_FRAME_BYTES = 1 << 20
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class _Closed(Exception):
    """The peer closed, sent garbage, or the fault plan dropped the connection."""


class WsConnection:
    def __init__(self, sock: socket.socket, serial: int = 0) -> None:
        self.sock = sock
        self.serial = serial  # accept order: pushes (and seeded drop draws) go in this order
        self._send_lock = threading.Lock()
        self.subscriptions: dict[str, dict[str, str]] = {}  # instId -> the arg the client sent
        self.closed = threading.Event()

    # ---- frames ------------------------------------------------------------------------------------------
    def _read_exact(self, count: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < count:
            chunk = self.sock.recv(count - len(chunks))
            if not chunk:
                raise _Closed("peer closed")
            chunks.extend(chunk)
        return bytes(chunks)

    def read_frame(self) -> tuple[bool, int, bytes]:
        first, second = self._read_exact(2)
        fin, opcode, masked, length = bool(first & 0x80), first & 0x0F, bool(second & 0x80), second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read_exact(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read_exact(8))
        if length > MAX_FRAME_BYTES:
            raise _Closed("frame too large")
        if not masked:
            raise _Closed("client frames must be masked (RFC 6455 5.1)")
        mask = self._read_exact(4)
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self._read_exact(length)))
        return fin, opcode, payload

    def send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytearray([0x80 | opcode])
        if len(payload) < 126:
            header.append(len(payload))
        elif len(payload) < 1 << 16:
            header.append(126)
            header.extend(struct.pack("!H", len(payload)))
        else:
            header.append(127)
            header.extend(struct.pack("!Q", len(payload)))
        with self._send_lock:
            if self.closed.is_set():
                return
            try:
                self.sock.sendall(bytes(header) + payload)
            except OSError:
                self.drop()

    def send_text(self, text: str) -> None:
        self.send_frame(OP_TEXT, text.encode("utf-8"))

    def send_json(self, message: dict[str, Any]) -> None:
        self.send_text(json.dumps(message, separators=(",", ":")))

    def drop(self) -> None:
        """Close the TCP connection without a close frame, like a network failure."""
        self.closed.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


def ticker_push(snapshot: PriceSnapshot, arg: dict[str, str]) -> dict[str, Any]:
    return {
        "action": "snapshot",
        "arg": arg,
        "data": [
            {
                "instId": snapshot.symbol,
                "lastPr": fmt(snapshot.last),
                "bidPr": fmt(snapshot.bid),
                "askPr": fmt(snapshot.ask),
                "bidSz": "1",
                "askSz": "1",
                "markPrice": fmt(snapshot.mark),
                "indexPrice": fmt(snapshot.index),
                "fundingRate": "0.0001",
                "symbol": snapshot.symbol,
                "ts": str(snapshot.ts),
            }
        ],
        "ts": snapshot.ts,
    }


class SimWsServer:
    """``ws://host:port/v2/ws/public``: subscribe to ``ticker`` for any simulated USDT-FUTURES symbol."""

    def __init__(self, engine: SimExchange, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.engine = engine
        self.host = host
        self.port = port
        self._server: socketserver.ThreadingTCPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[WsConnection] = set()
        self._lock = threading.Lock()
        self.connections_accepted = 0
        self.connections_refused = 0
        self.pings_received = 0

    def __repr__(self) -> str:
        return f"SimWsServer(url={self.url!r})"

    @property
    def url(self) -> str:
        if self._server is None:
            return ""
        host, port = self._server.server_address[:2]
        return f"ws://{host!s}:{port}/v2/ws/public"

    def start(self) -> str:
        if self._server is not None:
            return self.url
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer._serve(self.request)

        server = socketserver.ThreadingTCPServer((self.host, self.port), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self.engine.add_price_listener(self._on_price)
        self.engine.faults.register_ws_dropper(self.drop_all)
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="sim-ws", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self.engine.remove_price_listener(self._on_price)
        self.engine.faults.unregister_ws_dropper(self.drop_all)
        server.shutdown()
        server.server_close()
        self.drop_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def connection_count(self) -> int:
        with self._lock:
            return len(self._connections)

    def subscribed_symbols(self) -> list[set[str]]:
        """The ticker symbols of each open connection."""
        with self._lock:
            return [set(c.subscriptions) for c in self._connections if not c.closed.is_set()]

    def drop_all(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.drop()

    # ---- per connection ----------------------------------------------------------------------------------
    def _serve(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self._handshake(sock):
            return
        with self._lock:
            connection = WsConnection(sock, self.connections_accepted)
            self._connections.add(connection)
        try:
            self._read_loop(connection)
        except (_Closed, OSError):
            pass
        finally:
            connection.closed.set()
            with self._lock:
                self._connections.discard(connection)
            with contextlib.suppress(OSError):
                sock.close()

    def _handshake(self, sock: socket.socket) -> bool:
        request = bytearray()
        while b"\r\n\r\n" not in request:
            chunk = sock.recv(4096)
            if not chunk or len(request) > 16384:
                return False
            request.extend(chunk)
        head = request.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        parts = head[0].split(" ")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
        path = parts[1].split("?", 1)[0] if len(parts) >= 2 else ""
        key = headers.get("sec-websocket-key", "")
        if parts[0] != "GET" or path not in WS_PATHS or headers.get("upgrade", "").lower() != "websocket" or not key:
            sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return False
        if self.engine.faults.ws_refuse_connection():
            with self._lock:
                self.connections_refused += 1
            sock.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return False
        with self._lock:
            self.connections_accepted += 1
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        sock.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        return True

    def _read_loop(self, connection: WsConnection) -> None:
        fragments = bytearray()
        while not connection.closed.is_set():
            fin, opcode, payload = connection.read_frame()
            if opcode == OP_CLOSE:
                connection.send_frame(OP_CLOSE, payload[:2])
                return
            if opcode == OP_PING:
                connection.send_frame(OP_PONG, payload)
                continue
            if opcode == OP_PONG:
                continue
            if opcode in (OP_TEXT, OP_BINARY, OP_CONT):
                fragments.extend(payload)
                if not fin:
                    continue
                message, fragments = bytes(fragments), bytearray()
                self._on_message(connection, message.decode("utf-8", errors="replace"))
                continue
            raise _Closed(f"unknown opcode {opcode}")

    def _on_message(self, connection: WsConnection, text: str) -> None:
        if text.strip() == "ping":
            with self._lock:
                self.pings_received += 1
            if not self.engine.faults.ws_pings_ignored():
                connection.send_text("pong")  # Bitget's keep-alive convention
            return
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            connection.send_json({"event": "error", "code": 30016, "msg": "Param error: not JSON"})
            return
        op = message.get("op") if isinstance(message, dict) else None
        args = message.get("args") if isinstance(message, dict) else None
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list):
            connection.send_json({"event": "error", "code": 30016, "msg": f"Param error: op {op!r}"})
            return
        for arg in args:
            if not self._valid_arg(arg):
                described = (
                    ",".join(f"{k}:{arg.get(k)}" for k in ("instType", "channel", "instId"))
                    if isinstance(arg, dict)
                    else str(arg)
                )
                connection.send_json({"event": "error", "code": 30001, "msg": f"{described} doesn't exist"})
                continue
            symbol = arg["instId"].upper()
            if op == "subscribe":
                connection.subscriptions[symbol] = arg
                connection.send_json({"event": "subscribe", "arg": arg})
                if not self.engine.faults.ws_muted():
                    connection.send_json(ticker_push(self.engine.ticker(symbol), arg))
            else:
                connection.subscriptions.pop(symbol, None)
                connection.send_json({"event": "unsubscribe", "arg": arg})

    def _valid_arg(self, arg: Any) -> bool:
        return (
            isinstance(arg, dict)
            and str(arg.get("instType", "")).upper() == "USDT-FUTURES"
            and arg.get("channel") == "ticker"
            and str(arg.get("instId", "")).upper() in self.engine.contracts
        )

    def _on_price(self, snapshot: PriceSnapshot) -> None:
        faults = self.engine.faults
        if faults.ws_muted():
            return
        with self._lock:
            connections = sorted(self._connections, key=lambda c: c.serial)
        for connection in connections:
            arg = connection.subscriptions.get(snapshot.symbol)
            if arg is None:
                continue
            if faults.ws_drop_on_push():
                connection.drop()
                continue
            connection.send_json(ticker_push(snapshot, arg))
