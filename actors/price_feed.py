"""PriceFeed: keeps prices of every watched symbol flowing to the guard, from the WebSocket or from REST.

With a WebSocket URL (``monitor.price_feed.mode: ws``) a :class:`TickerStream` thread holds the public ticker
subscription; that thread only *tells* this actor what happened (a ``PriceTick`` with source ``ws``, a
``TickerSocketChanged``). The rules in :mod:`exchange.bitget.feed_state` decide the state (ws | rest | stale)
and which symbols REST must poll: every ``interval_s`` tick polls exactly those (all of them while the socket
is down or silent, none while it pushes). Without a URL (mode ``rest``) REST is the only source.

The state goes to the metrics (one-hot gauge) and to the status board as the ``price_feed`` readiness fact.
When local_guard stops depend on this feed and it stays on a REST fallback past ``rest_grace_s``,
``local_guard_on_rest`` applies once per episode: ``safe_mode`` asks the Supervisor for SAFE, ``alert``
journals and notifies.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pykka

from actors.base import SupervisedActor
from actors.messages import PriceTick, Tick, TickerSocketChanged, WatchSymbol
from actors.ports import ExchangeFacts, Notices, PriceFeedExchange, Recipient, StatusBoard
from exchange.bitget.errors import BitgetError
from exchange.bitget.feed_state import FeedStateMachine, FeedView, ReconnectBackoff, feed_readiness
from exchange.bitget.models import Ticker
from exchange.bitget.ws import TickerStream
from ops.metrics import Metrics
from ops.repeats import RepeatedFailures
from runtime.config import PriceFeedConfig
from trading.journal import Journal
from trading.modes import Mode

log = logging.getLogger("following.prices")

EVENT_FALLBACK = "PRICE_FEED_FALLBACK"
SOCKET_DOWN_STATES = ("stale", "disconnected", "stopped")


@dataclass(frozen=True)
class PriceFeedSettings:
    """How the PriceFeed polls and holds its socket (``monitor.price_feed``), and what it serves."""

    interval_s: float
    stale_after_s: float
    ws_url: str | None = None  # None: REST only
    inst_type: str = "USDT-FUTURES"
    ping_interval_s: float = 30.0
    pong_timeout_s: float = 10.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    rest_grace_s: float = 10.0
    local_guard: bool = False  # the stops are the bot's own (local_guard): they live on these prices
    ws_required_for_local_guard: bool = False
    local_guard_on_rest: Literal["safe_mode", "alert"] = "safe_mode"
    jitter_seed: int | None = None

    @classmethod
    def from_config(cls, feed: PriceFeedConfig, *, ws_url: str | None, inst_type: str, local_guard: bool,
                    jitter_seed: int | None = None) -> PriceFeedSettings:
        return cls(
            interval_s=feed.interval_seconds, stale_after_s=feed.stale_after_seconds, ws_url=ws_url,
            inst_type=inst_type, ping_interval_s=feed.ping_interval_seconds,
            pong_timeout_s=feed.pong_timeout_seconds, backoff_base_s=feed.reconnect_backoff_base_seconds,
            backoff_max_s=feed.reconnect_backoff_max_seconds, rest_grace_s=feed.rest_grace_seconds,
            local_guard=local_guard, ws_required_for_local_guard=feed.ws_required_for_local_guard,
            local_guard_on_rest=feed.local_guard_on_rest, jitter_seed=jitter_seed,
        )


class PriceFeed(SupervisedActor):
    def __init__(
        self,
        *,
        name: str,
        supervisor: Recipient | None,
        mode: Mode = Mode.NORMAL,
        settings: PriceFeedSettings,
        client: PriceFeedExchange,
        metrics: Metrics,
        status: StatusBoard,
        subscribers: Sequence[Recipient] = (),
        journal: Journal | None = None,
        notifier: Notices | None = None,
        facts: ExchangeFacts | None = None,
    ) -> None:
        self._repeats = RepeatedFailures(log)  # an outage is said once, then counted
        super().__init__(name, supervisor, mode=mode)
        self._settings = settings
        self._client = client
        self._metrics = metrics
        self._status = status
        self._interval_s = settings.interval_s
        self._subscribers = list(subscribers)
        self._local_guard = settings.local_guard
        self._ws_required = settings.ws_required_for_local_guard
        self._on_rest_action = settings.local_guard_on_rest
        self._journal = journal
        self._notifier = notifier
        self._facts = facts  # every price received is a fact the RiskGate may decide on while it is fresh
        self._feed = FeedStateMachine(
            prefer_ws=settings.ws_url is not None, stale_after_s=settings.stale_after_s,
            fallback_grace_s=settings.rest_grace_s, now=time.monotonic(),
        )
        self._stream: TickerStream | None = None
        self._state: str | None = None
        self._alerted = False
        self._socket_was_up = False  # a later "connected" is a reconnect (counted)

    def on_started(self) -> None:
        settings = self._settings
        if settings.ws_url is not None:
            self._stream = TickerStream(
                settings.ws_url, self._socket_ticker, self._socket_state, inst_type=settings.inst_type,
                ping_interval=settings.ping_interval_s, pong_timeout=settings.pong_timeout_s,
                stale_after=settings.stale_after_s,
                backoff=ReconnectBackoff(base_s=settings.backoff_base_s, cap_s=settings.backoff_max_s,
                                         rng=random.Random(settings.jitter_seed)),
            )
            self._stream.start()
        self._watch_open_positions()
        self._publish(self._feed.evaluate(time.monotonic()))
        self.schedule_every(self._interval_s, Tick("prices"))

    def _watch_open_positions(self) -> None:
        """A restarted feed starts empty, and the guard announces only *new* positions: so watch every open
        position now (local_guard stops depend on these prices)."""
        try:
            positions = self._client.positions()
        except BitgetError as exc:
            log.info("open positions unreadable at start (%s); watching what the guard announces", exc.code)
            return
        for position in positions:
            if position.total > 0:
                self.handle(WatchSymbol(position.symbol))

    def on_stopped(self) -> None:
        if self._stream is not None:
            # Bounded: a connect in progress may hold the (daemon) thread up to its timeout; shutdown must not.
            self._stream.stop(timeout=2.0)

    # --- messages ----------------------------------------------------------------------------------
    def handle(self, message: Any) -> Any:
        now = time.monotonic()
        if isinstance(message, WatchSymbol):
            self._feed.watch(message.symbol, now)
            if self._stream is not None:
                self._stream.watch(message.symbol)
            return None  # judged at the next push or tick: the subscribe snapshot is usually milliseconds away
        if isinstance(message, PriceTick) and message.source == "ws":
            self._feed.ws_price(message.symbol, now)
            self._forward(message)
        elif isinstance(message, TickerSocketChanged):
            self._socket_changed(message, now)
        elif isinstance(message, Tick) and message.what == "prices":
            view = self._feed.evaluate(now)
            self._publish(view)
            self._poll(view.poll_symbols)
        else:
            return None
        self._publish(self._feed.evaluate(time.monotonic()))
        return None

    def _socket_changed(self, changed: TickerSocketChanged, now: float) -> None:
        if changed.state == "connected":
            self._feed.socket_up(now)
            if self._socket_was_up:
                self._metrics.price_feed_reconnects_total.inc()
            self._socket_was_up = True
            self._repeats.succeeded("price WebSocket")
            log.info("price WebSocket connected")
        elif changed.state in SOCKET_DOWN_STATES:
            self._feed.socket_down(now)
            if changed.state != "stopped":
                self._repeats.failed("price WebSocket", f"price WebSocket {changed.state}: {changed.detail}",
                                     level=logging.INFO)

    def _poll(self, symbols: tuple[str, ...]) -> None:
        if not symbols:
            return
        started = time.monotonic()
        for symbol in symbols:
            try:
                ticker = self._client.ticker(symbol)
            except BitgetError as exc:
                self._metrics.poll_error("price")
                self._repeats.failed(f"price of {symbol}", f"price of {symbol} unavailable: {exc.code}")
                continue
            self._repeats.succeeded(f"price of {symbol}")
            self._feed.rest_price(symbol, time.monotonic())
            self._forward(_tick(ticker, "rest"))
        self._metrics.observe_poll("price", time.monotonic() - started)

    def _forward(self, tick: PriceTick) -> None:
        if self._facts is not None:
            self._facts.put_price(tick.symbol, tick.mark or tick.last, time.time(), f"price_feed:{tick.source}")
        for subscriber in self._subscribers:
            subscriber.tell(tick)

    # --- state -------------------------------------------------------------------------------------
    def _publish(self, view: FeedView) -> None:
        if view.state != self._state:
            if self._state is not None:
                log.info("price feed %s -> %s", self._state, view.state)
            self._state = view.state
            self._metrics.set_price_feed_state(view.state)
            ok, detail = feed_readiness(view.state, local_guard=self._local_guard,
                                        ws_required_for_local_guard=self._ws_required)
            self._status.set("price_feed", ok, detail)
        if not self._local_guard:
            return
        if view.fallback_started:
            self._on_fallback(view)
        elif view.state == "ws" and self._alerted:
            self._alerted = False
            self._notify("PRICE_FEED_RECOVERED", "price feed back on WebSocket")

    def _on_fallback(self, view: FeedView) -> None:
        reason = f"local_guard stops on the REST price fallback (feed {view.state})"
        if self._journal is not None:
            self._journal.record_event(EVENT_FALLBACK, {"state": view.state, "action": self._on_rest_action})
        if self._on_rest_action == "safe_mode":
            log.warning("%s: requesting safe mode", reason)
            self.request_mode(Mode.SAFE, reason, "price_feed")
        else:
            self._alerted = True
            self._notify(EVENT_FALLBACK, reason)

    def _notify(self, kind: str, text: str) -> None:
        if self._notifier is not None:
            self._notifier.notify(kind, text)
        else:
            log.warning("%s: %s", kind, text)

    # --- called on the stream thread: only tell this actor -----------------------------------------
    def _socket_ticker(self, ticker: Ticker) -> None:
        self._tell_self_safely(_tick(ticker, "ws"))

    def _socket_state(self, state: str, detail: str) -> None:
        self._tell_self_safely(TickerSocketChanged(state, detail))

    def _tell_self_safely(self, message: Any) -> None:
        with contextlib.suppress(pykka.ActorDeadError):  # stopping: the stream is shut down with us
            self.actor_ref.tell(message)


def _tick(ticker: Ticker, source: str) -> PriceTick:
    return PriceTick(ticker.symbol, ticker.last, ticker.mark or ticker.last, ticker.ts, source)
