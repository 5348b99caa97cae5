"""Bitget V2 public WebSocket: ticker pushes (last / bid / ask / mark / index).

``parse_ticker_push`` is pure and total: any text frame gives a list of tickers, ``None`` for frames that
carry no tickers (pong, acks, other channels), or :class:`WsError` for an explicit error event. Malformed
frames never raise anything else.

``TickerStream`` owns one connection thread: subscribe (symbols may be added and removed while connected),
text ``ping`` every ``ping_interval`` (a missing ``pong`` ends the connection), reconnect with capped jittered
backoff (reset after a healthy connection) and resubscribe every watched symbol, and a stale watchdog that
recycles a connection from which no ticker arrived for ``stale_after`` seconds. Only this thread touches the
socket; callers talk to it through ``watch``/``unwatch`` and hear back through the callbacks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import websocket

from exchange.bitget.errors import MalformedResponse
from exchange.bitget.feed_state import ReconnectBackoff
from exchange.bitget.models import Ticker

log = logging.getLogger(__name__)

PUBLIC_URL = "wss://ws.bitget.com/v2/ws/public"
DEMO_PUBLIC_URL = "wss://wspap.bitget.com/v2/ws/public"


class WsError(Exception):
    """An ``{"event":"error"}`` frame (bad subscription, bad instId, ...)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message[:300]
        super().__init__(f"bitget ws {code}: {self.message}")


def subscribe_message(
    symbols: Iterable[str], inst_type: str = "USDT-FUTURES", *, op: str = "subscribe"
) -> str:
    args = [{"instType": inst_type, "channel": "ticker", "instId": symbol} for symbol in symbols]
    return json.dumps({"op": op, "args": args}, separators=(",", ":"))


def is_pong(raw: str | bytes) -> bool:
    """Bitget's keep-alive answer: a bare ``pong`` (documented), or ``{"message"|"data": "pong"}`` (SDKs)."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    text = raw.strip()
    if text == "pong":
        return True
    if not text.startswith("{") or "pong" not in text:
        return False
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return isinstance(message, dict) and "pong" in (message.get("message"), message.get("data"))


def parse_ticker_push(raw: str | bytes) -> list[Ticker] | None:
    """Tickers in a frame, or None when the frame has none. Raises :class:`WsError` on error events.

    Rows that fail to parse are skipped (logged); one bad row never hides the good ones.
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            log.warning("ws: non-UTF-8 frame ignored")
            return None
    text = raw.strip()
    if not text or text == "pong":
        return None
    try:
        message: Any = json.loads(text, parse_float=Decimal)  # prices stay exact
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        log.warning("ws: non-JSON frame ignored: %.80s", text)
        return None
    if not isinstance(message, dict):
        return None
    if message.get("event") == "error":
        raise WsError(str(message.get("code", "")), str(message.get("msg", "")))
    if message.get("event") is not None or message.get("message") == "pong" or message.get("data") == "pong":
        return None  # subscribe/unsubscribe acks, login, pong variants
    arg = message.get("arg")
    if not isinstance(arg, dict) or arg.get("channel") != "ticker":
        return None
    rows = message.get("data")
    if not isinstance(rows, list):
        return None
    tickers: list[Ticker] = []
    for row in rows:
        if isinstance(row, dict) and "instId" not in row and "symbol" not in row and arg.get("instId"):
            row = {**row, "instId": arg["instId"]}
        try:
            tickers.append(Ticker.from_api(row, "ws:ticker"))
        except MalformedResponse as exc:
            log.warning("ws: skipping malformed ticker row: %s", exc)
    return tickers


OnTicker = Callable[[Ticker], None]
# (state, detail); state is "connecting" | "connected" | "stale" | "disconnected" | "stopped".
OnState = Callable[[str, str], None]


