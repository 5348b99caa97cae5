"""From an approved entry to the exact orders to send: client ids, entry legs, the stop, the targets.

Pure planning; nothing here talks to the exchange. The fields of :class:`LegPlan` and :class:`StopPlan`
map one to one onto Bitget V2 request fields, already in the position mode's dialect:

============  =====================  =====================================
intent        one_way_mode           hedge_mode
============  =====================  =====================================
open long     side=buy               side=buy,  tradeSide=open
close long    side=sell, reduceOnly  side=buy,  tradeSide=close
open short    side=sell              side=sell, tradeSide=open
close short   side=buy,  reduceOnly  side=sell, tradeSide=close
stop holdSide buy (long) / sell      long / short
============  =====================  =====================================

In hedge mode ``side`` names the position, not the direction of the trade, and ``reduceOnly`` is not sent;
in one-way mode ``tradeSide`` must be omitted.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from fractions import Fraction
from math import ceil

from exchange.bitget.contracts import Contract
from exchange.bitget.models import MarginMode, OrderType, PositionSide, PosMode, TpslHoldSide, TpslPlanType, TradeSide
from exchange.bitget.models import Side as OrderSide
from exchange.bitget.semantics import order_fields, tpsl_hold_side
from parsing.signals import Side
from trading.risk import SizedEntry

POS_MODES = ("one_way_mode", "hedge_mode")
CLIENT_OID_PREFIX = "fl"
_LEG_TAG = re.compile(r"^[a-z0-9]{1,8}$")
_DIGEST_HEX_CHARS = 20  # 80 bits: collisions between signals are not a practical concern


def signal_oid_prefix(channel: str, message_id: int, *, signal_index: int = 0, epoch: int = 0) -> str:
    """The part of every leg's client id that names the signal, ending in ``_``.

    All legs of one signal share it, so the journal and reconciliation can find a signal's orders on the
    exchange by prefix. The channel is lowercased: t.me names are case-insensitive.
    """
    if not channel:
        raise ValueError("channel must not be empty")
    key = f"{channel.lower()}|{message_id}|{signal_index}|{epoch}"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:_DIGEST_HEX_CHARS]
    return f"{CLIENT_OID_PREFIX}_{digest}_"


def client_oid(channel: str, message_id: int, leg: str, *, signal_index: int = 0, epoch: int = 0) -> str:
    """Deterministic Bitget client id of one leg: ``fl_<20 hex>_<leg>``, at most 32 ASCII characters.

    The same signal, leg and epoch always give the same id, so a restart re-sends with the same id and the
    exchange rejects the duplicate (or the order is found by it). Bump ``epoch`` only to place a leg again
    after a definitive rejection. ``leg`` is 1-8 lowercase letters/digits, e.g. ``entry``, ``entry2``,
    ``sl``, ``tp1``.
    """
    if not _LEG_TAG.match(leg):
        raise ValueError(f"leg tag must be 1-8 lowercase letters or digits, not {leg!r}")
    return signal_oid_prefix(channel, message_id, signal_index=signal_index, epoch=epoch) + leg


@dataclass(frozen=True)
class LegPlan:
    """One regular order (``place-order``)."""

    leg: str  # "entry", "entry2", ..., "tp1", ...
    client_oid: str
    symbol: str
    side: OrderSide  # in the position mode's dialect (see the module table)
    trade_side: TradeSide | None  # hedge mode; None (omit) in one-way mode
    reduce_only: bool  # send reduceOnly=YES; one-way mode only (hedge closes say tradeSide=close)
    order_type: OrderType
    size: Decimal
    price: Decimal | None  # None for a market order
    preset_stop_loss_price: Decimal | None = None  # presetStopLossPrice, the stop attached at entry

    @property
    def closes(self) -> bool:
        """The order can only reduce the position, whatever the position mode."""
        return self.reduce_only or self.trade_side == "close"


@dataclass(frozen=True)
class StopPlan:
    """The protective stop (``place-tpsl-order``, planType ``loss_plan``, market execution)."""

    client_oid: str
    symbol: str
    trigger_price: Decimal
    hold_side: TpslHoldSide  # "long"/"short" in hedge mode, "buy"/"sell" in one-way mode
    size: Decimal  # the planned position; the order side resizes it to what actually filled
    plan_type: TpslPlanType = "loss_plan"


@dataclass(frozen=True)
class OrderBundle:
    symbol: str
    side: Side
    pos_mode: PosMode
    margin_mode: MarginMode
    leverage: int
    entries: tuple[LegPlan, ...]
    stop: StopPlan
    take_profits: tuple[LegPlan, ...]

    def client_oids(self) -> tuple[str, ...]:
        return (
            *(leg.client_oid for leg in self.entries),
            self.stop.client_oid,
            *(leg.client_oid for leg in self.take_profits),
        )


def _check_pos_mode(pos_mode: str) -> PosMode:
    if pos_mode == "one_way_mode":
        return "one_way_mode"
    if pos_mode == "hedge_mode":
        return "hedge_mode"
    raise ValueError(f"pos_mode must be one of {POS_MODES}, not {pos_mode!r}")


def _size_units(size: Decimal, contract: Contract) -> int:
    units = size / contract.size_step
    if units != units.to_integral_value():
        raise ValueError(f"size {size} is not a multiple of the step {contract.size_step}")
    return int(units)


def _units_to_size(units: int, contract: Contract) -> Decimal:
    return (units * contract.size_step).quantize(Decimal(1).scaleb(-contract.volume_place))


def _min_units(contract: Contract, price: Decimal | None) -> int:
    """The fewest steps an order may have: minTradeNum, and minTradeUSDT at ``price`` when given."""
    step = contract.size_step
    units = max(1, ceil(contract.min_trade_num / step))
    if price is not None and price > 0:
        units = max(units, ceil(contract.min_trade_usdt / (price * step)))
    return units


def _largest_remainder(total: int, weights: Sequence[Fraction]) -> list[int]:
    """Integers proportional to ``weights`` summing to ``total``; ties go to the earlier index."""
    weight_sum = sum(weights, Fraction(0))
    if total == 0 or weight_sum == 0:
        return [0] * len(weights)
    exact = [total * w / weight_sum for w in weights]
    floors = [int(x) for x in exact]  # exact values are non-negative, int() floors them
    leftover = total - sum(floors)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in by_remainder[:leftover]:
        floors[i] += 1
    return floors


def resolve_tp_sizes(
    position_size: Decimal,
    targets: int | Sequence[Decimal],
    contract: Contract,
    *,
    min_notional_price: Decimal | None = None,
) -> list[Decimal]:
    """Split ``position_size`` over take-profit targets, in target order (nearest first).

    ``targets`` is the number of targets (equal shares) or one share per target (percentages, any scale:
    they are normalised). The result sums exactly to ``position_size``; every size is a multiple of the
    size step and at least ``minTradeNum`` (and ``minTradeUSDT`` at ``min_notional_price`` when given).
    When the position cannot feed every target, only the first ``k`` targets get a size and the shares
    of the dropped ones go to the ``k``-th: fewer targets rather than a rejected order. The caller pairs
    the result with its first ``len(result)`` target prices. Empty when there are no targets or the
    position itself is below the minimum (the stop then covers the whole position).
    Shares are honoured as closely as the steps allow: a target below the minimum is raised to it and the
    others give up steps in proportion to how far above the minimum they were.
    """
    weights = [Decimal(1)] * targets if isinstance(targets, int) else [Decimal(t) for t in targets]
    if any(w <= 0 for w in weights):
        raise ValueError(f"target shares must be positive: {weights}")
    total_units = _size_units(position_size, contract)
    min_units = _min_units(contract, min_notional_price)
    if not weights or total_units < min_units:
        return []

    kept = min(len(weights), total_units // min_units)
    shares = [Fraction(w) for w in weights[:kept]]
    shares[-1] += sum((Fraction(w) for w in weights[kept:]), Fraction(0))
    share_sum = sum(shares, Fraction(0))
    ideal = [total_units * s / share_sum for s in shares]
    # Everyone starts at the minimum; the rest goes out by how far each ideal is above it.
    above_minimum = [max(Fraction(0), x - min_units) for x in ideal]
    extra = _largest_remainder(total_units - kept * min_units, above_minimum)
    units = [min_units + e for e in extra]
    return [_units_to_size(u, contract) for u in units]


def _zone_prices(sized: SizedEntry, parts: int, contract: Contract) -> list[Decimal]:
    """Up to ``parts`` distinct limit prices across the zone, worst first."""
    worst, best = sized.entry_prices[0], sized.entry_prices[-1]
    if parts <= 1 or worst == best:
        return [worst]
    if parts == len(sized.entry_prices):
        return list(sized.entry_prices)  # the signal's own entries
    better = ROUND_DOWN if Side(sized.side) is Side.LONG else ROUND_UP
    prices: list[Decimal] = []
    for i in range(parts):
        price = contract.round_price(worst + (best - worst) * Decimal(i) / Decimal(parts - 1), better)
        if price not in prices:
            prices.append(price)
    return prices


def _split_entry(sized: SizedEntry, zone_split: int, contract: Contract) -> list[tuple[Decimal, Decimal]]:
    """(price, size) of each limit entry: as many parts as asked for that each meet the minimums."""
    total_units = _size_units(sized.size, contract)
    for parts in range(max(1, zone_split), 0, -1):
        prices = _zone_prices(sized, parts, contract)
        # Equal shares; the odd steps go to the worst-priced legs, which fill first.
        units = _largest_remainder(total_units, [Fraction(1)] * len(prices))
        if all(u >= _min_units(contract, p) for u, p in zip(units, prices, strict=True)):
            return [(p, _units_to_size(u, contract)) for p, u in zip(prices, units, strict=True)]
    # One limit at the worst price: the risk gate already checked it meets the minimums.
    return [(sized.entry_prices[0], sized.size)]


def plan_bundle(
    sized: SizedEntry,
    *,
    channel: str,
    message_id: int,
    signal_index: int = 0,
    pos_mode: PosMode,
    zone_split: int = 1,
    contract: Contract,
    epoch: int = 0,
) -> OrderBundle:
    """The orders for one approved entry: entry leg(s), the stop, and reduce-only limit take-profits.

    A market entry is one market order. A limit entry is one limit at the worst price of the zone, or with
    ``zone_split`` > 1 up to that many limits spread from the worst to the best price (the signal's own
    entries when it gave exactly that many), fewer when a part would fall below the minimums. Every entry
    leg carries the stop as ``presetStopLossPrice``; the :class:`StopPlan` is the stop the order side
    places (or resizes) once the entry has filled when stops are not attached.
    """
    if contract.symbol != sized.symbol:
        raise ValueError(f"contract {contract.symbol} does not match {sized.symbol}")
    mode = _check_pos_mode(pos_mode)
    position_side: PositionSide = "long" if Side(sized.side) is Side.LONG else "short"

    def oid(leg: str) -> str:
        return client_oid(channel, message_id, leg, signal_index=signal_index, epoch=epoch)

    # The one-way/hedge dialect lives in exchange.bitget.semantics; this module only asks it.
    open_side, open_trade_side, open_reduce_only = order_fields(position_side, mode, closing=False)
    if sized.market:
        parts: list[tuple[Decimal | None, Decimal]] = [(None, sized.size)]
    else:
        parts = list(_split_entry(sized, zone_split, contract))
    entries = tuple(
        LegPlan(
            leg="entry" if i == 0 else f"entry{i + 1}",
            client_oid=oid("entry" if i == 0 else f"entry{i + 1}"),
            symbol=sized.symbol,
            side=open_side,
            trade_side=open_trade_side,
            reduce_only=open_reduce_only,
            order_type="market" if price is None else "limit",
            size=size,
            price=price,
            # Every leg carries the stop: the exchange sizes an attached stop to what that leg has filled, so
            # a zone leg that fills later is covered from its first fill, not when the order side notices.
            preset_stop_loss_price=sized.stop_loss,
        )
        for i, (price, size) in enumerate(parts)
    )

    stop = StopPlan(
        client_oid=oid("sl"),
        symbol=sized.symbol,
        trigger_price=sized.stop_loss,
        hold_side=tpsl_hold_side(position_side, mode),
        size=sized.size,
    )

    take_profits: tuple[LegPlan, ...] = ()
    if sized.take_profits:
        close_side, close_trade_side, close_reduce_only = order_fields(position_side, mode, closing=True)
        shares: int | Sequence[Decimal] = sized.tp_percentages or len(sized.take_profits)
        # The smallest notional of any target is at the lowest target price.
        sizes = resolve_tp_sizes(sized.size, shares, contract, min_notional_price=min(sized.take_profits))
        take_profits = tuple(
            LegPlan(
                leg=f"tp{i + 1}",
                client_oid=oid(f"tp{i + 1}"),
                symbol=sized.symbol,
                side=close_side,
                trade_side=close_trade_side,
                reduce_only=close_reduce_only,
                order_type="limit",
                size=size,
                price=price,
            )
            for i, (price, size) in enumerate(
                zip(sized.take_profits, sizes, strict=False)
            )  # fewer sizes: far targets dropped
        )

    return OrderBundle(
        symbol=sized.symbol,
        side=Side(sized.side),
        pos_mode=mode,
        margin_mode=sized.margin_mode,
        leverage=sized.leverage,
        entries=entries,
        stop=stop,
        take_profits=take_profits,
    )


def break_even_stop(avg_entry: Decimal, side: Side | str, buffer_pct: Decimal, contract: Contract) -> Decimal:
    """The stop that locks in break-even: ``buffer_pct`` beyond the average entry, on the profit side.

    Rounded away from the entry (a long's up, a short's down) so the buffer that pays the fees is never
    shaved off by the tick grid. ``side`` may be a position's ``hold_side`` string ("long"/"short").
    """
    if Side(side) is Side.LONG:
        return contract.round_price(avg_entry * (1 + buffer_pct), ROUND_UP)
    return contract.round_price(avg_entry * (1 - buffer_pct), ROUND_DOWN)
