"""Bitget V2 public WebSocket: ticker pushes (last / bid / ask / mark / index).

``parse_ticker_push`` is pure and total: any text frame gives a list of tickers, ``None`` for frames that
carry no tickers (pong, acks, other channels), or :class:`WsError` for an explicit error event. Malformed
frames never raise anything else.

``TickerStream`` owns one connection thread: subscribe, text ``ping`` every ``ping_interval``, reconnect with
capped jittered backoff (reset after a healthy connection), resubscribe, and a stale watchdog that recycles a
connection from which no ticker arrived for ``stale_after`` seconds. REST stays the source of truth; this
only makes prices arrive sooner.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import websocket

from exchange.bitget.errors import MalformedResponse
from exchange.bitget.models import Ticker
from exchange.bitget.ratelimit import Backoff

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
        message: Any = json.loads(text)
    except ValueError:
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
OnState = Callable[[str], None]  # "connecting" | "connected" | "stale" | "disconnected" | "stopped"


class TickerStream:
    """Background thread keeping a ticker subscription alive. Call ``start()`` then ``stop()``."""

    def __init__(
        self,
        url: str,
        symbols: Iterable[str],
        on_ticker: OnTicker,
        on_state: OnState | None = None,
        *,
        inst_type: str = "USDT-FUTURES",
        ping_interval: float = 25.0,
        stale_after: float = 60.0,
        backoff: Backoff | None = None,
        connect_timeout: float = 10.0,
        on_error: Callable[[WsError], None] | None = None,
    ) -> None:
        self.url = url
        self.symbols = tuple(dict.fromkeys(symbols))
        if not self.symbols:
            raise ValueError("subscribe to at least one symbol")
        self.inst_type = inst_type
        self.ping_interval = ping_interval
        self.stale_after = stale_after
        self.connect_timeout = connect_timeout
        self._on_ticker = on_ticker
        self._on_state = on_state
        self._on_error = on_error
        self._backoff = backoff or Backoff(base=1.0, cap=60.0, sleep=lambda s: None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ws: websocket.WebSocket | None = None
        self._ws_lock = threading.Lock()
        self.connected = threading.Event()
        self.last_ticker_at: float | None = None

    # ---------------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(target=self._run, name="bitget-ticker-ws", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._close_socket()
        if self._thread is not None:
            self._thread.join(timeout)

    def _state(self, state: str) -> None:
        if self._on_state is None:
            return
        try:
            self._on_state(state)
        except Exception:
            log.exception("ws on_state hook failed")

    def _close_socket(self) -> None:
        with self._ws_lock:
            ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.close()
            except Exception:  # closing a broken socket may itself fail; nothing to do
                log.debug("ws close failed", exc_info=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._state("connecting")
            healthy = False
            try:
                healthy = self._session()
            except Exception as exc:  # network errors of any kind end this session, never the thread
                log.warning("ws session ended: %s", type(exc).__name__)
            finally:
                self.connected.clear()
                self._close_socket()
            if self._stop.is_set():
                break
            self._state("disconnected")
            if healthy:
                self._backoff.reset()
            delay = self._backoff.next_delay()
            self._stop.wait(delay)
        self._state("stopped")

    def _session(self) -> bool:
        """One connection. Returns True if it delivered tickers (so the backoff resets)."""
        ws = websocket.create_connection(self.url, timeout=self.connect_timeout)
        with self._ws_lock:
            if self._stop.is_set():
                ws.close()
                return False
            self._ws = ws
        ws.settimeout(min(1.0, self.ping_interval))  # short reads so ping / stale / stop are checked often
        ws.send(subscribe_message(self.symbols, self.inst_type))
        self.connected.set()
        self._state("connected")
        got_ticker = False
        last_ping = last_data = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now - last_ping >= self.ping_interval:
                ws.send("ping")
                last_ping = now
            if now - last_data >= self.stale_after:
                self._state("stale")
                return got_ticker
            try:
                opcode, frame = ws.recv_data()
            except websocket.WebSocketTimeoutException:
                continue
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return got_ticker  # the server closes every 24 h, or when it misses our pings
            if opcode not in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
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
            got_ticker = True
            last_data = time.monotonic()
            self.last_ticker_at = last_data
            for ticker in tickers:
                try:
                    self._on_ticker(ticker)
                except Exception:
                    log.exception("ws on_ticker hook failed")
        return got_ticker
