"""PriceFeed: keeps the last price of every watched symbol and passes ticks to the guard.

This version polls REST at ``interval_s``; the state it reports (``rest``, ``stale``) is what /readyz and
the metrics show.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from actors.base import SupervisedActor
from actors.messages import PriceTick, Tick, WatchSymbol
from exchange.bitget.errors import BitgetError

log = logging.getLogger("following.prices")


class PriceFeed(SupervisedActor):
    def __init__(
        self,
        *,
        client: Any,
        metrics: Any,
        status: Any,
        interval_s: float,
        stale_after_s: float,
        subscribers: list[Any] | None = None,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        self._client = client
        self._metrics = metrics
        self._status = status
        self._interval_s = interval_s
        self._stale_after_s = stale_after_s
        self._subscribers = list(subscribers or [])
        self._symbols: set[str] = set()
        self._last_ok = time.monotonic()

    def on_started(self) -> None:
        self._set_state("rest")
        self.schedule_every(self._interval_s, Tick("prices"))

    def handle(self, message: Any) -> Any:
        if isinstance(message, WatchSymbol):
            self._symbols.add(message.symbol)
        elif isinstance(message, Tick) and message.what == "prices":
            self._poll()
        return None

    def _poll(self) -> None:
        started = time.monotonic()
        for symbol in sorted(self._symbols):
            try:
                ticker = self._client.ticker(symbol)
            except BitgetError as exc:
                self._metrics.poll_errors.labels(source="price").inc()
                log.info("price of %s unavailable: %s", symbol, exc.code)
                continue
            self._last_ok = time.monotonic()
            tick = PriceTick(symbol, ticker.last, ticker.mark or ticker.last, ticker.ts, "rest")
            for subscriber in self._subscribers:
                subscriber.tell(tick)
        self._metrics.poll_seconds.labels(source="price").observe(time.monotonic() - started)
        if self._symbols and time.monotonic() - self._last_ok > self._stale_after_s:
            self._set_state("stale")
        else:
            self._set_state("rest")

    def _set_state(self, state: str) -> None:
        self._metrics.set_price_feed_state(state)
        self._status.set("price_feed", state != "stale", state)
