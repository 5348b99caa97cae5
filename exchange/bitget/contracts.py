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
        """Build from one element of ``GET /api/v2/mix/market/contracts``."""
        return cls(
            symbol=row["symbol"],
            base_coin=row.get("baseCoin", ""),
            quote_coin=row.get("quoteCoin", ""),
            price_place=int(row["pricePlace"]),
            price_end_step=int(row.get("priceEndStep", "1") or 1),
            volume_place=int(row["volumePlace"]),
            size_multiplier=Decimal(row.get("sizeMultiplier") or "0"),
            min_trade_num=Decimal(row.get("minTradeNum") or "0"),
            min_trade_usdt=Decimal(row.get("minTradeUSDT") or "0"),
            max_lever=int(row.get("maxLever") or 1),
            min_lever=int(row.get("minLever") or 1),
            maker_fee_rate=Decimal(row.get("makerFeeRate") or "0.0002"),
            taker_fee_rate=Decimal(row.get("takerFeeRate") or "0.0006"),
            status=row.get("symbolStatus", "normal"),
        )
