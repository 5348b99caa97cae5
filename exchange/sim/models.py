"""State records of the simulator. The engine mutates its own copies under its lock and hands out copies."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal(0)

ONE_WAY = "one_way_mode"
HEDGE = "hedge_mode"
LONG = "long"
SHORT = "short"
TPSL_PLAN_TYPES = ("profit_plan", "loss_plan", "pos_profit", "pos_loss")
LOSS_PLAN_TYPES = ("loss_plan", "pos_loss")


@dataclass
class SimOrder:
    order_id: str
    client_oid: str
    symbol: str
    side: str  # "buy" | "sell", as sent (in hedge mode it names the position direction)
    trade_side: str  # "open" | "close" in hedge mode, "" in one-way mode
    order_type: str  # "market" | "limit"
    force: str  # "gtc" | "ioc" | "fok" | "post_only"
    price: Decimal | None
    size: Decimal
    reduce_only: bool
    margin_mode: str
    leverage: int
    pos_mode: str
    c_time: int
    u_time: int
    filled: Decimal = ZERO
    filled_value: Decimal = ZERO
    fee: Decimal = ZERO  # negative: fees paid, as Bitget reports them
    profit: Decimal = ZERO
    state: str = "live"  # live | partially_filled | filled | canceled
    preset_stop_loss: Decimal | None = None
    preset_take_profit: Decimal | None = None
    preset_stop_loss_execute: Decimal | None = None
    preset_take_profit_execute: Decimal | None = None
    order_source: str = "normal"  # normal | pos_loss_market | loss_market | ... for triggered orders
    enter_point_source: str = "API"
    stop_loss_plan_id: str | None = None
    take_profit_plan_id: str | None = None

    @property
    def remaining(self) -> Decimal:
        return self.size - self.filled

    @property
    def average_price(self) -> Decimal | None:
        return self.filled_value / self.filled if self.filled > 0 else None

    @property
    def is_open(self) -> bool:
        return self.state in ("live", "partially_filled")

    @property
    def is_closing(self) -> bool:
        """The order can only shrink a position (hedge close, or one-way reduce-only)."""
        return self.trade_side == "close" if self.pos_mode == HEDGE else self.reduce_only

    @property
    def trade_direction(self) -> str:
        """The direction the trade actually goes: a hedge-mode close of a long (side=buy) is a sell."""
        if self.pos_mode == HEDGE and self.trade_side == "close":
            return "sell" if self.side == "buy" else "buy"
        return self.side

    @property
    def pos_side(self) -> str:
        """The position this order opens or closes."""
        if self.pos_mode == HEDGE:
            return LONG if self.side == "buy" else SHORT
        if self.reduce_only:
            return SHORT if self.side == "buy" else LONG
        return LONG if self.side == "buy" else SHORT


@dataclass
class SimPlanOrder:
    order_id: str
    client_oid: str
    symbol: str
    plan_type: str  # normal_plan | profit_plan | loss_plan | pos_profit | pos_loss
    trigger_price: Decimal
    trigger_type: str
    execute_price: Decimal | None  # None: market execution
    hold_side: str  # long | short: the position a TP/SL protects or a normal plan opens/closes
    size: Decimal | None  # None: the whole position (pos_profit / pos_loss)
    margin_mode: str
    pos_mode: str
    c_time: int
    u_time: int
    status: str = "live"  # live | executed | fail_trigger | cancelled
    # normal_plan only:
    side: str = ""
    trade_side: str = ""
    order_type: str = "market"
    reduce_only: bool = False
    trigger_when_above: bool = True  # fires when the price rises to the trigger (else falls to it)
    stop_surplus_trigger_price: Decimal | None = None
    stop_loss_trigger_price: Decimal | None = None
    source_order_id: str | None = None  # the entry whose preset TP/SL created this plan
    executed_order_id: str | None = None

    @property
    def is_tpsl(self) -> bool:
        return self.plan_type in TPSL_PLAN_TYPES

    @property
    def is_stop_loss(self) -> bool:
        return self.plan_type in LOSS_PLAN_TYPES


@dataclass
class SimPosition:
    symbol: str
    hold_side: str
    size: Decimal
    average_price: Decimal
    margin_mode: str
    leverage: int
    c_time: int
    u_time: int
    achieved_profits: Decimal = ZERO
    total_fee: Decimal = ZERO  # positive: fees paid on this position


@dataclass(frozen=True)
class SimFill:
    trade_id: str
    order_id: str
    client_oid: str
    symbol: str
    side: str
    trade_side: str  # "open" | "close"
    price: Decimal
    size: Decimal
    fee: Decimal  # negative
    profit: Decimal
    scope: str  # taker | maker
    pos_mode: str
    c_time: int


@dataclass(frozen=True)
class AccountSnapshot:
    margin_coin: str
    cash: Decimal  # wallet balance: deposits + realized PnL - fees
    equity: Decimal
    unrealized_pnl: Decimal
    available: Decimal
    position_margin: Decimal
    order_margin: Decimal
    pos_mode: str


@dataclass
class SymbolSettings:
    margin_mode: str = "crossed"
    long_leverage: int = 20
    short_leverage: int = 20

    def leverage_for(self, hold_side: str) -> int:
        return self.long_leverage if hold_side == LONG else self.short_leverage


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    endpoint: str  # last path segment, e.g. "place-order"
    params: dict[str, object] = field(default_factory=dict)
    status: int = 200
    code: str = "00000"
    at: float = field(default_factory=time.time)  # wall clock when the reply was ready (benchmarks count by it)
