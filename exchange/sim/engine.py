"""The simulator's matching engine and account model: no HTTP, one lock, seed-deterministic.

Prices move only through :meth:`SimExchange.set_price`, :meth:`SimExchange.step` (a seeded random walk)
or the optional background ticker. Every price change re-evaluates the symbol: unfilled market remainders,
resting limit orders that the price crossed, then TP/SL and trigger plans (mark price = last price here),
which execute as market (or limit) reduce-only orders.

Position semantics follow Bitget V2: in ``hedge_mode`` ``side`` names the position (close long = buy + close);
in ``one_way_mode`` ``tradeSide`` is ignored, a buy reduces a short before it opens a long, and ``reduceOnly``
orders may never grow a position.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from exchange.bitget.contracts import Contract
from exchange.sim import errors as e
from exchange.sim.catalogue import DEFAULT_CONTRACTS, DEFAULT_PRICES
from exchange.sim.errors import SimError
from exchange.sim.faults import FaultPlan
from exchange.sim.models import (
    HEDGE,
    LONG,
    ONE_WAY,
    SHORT,
    TPSL_PLAN_TYPES,
    ZERO,
    AccountSnapshot,
    LoggedRequest,
    SimFill,
    SimOrder,
    SimPlanOrder,
    SimPosition,
    SymbolSettings,
)

MAINTENANCE_MARGIN_RATE = Decimal("0.004")
ORDER_ID_BASE = 1_200_000_000_000_000_000
CLIENT_OID_MAX_LEN = 50


@dataclass(frozen=True)
class PriceSnapshot:
    """What the ticker publishes for a symbol."""

    symbol: str
    last: Decimal
    bid: Decimal
    ask: Decimal
    mark: Decimal
    index: Decimal
    ts: int


PriceListener = Callable[[PriceSnapshot], None]


# Bitget's orderSource of the order a triggered TP/SL plan makes (market execution).
_PLAN_ORDER_SOURCE = {
    "profit_plan": "profit_market",
    "loss_plan": "loss_market",
    "pos_profit": "pos_profit_market",
    "pos_loss": "pos_loss_market",
    "moving_plan": "track_plan_market",
}


def _other(hold_side: str) -> str:
    return SHORT if hold_side == LONG else LONG


def _decimals(value: Decimal) -> int:
    """Significant decimals: ``Decimal("1.50")`` has 1."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


