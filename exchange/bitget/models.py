"""Typed, frozen views of Bitget V2 mix replies, and the request types the client accepts.

Bitget sends numbers as strings (sometimes as JSON numbers, sometimes as ``""`` for "none"). Every number
here is a ``Decimal`` parsed from ``str(value)``; optional fields are ``None`` when the exchange sends an
empty string. A row that lacks a required field, or carries garbage in it, raises
:class:`~exchange.bitget.errors.MalformedResponse` naming the row kind and the field, never ``KeyError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypeVar, get_args

from exchange.bitget.errors import MalformedResponse

# The vocabulary shared by the exchange models, trading/ and the config (one definition each).
Side = Literal["buy", "sell"]  # an order's side
TradeSide = Literal["open", "close"]  # hedge mode only
OrderType = Literal["limit", "market"]
MarginMode = Literal["isolated", "crossed"]
PositionSide = Literal["long", "short"]  # a position's direction (Bitget's holdSide of a position)
PosMode = Literal["one_way_mode", "hedge_mode"]
TpslHoldSide = Literal["long", "short", "buy", "sell"]  # a TP/SL's holdSide: long/short (hedge), buy/sell (one-way)
Force = Literal["gtc", "ioc", "fok", "post_only"]
TriggerType = Literal["mark_price", "fill_price"]
TpslPlanType = Literal["loss_plan", "profit_plan", "pos_loss", "pos_profit", "moving_plan"]
PlanType = Literal["normal_plan", "track_plan"]

SIDES: tuple[Side, ...] = get_args(Side)
TRADE_SIDES: tuple[TradeSide, ...] = get_args(TradeSide)
ORDER_TYPES: tuple[OrderType, ...] = get_args(OrderType)
MARGIN_MODES: tuple[MarginMode, ...] = get_args(MarginMode)
_Word = TypeVar("_Word", bound=str)


def as_position_side(value: object) -> PositionSide | None:
    """``value`` when it names a position side ("long"/"short", e.g. read back from a journal), else None."""
    return "long" if value == "long" else "short" if value == "short" else None


def one_of(value: object, options: tuple[_Word, ...], what: str) -> _Word:
    """``value`` as one of the words of a Literal (text read back from the journal); ValueError otherwise."""
    for option in options:
        if value == option:
            return option
    raise ValueError(f"{what} must be one of {', '.join(options)}, not {value!r}")

ORDER_STATES: frozenset[str] = frozenset({"live", "partially_filled", "filled", "canceled"})


_MAX_TEXT = 200  # ids, symbols, states: far shorter
_MAX_NUMBER_TEXT = 64
_MAX_MAGNITUDE = 30  # |number| below 1e30 and above 1e-30 (prices, sizes, ms timestamps all are)
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")  # ASCII digits only


class RowReader:
    """Field reader for one exchange row that turns every problem into ``MalformedResponse``."""

    def __init__(self, row: object, kind: str, endpoint: str) -> None:
        if not isinstance(row, Mapping):
            got = type(row).__name__
            raise MalformedResponse("malformed", f"{kind} row is not an object: {got}", endpoint)
        self.row: Mapping[str, Any] = row
        self.kind = kind
        self.endpoint = endpoint

    def _fail(self, key: str, why: str) -> MalformedResponse:
        return MalformedResponse("malformed", f"{self.kind}.{key} {why}", self.endpoint)

    def has(self, key: str) -> bool:
        value = self.row.get(key)
        return value is not None and value != ""

    def text(self, key: str) -> str:
        value = self.opt_text(key)
        if value is None:
            raise self._fail(key, "is missing or empty")
        return value

    def opt_text(self, key: str) -> str | None:
        """A text field: a string (Bitget sends ids, symbols and states as strings) or a whole number."""
        value = self.row.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self._fail(key, f"is not a text (got {type(value).__name__})")
        text = str(value) if isinstance(value, str) or abs(value) < 10**40 else ""
        if not text or len(text) > _MAX_TEXT or not text.isprintable():
            raise self._fail(key, f"is not a plausible text (got {value!r:.40})")
        return text

    def dec(self, key: str) -> Decimal:
        value = self.opt_dec(key)
        if value is None:
            raise self._fail(key, "is missing or empty")
        return value

    def opt_dec(self, key: str) -> Decimal | None:
        value = self.row.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
            raise self._fail(key, f"is not a number (got {type(value).__name__})")
        if isinstance(value, int) and abs(value) >= 10**_MAX_MAGNITUDE:
            raise self._fail(key, "is out of range")
        text = value.strip() if isinstance(value, str) else str(value)
        if len(text) > _MAX_NUMBER_TEXT or not _NUMBER.fullmatch(text):
            raise self._fail(key, f"is not a number (got {value!r:.40})")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise self._fail(key, f"is not a number (got {value!r:.40})") from None
        # Finite and of a plausible size: "1E+999999999" would make int() run for hours.
        if not number.is_finite() or (number != 0 and not -_MAX_MAGNITUDE <= number.adjusted() < _MAX_MAGNITUDE):
            raise self._fail(key, f"is not a finite number in range (got {value!r:.40})")
        return number

    def price(self, key: str) -> Decimal:
        """A price: a number above zero."""
        value = self.dec(key)
        if value <= 0:
            raise self._fail(key, f"is not a positive price (got {value})")
        return value

    def opt_price(self, key: str) -> Decimal | None:
        """An optional price: absent or ``0`` mean none; a negative one is garbage."""
        value = self.opt_dec(key)
        if value is not None and value < 0:
            raise self._fail(key, f"is a negative price ({value})")
        return value if value else None

    def size(self, key: str) -> Decimal:
        """A size: zero or more."""
        value = self.dec(key)
        if value < 0:
            raise self._fail(key, f"is a negative size ({value})")
        return value

    def size_or_zero(self, key: str) -> Decimal:
        value = self.opt_dec(key)
        if value is not None and value < 0:
            raise self._fail(key, f"is a negative size ({value})")
        return Decimal(0) if value is None else value

    def dec_or_zero(self, key: str) -> Decimal:
        value = self.opt_dec(key)
        return Decimal(0) if value is None else value

    def positive_or_none(self, key: str) -> Decimal | None:
        """Prices where ``0`` means "none" (liquidation price, TP/SL fields)."""
        value = self.opt_dec(key)
        return value if value is not None and value > 0 else None

    def integer(self, key: str) -> int:
        return int(self.dec(key))

    def opt_integer(self, key: str) -> int | None:
        value = self.opt_dec(key)
        return None if value is None else int(value)

    def yes_no(self, key: str) -> bool:
        value = self.row.get(key)
        if value is None or value == "":
            return False
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("yes", "true"):
            return True
        if text in ("no", "false"):
            return False
        raise self._fail(key, f"is not YES/NO (got {value!r:.40})")


# ---------------------------------------------------------------------------------------------------------
# Replies


@dataclass(frozen=True)
class Ticker:
    symbol: str
    last: Decimal
    bid: Decimal | None
    ask: Decimal | None
    mark: Decimal | None
    index: Decimal | None
    ts: int  # exchange time, ms

    @classmethod
    def from_api(cls, row: object, endpoint: str = "ticker") -> Ticker:
        r = RowReader(row, "Ticker", endpoint)
        symbol = r.opt_text("symbol") or r.text("instId")  # REST uses symbol, WS uses instId
        return cls(
            symbol=symbol,
            last=r.price("lastPr"),
            bid=r.opt_price("bidPr"),
            ask=r.opt_price("askPr"),
            mark=r.opt_price("markPrice"),
            index=r.opt_price("indexPrice"),
            ts=r.integer("ts"),
        )


@dataclass(frozen=True)
class SymbolPrice:
    """``/market/symbol-price``: last, index and mark price only."""

    symbol: str
    price: Decimal
    index: Decimal | None
    mark: Decimal | None
    ts: int

    @classmethod
    def from_api(cls, row: object, endpoint: str = "symbol-price") -> SymbolPrice:
        r = RowReader(row, "SymbolPrice", endpoint)
        return cls(
            symbol=r.text("symbol"),
            price=r.price("price"),
            index=r.opt_price("indexPrice"),
            mark=r.opt_price("markPrice"),
            ts=r.integer("ts"),
        )


@dataclass(frozen=True)
class Account:
    margin_coin: str
    equity: Decimal
    available: Decimal
    locked: Decimal
    unrealized_pnl: Decimal
    crossed_max_available: Decimal | None
    isolated_max_available: Decimal | None
    pos_mode: str | None = None  # only the single-account endpoint reports it
    margin_mode: str | None = None
    # the single-account endpoint's leverages (the symbol's settings; None when not reported)
    isolated_long_lever: Decimal | None = None
    isolated_short_lever: Decimal | None = None
    crossed_lever: Decimal | None = None

    @classmethod
    def from_api(cls, row: object, endpoint: str = "account") -> Account:
        r = RowReader(row, "Account", endpoint)
        equity = r.opt_dec("accountEquity")
        if equity is None:
            equity = r.dec("usdtEquity")
        pnl = r.opt_dec("unrealizedPL")
        if pnl is None:  # the doc sample sends "" here and splits PnL by margin mode
            pnl = r.dec_or_zero("crossedUnrealizedPL") + r.dec_or_zero("isolatedUnrealizedPL")
        return cls(
            margin_coin=r.text("marginCoin"),
            equity=equity,
            available=r.dec("available"),
            locked=r.dec_or_zero("locked"),
            unrealized_pnl=pnl,
            crossed_max_available=r.opt_dec("crossedMaxAvailable"),
            isolated_max_available=r.opt_dec("isolatedMaxAvailable"),
            pos_mode=r.opt_text("posMode"),
            margin_mode=r.opt_text("marginMode"),
            isolated_long_lever=r.opt_dec("isolatedLongLever"),
            isolated_short_lever=r.opt_dec("isolatedShortLever"),
            crossed_lever=r.opt_dec("crossedMarginLeverage"),
        )


@dataclass(frozen=True)
class Position:
    symbol: str
    hold_side: PositionSide
    total: Decimal
    available: Decimal
    locked: Decimal
    average_open_price: Decimal
    mark_price: Decimal | None
    liquidation_price: Decimal | None  # None when the exchange sends "", "0" or a negative value
    leverage: Decimal
    margin_mode: str
    unrealized_pnl: Decimal
    pos_mode: str | None
    margin_size: Decimal | None = None
    achieved_profits: Decimal | None = None
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit_id: str | None = None
    stop_loss_id: str | None = None
    c_time: int | None = None
    u_time: int | None = None

    @classmethod
    def from_api(cls, row: object, endpoint: str = "position") -> Position:
        r = RowReader(row, "Position", endpoint)
        hold_side = r.text("holdSide").lower()
        if hold_side not in ("long", "short"):
            raise MalformedResponse("malformed", f"Position.holdSide is {hold_side!r:.20}", endpoint)
        total = r.size("total")
        return cls(
            symbol=r.opt_text("symbol") or r.text("instId"),
            hold_side=hold_side,  # type: ignore[arg-type]
            total=total,
            available=r.size_or_zero("available"),
            locked=r.size_or_zero("locked"),
            average_open_price=r.price("openPriceAvg") if total > 0 else r.size("openPriceAvg"),
            mark_price=r.opt_price("markPrice"),
            liquidation_price=r.positive_or_none("liquidationPrice"),
            leverage=r.price("leverage"),
            margin_mode=r.text("marginMode"),
            unrealized_pnl=r.dec_or_zero("unrealizedPL"),
            pos_mode=r.opt_text("posMode"),
            margin_size=r.opt_dec("marginSize"),
            achieved_profits=r.opt_dec("achievedProfits"),
            take_profit=r.positive_or_none("takeProfit"),
            stop_loss=r.positive_or_none("stopLoss"),
            take_profit_id=r.opt_text("takeProfitId"),
            stop_loss_id=r.opt_text("stopLossId"),
            c_time=r.opt_integer("cTime"),
            u_time=r.opt_integer("uTime"),
        )


@dataclass(frozen=True)
class Order:
    order_id: str
    client_oid: str | None
    symbol: str
    side: str
    trade_side: str | None  # "" in one-way mode -> None
    order_type: str
    size: Decimal
    price: Decimal | None  # None (or absent) for market orders
    filled_size: Decimal  # baseVolume
    avg_price: Decimal | None  # priceAvg; None until something filled
    state: str  # live | partially_filled | filled | canceled
    reduce_only: bool
    pos_side: str | None
    c_time: int
    u_time: int
    preset_stop_loss_price: Decimal | None = None
    preset_take_profit_price: Decimal | None = None
    fee: Decimal | None = None
    # normal | market | profit_market | loss_market | pos_profit_market | pos_loss_market | liquidation | ...:
    # what made the order (a triggered take-profit or stop plan, a liquidation); None when not reported.
    order_source: str | None = None

    @property
    def is_open(self) -> bool:
        return self.state in ("live", "partially_filled")

    @classmethod
    def from_api(cls, row: object, endpoint: str = "order") -> Order:
        r = RowReader(row, "Order", endpoint)
        # The detail endpoint says "state", list endpoints say "status".
        state = (r.opt_text("state") or r.text("status")).lower()
        if state == "cancelled":
            state = "canceled"
        if state not in ORDER_STATES:
            raise MalformedResponse("malformed", f"Order.state {state!r:.30} is unknown", endpoint)
        return cls(
            order_id=r.text("orderId"),
            client_oid=r.opt_text("clientOid"),
            symbol=r.text("symbol"),
            side=r.text("side").lower(),
            trade_side=(r.opt_text("tradeSide") or "").lower() or None,
            order_type=r.text("orderType").lower(),
            size=r.size("size"),
            price=r.opt_price("price"),
            filled_size=r.size_or_zero("baseVolume"),
            avg_price=r.opt_price("priceAvg"),
            state=state,
            reduce_only=r.yes_no("reduceOnly"),
            pos_side=r.opt_text("posSide"),
            c_time=r.integer("cTime"),
            u_time=r.opt_integer("uTime") or r.integer("cTime"),
            preset_stop_loss_price=r.opt_price("presetStopLossPrice"),
            preset_take_profit_price=r.opt_price("presetStopSurplusPrice"),
            fee=r.opt_dec("fee"),
            order_source=(r.opt_text("orderSource") or "").lower() or None,
        )


@dataclass(frozen=True)
class PlanOrder:
    """A pending trigger / TP / SL order (``orders-plan-pending``)."""

    order_id: str
    client_oid: str | None
    symbol: str
    plan_type: str
    trigger_price: Decimal
    trigger_type: str | None
    execute_price: Decimal | None  # None means market execution
    size: Decimal | None  # None / 0 for whole-position TP/SL
    side: str | None
    trade_side: str | None
    pos_side: str | None
    status: str
    stop_loss_trigger_price: Decimal | None = None
    stop_surplus_trigger_price: Decimal | None = None
    c_time: int | None = None

    @classmethod
    def from_api(cls, row: object, endpoint: str = "plan-order") -> PlanOrder:
        r = RowReader(row, "PlanOrder", endpoint)
        execute = r.opt_price("executePrice")
        if execute is None:
            execute = r.opt_price("price")
        return cls(
            order_id=r.text("orderId"),
            client_oid=r.opt_text("clientOid"),
            symbol=r.text("symbol"),
            plan_type=r.text("planType"),
            trigger_price=r.price("triggerPrice"),
            trigger_type=r.opt_text("triggerType"),
            execute_price=execute,
            size=r.opt_price("size"),
            side=(r.opt_text("side") or "").lower() or None,
            trade_side=(r.opt_text("tradeSide") or "").lower() or None,
            pos_side=r.opt_text("posSide"),
            status=(r.opt_text("planStatus") or r.text("status")).lower(),
            stop_loss_trigger_price=r.opt_price("stopLossTriggerPrice"),
            stop_surplus_trigger_price=r.opt_price("stopSurplusTriggerPrice"),
            c_time=r.opt_integer("cTime"),
        )


@dataclass(frozen=True)
class Fill:
    trade_id: str
    order_id: str
    symbol: str
    side: str
    trade_side: str | None
    price: Decimal
    size: Decimal
    fee: Decimal  # negative = paid (Bitget convention), summed over feeDetail
    fee_coin: str | None
    profit: Decimal | None
    ts: int
    pos_mode: str | None = None  # posMode: hedge_mode | one_way_mode (decides which position a close fill hit)
    trade_scope: str | None = None  # tradeScope: taker | maker

    @classmethod
    def from_api(cls, row: object, endpoint: str = "fills") -> Fill:
        r = RowReader(row, "Fill", endpoint)
        fee = Decimal(0)
        fee_coin: str | None = None
        details = r.row.get("feeDetail") or []
        if not isinstance(details, list):
            raise MalformedResponse("malformed", "Fill.feeDetail is not a list", endpoint)
        for detail in details:
            d = RowReader(detail, "Fill.feeDetail", endpoint)
            fee += d.dec_or_zero("totalFee")
            fee_coin = fee_coin or d.opt_text("feeCoin")
        return cls(
            trade_id=r.text("tradeId"),
            order_id=r.text("orderId"),
            symbol=r.text("symbol"),
            side=r.text("side").lower(),
            trade_side=(r.opt_text("tradeSide") or "").lower() or None,
            price=r.price("price"),
            size=r.price("baseVolume"),
            fee=fee,
            fee_coin=fee_coin,
            profit=r.opt_dec("profit"),
            ts=r.integer("cTime"),
            pos_mode=(r.opt_text("posMode") or "").lower() or None,
            trade_scope=(r.opt_text("tradeScope") or "").lower() or None,
        )


@dataclass(frozen=True)
class PlacedOrder:
    """Reply to a write. ``order_id`` can be None: a one-way reduce-only order may come back without one."""

    order_id: str | None
    client_oid: str | None

    @classmethod
    def from_api(cls, row: object, endpoint: str = "place") -> PlacedOrder:
        r = RowReader(row, "PlacedOrder", endpoint)
        placed = cls(order_id=r.opt_text("orderId"), client_oid=r.opt_text("clientOid"))
        if placed.order_id is None and placed.client_oid is None:
            raise MalformedResponse("malformed", "PlacedOrder has neither orderId nor clientOid", endpoint)
        return placed


@dataclass(frozen=True)
class PosTpslPlaced:
    """One element of the ``place-pos-tpsl`` reply."""

    order_id: str | None
    stop_surplus_client_oid: str | None
    stop_loss_client_oid: str | None

    @classmethod
    def from_api(cls, row: object, endpoint: str = "place-pos-tpsl") -> PosTpslPlaced:
        r = RowReader(row, "PosTpslPlaced", endpoint)
        return cls(
            order_id=r.opt_text("orderId"),
            stop_surplus_client_oid=r.opt_text("stopSurplusClientOid"),
            stop_loss_client_oid=r.opt_text("stopLossClientOid"),
        )


# ---------------------------------------------------------------------------------------------------------
# Requests. Validation here is about shape only; price/size steps are checked by the client against the
# contract, because only it knows the contract.


def _require_positive(name: str, value: Decimal | None) -> None:
    if value is None:
        return
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite() or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value}")


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: Side
    size: Decimal
    order_type: OrderType
    price: Decimal | None = None
    trade_side: TradeSide | None = None  # hedge mode only
    reduce_only: bool = False  # one-way mode only
    client_oid: str | None = None
    margin_mode: MarginMode = "isolated"
    force: Force = "gtc"
    preset_stop_loss_price: Decimal | None = None
    preset_take_profit_price: Decimal | None = None

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise ValueError(f"side must be buy or sell, got {self.side!r}")
        if self.order_type not in ("limit", "market"):
            raise ValueError(f"order_type must be limit or market, got {self.order_type!r}")
        if self.trade_side not in (None, "open", "close"):
            raise ValueError(f"trade_side must be open, close or None, got {self.trade_side!r}")
        if self.trade_side is not None and self.reduce_only:
            # tradeSide exists only in hedge mode, reduceOnly only in one-way mode: both at once is a bug.
            raise ValueError("reduce_only (one-way mode) and trade_side (hedge mode) are mutually exclusive")
        if self.margin_mode not in ("isolated", "crossed"):
            raise ValueError(f"margin_mode must be isolated or crossed, got {self.margin_mode!r}")
        if self.force not in ("gtc", "ioc", "fok", "post_only"):
            raise ValueError(f"force must be gtc, ioc, fok or post_only, got {self.force!r}")
        _require_positive("size", self.size)
        if self.size is None:
            raise ValueError("size is required")
        if self.order_type == "limit" and self.price is None:
            raise ValueError("a limit order needs a price")
        if self.order_type == "market" and self.price is not None:
            raise ValueError("a market order takes no price")
        _require_positive("price", self.price)
        _require_positive("preset_stop_loss_price", self.preset_stop_loss_price)
        _require_positive("preset_take_profit_price", self.preset_take_profit_price)
        if not self.symbol:
            raise ValueError("symbol is required")


_SIZED_TPSL_PLANS = frozenset({"profit_plan", "loss_plan", "moving_plan"})


@dataclass(frozen=True)
class TpslRequest:
    symbol: str
    plan_type: TpslPlanType
    trigger_price: Decimal
    hold_side: TpslHoldSide
    size: Decimal | None = None  # required for profit_plan / loss_plan / moving_plan
    trigger_type: TriggerType = "mark_price"
    execute_price: Decimal | None = None  # None = market execution
    client_oid: str | None = None
    range_rate: Decimal | None = None  # callback rate, moving_plan only

    def __post_init__(self) -> None:
        if self.plan_type not in ("loss_plan", "profit_plan", "pos_loss", "pos_profit", "moving_plan"):
            raise ValueError(f"unknown TP/SL plan type {self.plan_type!r}")
        if self.hold_side not in ("long", "short", "buy", "sell"):
            raise ValueError(f"hold_side must be long/short or buy/sell: {self.hold_side!r:.20}")
        if self.trigger_type not in ("mark_price", "fill_price"):
            raise ValueError(f"trigger_type must be mark_price or fill_price, got {self.trigger_type!r}")
        _require_positive("trigger_price", self.trigger_price)
        _require_positive("size", self.size)
        _require_positive("execute_price", self.execute_price)
        if self.plan_type in _SIZED_TPSL_PLANS and self.size is None:
            raise ValueError(f"{self.plan_type} needs a size")
        if self.plan_type in ("pos_loss", "pos_profit") and self.size is not None:
            raise ValueError(f"{self.plan_type} acts on the whole position and takes no size")
        if self.plan_type == "moving_plan":
            if self.range_rate is None:
                raise ValueError("moving_plan needs a range_rate")
            if self.execute_price is not None:
                raise ValueError("moving_plan executes at market; execute_price must be None")
        if not self.symbol:
            raise ValueError("symbol is required")


@dataclass(frozen=True)
class PlanOrderRequest:
    """A trigger order (``place-plan-order``): opens or closes when the trigger price is crossed."""

    symbol: str
    side: Side
    size: Decimal
    trigger_price: Decimal
    order_type: OrderType = "market"
    price: Decimal | None = None  # limit execution price
    trade_side: TradeSide | None = None
    reduce_only: bool = False
    plan_type: PlanType = "normal_plan"
    trigger_type: TriggerType = "mark_price"
    client_oid: str | None = None
    margin_mode: MarginMode = "isolated"
    callback_ratio: Decimal | None = None  # track_plan only
    stop_loss_trigger_price: Decimal | None = None
    stop_surplus_trigger_price: Decimal | None = None

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise ValueError(f"side must be buy or sell, got {self.side!r}")
        if self.order_type not in ("limit", "market"):
            raise ValueError(f"order_type must be limit or market, got {self.order_type!r}")
        if self.trade_side is not None and self.reduce_only:
            raise ValueError("reduce_only (one-way mode) and trade_side (hedge mode) are mutually exclusive")
        if self.plan_type not in ("normal_plan", "track_plan"):
            raise ValueError(f"plan_type must be normal_plan or track_plan, got {self.plan_type!r}")
        if self.order_type == "limit" and self.price is None:
            raise ValueError("a limit plan order needs a price")
        if self.plan_type == "track_plan" and self.callback_ratio is None:
            raise ValueError("track_plan needs a callback_ratio")
        for name in ("size", "trigger_price", "price", "callback_ratio"):
            _require_positive(name, getattr(self, name))
        _require_positive("stop_loss_trigger_price", self.stop_loss_trigger_price)
        _require_positive("stop_surplus_trigger_price", self.stop_surplus_trigger_price)
