"""Bitget V2 USDT-M futures ("mix") REST client.

Rules this client keeps, because real money depends on them:

* The envelope is checked (``code == "00000"``) whatever the HTTP status; business errors become typed
  :mod:`exchange.bitget.errors` classes.
* Reads (GET) are retried a small bounded number of times on 5xx, timeouts, connection errors and 429.
* Writes (POST) are never retried blindly. A write that timed out, got a 5xx or an unreadable reply raises
  :class:`UnknownOutcome`: the order may exist; :meth:`BitgetClient.resolve_unknown` looks it up by client id.
* Nothing is rounded silently. An order whose size/price is off the contract's steps or below its minimums
  is refused before it is sent (when the contract is known).
* Secrets never appear in reprs, logs or exception messages.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests

from exchange.backoff import capped_exponential
from exchange.bitget import signing
from exchange.bitget.contracts import Contract
from exchange.bitget.errors import (
    BitgetError,
    ExchangeUnavailable,
    InvalidParameter,
    MalformedResponse,
    OrderNotFound,
    RateLimited,
    TimestampExpired,
    UnknownOutcome,
    UnknownSymbol,
    error_class_for,
    error_from_code,
)
from exchange.bitget.models import (
    Account,
    Fill,
    Order,
    OrderRequest,
    PlacedOrder,
    PlanOrder,
    PlanOrderRequest,
    Position,
    PosTpslPlaced,
    RowReader,
    SymbolPrice,
    Ticker,
    TpslRequest,
)
from exchange.bitget.ratelimit import Backoff, RateLimiter, RateLimitObserver
from exchange.bitget.transport import RequestsTransport, Transport, TransportError, default_transport

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.bitget.com"
SUCCESS_CODE = "00000"
TIME_PATH = "/api/v2/public/time"

OnRequest = Callable[[str, str, float], None]  # (endpoint, ok|error|timeout|rate_limited, seconds)
# Announces a blocking wait with its bound: (seconds, what) -> a context manager around the wait. The runtime uses
# it so that an actor waiting on the exchange counts as busy, not hung (actors/busy.py).
OnBlocking = Callable[[float, str], AbstractContextManager[None]]
# A request's connect and read each get the timeout; this margin covers signing, the socket and the reply's parsing.
_REQUEST_BOUND_MARGIN_S = 1.0


@dataclass(frozen=True, repr=False)
class Credentials:
    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    passphrase: str = field(repr=False)

    def __repr__(self) -> str:
        return "Credentials(api_key='***', api_secret='***', passphrase='***')"

    __str__ = __repr__


def format_decimal(value: Decimal | int | str) -> str:
    """Plain notation without exponent or trailing zeros: ``Decimal('2.50')`` -> ``'2.5'``."""
    text = format(Decimal(str(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _is_multiple(value: Decimal, step: Decimal) -> bool:
    return step > 0 and (value / step) == (value / step).to_integral_value()


class BitgetClient:
    """Synchronous client; safe to share between threads (a connection per thread, locked caches)."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        credentials: Credentials | None = None,
        *,
        product_type: str = "USDT-FUTURES",
        margin_coin: str = "USDT",
        demo: bool = False,
        timeout: float = 10.0,
        session: requests.Session | None = None,
        on_request: OnRequest | None = None,
        rate_limiter: RateLimiter | None = None,
        locale: str = "en-US",
        backoff: Backoff | None = None,
        max_read_retries: int = 2,
        contract_ttl: float = 3600.0,
        time_source: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rate_limit_observer: RateLimitObserver | None = None,
        on_blocking: OnBlocking | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self.product_type = product_type
        self.margin_coin = margin_coin
        self.demo = demo
        self.timeout = timeout
        # A given session (proxies, test mocks) is used as is; otherwise the lean keep-alive transport.
        self._transport: Transport = RequestsTransport(session) if session is not None else default_transport(
            self.base_url
        )
        self._on_request = on_request
        self._on_blocking = on_blocking
        self._rate_limiter = rate_limiter or RateLimiter(
            sleep=lambda seconds: self._blocking_sleep(seconds, "rate limit bucket"), clock=monotonic
        )
        self._backoff = backoff or Backoff(sleep=lambda seconds: self._blocking_sleep(seconds, "rate limit backoff"))
        self._rate_limit_observer = rate_limit_observer
        self.locale = locale
        self.max_read_retries = max(0, max_read_retries)
        self._contract_ttl = contract_ttl
        self._time_source = time_source
        self._monotonic = monotonic
        self._sleep = sleep
        self._time_offset_ms = 0
        self._contracts: dict[str, Contract] = {}
        self._contracts_fetched_at: float | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        auth = "signed" if self._credentials else "public"
        return f"BitgetClient({self.base_url!r}, {auth}, product_type={self.product_type!r}, demo={self.demo})"

    # -----------------------------------------------------------------------------------------------------
    # Transport

    @property
    def rate_limiter(self) -> RateLimiter:
        """The per-endpoint buckets; share them with any other client of the same account."""
        return self._rate_limiter

    @property
    def time_offset_ms(self) -> int:
        return self._time_offset_ms

    def _timestamp_ms(self) -> str:
        return str(int(self._time_source() * 1000) + self._time_offset_ms)

    def _report(self, endpoint: str, result: str, seconds: float) -> None:
        if self._on_request is None:
            return
        try:
            self._on_request(endpoint, result, seconds)
        except Exception:  # a metrics hook must never break trading
            log.exception("on_request hook failed")

    def _bounded(self, seconds: float, what: str) -> AbstractContextManager[None]:
        """Around every blocking wait: tells ``on_blocking`` how long it may last at most."""
        if self._on_blocking is None:
            return nullcontext()
        try:
            return self._on_blocking(seconds, what)
        except Exception:  # an observer must never break trading
            log.exception("on_blocking hook failed")
            return nullcontext()

    def _blocking_sleep(self, seconds: float, what: str) -> None:
        with self._bounded(seconds, what):
            self._sleep(seconds)

    def _observe(self, event: str, *args: Any) -> None:
        observer = self._rate_limit_observer
        if observer is None:
            return
        try:
            getattr(observer, event)(*args)
        except Exception:  # a metrics/journal hook must never break trading
            log.exception("rate-limit observer failed")

    def _headers(self, method: str, path: str, query: str, body: str, signed: bool) -> dict[str, str]:
        headers = {"locale": self.locale}
        if method == "POST":
            headers["Content-Type"] = "application/json"
        if self.demo and path != TIME_PATH:  # ccxt leaves the header off the public time endpoint
            headers["paptrading"] = "1"
        if signed:
            creds = self._credentials
            if creds is None:
                raise BitgetError("no_credentials", "this call needs API credentials", path)
            timestamp = self._timestamp_ms()
            headers.update(
                {
                    "ACCESS-KEY": creds.api_key,
                    "ACCESS-SIGN": signing.sign(creds.api_secret, timestamp, method, path, query, body),
                    "ACCESS-TIMESTAMP": timestamp,
                    "ACCESS-PASSPHRASE": creds.passphrase,
                }
            )
        return headers

    def _send_once(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: Mapping[str, Any] | None,
        signed: bool,
    ) -> Any:
        """One HTTP attempt. Returns ``data`` or raises a typed error (never a requests exception)."""
        write = method == "POST"
        query = signing.canonical_query(params)
        body_text = json.dumps(body, separators=(",", ":")) if body is not None else ""
        url = self.base_url + path + ("?" + query if query else "")
        waited = self._rate_limiter.acquire(path)
        if waited > 0:
            self._observe("waited", path, waited, "bucket")
        headers = self._headers(method, path, query, body_text, signed)  # signed after any wait: fresh timestamp
        started = self._monotonic()
        try:
            with self._bounded(2 * self.timeout + _REQUEST_BOUND_MARGIN_S, path):
                reply = self._transport.send(
                    method, url, body_text.encode("utf-8") if write else None, headers, self.timeout
                )
        except TransportError as failure:
            elapsed = self._monotonic() - started
            if failure.kind in ("connect_timeout", "connect"):
                # No connection was made, so nothing reached the exchange: "unavailable" even for a write.
                self._report(path, "timeout" if failure.kind == "connect_timeout" else "error", elapsed)
                raise ExchangeUnavailable(failure.kind, failure.reason, path) from None
            if failure.kind == "timeout":
                self._report(path, "timeout", elapsed)
                if write:
                    raise UnknownOutcome("timeout", "no reply before the timeout", path) from None
                raise ExchangeUnavailable("timeout", "read timed out", path) from None
            # Reset / protocol error after connecting. For a write we cannot tell whether it was sent.
            self._report(path, "error", elapsed)
            if write:
                raise UnknownOutcome("connection", f"{failure.reason} during a write", path) from None
            raise ExchangeUnavailable("connection", failure.reason, path) from None
        elapsed = self._monotonic() - started
        status = reply.status
        payload = self._decode(reply.content)

        reply_code = str(payload.get("code")) if isinstance(payload, dict) and payload.get("code") is not None else ""
        if status == 429 or (reply_code and error_class_for(reply_code) is RateLimited):
            self._report(path, "rate_limited", elapsed)
            retry_after = _retry_after_seconds(reply.retry_after)
            message = _envelope_message(payload) or "too many requests"
            code = reply_code if reply_code and reply_code != SUCCESS_CODE else "429"
            self._observe("limited", path, code, status, retry_after)
            raise RateLimited(code, message, path, http_status=status, retry_after=retry_after)
        if status >= 500:
            self._report(path, "error", elapsed)
            message = _envelope_message(payload) or f"HTTP {status}"
            if write:
                raise UnknownOutcome(str(status), message, path, http_status=status)
            raise ExchangeUnavailable(str(status), message, path, http_status=status)
        if not isinstance(payload, dict) or "code" not in payload:
            self._report(path, "error", elapsed)
            what = f"HTTP {status} reply without a Bitget envelope"
            if write and 200 <= status < 300:
                # The exchange may have acted on it; we just cannot read the answer.
                raise UnknownOutcome("malformed", what, path, http_status=status)
            raise MalformedResponse("malformed", what, path, http_status=status)
        code = str(payload.get("code"))
        if code != SUCCESS_CODE:
            self._report(path, "error", elapsed)
            raise error_from_code(code, _envelope_message(payload) or "", path, http_status=status)
        self._report(path, "ok", elapsed)
        return payload.get("data")

    @staticmethod
    def _decode(content: bytes) -> Any:
        try:
            return json.loads(content.decode("utf-8"), parse_float=Decimal)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deeply
            return None

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        signed: bool = True,
    ) -> Any:
        """Send with the retry policy: reads retried (bounded), writes sent exactly once."""
        write = method == "POST"
        attempt = 0
        resynced = False
        while True:
            try:
                data = self._send_once(method, path, params, body, signed)
            except TimestampExpired:
                # Our clock drifted: re-sync once. A rejected write changed nothing, but the caller decides
                # whether to send it again, so only reads are retried here.
                if resynced:
                    raise
                resynced = True
                self.sync_time()
                if write:
                    raise
                continue
            except RateLimited as exc:
                if write or attempt >= self.max_read_retries:
                    if write and exc.retry_after is None:
                        exc.retry_after = self._backoff.next_delay()
                    raise
                attempt += 1
                self._observe("waited", path, self._backoff.wait(exc.retry_after or 0.0), "backoff")
                continue
            except ExchangeUnavailable:
                if write or attempt >= self.max_read_retries:
                    raise
                attempt += 1
                self._blocking_sleep(capped_exponential(attempt, base=0.25, cap=2.0), "retry after unavailable")
                continue
            self._backoff.reset()
            return data

    # -----------------------------------------------------------------------------------------------------
    # Public market data

    def server_time(self) -> int:
        """Exchange time in ms."""
        data = self._request("GET", TIME_PATH, signed=False)
        if not isinstance(data, dict):
            raise MalformedResponse("malformed", "time data is not an object", TIME_PATH)
        return RowReader(data, "ServerTime", TIME_PATH).integer("serverTime")

    def sync_time(self) -> int:
        """Measure and store the server clock offset (ms) used for request timestamps. Returns it."""
        before = self._time_source()
        server_ms = self.server_time()
        after = self._time_source()
        local_mid_ms = int((before + after) / 2 * 1000)
        self._time_offset_ms = server_ms - local_mid_ms
        return self._time_offset_ms

    def contracts(self, *, refresh: bool = False) -> list[Contract]:
        """All contracts of the product type (sorted by symbol); cached for ``contract_ttl`` seconds."""
        by_symbol = self._contract_map(refresh=refresh)
        return [by_symbol[symbol] for symbol in sorted(by_symbol)]

    def _contract_map(self, *, refresh: bool = False) -> dict[str, Contract]:
        with self._lock:
            fresh = (
                self._contracts_fetched_at is not None
                and self._monotonic() - self._contracts_fetched_at < self._contract_ttl
            )
            if fresh and not refresh:
                return dict(self._contracts)
        path = "/api/v2/mix/market/contracts"
        data = self._request("GET", path, params={"productType": self.product_type}, signed=False)
        if not isinstance(data, list):
            raise MalformedResponse("malformed", "contracts data is not a list", path)
        parsed: dict[str, Contract] = {}
        for row in data:
            try:
                contract = Contract.from_api(row)
            except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError):
                # A bad row makes that symbol unknown (orders on it are refused) without breaking the rest.
                symbol = row.get("symbol") if isinstance(row, dict) else None
                log.warning("skipping malformed contract row for %r", symbol)
                continue
            parsed[contract.symbol] = contract
        with self._lock:
            self._contracts = parsed
            self._contracts_fetched_at = self._monotonic()
        return dict(parsed)

    def contracts_age(self) -> float | None:
        """Seconds since the contract list was read (None: never)."""
        with self._lock:
            return None if self._contracts_fetched_at is None else self._monotonic() - self._contracts_fetched_at

    def cached_contract(self, symbol: str) -> Contract | None:
        with self._lock:
            return self._contracts.get(symbol)

    def contract(self, symbol: str) -> Contract:
        """The contract for ``symbol``; refetches once when it is missing from a not-just-fetched cache."""
        found = self._contract_map().get(symbol)
        if found is None:
            with self._lock:
                age = None if self._contracts_fetched_at is None else self._monotonic() - self._contracts_fetched_at
            if age is None or age > 30.0:
                found = self._contract_map(refresh=True).get(symbol)
        if found is None:
            raise UnknownSymbol("unknown_symbol", f"no contract {symbol!r:.40}", "/api/v2/mix/market/contracts")
        if found.status != "normal":
            raise UnknownSymbol("symbol_not_tradable", f"{symbol} status is {found.status}", "contracts")
        return found

    def ticker(self, symbol: str) -> Ticker:
        path = "/api/v2/mix/market/ticker"
        data = self._request("GET", path, params={"symbol": symbol, "productType": self.product_type}, signed=False)
        return Ticker.from_api(_single(data, path), path)

    def symbol_price(self, symbol: str) -> SymbolPrice:
        path = "/api/v2/mix/market/symbol-price"
        data = self._request("GET", path, params={"symbol": symbol, "productType": self.product_type}, signed=False)
        return SymbolPrice.from_api(_single(data, path), path)

    # -----------------------------------------------------------------------------------------------------
    # Account and positions

    def account(self, symbol: str | None = None) -> Account:
        """The margin-coin account. With ``symbol`` the single-account endpoint also reports posMode."""
        if symbol is not None:
            path = "/api/v2/mix/account/account"
            params = {"symbol": symbol, "productType": self.product_type, "marginCoin": self.margin_coin}
            return Account.from_api(self._request("GET", path, params=params), path)
        path = "/api/v2/mix/account/accounts"
        data = self._request("GET", path, params={"productType": self.product_type})
        for row in _list(data, path):
            if isinstance(row, dict) and str(row.get("marginCoin", "")).upper() == self.margin_coin.upper():
                return Account.from_api(row, path)
        raise MalformedResponse("malformed", f"no {self.margin_coin} account in the reply", path)

    def position_mode(self, symbol: str) -> str:
        """``one_way_mode`` or ``hedge_mode`` (the account endpoint reports it; it needs a symbol)."""
        mode = self.account(symbol).pos_mode
        if mode not in ("one_way_mode", "hedge_mode"):
            raise MalformedResponse("malformed", f"posMode is {mode!r}", "/api/v2/mix/account/account")
        return mode

    def positions(self) -> list[Position]:
        """Open positions (total > 0) of the product type."""
        path = "/api/v2/mix/position/all-position"
        data = self._request("GET", path, params={"productType": self.product_type, "marginCoin": self.margin_coin})
        return [p for p in (Position.from_api(row, path) for row in _list(data, path)) if p.total > 0]

    def position(self, symbol: str) -> list[Position]:
        """Open positions on ``symbol``: none, one (one-way) or up to two (hedge: long and short)."""
        path = "/api/v2/mix/position/single-position"
        params = {"symbol": symbol, "productType": self.product_type, "marginCoin": self.margin_coin}
        data = self._request("GET", path, params=params)
        return [p for p in (Position.from_api(row, path) for row in _list(data, path)) if p.total > 0]

    def set_leverage(self, symbol: str, leverage: int | Decimal, hold_side: str | None = None) -> dict[str, Any]:
        if hold_side not in (None, "long", "short"):
            raise ValueError(f"hold_side must be long, short or None, got {hold_side!r}")
        body: dict[str, Any] = {
            "symbol": symbol,
            "productType": self.product_type,
            "marginCoin": self.margin_coin,
            "leverage": format_decimal(leverage),
        }
        if hold_side is not None:
            body["holdSide"] = hold_side
        data = self._request("POST", "/api/v2/mix/account/set-leverage", body=body)
        return data if isinstance(data, dict) else {}

    def set_margin_mode(self, symbol: str, mode: str) -> dict[str, Any]:
        if mode not in ("isolated", "crossed"):
            raise ValueError(f"margin mode must be isolated or crossed, got {mode!r}")
        body = {
            "symbol": symbol,
            "productType": self.product_type,
            "marginCoin": self.margin_coin,
            "marginMode": mode,
        }
        data = self._request("POST", "/api/v2/mix/account/set-margin-mode", body=body)
        return data if isinstance(data, dict) else {}

    def set_position_mode(self, mode: str) -> str:
        """Switch every symbol of the product type to ``one_way_mode`` or ``hedge_mode``; returns the mode."""
        if mode not in ("one_way_mode", "hedge_mode"):
            raise ValueError(f"position mode must be one_way_mode or hedge_mode, got {mode!r}")
        path = "/api/v2/mix/account/set-position-mode"
        data = self._request("POST", path, body={"productType": self.product_type, "posMode": mode})
        if isinstance(data, dict) and data.get("posMode"):
            return str(data["posMode"])
        return mode

    # -----------------------------------------------------------------------------------------------------
    # Orders

    def _check_against_contract(
        self,
        symbol: str,
        *,
        size: Decimal | None,
        prices: Mapping[str, Decimal | None],
        notional_price: Decimal | None,
    ) -> None:
        """Refuse values the exchange would reject (or worse, interpret differently). Never rounds."""
        contract = self.cached_contract(symbol)
        if contract is None:
            return  # unknown here: the exchange validates
        endpoint = "client-check"
        if size is not None:
            if not _is_multiple(size, contract.size_step):
                raise InvalidParameter("size_step", f"size {size} is not a multiple of {contract.size_step}", endpoint)
            if size < contract.min_trade_num:
                raise InvalidParameter(
                    "min_size", f"size {size} is below the minimum {contract.min_trade_num}", endpoint
                )
            if notional_price is not None and size * notional_price < contract.min_trade_usdt:
                raise InvalidParameter(
                    "min_notional",
                    f"notional {size * notional_price} is below the minimum {contract.min_trade_usdt} USDT",
                    endpoint,
                )
        for name, price in prices.items():
            if price is not None and not _is_multiple(price, contract.tick_size):
                raise InvalidParameter(
                    "price_tick", f"{name} {price} is not a multiple of {contract.tick_size}", endpoint
                )

    def place_order_body(self, request: OrderRequest) -> dict[str, Any]:
        """The exact JSON body :meth:`place_order` sends (exposed for tests and journaling)."""
        body: dict[str, Any] = {
            "symbol": request.symbol,
            "productType": self.product_type,
            "marginMode": request.margin_mode,
            "marginCoin": self.margin_coin,
            "size": format_decimal(request.size),
        }
        # Key order follows the doc example (the signature covers the exact body text).
        if request.price is not None:
            body["price"] = format_decimal(request.price)
        body["side"] = request.side
        if request.trade_side is not None:
            body["tradeSide"] = request.trade_side
        body["orderType"] = request.order_type
        body["force"] = request.force
        if request.reduce_only:
            body["reduceOnly"] = "YES"
        if request.client_oid is not None:
            body["clientOid"] = request.client_oid
        if request.preset_take_profit_price is not None:
            body["presetStopSurplusPrice"] = format_decimal(request.preset_take_profit_price)
        if request.preset_stop_loss_price is not None:
            body["presetStopLossPrice"] = format_decimal(request.preset_stop_loss_price)
        return body

    def place_order(self, request: OrderRequest) -> PlacedOrder:
        """Place one order. Timeout / 5xx -> :class:`UnknownOutcome` (resolve by client id, never resend)."""
        reducing = request.reduce_only or request.trade_side == "close"
        self._check_against_contract(
            request.symbol,
            size=request.size,
            prices={
                "price": request.price,
                "preset_stop_loss_price": request.preset_stop_loss_price,
                "preset_take_profit_price": request.preset_take_profit_price,
            },
            # Minimum notional applies to opening orders; a close of a small remainder must stay possible.
            notional_price=None if reducing else request.price,
        )
        path = "/api/v2/mix/order/place-order"
        data = self._request("POST", path, body=self.place_order_body(request))
        return _placed(data, path, request.client_oid)

    def resolve_unknown(self, symbol: str, client_oid: str) -> Order | None:
        """After an :class:`UnknownOutcome`: the order with ``client_oid``, or None if it does not exist."""
        try:
            return self.order_detail(symbol, client_oid=client_oid)
        except OrderNotFound:
            return None

    def cancel_order(self, symbol: str, *, order_id: str | None = None, client_oid: str | None = None) -> PlacedOrder:
        body = {
            "symbol": symbol,
            "productType": self.product_type,
            "marginCoin": self.margin_coin,
            **_one_id(order_id, client_oid),
        }
        path = "/api/v2/mix/order/cancel-order"
        return _placed(self._request("POST", path, body=body), path, client_oid)

    def order_detail(self, symbol: str, *, order_id: str | None = None, client_oid: str | None = None) -> Order:
        path = "/api/v2/mix/order/detail"
        params = {"symbol": symbol, "productType": self.product_type, **_one_id(order_id, client_oid)}
        data = self._request("GET", path, params=params)
        if data is None:  # some engines answer "00000" with no data for an unknown id
            raise OrderNotFound("40109", "order detail returned no data", path)
        return Order.from_api(data, path)

    def pending_orders(self, symbol: str | None = None) -> list[Order]:
        """All open (live / partially filled) orders, following pagination."""
        path = "/api/v2/mix/order/orders-pending"
        params: dict[str, Any] = {"productType": self.product_type, "symbol": symbol}
        return [Order.from_api(row, path) for row in self._paged(path, params, "entrustedList")]

    def fills(self, symbol: str, order_id: str | None = None, *, start_time_ms: int | None = None) -> list[Fill]:
        """Our fills of ``symbol`` (newest first, every page); ``start_time_ms`` bounds how far back (Bitget keeps
        the span under a week)."""
        path = "/api/v2/mix/order/fills"
        params: dict[str, Any] = {"productType": self.product_type, "symbol": symbol, "orderId": order_id,
                                  "startTime": start_time_ms}
        return [Fill.from_api(row, path) for row in self._paged(path, params, "fillList")]

    def _paged(self, path: str, params: dict[str, Any], list_key: str, *, max_pages: int = 20) -> list[Any]:
        page_size = 100
        rows: list[Any] = []
        cursor: str | None = None
        for _ in range(max_pages):
            data = self._request("GET", path, params={**params, "limit": page_size, "idLessThan": cursor})
            if data is None:
                break
            if not isinstance(data, dict):
                raise MalformedResponse("malformed", "paged data is not an object", path)
            page = data.get(list_key) or []  # null when empty
            if not isinstance(page, list):
                raise MalformedResponse("malformed", f"{list_key} is not a list", path)
            rows.extend(page)
            end_id = data.get("endId")
            if len(page) < page_size or not end_id or str(end_id) == cursor:
                break
            cursor = str(end_id)
        return rows

    # -----------------------------------------------------------------------------------------------------
    # TP/SL and plan orders

    def place_tpsl_order_body(self, request: TpslRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "marginCoin": self.margin_coin,
            "productType": self.product_type,
            "symbol": request.symbol,
            "planType": request.plan_type,
            "triggerPrice": format_decimal(request.trigger_price),
            "triggerType": request.trigger_type,
            "holdSide": request.hold_side,
        }
        if request.execute_price is not None:
            body["executePrice"] = format_decimal(request.execute_price)
        if request.size is not None:
            body["size"] = format_decimal(request.size)
        if request.range_rate is not None:
            body["rangeRate"] = format_decimal(request.range_rate)
        if request.client_oid is not None:
            body["clientOid"] = request.client_oid
        return body

    def place_tpsl_order(self, request: TpslRequest) -> PlacedOrder:
        self._check_against_contract(
            request.symbol,
            size=request.size,
            prices={"trigger_price": request.trigger_price, "execute_price": request.execute_price},
            notional_price=None,  # a protective order reduces; the minimum notional does not apply
        )
        path = "/api/v2/mix/order/place-tpsl-order"
        return _placed(self._request("POST", path, body=self.place_tpsl_order_body(request)), path, request.client_oid)

    def place_pos_tpsl(
        self,
        symbol: str,
        hold_side: str,
        *,
        take_profit_price: Decimal | None = None,
        stop_loss_price: Decimal | None = None,
        trigger_type: str = "mark_price",
        take_profit_execute_price: Decimal | None = None,
        stop_loss_execute_price: Decimal | None = None,
    ) -> list[PosTpslPlaced]:
        """Set the whole-position TP and/or SL in one call."""
        if take_profit_price is None and stop_loss_price is None:
            raise ValueError("give a take_profit_price, a stop_loss_price or both")
        if hold_side not in ("long", "short", "buy", "sell"):
            raise ValueError(f"hold_side must be long/short (hedge) or buy/sell (one-way), got {hold_side!r}")
        prices = {
            "take_profit_price": take_profit_price,
            "stop_loss_price": stop_loss_price,
            "take_profit_execute_price": take_profit_execute_price,
            "stop_loss_execute_price": stop_loss_execute_price,
        }
        self._check_against_contract(symbol, size=None, prices=prices, notional_price=None)
        body: dict[str, Any] = {
            "marginCoin": self.margin_coin,
            "productType": self.product_type,
            "symbol": symbol,
            "holdSide": hold_side,
        }
        if take_profit_price is not None:
            body["stopSurplusTriggerPrice"] = format_decimal(take_profit_price)
            body["stopSurplusTriggerType"] = trigger_type
            if take_profit_execute_price is not None:
                body["stopSurplusExecutePrice"] = format_decimal(take_profit_execute_price)
        if stop_loss_price is not None:
            body["stopLossTriggerPrice"] = format_decimal(stop_loss_price)
            body["stopLossTriggerType"] = trigger_type
            if stop_loss_execute_price is not None:
                body["stopLossExecutePrice"] = format_decimal(stop_loss_execute_price)
        path = "/api/v2/mix/order/place-pos-tpsl"
        data = self._request("POST", path, body=body)
        rows = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
        with unknown_if_unreadable(path):
            return [PosTpslPlaced.from_api(row, path) for row in rows]

    def place_plan_order_body(self, request: PlanOrderRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "planType": request.plan_type,
            "symbol": request.symbol,
            "productType": self.product_type,
            "marginMode": request.margin_mode,
            "marginCoin": self.margin_coin,
            "size": format_decimal(request.size),
            "triggerPrice": format_decimal(request.trigger_price),
            "triggerType": request.trigger_type,
            "side": request.side,
            "orderType": request.order_type,
        }
        if request.price is not None:
            body["price"] = format_decimal(request.price)
        if request.trade_side is not None:
            body["tradeSide"] = request.trade_side
        if request.reduce_only:
            body["reduceOnly"] = "YES"
        if request.callback_ratio is not None:
            body["callbackRatio"] = format_decimal(request.callback_ratio)
        if request.client_oid is not None:
            body["clientOid"] = request.client_oid
        if request.stop_surplus_trigger_price is not None:
            body["stopSurplusTriggerPrice"] = format_decimal(request.stop_surplus_trigger_price)
            body["stopSurplusTriggerType"] = request.trigger_type
        if request.stop_loss_trigger_price is not None:
            body["stopLossTriggerPrice"] = format_decimal(request.stop_loss_trigger_price)
            body["stopLossTriggerType"] = request.trigger_type
        return body

    def place_plan_order(self, request: PlanOrderRequest) -> PlacedOrder:
        reducing = request.reduce_only or request.trade_side == "close"
        self._check_against_contract(
            request.symbol,
            size=request.size,
            prices={
                "trigger_price": request.trigger_price,
                "price": request.price,
                "stop_loss_trigger_price": request.stop_loss_trigger_price,
                "stop_surplus_trigger_price": request.stop_surplus_trigger_price,
            },
            notional_price=None if reducing else (request.price or request.trigger_price),
        )
        path = "/api/v2/mix/order/place-plan-order"
        return _placed(self._request("POST", path, body=self.place_plan_order_body(request)), path, request.client_oid)

    def modify_tpsl_order(
        self,
        symbol: str,
        *,
        trigger_price: Decimal,
        order_id: str | None = None,
        client_oid: str | None = None,
        size: Decimal | None = None,
        trigger_type: str = "mark_price",
        execute_price: Decimal | None = None,
    ) -> PlacedOrder:
        """Move a TP/SL. ``size=None`` for whole-position TP/SL (sent as ``""`` per the doc)."""
        self._check_against_contract(
            symbol,
            size=size,
            prices={"trigger_price": trigger_price, "execute_price": execute_price},
            notional_price=None,
        )
        body: dict[str, Any] = {
            **_one_id(order_id, client_oid),
            "marginCoin": self.margin_coin,
            "productType": self.product_type,
            "symbol": symbol,
            "triggerPrice": format_decimal(trigger_price),
            "triggerType": trigger_type,
            "size": "" if size is None else format_decimal(size),
        }
        if execute_price is not None:
            body["executePrice"] = format_decimal(execute_price)
        path = "/api/v2/mix/order/modify-tpsl-order"
        return _placed(self._request("POST", path, body=body), path, client_oid)

    def cancel_plan_order(
        self, symbol: str, *, plan_type: str, order_id: str | None = None, client_oid: str | None = None
    ) -> PlacedOrder:
        """Cancel one plan / TP / SL order. An id is required: without one Bitget cancels *all* of them."""
        path = "/api/v2/mix/order/cancel-plan-order"
        ident = _one_id(order_id, client_oid)
        body = {
            "symbol": symbol,
            "productType": self.product_type,
            "marginCoin": self.margin_coin,
            "planType": plan_type,
            "orderIdList": [ident],
        }
        data = self._request("POST", path, body=body)
        with unknown_if_unreadable(path):
            return self._cancel_plan_reply(data, path)

    @staticmethod
    def _cancel_plan_reply(data: Any, path: str) -> PlacedOrder:
        if not isinstance(data, dict):
            raise MalformedResponse("malformed", "cancel-plan data is not an object", path)
        failures = data.get("failureList") or []
        if isinstance(failures, list) and failures:
            failure = failures[0] if isinstance(failures[0], dict) else {}
            code = str(failure.get("errorCode") or "43020")
            raise error_from_code(code, str(failure.get("errorMsg") or "cancel failed"), path)
        successes = data.get("successList") or []
        if not isinstance(successes, list) or not successes:
            raise MalformedResponse("malformed", "cancel-plan reply lists neither success nor failure", path)
        return PlacedOrder.from_api(successes[0], path)

    def plan_orders_pending(self, plan_type: str, symbol: str | None = None) -> list[PlanOrder]:
        """Pending plan orders; ``plan_type`` is normal_plan, track_plan or profit_loss (all TP/SL)."""
        if plan_type not in ("normal_plan", "track_plan", "profit_loss"):
            raise ValueError(f"plan_type must be normal_plan, track_plan or profit_loss, got {plan_type!r}")
        path = "/api/v2/mix/order/orders-plan-pending"
        params: dict[str, Any] = {"planType": plan_type, "productType": self.product_type, "symbol": symbol}
        return [PlanOrder.from_api(row, path) for row in self._paged(path, params, "entrustedList")]

    def resolve_unknown_plan(self, symbol: str, client_oid: str, plan_type: str = "profit_loss") -> PlanOrder | None:
        """After an :class:`UnknownOutcome` on a TP/SL or plan order: the pending one with ``client_oid``.

        None means it is not pending: never created, or already triggered/cancelled (check the position).
        """
        for plan in self.plan_orders_pending(plan_type, symbol):
            if plan.client_oid == client_oid:
                return plan
        return None