class SimExchange:
    def __init__(
        self,
        *,
        seed: int = 0,
        equity: Decimal | float | str = Decimal("10000"),
        contracts: Iterable[Contract] = DEFAULT_CONTRACTS,
        prices: dict[str, Decimal] | None = None,
        pos_mode: str = ONE_WAY,
        slippage_bps: Decimal | float | str = 0,
        partial_fill_ratio: Decimal | float | str | None = None,
        volatility: float = 0.001,
        default_leverage: int = 20,
        clock_ms: Callable[[], int] | None = None,
        margin_coin: str = "USDT",
    ) -> None:
        self._lock = threading.RLock()
        self.seed = seed
        self._rng = random.Random(f"prices:{seed}")
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.margin_coin = margin_coin
        self.contracts: dict[str, Contract] = {c.symbol: c for c in contracts}
        start_prices = {**DEFAULT_PRICES, **(prices or {})}
        self._prices: dict[str, Decimal] = {}
        for symbol, contract in self.contracts.items():
            start = start_prices.get(symbol, Decimal("100"))
            self._prices[symbol] = contract.round_price(start)
        # The mark follows the last price unless a test sets it apart (set_mark_price): stops with
        # triggerType mark_price watch the mark, fill_price ones the last traded price.
        self._marks: dict[str, Decimal] = dict(self._prices)
        self._published: dict[str, PriceSnapshot] = {s: self._snapshot(s) for s in self.contracts}
        self._stale = False
        self._cash = Decimal(str(equity))
        self.pos_mode = pos_mode
        self.slippage_bps = Decimal(str(slippage_bps))
        self.partial_fill_ratio = None if partial_fill_ratio is None else Decimal(str(partial_fill_ratio))
        self.volatility = volatility
        self._default_leverage = default_leverage
        self._settings: dict[str, SymbolSettings] = {}
        self._orders: dict[str, SimOrder] = {}
        self._orders_by_client_oid: dict[str, str] = {}
        self._plans: dict[str, SimPlanOrder] = {}
        self._plans_by_client_oid: dict[str, str] = {}
        self._positions: dict[tuple[str, str], SimPosition] = {}
        self._fills: list[SimFill] = []
        self._next_id = ORDER_ID_BASE + (seed % 1000) * 1_000_000_000
        self._listeners: list[PriceListener] = []
        self._pending_notifications: list[PriceSnapshot] = []
        self.request_log: list[LoggedRequest] = []
        self.faults = FaultPlan(self, seed)
        self._ticker_thread: threading.Thread | None = None
        self._ticker_stop = threading.Event()

    # ================================================================ ids, time, lookups
    def now_ms(self) -> int:
        return self._clock_ms()

    def _new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def contract(self, symbol: str) -> Contract:
        contract = self.contracts.get(symbol.upper())
        if contract is None:
            raise e.param_missing_entity("symbol")
        return contract

    def settings(self, symbol: str) -> SymbolSettings:
        symbol = self.contract(symbol).symbol
        with self._lock:
            if symbol not in self._settings:
                lev = min(self._default_leverage, self.contracts[symbol].max_lever)
                self._settings[symbol] = SymbolSettings(long_leverage=lev, short_leverage=lev)
            return self._settings[symbol]

    # ================================================================ prices
    def price(self, symbol: str) -> Decimal:
        with self._lock:
            return self._prices[self.contract(symbol).symbol]

    def mark_price(self, symbol: str) -> Decimal:
        with self._lock:
            return self._marks[self.contract(symbol).symbol]

    def ticker(self, symbol: str) -> PriceSnapshot:
        """The published ticker (frozen while the ``stale_prices`` fault is on)."""
        with self._lock:
            return self._published[self.contract(symbol).symbol]

    def _snapshot(self, symbol: str) -> PriceSnapshot:
        price = self._prices[symbol]
        tick = self.contracts[symbol].tick_size
        return PriceSnapshot(
            symbol=symbol,
            last=price,
            bid=max(price - tick, tick),
            ask=price + tick,
            mark=self._marks[symbol],
            index=self._marks[symbol],
            ts=self.now_ms(),
        )

    def add_price_listener(self, listener: PriceListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_price_listener(self, listener: PriceListener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _notify(self) -> None:
        """Call listeners outside the lock, so a slow WebSocket never stalls matching."""
        with self._lock:
            pending, self._pending_notifications = self._pending_notifications, []
            listeners = list(self._listeners)
        for snapshot in pending:
            for listener in listeners:
                # A broken listener must not break the engine.
                with contextlib.suppress(Exception):
                    listener(snapshot)

    def set_price(
        self, symbol: str, price: Decimal | float | str, *, mark: Decimal | float | str | None = None
    ) -> Decimal:
        """Move ``symbol``'s last price (and its mark, or ``mark``) and run every trigger it crosses."""
        contract = self.contract(symbol)
        new_price = self._rounded(contract, price)
        with self._lock:
            self._apply_price(contract.symbol, new_price, None if mark is None else self._rounded(contract, mark))
        self._notify()
        return new_price

    def set_mark_price(self, symbol: str, mark: Decimal | float | str) -> Decimal:
        """Move only the mark price (the last trade stays): mark-triggered stops fire, fill-price ones not."""
        contract = self.contract(symbol)
        with self._lock:
            last = self._prices[contract.symbol]
            new_mark = self._rounded(contract, mark)
            self._apply_price(contract.symbol, last, new_mark)
        self._notify()
        return new_mark

    @staticmethod
    def _rounded(contract: Contract, price: Decimal | float | str) -> Decimal:
        rounded = contract.round_price(Decimal(str(price)))
        return rounded if rounded > 0 else contract.tick_size

    def jump_price(self, symbol: str, pct: Decimal) -> Decimal:
        with self._lock:
            current = self._prices[self.contract(symbol).symbol]
        return self.set_price(symbol, current * (1 + pct / 100))

    def step(self, n: int = 1, symbols: Iterable[str] | None = None) -> None:
        """Advance the seeded random walk ``n`` times for ``symbols`` (default: all, in catalogue order)."""
        with self._lock:
            chosen = [self.contract(s).symbol for s in symbols] if symbols else list(self.contracts)
            for _ in range(n):
                for symbol in chosen:
                    move = math.exp(self.volatility * self._rng.gauss(0.0, 1.0))
                    contract = self.contracts[symbol]
                    new_price = contract.round_price(self._prices[symbol] * Decimal(repr(move)))
                    self._apply_price(symbol, max(new_price, contract.tick_size))
        self._notify()

    def _apply_price(self, symbol: str, price: Decimal, mark: Decimal | None = None) -> None:
        self._prices[symbol] = price
        self._marks[symbol] = price if mark is None else mark
        if not self._stale:
            self._published[symbol] = self._snapshot(symbol)
            self._pending_notifications.append(self._published[symbol])
        self._evaluate(symbol)

    def set_stale_prices(self, stale: bool) -> None:
        with self._lock:
            self._stale = stale
            if not stale:
                for symbol in self.contracts:
                    self._published[symbol] = self._snapshot(symbol)

    def start_ticker(self, interval_s: float = 1.0) -> None:
        """Step the random walk in a background thread every ``interval_s`` (for the demo)."""
        if self._ticker_thread is not None:
            return
        self._ticker_stop.clear()

        def run() -> None:
            while not self._ticker_stop.wait(interval_s):
                self.step()

        self._ticker_thread = threading.Thread(target=run, name="sim-ticker", daemon=True)
        self._ticker_thread.start()

    def stop_ticker(self) -> None:
        thread, self._ticker_thread = self._ticker_thread, None
        if thread is not None:
            self._ticker_stop.set()
            thread.join(timeout=5)

    # ================================================================ account
    def _unrealized(self, position: SimPosition) -> Decimal:
        mark = self._marks[position.symbol]
        diff = mark - position.average_price
        return diff * position.size if position.hold_side == LONG else -diff * position.size

    @staticmethod
    def _position_margin(position: SimPosition) -> Decimal:
        return position.size * position.average_price / position.leverage

    def _order_margin(self, order: SimOrder) -> Decimal:
        if not order.is_open or order.is_closing:
            return ZERO
        ref = order.price if order.price is not None else self._prices[order.symbol]
        return order.remaining * ref / order.leverage

    def _account(self) -> AccountSnapshot:
        upl = sum((self._unrealized(p) for p in self._positions.values()), ZERO)
        pos_margin = sum((self._position_margin(p) for p in self._positions.values()), ZERO)
        order_margin = sum((self._order_margin(o) for o in self._orders.values()), ZERO)
        equity = self._cash + upl
        return AccountSnapshot(
            margin_coin=self.margin_coin,
            cash=self._cash,
            equity=equity,
            unrealized_pnl=upl,
            available=max(ZERO, equity - pos_margin - order_margin),
            position_margin=pos_margin,
            order_margin=order_margin,
            pos_mode=self.pos_mode,
        )

    def account(self) -> AccountSnapshot:
        with self._lock:
            return self._account()

    def deposit(self, amount: Decimal | float | str) -> None:
        with self._lock:
            self._cash += Decimal(str(amount))

    def unrealized_pnl(self, position: SimPosition) -> Decimal:
        with self._lock:
            return self._unrealized(position)

    def liquidation_price(self, position: SimPosition) -> Decimal:
        """Estimated liquidation price (0 when the account can carry any move)."""
        with self._lock:
            contract = self.contracts[position.symbol]
            if position.margin_mode == "isolated":
                shift = Decimal(1) / position.leverage - MAINTENANCE_MARGIN_RATE
                raw = position.average_price * (1 - shift if position.hold_side == LONG else 1 + shift)
            else:
                account = self._account()
                maintenance = position.size * position.average_price * MAINTENANCE_MARGIN_RATE
                cushion = (account.available + self._position_margin(position) - maintenance) / position.size
                raw = (
                    position.average_price - cushion
                    if position.hold_side == LONG
                    else (position.average_price + cushion)
                )
            return max(ZERO, contract.round_price(raw))

    # ================================================================ inspection (copies)
    def orders(self, symbol: str | None = None, *, open_only: bool = False) -> list[SimOrder]:
        with self._lock:
            return [
                copy.copy(o)
                for o in self._orders.values()
                if (symbol is None or o.symbol == symbol) and (o.is_open or not open_only)
            ]

    def plan_orders(self, symbol: str | None = None, *, live_only: bool = True) -> list[SimPlanOrder]:
        with self._lock:
            return [
                copy.copy(p)
                for p in self._plans.values()
                if (symbol is None or p.symbol == symbol) and (p.status == "live" or not live_only)
            ]

    def positions(self, symbol: str | None = None) -> list[SimPosition]:
        with self._lock:
            return [copy.copy(p) for p in self._positions.values() if symbol is None or p.symbol == symbol]

    def position(self, symbol: str, hold_side: str) -> SimPosition | None:
        with self._lock:
            found = self._positions.get((symbol, hold_side))
            return copy.copy(found) if found else None

    def fills(self, symbol: str | None = None, order_id: str | None = None) -> list[SimFill]:
        with self._lock:
            return [
                f
                for f in self._fills
                if (symbol is None or f.symbol == symbol) and (order_id is None or f.order_id == order_id)
            ]

    def locked_size(self, symbol: str, hold_side: str) -> Decimal:
        """Size held by pending close orders (Bitget's position ``locked``)."""
        with self._lock:
            return sum(
                (
                    o.remaining
                    for o in self._orders.values()
                    if o.is_open and o.is_closing and o.symbol == symbol and o.pos_side == hold_side
                ),
                ZERO,
            )

    def record_request(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.request_log.append(entry)

    def requests_to(self, endpoint: str) -> list[LoggedRequest]:
        key = endpoint.rstrip("/").rsplit("/", 1)[-1].lower()
        with self._lock:
            return [r for r in self.request_log if r.endpoint == key]

    def find_order(self, *, order_id: str | None = None, client_oid: str | None = None) -> SimOrder:
        with self._lock:
            return copy.copy(self._find_order(order_id, client_oid))

    def _find_order(self, order_id: str | None, client_oid: str | None) -> SimOrder:
        # Bitget: "If both are present, orderId prevails".
        if order_id:
            found = self._orders.get(order_id)
        elif client_oid:
            found = self._orders.get(self._orders_by_client_oid.get(client_oid, ""))
        else:
            raise e.param_empty("orderId")
        if found is None:
            raise e.err(e.ORDER_NOT_FOUND)
        return found

    def find_plan(self, *, order_id: str | None = None, client_oid: str | None = None) -> SimPlanOrder:
        with self._lock:
            return copy.copy(self._find_plan(order_id, client_oid))

    def _find_plan(self, order_id: str | None, client_oid: str | None) -> SimPlanOrder:
        if order_id:
            found = self._plans.get(order_id)
        elif client_oid:
            found = self._plans.get(self._plans_by_client_oid.get(client_oid, ""))
        else:
            raise e.param_empty("orderId")
        if found is None:
            raise e.err(e.PLAN_NOT_FOUND)
        return found

    # ================================================================ settings
    def _has_activity(self, symbol: str | None) -> bool:
        positions = any(symbol is None or p.symbol == symbol for p in self._positions.values())
        orders = any(o.is_open and (symbol is None or o.symbol == symbol) for o in self._orders.values())
        plans = any(p.status == "live" and (symbol is None or p.symbol == symbol) for p in self._plans.values())
        return positions or orders or plans

    def set_position_mode(self, pos_mode: str) -> str:
        if pos_mode not in (ONE_WAY, HEDGE):
            raise e.param_error("posMode")
        with self._lock:
            if pos_mode != self.pos_mode and self._has_activity(None):
                raise e.err(e.POSITION_MODE_LOCKED)
            self.pos_mode = pos_mode
            return pos_mode

    def set_margin_mode(self, symbol: str, margin_mode: str) -> SymbolSettings:
        if margin_mode not in ("isolated", "crossed"):
            raise e.param_error("marginMode")
        with self._lock:
            settings = self.settings(symbol)
            if margin_mode != settings.margin_mode and self._has_activity(self.contract(symbol).symbol):
                raise e.err(e.MARGIN_MODE_LOCKED)
            settings.margin_mode = margin_mode
            return copy.copy(settings)

    def set_leverage(self, symbol: str, leverage: int, hold_side: str | None = None) -> SymbolSettings:
        contract = self.contract(symbol)
        if not contract.min_lever <= leverage <= contract.max_lever:
            raise SimError("40797", f"Exceeded the maximum settable leverage: {contract.max_lever}")
        if hold_side not in (None, "", LONG, SHORT):
            raise e.param_error("holdSide")
        with self._lock:
            settings = self.settings(symbol)
            # holdSide only matters for isolated margin in hedge mode; otherwise both sides move together.
            one_side = settings.margin_mode == "isolated" and self.pos_mode == HEDGE and hold_side
            sides = [hold_side] if one_side and hold_side else [LONG, SHORT]
            for side in sides:
                if side == LONG:
                    settings.long_leverage = leverage
                else:
                    settings.short_leverage = leverage
                position = self._positions.get((contract.symbol, side))
                if position is not None:
                    position.leverage = leverage
            return copy.copy(settings)

    # ================================================================ validation helpers
    def _check_size(self, contract: Contract, size: Decimal, name: str = "size") -> None:
        if size <= 0:
            raise e.param_error(name)
        if _decimals(size) > contract.volume_place or size % contract.size_step != 0:
            raise SimError(
                "40808",
                f"Parameter verification exception {name} checkBDScale error value={size.normalize():f} "
                f"checkScale={contract.volume_place}",
            )

    def _check_price(self, contract: Contract, price: Decimal, name: str = "price") -> None:
        if price <= 0:
            raise e.param_error(name)
        if _decimals(price) > contract.price_place:
            raise SimError(
                "40808",
                f"Parameter verification exception {name} checkBDScale error value={price.normalize():f} "
                f"checkScale={contract.price_place}",
            )
        if price % contract.tick_size != 0:
            raise SimError("45115", f"The price you enter should be a multiple of {contract.tick_size}")

    def _check_client_oid(self, client_oid: str | None, taken: dict[str, str]) -> None:
        if client_oid is None:
            return
        if len(client_oid) > CLIENT_OID_MAX_LEN:
            raise SimError("40304", f"clientOid length cannot exceed {CLIENT_OID_MAX_LEN}")
        if client_oid in taken:
            raise e.err(e.DUPLICATE_CLIENT_OID)

    def _check_protection_side(
        self, hold_side: str, *, stop_loss: Decimal | None, take_profit: Decimal | None, reference: Decimal
    ) -> None:
        """A long's stop must sit below the reference price and its target above (mirrored for shorts)."""
        if stop_loss is not None and (stop_loss >= reference if hold_side == LONG else stop_loss <= reference):
            relation = "<" if hold_side == LONG else ">"
            raise SimError("40915", f"The stop loss price of {hold_side} positions should be {relation} {reference}")
        if take_profit is not None and (take_profit <= reference if hold_side == LONG else take_profit >= reference):
            relation = ">" if hold_side == LONG else "<"
            raise SimError("40917", f"The take profit price of {hold_side} positions should be {relation} {reference}")

    # ================================================================ orders
    def place_order(
        self,
        symbol: str,
        *,
        side: str,
        size: Decimal,
        order_type: str = "market",
        price: Decimal | None = None,
        trade_side: str | None = None,
        force: str = "gtc",
        reduce_only: bool = False,
        margin_mode: str | None = None,
        client_oid: str | None = None,
        preset_stop_loss: Decimal | None = None,
        preset_take_profit: Decimal | None = None,
        preset_stop_loss_execute: Decimal | None = None,
        preset_take_profit_execute: Decimal | None = None,
    ) -> SimOrder:
        """Validate and accept an order; market and marketable limit orders fill at once (maybe partly)."""
        contract = self.contract(symbol)
        side, order_type, force = side.lower(), order_type.lower(), (force or "gtc").lower()
        if side not in ("buy", "sell"):
            raise e.param_error("side")
        if order_type not in ("market", "limit"):
            raise e.param_error("orderType")
        if force not in ("gtc", "ioc", "fok", "post_only"):
            raise e.param_error("force")
        self._check_size(contract, size)
        if order_type == "limit":
            if price is None:
                raise e.param_empty("price")
            self._check_price(contract, price)
        for name, preset in (
            ("presetStopLossPrice", preset_stop_loss),
            ("presetStopSurplusPrice", preset_take_profit),
            ("presetStopLossExecutePrice", preset_stop_loss_execute),
            ("presetStopSurplusExecutePrice", preset_take_profit_execute),
        ):
            if preset is not None:
                self._check_price(contract, preset, name)
        with self._lock:
            self._check_client_oid(client_oid, self._orders_by_client_oid)
            settings = self.settings(contract.symbol)
            if margin_mode is not None and margin_mode != settings.margin_mode:
                if margin_mode not in ("isolated", "crossed"):
                    raise e.param_error("marginMode")
                # The order's margin mode wins when nothing is open on the symbol (Bitget switches the
                # symbol's setting); with positions or orders open it cannot change.
                if self._has_activity(contract.symbol):
                    raise e.err(e.MARGIN_MODE_LOCKED)
                settings.margin_mode = margin_mode
            normalized_trade_side = ""
            if self.pos_mode == HEDGE:
                if not trade_side:
                    raise e.err(e.HEDGE_NEEDS_TRADE_SIDE)
                normalized_trade_side = trade_side.lower()
                if normalized_trade_side not in ("open", "close"):
                    raise e.param_error("tradeSide")
                reduce_only = False  # reduceOnly is a one-way-mode parameter
            now = self.now_ms()
            order = SimOrder(
                order_id=self._new_id(),
                client_oid=client_oid or self._new_id(),
                symbol=contract.symbol,
                side=side,
                trade_side=normalized_trade_side,
                order_type=order_type,
                force=force,
                price=price if order_type == "limit" else None,
                size=size,
                reduce_only=reduce_only,
                margin_mode=settings.margin_mode,
                leverage=1,
                pos_mode=self.pos_mode,
                c_time=now,
                u_time=now,
                preset_stop_loss=preset_stop_loss,
                preset_take_profit=preset_take_profit,
                preset_stop_loss_execute=preset_stop_loss_execute,
                preset_take_profit_execute=preset_take_profit_execute,
            )
            order.leverage = settings.leverage_for(order.pos_side)
            self._check_order_against_account(contract, order)
            return self._accept(order)

    def _check_order_against_account(self, contract: Contract, order: SimOrder) -> None:
        mark = self._prices[contract.symbol]
        reference = order.price if order.price is not None else mark
        if order.size < contract.min_trade_num:
            raise SimError("45111", f"less than the minimum order quantity {contract.min_trade_num}")
        if order.is_closing:
            if order.preset_stop_loss is not None or order.preset_take_profit is not None:
                raise e.param_error("presetStopLossPrice", "not allowed on a closing order")
            position = self._positions.get((order.symbol, order.pos_side))
            if position is None:
                raise e.err(e.NO_POSITION_TO_CLOSE)
            if order.size > position.size - self.locked_size(order.symbol, order.pos_side):
                raise e.err(e.NOT_ENOUGH_POSITION)
            return
        if order.size * reference < contract.min_trade_usdt:
            raise SimError("45110", f"less than the minimum amount {contract.min_trade_usdt} USDT")
        self._check_protection_side(
            order.pos_side,
            stop_loss=order.preset_stop_loss,
            take_profit=order.preset_take_profit,
            reference=reference,
        )
        # In one-way mode the part of the order that only reduces the opposite position needs no margin.
        opening = order.size
        if order.pos_mode == ONE_WAY:
            opposite = self._positions.get((order.symbol, _other(order.pos_side)))
            if opposite is not None:
                opening = max(ZERO, order.size - opposite.size)
        needed = opening * reference / order.leverage + opening * reference * contract.taker_fee_rate
        if needed > self._account().available:
            raise e.err(e.BALANCE_EXCEEDED)

    def _accept(self, order: SimOrder) -> SimOrder:
        self._orders[order.order_id] = order
        self._orders_by_client_oid[order.client_oid] = order.order_id
        self._try_fill_new(order)
        return copy.copy(order)

    def _try_fill_new(self, order: SimOrder) -> None:
        mark = self._prices[order.symbol]
        if order.order_type == "market":
            self._fill_some(order, self._taker_price(order, mark), maker=False)
            return
        assert order.price is not None
        marketable = mark <= order.price if order.trade_direction == "buy" else mark >= order.price
        if order.force == "post_only" and marketable:
            self._cancel(order)  # a post-only order that would take liquidity is canceled, not filled
            return
        if marketable:
            fill_price = self._taker_price(order, mark)
            # A limit never fills beyond its price, even with slippage.
            limit = order.price
            fill_price = min(fill_price, limit) if order.trade_direction == "buy" else max(fill_price, limit)
            if order.force == "fok" and self.partial_fill_ratio is not None and self.partial_fill_ratio < 1:
                self._cancel(order)
                return
            self._fill_some(order, fill_price, maker=False)
        if order.force in ("ioc", "fok") and order.is_open:
            self._cancel(order)

    def _taker_price(self, order: SimOrder, mark: Decimal) -> Decimal:
        contract = self.contracts[order.symbol]
        slip = self.slippage_bps / Decimal(10000)
        if order.trade_direction == "buy":
            return contract.round_price(mark * (1 + slip), ROUND_UP)
        return max(contract.tick_size, contract.round_price(mark * (1 - slip), ROUND_DOWN))

    def _fill_quantity(self, order: SimOrder) -> Decimal:
        remaining = order.remaining
        if self.partial_fill_ratio is None or self.partial_fill_ratio >= 1:
            return remaining
        contract = self.contracts[order.symbol]
        part = contract.round_size(remaining * self.partial_fill_ratio)
        return part if part >= contract.size_step else remaining

    def _fill_some(self, order: SimOrder, price: Decimal, *, maker: bool) -> None:
        self._fill(order, self._fill_quantity(order), price, maker=maker)

    def _fill(self, order: SimOrder, quantity: Decimal, price: Decimal, *, maker: bool) -> None:
        contract = self.contracts[order.symbol]
        fee_rate = contract.maker_fee_rate if maker else contract.taker_fee_rate
        close_part, open_part = ZERO, quantity
        close_side = order.pos_side if order.is_closing else _other(order.pos_side)
        position_to_reduce = self._positions.get((order.symbol, close_side))
        if order.is_closing:
            close_part = min(quantity, position_to_reduce.size) if position_to_reduce else ZERO
            open_part = ZERO
        elif order.pos_mode == ONE_WAY and position_to_reduce is not None:
            close_part = min(quantity, position_to_reduce.size)
            open_part = quantity - close_part
        if close_part + open_part <= 0:
            self._cancel(order)  # nothing left to close: the position is gone
            return
        now = self.now_ms()
        for part, trade_side in ((close_part, "close"), (open_part, "open")):
            if part <= 0:
                continue
            fee = part * price * fee_rate
            profit = ZERO
            if trade_side == "close":
                assert position_to_reduce is not None
                profit = self._reduce_position(position_to_reduce, part, price, fee, now)
            else:
                self._open_position(order, part, price, fee, now)
            self._cash += profit - fee
            order.filled += part
            order.filled_value += part * price
            order.fee -= fee
            order.profit += profit
            self._fills.append(
                SimFill(
                    trade_id=self._new_id(),
                    order_id=order.order_id,
                    client_oid=order.client_oid,
                    symbol=order.symbol,
                    side=order.side,
                    trade_side=trade_side,
                    price=price,
                    size=part,
                    fee=-fee,
                    profit=profit,
                    scope="maker" if maker else "taker",
                    pos_mode=order.pos_mode,
                    c_time=now,
                )
            )
        order.u_time = now
        if order.filled >= order.size:
            order.state = "filled"
        elif order.state != "canceled":  # closing the position may have canceled this very order
            order.state = "partially_filled"
            if order.is_closing and close_part < quantity:
                self._cancel(order)  # the position ran out before the order did
        if open_part > 0:
            self._attach_presets(order, open_part)

    def _reduce_position(self, position: SimPosition, size: Decimal, price: Decimal, fee: Decimal, now: int) -> Decimal:
        diff = price - position.average_price
        profit = diff * size if position.hold_side == LONG else -diff * size
        position.size -= size
        position.achieved_profits += profit
        position.total_fee += fee
        position.u_time = now
        if position.size <= 0:
            self._position_closed(position)
        return profit

    def _open_position(self, order: SimOrder, size: Decimal, price: Decimal, fee: Decimal, now: int) -> None:
        key = (order.symbol, order.pos_side)
        position = self._positions.get(key)
        if position is None:
            self._positions[key] = SimPosition(
                symbol=order.symbol,
                hold_side=order.pos_side,
                size=size,
                average_price=price,
                margin_mode=order.margin_mode,
                leverage=order.leverage,
                c_time=now,
                u_time=now,
                total_fee=fee,
            )
            return
        total = position.size + size
        position.average_price = (position.average_price * position.size + price * size) / total
        position.size = total
        position.total_fee += fee
        position.u_time = now

    def _position_closed(self, position: SimPosition) -> None:
        """A flat position takes its TP/SL plans and pending close orders with it."""
        del self._positions[(position.symbol, position.hold_side)]
        if self.faults.plans_survive_flat_enabled():
            return  # the client has to cancel its plans (and pending close orders) itself
        for plan in self._plans.values():
            if (
                plan.status == "live"
                and plan.is_tpsl
                and plan.symbol == position.symbol
                and plan.hold_side == position.hold_side
            ):
                plan.status = "cancelled"
                plan.u_time = self.now_ms()
        for order in self._orders.values():
            if (
                order.is_open
                and order.is_closing
                and order.symbol == position.symbol
                and order.pos_side == position.hold_side
                and order.order_type == "limit"
            ):
                self._cancel(order)

    def _attach_presets(self, order: SimOrder, filled_now: Decimal) -> None:
        """Preset SL/TP become position TP/SL plans sized to what the entry has filled so far."""
        for price, execute, plan_type, attr in (
            (order.preset_stop_loss, order.preset_stop_loss_execute, "pos_loss", "stop_loss_plan_id"),
            (order.preset_take_profit, order.preset_take_profit_execute, "pos_profit", "take_profit_plan_id"),
        ):
            if price is None:
                continue
            plan_id = getattr(order, attr)
            existing = self._plans.get(plan_id) if plan_id else None
            if existing is not None and existing.status == "live":
                existing.size = (existing.size or ZERO) + filled_now
                existing.u_time = self.now_ms()
                continue
            if existing is not None:
                continue  # the plan already fired or was canceled; do not resurrect it
            plan = self._new_plan(
                symbol=order.symbol,
                plan_type=plan_type,
                trigger_price=price,
                trigger_type="mark_price",
                execute_price=execute if execute else None,
                hold_side=order.pos_side,
                size=filled_now,
                client_oid=None,
            )
            plan.source_order_id = order.order_id
            setattr(order, attr, plan.order_id)

    def _cancel(self, order: SimOrder) -> None:
        order.state = "canceled"
        order.u_time = self.now_ms()

    def cancel_order(self, symbol: str, *, order_id: str | None = None, client_oid: str | None = None) -> SimOrder:
        contract = self.contract(symbol)
        with self._lock:
            order = self._find_order(order_id, client_oid)
            if order.symbol != contract.symbol:
                raise e.err(e.ORDER_NOT_FOUND)
            if not order.is_open:
                raise e.err(e.NO_ORDER_TO_CANCEL)
            self._cancel(order)
            return copy.copy(order)

    def close_positions(self, symbol: str | None = None, hold_side: str | None = None) -> list[SimOrder]:
        """Flash close: market-close every matching position."""
        with self._lock:
            targets = [
                p
                for p in self._positions.values()
                if (symbol is None or p.symbol == self.contract(symbol).symbol)
                and (hold_side is None or p.hold_side == hold_side)
            ]
            if not targets:
                raise e.err(e.NO_POSITION_TO_CLOSE)
            return [self._close_order(p, p.size, source="normal", execute_price=None) for p in targets]

    def _close_order(
        self, position: SimPosition, size: Decimal, *, source: str, execute_price: Decimal | None
    ) -> SimOrder:
        hedge = self.pos_mode == HEDGE
        if hedge:
            side = "buy" if position.hold_side == LONG else "sell"
        else:
            side = "sell" if position.hold_side == LONG else "buy"
        now = self.now_ms()
        order = SimOrder(
            order_id=self._new_id(),
            client_oid=self._new_id(),
            symbol=position.symbol,
            side=side,
            trade_side="close" if hedge else "",
            order_type="market" if execute_price is None else "limit",
            force="gtc",
            price=execute_price,
            size=size,
            reduce_only=not hedge,
            margin_mode=position.margin_mode,
            leverage=position.leverage,
            pos_mode=self.pos_mode,
            c_time=now,
            u_time=now,
            order_source=source,
        )
        return self._accept(order)

    # ================================================================ plan orders
    def _new_plan(
        self,
        *,
        symbol: str,
        plan_type: str,
        trigger_price: Decimal,
        trigger_type: str,
        execute_price: Decimal | None,
        hold_side: str,
        size: Decimal | None,
        client_oid: str | None,
    ) -> SimPlanOrder:
        now = self.now_ms()
        plan = SimPlanOrder(
            order_id=self._new_id(),
            client_oid=client_oid or self._new_id(),
            symbol=symbol,
            plan_type=plan_type,
            trigger_price=trigger_price,
            trigger_type=trigger_type,
            execute_price=execute_price,
            hold_side=hold_side,
            size=size,
            margin_mode=self.settings(symbol).margin_mode,
            pos_mode=self.pos_mode,
            c_time=now,
            u_time=now,
        )
        self._plans[plan.order_id] = plan
        self._plans_by_client_oid[plan.client_oid] = plan.order_id
        return plan

    def _hold_side_param(self, hold_side: str) -> str:
        """TP/SL ``holdSide``: long/short in hedge mode, buy/sell (= long/short position) in one-way mode."""
        value = hold_side.lower()
        if self.pos_mode == HEDGE and value in (LONG, SHORT):
            return value
        if self.pos_mode == ONE_WAY and value in ("buy", "sell"):
            return LONG if value == "buy" else SHORT
        raise e.param_error("holdSide", f"{hold_side!r} is not valid in {self.pos_mode}")

    def place_tpsl_order(
        self,
        symbol: str,
        *,
        plan_type: str,
        trigger_price: Decimal,
        hold_side: str,
        size: Decimal | None = None,
        trigger_type: str = "fill_price",
        execute_price: Decimal | None = None,
        client_oid: str | None = None,
    ) -> SimPlanOrder:
        contract = self.contract(symbol)
        plan_type = plan_type.lower()
        if plan_type == "moving_plan":
            raise SimError("40020", "Parameter planType error: moving_plan is not supported by the simulator")
        if plan_type not in TPSL_PLAN_TYPES:
            raise e.param_error("planType")
        if trigger_type.lower() not in ("fill_price", "mark_price"):
            raise e.param_error("triggerType")
        self._check_price(contract, trigger_price, "triggerPrice")
        if execute_price is not None and execute_price > 0:
            self._check_price(contract, execute_price, "executePrice")
        else:
            execute_price = None
        if plan_type in ("profit_plan", "loss_plan"):
            if size is None:
                raise e.param_empty("size")
            self._check_size(contract, size)
        elif size is not None and size <= 0:
            size = None
        elif size is not None:
            self._check_size(contract, size)
        with self._lock:
            side = self._hold_side_param(hold_side)
            self._check_client_oid(client_oid, self._plans_by_client_oid)
            position = self._positions.get((contract.symbol, side))
            if position is None or (size is not None and size > position.size):
                raise e.err(e.TPSL_NO_POSITION)
            loss = plan_type in ("loss_plan", "pos_loss")
            self._check_protection_side(
                side,
                stop_loss=trigger_price if loss else None,
                take_profit=None if loss else trigger_price,
                reference=self._prices[contract.symbol],
            )
            plan = self._new_plan(
                symbol=contract.symbol,
                plan_type=plan_type,
                trigger_price=trigger_price,
                trigger_type=trigger_type.lower(),
                execute_price=execute_price,
                hold_side=side,
                size=size,
                client_oid=client_oid,
            )
            return copy.copy(plan)

    def place_pos_tpsl(
        self,
        symbol: str,
        *,
        hold_side: str,
        take_profit: Decimal | None = None,
        stop_loss: Decimal | None = None,
        take_profit_execute: Decimal | None = None,
        stop_loss_execute: Decimal | None = None,
        trigger_type: str = "fill_price",
    ) -> list[SimPlanOrder]:
        """Set the position's TP and/or SL, replacing the position TP/SL of the same kind."""
        contract = self.contract(symbol)
        if take_profit is None and stop_loss is None:
            raise e.param_empty("stopLossTriggerPrice")
        for name, value in (("stopSurplusTriggerPrice", take_profit), ("stopLossTriggerPrice", stop_loss)):
            if value is not None:
                self._check_price(contract, value, name)
        with self._lock:
            side = self._hold_side_param(hold_side)
            if (contract.symbol, side) not in self._positions:
                raise e.err(e.TPSL_NO_POSITION)
            self._check_protection_side(
                side, stop_loss=stop_loss, take_profit=take_profit, reference=self._prices[contract.symbol]
            )
            created = []
            for plan_type, price, execute in (
                ("pos_profit", take_profit, take_profit_execute),
                ("pos_loss", stop_loss, stop_loss_execute),
            ):
                if price is None:
                    continue
                for plan in self._plans.values():
                    if (
                        plan.status == "live"
                        and plan.plan_type == plan_type
                        and plan.symbol == contract.symbol
                        and plan.hold_side == side
                        and plan.size is None
                    ):
                        plan.status = "cancelled"
                created.append(
                    copy.copy(
                        self._new_plan(
                            symbol=contract.symbol,
                            plan_type=plan_type,
                            trigger_price=price,
                            trigger_type=trigger_type.lower(),
                            execute_price=execute if execute else None,
                            hold_side=side,
                            size=None,
                            client_oid=None,
                        )
                    )
                )
            return created

    def place_plan_order(
        self,
        symbol: str,
        *,
        side: str,
        size: Decimal,
        trigger_price: Decimal,
        trade_side: str | None = None,
        order_type: str = "market",
        execute_price: Decimal | None = None,
        trigger_type: str = "mark_price",
        reduce_only: bool = False,
        client_oid: str | None = None,
        stop_surplus_trigger_price: Decimal | None = None,
        stop_loss_trigger_price: Decimal | None = None,
        plan_type: str = "normal_plan",
    ) -> SimPlanOrder:
        """A trigger order: when the mark reaches ``trigger_price`` an ordinary order is placed."""
        contract = self.contract(symbol)
        if plan_type.lower() != "normal_plan":
            raise SimError("40020", f"Parameter planType error: {plan_type} is not supported by the simulator")
        side, order_type = side.lower(), order_type.lower()
        if side not in ("buy", "sell"):
            raise e.param_error("side")
        if order_type not in ("market", "limit"):
            raise e.param_error("orderType")
        self._check_size(contract, size)
        self._check_price(contract, trigger_price, "triggerPrice")
        if order_type == "limit":
            if execute_price is None or execute_price <= 0:
                raise e.param_empty("price")
            self._check_price(contract, execute_price, "price")
        else:
            execute_price = None
        with self._lock:
            self._check_client_oid(client_oid, self._plans_by_client_oid)
            normalized_trade_side = ""
            if self.pos_mode == HEDGE:
                if not trade_side or trade_side.lower() not in ("open", "close"):
                    raise e.err(e.HEDGE_NEEDS_TRADE_SIDE)
                normalized_trade_side = trade_side.lower()
                reduce_only = False
            probe = SimOrder(
                "",
                "",
                contract.symbol,
                side,
                normalized_trade_side,
                order_type,
                "gtc",
                execute_price,
                size,
                reduce_only,
                "crossed",
                1,
                self.pos_mode,
                0,
                0,
            )
            plan = self._new_plan(
                symbol=contract.symbol,
                plan_type="normal_plan",
                trigger_price=trigger_price,
                trigger_type=trigger_type.lower(),
                execute_price=execute_price,
                hold_side=probe.pos_side,
                size=size,
                client_oid=client_oid,
            )
            plan.side = side
            plan.trade_side = normalized_trade_side
            plan.order_type = order_type
            plan.reduce_only = reduce_only
            watched = self._marks if trigger_type.lower() == "mark_price" else self._prices
            plan.trigger_when_above = trigger_price >= watched[contract.symbol]
            plan.stop_surplus_trigger_price = stop_surplus_trigger_price
            plan.stop_loss_trigger_price = stop_loss_trigger_price
            return copy.copy(plan)

    def modify_tpsl_order(
        self,
        symbol: str,
        *,
        order_id: str | None = None,
        client_oid: str | None = None,
        trigger_price: Decimal,
        size: Decimal | None = None,
        execute_price: Decimal | None = None,
        trigger_type: str | None = None,
    ) -> SimPlanOrder:
        contract = self.contract(symbol)
        self._check_price(contract, trigger_price, "triggerPrice")
        if size is not None:
            self._check_size(contract, size)
        with self._lock:
            plan = self._find_plan(order_id, client_oid)
            if plan.symbol != contract.symbol or plan.status != "live" or not plan.is_tpsl:
                raise e.err(e.PLAN_NOT_FOUND)
            loss = plan.is_stop_loss
            self._check_protection_side(
                plan.hold_side,
                stop_loss=trigger_price if loss else None,
                take_profit=None if loss else trigger_price,
                reference=self._prices[contract.symbol],
            )
            plan.trigger_price = trigger_price
            if size is not None and plan.plan_type in ("profit_plan", "loss_plan"):
                plan.size = size
            if execute_price is not None:
                plan.execute_price = execute_price if execute_price > 0 else None
            if trigger_type:
                plan.trigger_type = trigger_type.lower()
            plan.u_time = self.now_ms()
            return copy.copy(plan)

    def cancel_plan_orders(
        self,
        symbol: str | None,
        *,
        plan_type: str = "normal_plan",
        ids: list[tuple[str | None, str | None]] | None = None,
    ) -> tuple[list[SimPlanOrder], list[tuple[str, str, str]]]:
        """Cancel by (orderId, clientOid) pairs, or every live plan of ``plan_type`` on ``symbol``.

        ``plan_type="profit_loss"`` means every TP/SL kind. Returns (canceled, failures) where a failure is
        (orderId, clientOid, message).
        """
        plan_type = (plan_type or "normal_plan").lower()
        kinds = set(TPSL_PLAN_TYPES) if plan_type == "profit_loss" else {plan_type}
        wanted_symbol = self.contract(symbol).symbol if symbol else None
        canceled: list[SimPlanOrder] = []
        failures: list[tuple[str, str, str]] = []
        with self._lock:
            if ids:
                for order_id, client_oid in ids:
                    try:
                        plan = self._find_plan(order_id, client_oid)
                    except SimError as error:
                        failures.append((order_id or "", client_oid or "", error.msg))
                        continue
                    if (
                        plan.status != "live"
                        or (wanted_symbol and plan.symbol != wanted_symbol)
                        or plan.plan_type not in kinds  # planType defaults to normal_plan: a TP/SL needs its own
                    ):
                        failures.append((plan.order_id, plan.client_oid, e.PLAN_NOT_FOUND[1]))
                        continue
                    plan.status = "cancelled"
                    canceled.append(copy.copy(plan))
            else:
                for plan in self._plans.values():
                    if (
                        plan.status == "live"
                        and plan.plan_type in kinds
                        and (wanted_symbol is None or plan.symbol == wanted_symbol)
                    ):
                        plan.status = "cancelled"
                        canceled.append(copy.copy(plan))
        return canceled, failures

    # ================================================================ matching on price changes
    def _evaluate(self, symbol: str) -> None:
        mark = self._prices[symbol]  # book orders trade at the last price
        for order in [o for o in self._orders.values() if o.symbol == symbol and o.is_open]:
            if not order.is_open:
                continue
            if order.order_type == "market":
                self._fill_some(order, self._taker_price(order, mark), maker=False)
            elif order.price is not None:
                crossed = mark <= order.price if order.trade_direction == "buy" else mark >= order.price
                if crossed:
                    self._fill_some(order, order.price, maker=True)
        for plan in [p for p in self._plans.values() if p.symbol == symbol and p.status == "live"]:
            watched = self._marks[symbol] if plan.trigger_type == "mark_price" else self._prices[symbol]
            if plan.status == "live" and self._triggered(plan, watched):
                if plan.is_stop_loss and self.faults.stop_does_not_fire(symbol):
                    continue  # the fault: a stop that stays live past its trigger
                self._execute_plan(plan)

    @staticmethod
    def _triggered(plan: SimPlanOrder, price: Decimal) -> bool:
        if plan.plan_type == "normal_plan":
            return price >= plan.trigger_price if plan.trigger_when_above else price <= plan.trigger_price
        long = plan.hold_side == LONG
        if plan.is_stop_loss:
            return price <= plan.trigger_price if long else price >= plan.trigger_price
        return price >= plan.trigger_price if long else price <= plan.trigger_price

    def _execute_plan(self, plan: SimPlanOrder) -> None:
        plan.u_time = self.now_ms()
        if plan.is_tpsl:
            position = self._positions.get((plan.symbol, plan.hold_side))
            if position is None:
                plan.status = "fail_trigger"
                return
            size = position.size if plan.size is None else min(plan.size, position.size)
            plan.status = "executed"
            order = self._close_order(
                position, size, source=_PLAN_ORDER_SOURCE.get(plan.plan_type, f"{plan.plan_type}_market"),
                execute_price=plan.execute_price,
            )
            plan.executed_order_id = order.order_id
            if plan.source_order_id:
                # The entry's TP and SL are a pair: when one fires the other goes.
                for sibling in self._plans.values():
                    if sibling.source_order_id == plan.source_order_id and sibling.status == "live":
                        sibling.status = "cancelled"
            return
        try:
            order = self.place_order(
                plan.symbol,
                side=plan.side,
                size=plan.size or ZERO,
                order_type=plan.order_type,
                price=plan.execute_price,
                trade_side=plan.trade_side or None,
                reduce_only=plan.reduce_only,
                preset_stop_loss=plan.stop_loss_trigger_price,
                preset_take_profit=plan.stop_surplus_trigger_price,
            )
        except SimError:
            plan.status = "fail_trigger"
            return
        plan.status = "executed"
        plan.executed_order_id = order.order_id
        self._orders[order.order_id].order_source = "plan_market"

    # ================================================================ convenience for tests
    def mark_prices(self) -> dict[str, Decimal]:
        with self._lock:
            return dict(self._prices)

    def replace_contract(self, contract: Contract) -> None:
        """Add or replace a contract (tests use odd ticks); its price is re-rounded."""
        with self._lock:
            self.contracts[contract.symbol] = contract
            price = self._prices.get(contract.symbol, Decimal("100"))
            self._prices[contract.symbol] = contract.round_price(price)
            self._marks[contract.symbol] = self._prices[contract.symbol]
            self._published[contract.symbol] = self._snapshot(contract.symbol)
