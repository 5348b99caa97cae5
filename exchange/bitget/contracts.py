"""Contract specifications and the rounding every price and size must pass before it is sent."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Any


@dataclass(frozen=True)
class Contract:
    symbol: str
    base_coin: str
    quote_coin: str
    price_place: int  # decimals of the price
    price_end_step: int  # the price moves in multiples of price_end_step * 10**-price_place
    volume_place: int  # decimals of the size
    size_multiplier: Decimal  # size step
    min_trade_num: Decimal  # minimum size
    min_trade_usdt: Decimal  # minimum notional
    max_lever: int
    min_lever: int = 1
    maker_fee_rate: Decimal = Decimal("0.0002")
    taker_fee_rate: Decimal = Decimal("0.0006")
    status: str = "normal"

    @property
    def tick_size(self) -> Decimal:
        return Decimal(self.price_end_step) * Decimal(1).scaleb(-self.price_place)

    @property
    def size_step(self) -> Decimal:
        return max(self.size_multiplier, Decimal(1).scaleb(-self.volume_place))

    def round_price(self, price: Decimal | float | str, rounding: str = ROUND_HALF_UP) -> Decimal:
        """Nearest valid price (or the one below/above with ROUND_DOWN/ROUND_UP)."""
        tick = self.tick_size
        steps = (Decimal(str(price)) / tick).quantize(Decimal(1), rounding=rounding)
        return (steps * tick).quantize(Decimal(1).scaleb(-self.price_place))

    def round_size(self, size: Decimal | float | str) -> Decimal:
        """Largest valid size not above ``size``: sizing never rounds risk up."""
        step = self.size_step
        steps = (Decimal(str(size)) / step).quantize(Decimal(1), rounding=ROUND_DOWN)
        return (steps * step).quantize(Decimal(1).scaleb(-self.volume_place))

    def round_size_up(self, size: Decimal | float | str) -> Decimal:
        step = self.size_step
        steps = (Decimal(str(size)) / step).quantize(Decimal(1), rounding=ROUND_UP)
        return (steps * step).quantize(Decimal(1).scaleb(-self.volume_place))

    def meets_minimums(self, size: Decimal, price: Decimal) -> bool:
        return size >= self.min_trade_num and size * price >= self.min_trade_usdt

    @classmethod
    def from_api(cls, row: dict[str, Any]) -> Contract:
        """Build from one element of ``GET /api/v2/mix/market/contracts``. Every field is checked (a text
        symbol, places and leverages small whole numbers, steps, minimums and fees finite numbers in range):
        a bad row raises ``ValueError`` and its symbol stays unknown."""
        if not isinstance(row, dict):
            raise ValueError("a contract row is not an object")
        symbol = row.get("symbol")
        if not isinstance(symbol, str) or not symbol or len(symbol) > 40 or not symbol.isprintable():
            raise ValueError(f"contract symbol {symbol!r:.40} is not a text")
        status = row.get("symbolStatus", "normal")
        return cls(
            symbol=symbol,
            base_coin=str(row.get("baseCoin", ""))[:40],
            quote_coin=str(row.get("quoteCoin", ""))[:40],
            price_place=_whole(row.get("pricePlace"), "pricePlace", 0, 18),
            price_end_step=_whole(row.get("priceEndStep") or 1, "priceEndStep", 1, 10**6),
            volume_place=_whole(row.get("volumePlace"), "volumePlace", 0, 18),
            size_multiplier=_amount(row.get("sizeMultiplier") or "0", "sizeMultiplier"),
            min_trade_num=_amount(row.get("minTradeNum") or "0", "minTradeNum"),
            min_trade_usdt=_amount(row.get("minTradeUSDT") or "0", "minTradeUSDT"),
            max_lever=_whole(row.get("maxLever") or 1, "maxLever", 1, 10_000),
            min_lever=_whole(row.get("minLever") or 1, "minLever", 1, 10_000),
            maker_fee_rate=_fee(row.get("makerFeeRate") or "0.0002", "makerFeeRate"),
            taker_fee_rate=_fee(row.get("takerFeeRate") or "0.0006", "takerFeeRate"),
            status=status if isinstance(status, str) and len(status) <= 40 else "unknown",
        )


def _number(value: object, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise ValueError(f"{name} is not a number")
    text = str(value).strip()
    if len(text) > 40:
        raise ValueError(f"{name} is not a plausible number")
    try:
        number = Decimal(text)
    except ArithmeticError:
        raise ValueError(f"{name} is not a number") from None
    if not number.is_finite() or (number != 0 and not -30 <= number.adjusted() <= 30):
        raise ValueError(f"{name} is not a finite number in range")
    return number


def _whole(value: object, name: str, low: int, high: int) -> int:
    number = _number(value, name)
    if number != number.to_integral_value() or not low <= number <= high:
        raise ValueError(f"{name} {value!r:.20} is not a whole number in {low}..{high}")
    return int(number)


def _amount(value: object, name: str) -> Decimal:
    number = _number(value, name)
    if number < 0:
        raise ValueError(f"{name} is negative")
    return number


def _fee(value: object, name: str) -> Decimal:
    number = _number(value, name)
    if not -1 < number < 1:
        raise ValueError(f"{name} {number} is not a fee rate")
    return number