class TickerStream:
    """Background thread keeping a ticker subscription alive. ``start()``, ``watch()``..., then ``stop()``.

    Intervals are parameters so tests run in fractions of a second; the defaults follow Bitget's rules
    (text ping every 30 s, the server drops a client silent for 2 minutes).
    """

    def __init__(
        self,
        url: str,
        on_ticker: OnTicker,
        on_state: OnState | None = None,
        *,
        symbols: Iterable[str] = (),
        inst_type: str = "USDT-FUTURES",
        ping_interval: float = 30.0,
        pong_timeout: float = 10.0,
        stale_after: float = 60.0,
        backoff: ReconnectBackoff | None = None,
        connect_timeout: float = 10.0,
        poll_interval: float = 0.1,
        on_error: Callable[[WsError], None] | None = None,
    ) -> None:
        if min(ping_interval, pong_timeout, stale_after, connect_timeout, poll_interval) <= 0:
            raise ValueError("intervals must be positive")
        self.url = url
        self.inst_type = inst_type
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.stale_after = stale_after
        self.connect_timeout = connect_timeout
        # How often the thread wakes from a read to send pings, apply watch changes and check for stop.
        self.poll_interval = min(poll_interval, ping_interval, stale_after)
        self._on_ticker = on_ticker
        self._on_state = on_state
        self._on_error = on_error
        self._backoff = backoff or ReconnectBackoff()
        self._lock = threading.Lock()
        self._wanted: dict[str, None] = dict.fromkeys(symbols)  # ordered set
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        # Counters for metrics and tests (written by the stream thread only).
        self.sessions = 0
        self.pings_sent = 0
        self.pongs_received = 0
        self.last_ticker_at: float | None = None

    # --- the caller's side -------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(target=self._run, name="bitget-ticker-ws", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection and join the thread (it notices within ``poll_interval``)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def watch(self, symbol: str) -> None:
        """Subscribe ``symbol`` now if connected, and on every reconnect."""
        with self._lock:
            self._wanted[symbol] = None

    def unwatch(self, symbol: str) -> None:
        with self._lock:
            self._wanted.pop(symbol, None)

    @property
    def symbols(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._wanted)

    # --- the stream thread ---------------------------------------------------------------------------
    def _state(self, state: str, detail: str = "") -> None:
        if self._on_state is None:
            return
        try:
            self._on_state(state, detail)
        except Exception:
            log.exception("ws on_state hook failed")

    def _run(self) -> None:
        while not self._stop.is_set():
            self._state("connecting")
            healthy, reason = False, ""
            try:
                healthy, reason = self._session()
            except Exception as exc:  # network errors of any kind end this session, never the thread
                reason = f"{type(exc).__name__}: {str(exc)[:120]}"
            finally:
                self.connected.clear()
            if self._stop.is_set():
                break
            log.info("ticker ws disconnected: %s", reason)
            self._state("disconnected", reason)
            if healthy:
                self._backoff.reset()
            self._stop.wait(self._backoff.next_delay())
        self._state("stopped")

    def _session(self) -> tuple[bool, str]:
        """One connection. Returns (healthy, why it ended); healthy means the server answered us."""
        ws = websocket.create_connection(self.url, timeout=self.connect_timeout)
        try:
            return self._converse(ws)
        finally:
            with contextlib.suppress(Exception):  # closing a broken socket may itself fail; nothing to do
                ws.close(timeout=1)

    def _converse(self, ws: websocket.WebSocket) -> tuple[bool, str]:
        ws.settimeout(self.poll_interval)
        subscribed: set[str] = set()
        healthy = False
        now = time.monotonic()
        last_ping = expect_since = now
        awaiting_pong_since: float | None = None
        last_ticker: float | None = None
        self.sessions += 1
        first = True
        while not self._stop.is_set():
            wanted = self.symbols
            added = [s for s in wanted if s not in subscribed]
            removed = sorted(subscribed.difference(wanted))
            if added:
                if not subscribed:
                    expect_since = time.monotonic()  # a push is due within stale_after from now
                ws.send(subscribe_message(added, self.inst_type))
                subscribed.update(added)
            if removed:
                ws.send(subscribe_message(removed, self.inst_type, op="unsubscribe"))
                subscribed.difference_update(removed)
            if first:
                first = False
                self.connected.set()
                self._state("connected")
            now = time.monotonic()
            if now - last_ping >= self.ping_interval:
                ws.send("ping")
                self.pings_sent += 1
                last_ping = now
                if awaiting_pong_since is None:
                    awaiting_pong_since = now
            if awaiting_pong_since is not None and now - awaiting_pong_since >= self.pong_timeout:
                return healthy, f"no pong within {self.pong_timeout:g}s"
            if subscribed and now - max(expect_since, last_ticker or expect_since) >= self.stale_after:
                self._state("stale", f"no ticker for {self.stale_after:g}s")
                return healthy, "stale"
            try:
                opcode, frame = ws.recv_data()
            except websocket.WebSocketTimeoutException:
                continue
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return healthy, "closed by the server"  # every 24 h, or when it missed our pings
            if opcode not in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                continue
            if is_pong(frame):
                self.pongs_received += 1
                awaiting_pong_since = None
                healthy = True
                continue
            try:
                tickers = parse_ticker_push(frame)
            except WsError as exc:
                log.warning("ws error event: %s", exc)
                if self._on_error is not None:
                    self._on_error(exc)
                continue
            if not tickers:
                continue
            healthy = True
            last_ticker = self.last_ticker_at = time.monotonic()
            for ticker in tickers:
                if ticker.symbol not in subscribed:
                    continue  # a push racing an unsubscribe
                try:
                    self._on_ticker(ticker)
                except Exception:
                    log.exception("ws on_ticker hook failed")
        return healthy, "stopped"
