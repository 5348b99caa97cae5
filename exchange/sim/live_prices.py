"""Price the simulator from Bitget's public tickers when the network allows, else from its own random walk.

Paper trading is more useful against real prices, but the simulator must never depend on the network: each
interval it asks the public tickers endpoint once; an answer moves every simulated contract to the live last
and mark prices, and anything else (no network, an error code, a malformed body) takes one step of the
simulator's own seeded path instead, so prices keep moving either way. Only public data is read: no key.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import requests

from exchange.bitget.client import BitgetClient
from exchange.bitget.contracts import Contract
from exchange.bitget.errors import BitgetError
from exchange.sim.engine import SimExchange

log = logging.getLogger("following.sim.live_prices")

BITGET_PUBLIC_REST = "https://api.bitget.com"
TICKERS_PATH = "/api/v2/mix/market/tickers"

Source = Literal["live", "own"]


@dataclass(frozen=True)
class LiveQuote:
    last: Decimal
    mark: Decimal


class LiveTickersError(ValueError):
    """The tickers answer cannot be used (error code, wrong shape, bad numbers)."""


def _positive(value: Any, name: str, symbol: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise LiveTickersError(f"{symbol}: {name} {value!r} is not a number") from exc
    if not number.is_finite() or number <= 0:
        raise LiveTickersError(f"{symbol}: {name} {value!r} is not a positive price")
    return number


def parse_live_tickers(payload: Any) -> dict[str, LiveQuote]:
    """Quotes by symbol from a V2 ``/mix/market/tickers`` answer. Pure.

    A row with an unusable price is skipped (one odd contract must not stop the others); an envelope that is
    not a success, or a body of the wrong shape, raises ``LiveTickersError``.
    """
    if not isinstance(payload, Mapping):
        raise LiveTickersError("answer is not a JSON object")
    if str(payload.get("code")) != "00000":
        raise LiveTickersError(f"error code {payload.get('code')!r}: {payload.get('msg')!r}")
    rows = payload.get("data")
    if not isinstance(rows, list):
        raise LiveTickersError("data is not a list")
    quotes: dict[str, LiveQuote] = {}
    for row in rows:
        if not isinstance(row, Mapping) or not isinstance(row.get("symbol"), str):
            continue
        symbol = row["symbol"].upper()
        try:
            last = _positive(row.get("lastPr"), "lastPr", symbol)
            mark = _positive(row.get("markPrice", row.get("lastPr")), "markPrice", symbol)
        except LiveTickersError as exc:
            log.debug("skipping live ticker: %s", exc)
            continue
        quotes[symbol] = LiveQuote(last=last, mark=mark)
    return quotes


class LiveMarketUnavailable(Exception):
    """Bitget's public contract list or tickers could not be read; ``reason`` says why (no secrets: public data)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LiveMarket:
    """The real market for paper trading: every tradable contract that has a live price, and those prices."""

    contracts: tuple[Contract, ...]
    quotes: dict[str, LiveQuote]
    source: str  # the base URL it was read from

    @property
    def prices(self) -> dict[str, Decimal]:
        return {symbol: quote.last for symbol, quote in self.quotes.items()}


def _read_live_market(base_url: str, product_type: str, timeout_s: float) -> LiveMarket:
    client = BitgetClient(base_url, None, product_type=product_type, timeout=timeout_s, max_read_retries=0)
    try:
        contracts = [c for c in client.contracts() if c.status == "normal"]
        response = requests.get(base_url.rstrip("/") + TICKERS_PATH, params={"productType": product_type},
                                timeout=timeout_s)
        quotes = parse_live_tickers(response.json())
    except BitgetError as exc:
        raise LiveMarketUnavailable(f"{exc.code}: {exc}") from None
    except (requests.RequestException, ValueError, OSError) as exc:  # ValueError: bad JSON, LiveTickersError
        raise LiveMarketUnavailable(f"{type(exc).__name__}: {exc}") from None
    priced = tuple(c for c in contracts if c.symbol in quotes)
    if not priced:
        raise LiveMarketUnavailable("no tradable contract with a live price in the answer")
    return LiveMarket(priced, {c.symbol: quotes[c.symbol] for c in priced}, base_url)


def fetch_live_market(base_url: str = BITGET_PUBLIC_REST, *, product_type: str = "USDT-FUTURES",
                      timeout_s: float = 3.0) -> LiveMarket:
    """Bitget's tradable contracts and their live prices, read from the public endpoints (no key).

    Bounded: it gives up after about ``2 * timeout_s`` whatever the network does (a name lookup that hangs is not
    covered by the HTTP timeouts, so the read runs on a daemon thread); raises ``LiveMarketUnavailable``.
    """
    answer: queue.Queue[LiveMarket | LiveMarketUnavailable] = queue.Queue(maxsize=1)

    def read() -> None:
        try:
            answer.put(_read_live_market(base_url, product_type, timeout_s))
        except LiveMarketUnavailable as exc:
            answer.put(exc)
        except Exception as exc:  # anything odd in the answer means "not available", never a crash
            answer.put(LiveMarketUnavailable(f"{type(exc).__name__}: {exc}"))

    threading.Thread(target=read, name="live-market", daemon=True).start()
    try:
        result = answer.get(timeout=2 * timeout_s + 0.5)
    except queue.Empty:
        raise LiveMarketUnavailable(f"no answer from {base_url} within {2 * timeout_s + 0.5:.1f} s") from None
    if isinstance(result, LiveMarketUnavailable):
        raise result
    return result


class LivePriceSource:
    """Moves ``engine``'s prices each ``interval_s``: live quotes when they come, the own path when not."""

    def __init__(
        self,
        engine: SimExchange,
        *,
        base_url: str = BITGET_PUBLIC_REST,
        product_type: str = "USDT-FUTURES",
        interval_s: float = 2.0,
        timeout_s: float = 5.0,
        session: requests.Session | None = None,
    ) -> None:
        self._engine = engine
        self._url = base_url.rstrip("/") + TICKERS_PATH
        self._params = {"productType": product_type}
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._session = session or requests.Session()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.source: Source = "own"
        self.live_updates = 0
        self.own_steps = 0

    def poll_once(self) -> Source:
        """One interval's move; returns where the prices came from."""
        try:
            response = self._session.get(self._url, params=self._params, timeout=self._timeout_s)
            quotes = parse_live_tickers(response.json())
        except (requests.RequestException, ValueError) as exc:  # ValueError covers bad JSON and LiveTickersError
            self._use_own(f"{type(exc).__name__}: {exc}")
            return self.source
        applied = 0
        for symbol in self._engine.contracts:
            quote = quotes.get(symbol)
            if quote is not None:
                self._engine.set_price(symbol, quote.last, mark=quote.mark)
                applied += 1
        if applied == 0:
            self._use_own("no simulated contract in the live tickers")
            return self.source
        if self.source != "live":
            log.info("paper prices follow live Bitget tickers (%d contracts)", applied)
        self.source = "live"
        self.live_updates += 1
        return self.source

    def _use_own(self, why: str) -> None:
        if self.source != "own" or self.own_steps == 0:
            log.warning("PAPER PRICES ARE SIMULATED: live Bitget tickers unavailable (%s); the simulator walks its "
                        "own prices until they come back", why)
        self.source = "own"
        self._engine.step()
        self.own_steps += 1

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()

        def run() -> None:
            self.poll_once()
            while not self._stop.wait(self._interval_s):
                self.poll_once()

        self._thread = threading.Thread(target=run, name="sim-live-prices", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout=self._timeout_s + 1)
        self._session.close()