# ---------------------------------------------------------------------------------------------------------
# Helpers


def _one_id(order_id: str | None, client_oid: str | None) -> dict[str, str]:
    if order_id:
        return {"orderId": order_id}  # Bitget: "if both are present, orderId prevails"
    if client_oid:
        return {"clientOid": client_oid}
    raise ValueError("give order_id or client_oid")


def _placed(data: Any, path: str, client_oid: str | None) -> PlacedOrder:
    with unknown_if_unreadable(path):
        no_ids = data is None or (isinstance(data, dict) and not data.get("orderId") and not data.get("clientOid"))
        if no_ids and client_oid:
            # One-way reduce-only quirk: the reply may omit the id; the client id still identifies the order.
            return PlacedOrder(order_id=None, client_oid=client_oid)
        return PlacedOrder.from_api(data, path)


@contextmanager
def unknown_if_unreadable(path: str) -> Iterator[None]:
    """Around the reading of a write's reply: the exchange said "success" (or something) we cannot read, so the
    write may have been done. An unknown outcome: looked up by client id, never sent again blindly."""
    try:
        yield
    except MalformedResponse as exc:
        raise UnknownOutcome("malformed", f"unreadable reply to a write: {exc.message}", path,
                             http_status=exc.http_status) from None


def _single(data: Any, path: str) -> Any:
    if isinstance(data, list):
        if not data:
            raise MalformedResponse("malformed", "empty list where one element was expected", path)
        return data[0]
    return data


def _list(data: Any, path: str) -> list[Any]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise MalformedResponse("malformed", "data is not a list", path)
    return data


def _envelope_message(payload: Any) -> str | None:
    if isinstance(payload, dict) and payload.get("msg") is not None:
        return str(payload.get("msg"))
    return None


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 3600 else None
