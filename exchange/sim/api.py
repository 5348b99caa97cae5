"""Bitget V2 mix REST endpoints for the simulator: request params -> engine call -> ``data`` of the reply.

Transport-free: :class:`exchange.sim.server.SimServer` does HTTP, authentication, rate limits and faults, then
calls :func:`dispatch`. Parameter names, enum values and response field names follow Bitget's V2 API; every
number goes out as a string, enums in lowercase; incoming enums are compared case-insensitively.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from exchange.sim import errors as e
from exchange.sim.catalogue import contract_row
from exchange.sim.engine import SimExchange
from exchange.sim.errors import SimError
from exchange.sim.models import HEDGE, LONG, TPSL_PLAN_TYPES, SimFill, SimOrder, SimPlanOrder, SimPosition

SIMULATED_PRODUCT_TYPE = "USDT-FUTURES"
PRODUCT_TYPES = frozenset(
    {"USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES", "SUSDT-FUTURES", "SCOIN-FUTURES", "SUSDC-FUTURES"}
)

Params = dict[str, Any]
Handler = Callable[[SimExchange, Params], Any]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    private: bool
    handler: Handler
    per_second: int  # Bitget's documented (or ccxt-derived) per-endpoint limit

    @property
    def endpoint(self) -> str:
        return self.path.rsplit("/", 1)[-1]


# ==================================================================== formatting
def fmt(value: Decimal | int | None) -> str:
    """Bitget numbers are strings without exponent; absent values are empty strings."""
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def ratio(value: Decimal) -> Decimal:
    """Derived figures (ratios, conversions) to 12 places instead of 28 digits of noise."""
    return value.quantize(Decimal("1e-12"))


# ==================================================================== param parsing
def text(params: Params, name: str, *, required: bool = True) -> str | None:
    value = params.get(name)
    if value is None or (isinstance(value, str) and value.strip() == ""):
        if required:
            raise e.param_empty(name)
        return None
    if isinstance(value, (dict, list)):
        raise e.param_error(name)
    return str(value).strip()


def decimal(params: Params, name: str, *, required: bool = True) -> Decimal | None:
    raw = text(params, name, required=required)
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise e.param_error(name) from None
    if not value.is_finite():
        raise e.param_error(name)
    return value


def positive_or_none(params: Params, name: str) -> Decimal | None:
    """Optional prices where ``"0"`` or ``""`` mean "not set" (e.g. ``executePrice``)."""
    value = decimal(params, name, required=False)
    return value if value is not None and value > 0 else None


def product_type(params: Params) -> bool:
    """Validate ``productType``; True when it is the simulated one (others answer empty lists)."""
    raw = text(params, "productType")
    assert raw is not None
    upper = raw.upper()
    if upper not in PRODUCT_TYPES:
        raise e.param_error("productType")
    return upper == SIMULATED_PRODUCT_TYPE


def require_simulated(params: Params) -> None:
    if not product_type(params):
        raise e.param_missing_entity("symbol")


def margin_coin(engine: SimExchange, params: Params, *, required: bool) -> None:
    coin = text(params, "marginCoin", required=required)
    if coin is not None and coin.upper() != engine.margin_coin:
        raise e.param_error("marginCoin")


def symbol(engine: SimExchange, params: Params, *, required: bool = True) -> str | None:
    raw = text(params, "symbol", required=required)
    return None if raw is None else engine.contract(raw).symbol


def yes_no(params: Params, name: str) -> bool:
    raw = text(params, name, required=False)
    if raw is None:
        return False
    lowered = raw.lower()
    if lowered in ("yes", "true"):
        return True
    if lowered in ("no", "false"):
        return False
    raise e.param_error(name)


# ==================================================================== response shapes
def order_json(engine: SimExchange, order: SimOrder, *, state_key: str = "state") -> dict[str, Any]:
    return {
        "symbol": order.symbol,
        "size": fmt(order.size),
        "orderId": order.order_id,
        "clientOid": order.client_oid,
        "baseVolume": fmt(order.filled),
        "fee": fmt(order.fee),
        "price": fmt(order.price) if order.price is not None else "0",
        "priceAvg": fmt(order.average_price),
        state_key: order.state,
        "side": order.side,
        "force": order.force,
        "totalProfits": fmt(order.profit),
        "posSide": order.pos_side,
        "marginCoin": engine.margin_coin,
        "presetStopSurplusPrice": fmt(order.preset_take_profit),
        "presetStopLossPrice": fmt(order.preset_stop_loss),
        "presetStopSurplusExecutePrice": fmt(order.preset_take_profit_execute),
        "presetStopLossExecutePrice": fmt(order.preset_stop_loss_execute),
        "quoteVolume": fmt(order.filled_value),
        "orderType": order.order_type,
        "leverage": str(order.leverage),
        "marginMode": order.margin_mode,
        "reduceOnly": "YES" if order.reduce_only else "NO",
        "enterPointSource": order.enter_point_source,
        "tradeSide": order.trade_side,
        "posMode": order.pos_mode,
        "orderSource": order.order_source,
        "cTime": str(order.c_time),
        "uTime": str(order.u_time),
    }


def fill_json(fill: SimFill) -> dict[str, Any]:
    return {
        "tradeId": fill.trade_id,
        "symbol": fill.symbol,
        "orderId": fill.order_id,
        "price": fmt(fill.price),
        "baseVolume": fmt(fill.size),
        "feeDetail": [{"deduction": "no", "feeCoin": "USDT", "totalDeductionFee": None, "totalFee": fmt(fill.fee)}],
        "side": fill.side,
        "quoteVolume": fmt(fill.price * fill.size),
        "profit": fmt(fill.profit),
        "enterPointSource": "API",
        "tradeSide": fill.trade_side,
        "posMode": fill.pos_mode,
        "tradeScope": fill.scope,
        "cTime": str(fill.c_time),
    }


def position_json(engine: SimExchange, position: SimPosition) -> dict[str, Any]:
    locked = engine.locked_size(position.symbol, position.hold_side)
    margin = position.size * position.average_price / position.leverage
    upl = engine.unrealized_pnl(position)
    mark = engine.mark_price(position.symbol)
    plans = [
        p
        for p in engine.plan_orders(position.symbol)
        if p.hold_side == position.hold_side and p.plan_type in ("pos_profit", "pos_loss")
    ]
    take_profit = next((p for p in plans if p.plan_type == "pos_profit"), None)
    stop_loss = next((p for p in plans if p.plan_type == "pos_loss"), None)
    open_delegate = sum(
        (
            o.remaining
            for o in engine.orders(position.symbol, open_only=True)
            if not o.is_closing and o.pos_side == position.hold_side
        ),
        Decimal(0),
    )
    equity = engine.account().equity
    return {
        "marginCoin": engine.margin_coin,
        "symbol": position.symbol,
        "holdSide": position.hold_side,
        "openDelegateSize": fmt(open_delegate),
        "marginSize": fmt(margin),
        "available": fmt(position.size - locked),
        "locked": fmt(locked),
        "total": fmt(position.size),
        "leverage": str(position.leverage),
        "achievedProfits": fmt(position.achieved_profits),
        "openPriceAvg": fmt(position.average_price),
        "marginMode": position.margin_mode,
        "posMode": engine.pos_mode,
        "unrealizedPL": fmt(upl),
        "liquidationPrice": fmt(engine.liquidation_price(position)),
        "keepMarginRate": "0.004",
        "markPrice": fmt(mark),
        "marginRatio": fmt(ratio(margin * Decimal("0.004") * position.leverage / equity)) if equity > 0 else "1",
        "breakEvenPrice": fmt(position.average_price),
        "totalFee": fmt(-position.total_fee),
        "deductedFee": "0",
        "grant": "",
        "assetMode": "single",
        "autoMargin": "off",
        "takeProfit": fmt(take_profit.trigger_price) if take_profit else "",
        "stopLoss": fmt(stop_loss.trigger_price) if stop_loss else "",
        "takeProfitId": take_profit.order_id if take_profit else "",
        "stopLossId": stop_loss.order_id if stop_loss else "",
        "cTime": str(position.c_time),
        "uTime": str(position.u_time),
    }


def plan_json(engine: SimExchange, plan: SimPlanOrder) -> dict[str, Any]:
    if plan.is_tpsl:
        # The order a TP/SL sends is a close: hedge mode names the position (side=buy for a long), one-way
        # mode names the trade (sell closes a long).
        if plan.pos_mode == HEDGE:
            side, trade_side = ("buy" if plan.hold_side == LONG else "sell"), "close"
        else:
            side, trade_side = ("sell" if plan.hold_side == LONG else "buy"), ""
        order_type = "limit" if plan.execute_price else "market"
    else:
        side, trade_side, order_type = plan.side, plan.trade_side, plan.order_type
    return {
        "planType": plan.plan_type,
        "symbol": plan.symbol,
        "size": fmt(plan.size),
        "orderId": plan.order_id,
        "clientOid": plan.client_oid,
        "price": fmt(plan.execute_price),
        "executePrice": fmt(plan.execute_price) or "0",
        "callbackRatio": "",
        "triggerPrice": fmt(plan.trigger_price),
        "triggerType": plan.trigger_type,
        "planStatus": plan.status,
        "side": side,
        "posSide": plan.hold_side,
        "marginCoin": engine.margin_coin,
        "marginMode": plan.margin_mode,
        "enterPointSource": "API",
        "tradeSide": trade_side,
        "posMode": plan.pos_mode,
        "orderType": order_type,
        "reduceOnly": "YES" if plan.reduce_only or plan.is_tpsl else "NO",
        "stopSurplusTriggerPrice": fmt(plan.stop_surplus_trigger_price),
        "stopSurplusExecutePrice": "",
        "stopSurplusTriggerType": "fill_price",
        "stopLossTriggerPrice": fmt(plan.stop_loss_trigger_price),
        "stopLossExecutePrice": "",
        "stopLossTriggerType": "fill_price",
        "cTime": str(plan.c_time),
        "uTime": str(plan.u_time),
    }


def ticker_json(engine: SimExchange, sym: str) -> dict[str, Any]:
    t = engine.ticker(sym)
    return {
        "symbol": sym,
        "lastPr": fmt(t.last),
        "askPr": fmt(t.ask),
        "bidPr": fmt(t.bid),
        "bidSz": "1",
        "askSz": "1",
        "high24h": fmt(t.last),
        "low24h": fmt(t.last),
        "ts": str(t.ts),
        "change24h": "0",
        "baseVolume": "0",
        "quoteVolume": "0",
        "usdtVolume": "0",
        "openUtc": fmt(t.last),
        "changeUtc24h": "0",
        "indexPrice": fmt(t.index),
        "fundingRate": "0.0001",
        "holdingAmount": "0",
        "deliveryStartTime": None,
        "deliveryTime": None,
        "deliveryStatus": "",
        "open24h": fmt(t.last),
        "markPrice": fmt(t.mark),
    }


def account_json(engine: SimExchange, sym: str | None) -> dict[str, Any]:
    account = engine.account()
    row: dict[str, Any] = {
        "marginCoin": engine.margin_coin,
        "locked": "0",
        "available": fmt(account.available),
        "crossedMaxAvailable": fmt(account.available),
        "isolatedMaxAvailable": fmt(account.available),
        "maxTransferOut": fmt(account.available),
        "accountEquity": fmt(account.equity),
        "usdtEquity": fmt(account.equity),
        "btcEquity": fmt(ratio(account.equity / engine.price("BTCUSDT"))) if "BTCUSDT" in engine.contracts else "0",
        "crossedRiskRate": "0",
        "unrealizedPL": fmt(account.unrealized_pnl),
        "coupon": "0",
        "crossedUnrealizedPL": fmt(account.unrealized_pnl),
        "isolatedUnrealizedPL": "0",
        "assetMode": "single",
    }
    if sym is not None:
        settings = engine.settings(sym)
        row.update(
            {
                "crossedMarginLeverage": str(settings.long_leverage),
                "isolatedLongLever": str(settings.long_leverage),
                "isolatedShortLever": str(settings.short_leverage),
                "marginMode": settings.margin_mode,
                "posMode": engine.pos_mode,
            }
        )
    return row


def list_or_null(rows: list[Any]) -> list[Any] | None:
    # Bitget sends null rather than [] for an empty order list (clients must cope with both).
    return rows or None


# ==================================================================== public handlers
def h_time(engine: SimExchange, params: Params) -> Any:
    return {"serverTime": str(engine.now_ms())}


def h_contracts(engine: SimExchange, params: Params) -> Any:
    if not product_type(params):
        return []
    wanted = text(params, "symbol", required=False)
    rows = [contract_row(c) for c in engine.contracts.values()]
    if wanted:
        rows = [r for r in rows if r["symbol"] == wanted.upper()]
        if not rows:
            raise e.param_missing_entity("symbol")
    return rows


def h_ticker(engine: SimExchange, params: Params) -> Any:
    if not product_type(params):
        raise e.param_missing_entity("symbol")
    sym = symbol(engine, params)
    assert sym is not None
    return [ticker_json(engine, sym)]


def h_tickers(engine: SimExchange, params: Params) -> Any:
    if not product_type(params):
        return []
    return [ticker_json(engine, s) for s in engine.contracts]


def h_symbol_price(engine: SimExchange, params: Params) -> Any:
    if not product_type(params):
        raise e.param_missing_entity("symbol")
    sym = symbol(engine, params)
    assert sym is not None
    t = engine.ticker(sym)
    return [
        {
            "symbol": sym,
            "price": fmt(t.last),
            "indexPrice": fmt(t.index),
            "markPrice": fmt(t.mark),
            "ts": str(t.ts),
        }
    ]


def h_merge_depth(engine: SimExchange, params: Params) -> Any:
    """A thin book around the ticker: the best bid/ask of the ticker, then one tick per level, size 1 each."""
    if not product_type(params):
        raise e.param_missing_entity("symbol")
    sym = symbol(engine, params)
    assert sym is not None
    raw_limit = text(params, "limit", required=False)
    levels = 15
    if raw_limit is not None and raw_limit != "max":
        if not raw_limit.isdigit() or int(raw_limit) < 1:
            raise e.param_error("limit")
        levels = min(int(raw_limit), levels)
    t = engine.ticker(sym)
    tick = engine.contract(sym).tick_size
    bids = [t.bid - tick * i for i in range(levels) if t.bid - tick * i > 0]
    return {
        "asks": [[fmt(t.ask + tick * i), "1"] for i in range(levels)],
        "bids": [[fmt(price), "1"] for price in bids],
        "ts": str(t.ts),
        "scale": fmt(tick),
        "precision": "scale0",
        "isMaxPrecision": "YES",
    }


FUNDING_INTERVAL_MS = 8 * 3600 * 1000


def h_current_fund_rate(engine: SimExchange, params: Params) -> Any:
    """The simulator charges no funding; it reports the same flat rate as its ticker."""
    if not product_type(params):
        return []
    sym = symbol(engine, params, required=False)
    next_update = (engine.now_ms() // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
    return [
        {"symbol": s, "fundingRate": "0.0001", "fundingRateInterval": "8", "nextUpdate": str(next_update),
         "minFundingRate": "-0.003", "maxFundingRate": "0.003"}
        for s in ([sym] if sym else list(engine.contracts))
    ]  # fmt: skip


# ==================================================================== account handlers
def h_account(engine: SimExchange, params: Params) -> Any:
    require_simulated(params)
    sym = symbol(engine, params)
    margin_coin(engine, params, required=True)
    return account_json(engine, sym)


def h_accounts(engine: SimExchange, params: Params) -> Any:
    if not product_type(params):
        return []
    row = account_json(engine, None)
    row.update(
        {
            "unionTotalMagin": row["accountEquity"],
            "unionAvailable": row["available"],
            "unionMm": "0",
            "assetList": [],
            "isolatedMargin": "0",
            "crossedMargin": "0",
        }
    )
    return [row]


def h_set_leverage(engine: SimExchange, params: Params) -> Any:
    require_simulated(params)
    sym = symbol(engine, params)
    assert sym is not None
    margin_coin(engine, params, required=True)
    raw = text(params, "leverage")
    assert raw is not None
    try:
        leverage = int(Decimal(raw))
    except InvalidOperation:
        raise e.param_error("leverage") from None
    if Decimal(raw) != leverage:
        raise e.param_error("leverage")
    hold_side = text(params, "holdSide", required=False)
    settings = engine.set_leverage(sym, leverage, hold_side.lower() if hold_side else None)
    return {
        "symbol": sym,
        "marginCoin": engine.margin_coin,
        "longLeverage": str(settings.long_leverage),
        "shortLeverage": str(settings.short_leverage),
        "crossMarginLeverage": str(settings.long_leverage),
        "marginMode": settings.margin_mode,
    }


def h_set_margin_mode(engine: SimExchange, params: Params) -> Any:
    require_simulated(params)
    sym = symbol(engine, params)
    assert sym is not None
    margin_coin(engine, params, required=True)
    mode = text(params, "marginMode")
    assert mode is not None
    settings = engine.set_margin_mode(sym, mode.lower())
    return {
        "symbol": sym,
        "marginCoin": engine.margin_coin,
        "longLeverage": str(settings.long_leverage),
        "shortLeverage": str(settings.short_leverage),
        "marginMode": settings.margin_mode,
    }


def h_set_position_mode(engine: SimExchange, params: Params) -> Any:
    require_simulated(params)
    mode = text(params, "posMode")
    assert mode is not None
    return {"posMode": engine.set_position_mode(mode.lower())}


# ==================================================================== positions
def h_single_position(engine: SimExchange, params: Params) -> Any:
    if not product_type(params):
        return []
    sym = symbol(engine, params)
    margin_coin(engine, params, required=True)
    return [position_json(engine, p) for p in engine.positions(sym)]


def h_all_position(engine: SimExchange, params: Params) -> Any:
    if not product_type(params):
        return []
    margin_coin(engine, params, required=False)
    return [position_json(engine, p) for p in engine.positions()]


# ==================================================================== orders
def h_place_order(engine: SimExchange, params: Params) -> Any:
    require_simulated(params)
    sym = symbol(engine, params)
    assert sym is not None
    margin_coin(engine, params, required=True)
    margin_mode = text(params, "marginMode")
    side = text(params, "side")
    order_type = text(params, "orderType")
    size = decimal(params, "size")
    assert margin_mode is not None and side is not None and order_type is not None and size is not None
    order = engine.place_order(
        sym,
        side=side,
        size=size,
        order_type=order_type,
        price=decimal(params, "price", required=False) if order_type.lower() == "limit" else None,
        trade_side=text(params, "tradeSide", required=False),
        force=text(params, "force", required=False) or "gtc",
        reduce_only=yes_no(params, "reduceOnly"),
        margin_mode=margin_mode.lower(),
        client_oid=text(params, "clientOid", required=False),
        preset_stop_loss=positive_or_none(params, "presetStopLossPrice"),
        preset_take_profit=positive_or_none(params, "presetStopSurplusPrice"),
        preset_stop_loss_execute=positive_or_none(params, "presetStopLossExecutePrice"),
        preset_take_profit_execute=positive_or_none(params, "presetStopSurplusExecutePrice"),
    )
    return {"orderId": order.order_id, "clientOid": order.client_oid}


def _order_ids(params: Params) -> tuple[str | None, str | None]:
    order_id = text(params, "orderId", required=False)
    client_oid = text(params, "clientOid", required=False)
    if order_id is None and client_oid is None:
        raise e.param_empty("orderId")
    return order_id, client_oid


def h_cancel_order(engine: SimExchange, params: Params) -> Any:
    require_simulated(params)
    sym = symbol(engine, params)
    assert sym is not None
    margin_coin(engine, params, required=False)
    order_id, client_oid = _order_ids(params)
    order = engine.cancel_order(sym, order_id=order_id, client_oid=client_oid)
    return {"orderId": order.order_id, "clientOid": order.client_oid}


def h_detail(engine: SimExchange, params: Params) -> Any:
    require_simulated(params)
    sym = symbol(engine, params)
    order_id, client_oid = _order_ids(params)
    order = engine.find_order(order_id=order_id, client_oid=client_oid)
    if order.symbol != sym:
        raise e.err(e.ORDER_NOT_FOUND)
    return order_json(engine, order)


def _limit(params: Params, default: int = 100) -> int:
    raw = text(params, "limit", required=False)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise e.param_error("limit")
    return min(int(raw), 100)


def h_orders_pending(engine: SimExchange, params: Params) -> Any:
    if not product_type(params):
        return {"entrustedList": None, "endId": ""}
    sym = symbol(engine, params, required=False)
    order_id = text(params, "orderId", required=False)
    client_oid = text(params, "clientOid", required=False)
    status = text(params, "status", required=False)
    rows = [
        o
        for o in engine.orders(sym, open_only=True)
        if (order_id is None or o.order_id == order_id)
        and (client_oid is None or o.client_oid == client_oid)
        and (status is None or o.state == status.lower())
    ]
    rows.sort(key=lambda o: int(o.order_id), reverse=True)
    rows = rows[: _limit(params)]
    return {
        "entrustedList": list_or_null([order_json(engine, o, state_key="status") for o in rows]),
        "endId": rows[-1].order_id if rows else "",
    }


def _id_less_than(params: Params) -> int | None:
    raw = text(params, "idLessThan", required=False)
    if raw is None:
        return None
    if not raw.isdigit():
        raise e.param_error("idLessThan")
    return int(raw)


def _time_param(params: Params, name: str) -> int | None:
    raw = text(params, name, required=False)
    if raw is None:
        return None
    if not raw.isdigit():
        raise e.param_error(name)
    return int(raw)


def h_orders_history(engine: SimExchange, params: Params) -> Any:
    """Finished orders (filled or canceled), newest first, paged with ``idLessThan`` like the other lists."""
    if not product_type(params):
        return {"entrustedList": None, "endId": ""}
    sym = symbol(engine, params, required=False)
    order_id = text(params, "orderId", required=False)
    client_oid = text(params, "clientOid", required=False)
    before = _id_less_than(params)
    rows = [
        o
        for o in engine.orders(sym)
        if not o.is_open
        and (order_id is None or o.order_id == order_id)
        and (client_oid is None or o.client_oid == client_oid)
        and (before is None or int(o.order_id) < before)
    ]
    rows.sort(key=lambda o: int(o.order_id), reverse=True)
    rows = rows[: _limit(params)]
    return {
        "entrustedList": list_or_null([order_json(engine, o, state_key="status") for o in rows]),
        "endId": rows[-1].order_id if rows else "",
    }


def h_batch_cancel(engine: SimExchange, params: Params) -> Any:
    """Cancel the listed orders, or every open order of ``symbol`` when no list is given."""
    require_simulated(params)
    margin_coin(engine, params, required=False)
    id_list = params.get("orderIdList")
    sym = symbol(engine, params, required=bool(id_list))
    if id_list:
        if not isinstance(id_list, list) or not all(isinstance(i, dict) for i in id_list) or len(id_list) > 50:
            raise e.param_error("orderIdList")
        assert sym is not None  # required with a list
        wanted = [(sym, text(i, "orderId", required=False), text(i, "clientOid", required=False)) for i in id_list]
    else:
        wanted = [(o.symbol, o.order_id, None) for o in engine.orders(sym, open_only=True)]
    successes: list[dict[str, str]] = []
    failures: list[dict[str, str]] = []
    for order_symbol, order_id, client_oid in wanted:
        try:
            order = engine.cancel_order(order_symbol, order_id=order_id, client_oid=client_oid)
        except SimError as error:
            failures.append({"orderId": order_id or "", "clientOid": client_oid or "", "errorMsg": error.msg,
                             "errorCode": error.code})  # fmt: skip
            continue
        successes.append({"orderId": order.order_id, "clientOid": order.client_oid})
    return {"successList": successes, "failureList": failures}


def h_fills(engine: SimExchange, params: Params) -> Any:
    if not product_type(params):
        return {"fillList": None, "endId": ""}
    sym = symbol(engine, params, required=False)
    order_id = text(params, "orderId", required=False)
    before = _id_less_than(params)
    start, end = _time_param(params, "startTime"), _time_param(params, "endTime")
    fills = sorted(
        (f for f in engine.fills(sym, order_id)
         if (before is None or int(f.trade_id) < before) and (start is None or f.c_time >= start)
         and (end is None or f.c_time <= end)),
        key=lambda f: int(f.trade_id), reverse=True,
    )  # newest first, older pages with idLessThan (the last page's endId) like Bitget
    fills = fills[: _limit(params)]
    return {
        "fillList": list_or_null([fill_json(f) for f in fills]),
        "endId": fills[-1].trade_id if fills else "",
    }


def h_close_positions(engine: SimExchange, params: Params) -> Any:
    require_simulated(params)
    sym = symbol(engine, params, required=False)
    hold_side = text(params, "holdSide", required=False)
    if hold_side is not None and hold_side.lower() not in ("long", "short"):
        raise e.param_error("holdSide")
    orders = engine.close_positions(sym, hold_side.lower() if hold_side else None)
    return {
        "successList": [{"orderId": o.order_id, "clientOid": o.client_oid, "symbol": o.symbol} for o in orders],
        "failureList": [],
    }


# ==================================================================== plan orders
def h_place_tpsl(engine: SimExchange, params: Params) -> Any:
    require_simulated(params)
    sym = symbol(engine, params)
    assert sym is not None
    margin_coin(engine, params, required=True)
    plan_type, hold_side = text(params, "planType"), text(params, "holdSide")
    trigger = decimal(params, "triggerPrice")
    assert plan_type is not None and hold_side is not None and trigger is not None
    size = decimal(params, "size", required=False)
    plan = engine.place_tpsl_order(
        sym,
        plan_type=plan_type,
        trigger_price=trigger,
        hold_side=hold_side,
        size=size,
        trigger_type=text(params, "triggerType", required=False) or "fill_price",
        execute_price=positive_or_none(params, "executePrice"),
        client_oid=text(params, "clientOid", required=False),
    )
    return {"orderId": plan.order_id, "clientOid": plan.client_oid}


def h_place_pos_tpsl(engine: SimExchange, params: Params) -> Any:
    require_simulated(params)
    sym = symbol(engine, params)
    assert sym is not None
    margin_coin(engine, params, required=True)
    hold_side = text(params, "holdSide")
    assert hold_side is not None
    plans = engine.place_pos_tpsl(
        sym,
        hold_side=hold_side,
        take_profit=positive_or_none(params, "stopSurplusTriggerPrice"),
        stop_loss=positive_or_none(params, "stopLossTriggerPrice"),
        take_profit_execute=positive_or_none(params, "stopSurplusExecutePrice"),
        stop_loss_execute=positive_or_none(params, "stopLossExecutePrice"),
        trigger_type=text(params, "stopLossTriggerType", required=False)
        or text(params, "stopSurplusTriggerType", required=False)
        or "fill_price",
    )
    return [
        {
            "orderId": p.order_id,
            "stopSurplusClientOid": p.client_oid if p.plan_type == "pos_profit" else "",
            "stopLossClientOid": p.client_oid if p.plan_type == "pos_loss" else "",
        }
        for p in plans
    ]


def h_place_plan(engine: SimExchange, params: Params) -> Any:
    require_simulated(params)
    sym = symbol(engine, params)
    assert sym is not None
    margin_coin(engine, params, required=True)
    side, order_type = text(params, "side"), text(params, "orderType")
    size, trigger = decimal(params, "size"), decimal(params, "triggerPrice")
    text(params, "marginMode")
    assert side is not None and order_type is not None and size is not None and trigger is not None
    execute = positive_or_none(params, "price") or positive_or_none(params, "executePrice")
    plan = engine.place_plan_order(
        sym,
        side=side,
        size=size,
        trigger_price=trigger,
        trade_side=text(params, "tradeSide", required=False),
        order_type=order_type,
        execute_price=execute,
        trigger_type=text(params, "triggerType", required=False) or "mark_price",
        reduce_only=yes_no(params, "reduceOnly"),
        client_oid=text(params, "clientOid", required=False),
        stop_surplus_trigger_price=positive_or_none(params, "stopSurplusTriggerPrice"),
        stop_loss_trigger_price=positive_or_none(params, "stopLossTriggerPrice"),
        plan_type=text(params, "planType", required=False) or "normal_plan",
    )
    return {"orderId": plan.order_id, "clientOid": plan.client_oid}


def h_modify_tpsl(engine: SimExchange, params: Params) -> Any:
    require_simulated(params)
    sym = symbol(engine, params)
    assert sym is not None
    margin_coin(engine, params, required=True)
    order_id, client_oid = _order_ids(params)
    trigger = decimal(params, "triggerPrice")
    assert trigger is not None
    plan = engine.modify_tpsl_order(
        sym,
        order_id=order_id,
        client_oid=client_oid,
        trigger_price=trigger,
        size=positive_or_none(params, "size"),
        execute_price=decimal(params, "executePrice", required=False),
        trigger_type=text(params, "triggerType", required=False),
    )
    return {"orderId": plan.order_id, "clientOid": plan.client_oid}


def h_cancel_plan(engine: SimExchange, params: Params) -> Any:
    require_simulated(params)
    margin_coin(engine, params, required=False)
    id_list = params.get("orderIdList")
    sym = symbol(engine, params, required=bool(id_list))
    plan_type = text(params, "planType", required=False) or "normal_plan"
    if plan_type.lower() not in {*TPSL_PLAN_TYPES, "normal_plan", "track_plan", "moving_plan", "profit_loss"}:
        raise e.param_error("planType")
    ids: list[tuple[str | None, str | None]] | None = None
    if id_list:
        if not isinstance(id_list, list) or not all(isinstance(i, dict) for i in id_list):
            raise e.param_error("orderIdList")
        ids = [(text(i, "orderId", required=False), text(i, "clientOid", required=False)) for i in id_list]
    canceled, failures = engine.cancel_plan_orders(sym, plan_type=plan_type, ids=ids)
    return {
        "successList": [{"orderId": p.order_id, "clientOid": p.client_oid} for p in canceled],
        "failureList": [{"orderId": o, "clientOid": c, "errorMsg": m} for o, c, m in failures],
    }


def h_plan_pending(engine: SimExchange, params: Params) -> Any:
    plan_type = text(params, "planType")
    assert plan_type is not None
    kind = plan_type.lower()
    if kind not in ("normal_plan", "track_plan", "profit_loss"):
        raise e.param_error("planType")
    if not product_type(params):
        return {"entrustedList": None, "endId": ""}
    sym = symbol(engine, params, required=False)
    order_id = text(params, "orderId", required=False)
    client_oid = text(params, "clientOid", required=False)
    kinds = set(TPSL_PLAN_TYPES) if kind == "profit_loss" else {kind}
    plans = [
        p
        for p in engine.plan_orders(sym)
        if p.plan_type in kinds
        and (order_id is None or p.order_id == order_id)
        and (client_oid is None or p.client_oid == client_oid)
    ]
    plans.sort(key=lambda p: int(p.order_id), reverse=True)
    plans = plans[: _limit(params)]
    return {
        "entrustedList": list_or_null([plan_json(engine, p) for p in plans]),
        "endId": plans[-1].order_id if plans else "",
    }


# ==================================================================== other product lines
def h_not_simulated_list(engine: SimExchange, params: Params) -> Any:
    """Spot and margin public lists: the simulator trades USDT-M futures only, so they are empty.

    ccxt's ``load_markets`` asks for the spot coin list whatever market types it is told to load; an empty
    list is a plausible Bitget answer and lets it continue with the futures markets.
    """
    return []


def h_uta_account_settings(engine: SimExchange, params: Params) -> Any:
    """The simulated account is a classic (V2) one: Bitget refuses the unified-account (V3) API for it.

    ccxt probes this endpoint once to choose between its V2 and V3 code paths.
    """
    raise SimError("40084", "You are in Classic Account mode, and the Unified Account API is not supported")


# ==================================================================== the routing table
ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v2/public/time", False, h_time, 20),
    Route("GET", "/api/v2/mix/market/contracts", False, h_contracts, 20),
    Route("GET", "/api/v2/mix/market/ticker", False, h_ticker, 20),
    Route("GET", "/api/v2/mix/market/tickers", False, h_tickers, 20),
    Route("GET", "/api/v2/mix/market/symbol-price", False, h_symbol_price, 20),
    Route("GET", "/api/v2/mix/market/merge-depth", False, h_merge_depth, 20),
    Route("GET", "/api/v2/mix/market/current-fund-rate", False, h_current_fund_rate, 20),
    Route("GET", "/api/v2/mix/account/account", True, h_account, 10),
    Route("GET", "/api/v2/mix/account/accounts", True, h_accounts, 10),
    Route("POST", "/api/v2/mix/account/set-leverage", True, h_set_leverage, 5),
    Route("POST", "/api/v2/mix/account/set-margin-mode", True, h_set_margin_mode, 5),
    Route("POST", "/api/v2/mix/account/set-position-mode", True, h_set_position_mode, 5),
    Route("GET", "/api/v2/mix/position/single-position", True, h_single_position, 10),
    Route("GET", "/api/v2/mix/position/all-position", True, h_all_position, 5),
    Route("POST", "/api/v2/mix/order/place-order", True, h_place_order, 10),
    Route("POST", "/api/v2/mix/order/cancel-order", True, h_cancel_order, 10),
    Route("GET", "/api/v2/mix/order/detail", True, h_detail, 10),
    Route("GET", "/api/v2/mix/order/orders-pending", True, h_orders_pending, 10),
    Route("GET", "/api/v2/mix/order/fills", True, h_fills, 10),
    Route("GET", "/api/v2/mix/order/orders-history", True, h_orders_history, 10),
    Route("POST", "/api/v2/mix/order/batch-cancel-orders", True, h_batch_cancel, 10),
    Route("POST", "/api/v2/mix/order/close-positions", True, h_close_positions, 1),
    Route("POST", "/api/v2/mix/order/place-tpsl-order", True, h_place_tpsl, 10),
    Route("POST", "/api/v2/mix/order/place-pos-tpsl", True, h_place_pos_tpsl, 10),
    Route("POST", "/api/v2/mix/order/place-plan-order", True, h_place_plan, 10),
    Route("POST", "/api/v2/mix/order/modify-tpsl-order", True, h_modify_tpsl, 10),
    Route("POST", "/api/v2/mix/order/cancel-plan-order", True, h_cancel_plan, 10),
    Route("GET", "/api/v2/mix/order/orders-plan-pending", True, h_plan_pending, 10),
    Route("GET", "/api/v2/spot/public/coins", False, h_not_simulated_list, 3),
    Route("GET", "/api/v2/spot/public/symbols", False, h_not_simulated_list, 20),
    Route("GET", "/api/v2/margin/currencies", False, h_not_simulated_list, 10),
    Route("GET", "/api/v3/account/settings", True, h_uta_account_settings, 10),
)

ROUTES_BY_PATH: dict[str, Route] = {r.path: r for r in ROUTES}


def dispatch(engine: SimExchange, route: Route, params: Params) -> Any:
    """Run one endpoint; raises :class:`SimError` for every refusal."""
    try:
        return route.handler(engine, params)
    except SimError:
        raise
    except (ArithmeticError, ValueError, TypeError, KeyError) as error:
        # Malformed input that slipped past the checks is still the caller's fault, not a server crash.
        raise SimError("40017", f"Parameter verification failed: {type(error).__name__}") from None
