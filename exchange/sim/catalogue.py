"""A realistic catalogue of USDT-M perpetual contracts for the simulator.

Precisions follow what Bitget's ``/api/v2/mix/market/contracts`` publishes for these symbols (rounded to the
values that matter for validation); starting prices are plausible, not live.
"""

from __future__ import annotations

from decimal import Decimal

from exchange.bitget.contracts import Contract


def _contract(
    symbol: str,
    base: str,
    *,
    price_place: int,
    volume_place: int,
    min_trade_num: str,
    max_lever: int,
    price_end_step: int = 1,
    min_trade_usdt: str = "5",
) -> Contract:
    step = Decimal(1).scaleb(-volume_place)
    return Contract(
        symbol=symbol,
        base_coin=base,
        quote_coin="USDT",
        price_place=price_place,
        price_end_step=price_end_step,
        volume_place=volume_place,
        size_multiplier=step,
        min_trade_num=Decimal(min_trade_num),
        min_trade_usdt=Decimal(min_trade_usdt),
        max_lever=max_lever,
    )


DEFAULT_CONTRACTS: tuple[Contract, ...] = (
    _contract("BTCUSDT", "BTC", price_place=1, volume_place=3, min_trade_num="0.001", max_lever=125),
    _contract("ETHUSDT", "ETH", price_place=2, volume_place=2, min_trade_num="0.01", max_lever=100),
    _contract("SOLUSDT", "SOL", price_place=3, volume_place=1, min_trade_num="0.1", max_lever=100),
    _contract("XRPUSDT", "XRP", price_place=4, volume_place=0, min_trade_num="1", max_lever=75),
    _contract("DOGEUSDT", "DOGE", price_place=5, volume_place=0, min_trade_num="1", max_lever=75),
    _contract("BNBUSDT", "BNB", price_place=2, volume_place=2, min_trade_num="0.01", max_lever=75),
    _contract("ADAUSDT", "ADA", price_place=4, volume_place=0, min_trade_num="1", max_lever=75),
    _contract("LINKUSDT", "LINK", price_place=3, volume_place=1, min_trade_num="0.1", max_lever=75),
    _contract("LTCUSDT", "LTC", price_place=2, volume_place=1, min_trade_num="0.1", max_lever=75),
    _contract("AVAXUSDT", "AVAX", price_place=3, volume_place=1, min_trade_num="0.1", max_lever=50),
    _contract("1000PEPEUSDT", "1000PEPE", price_place=7, volume_place=0, min_trade_num="1", max_lever=50),
)

DEFAULT_PRICES: dict[str, Decimal] = {
    "BTCUSDT": Decimal("65000.0"),
    "ETHUSDT": Decimal("3200.00"),
    "SOLUSDT": Decimal("150.000"),
    "XRPUSDT": Decimal("0.5500"),
    "DOGEUSDT": Decimal("0.15000"),
    "BNBUSDT": Decimal("580.00"),
    "ADAUSDT": Decimal("0.4500"),
    "LINKUSDT": Decimal("14.500"),
    "LTCUSDT": Decimal("85.00"),
    "AVAXUSDT": Decimal("28.000"),
    "1000PEPEUSDT": Decimal("0.0108000"),
}


def contract_row(contract: Contract) -> dict[str, object]:
    """One element of the contracts endpoint, field names and string numbers as Bitget sends them."""
    return {
        "symbol": contract.symbol,
        "baseCoin": contract.base_coin,
        "quoteCoin": contract.quote_coin,
        "buyLimitPriceRatio": "0.05",
        "sellLimitPriceRatio": "0.05",
        "feeRateUpRatio": "0.005",
        "makerFeeRate": str(contract.maker_fee_rate),
        "takerFeeRate": str(contract.taker_fee_rate),
        "openCostUpRatio": "0.01",
        "supportMarginCoins": [contract.quote_coin],
        "minTradeNum": str(contract.min_trade_num),
        "priceEndStep": str(contract.price_end_step),
        "volumePlace": str(contract.volume_place),
        "pricePlace": str(contract.price_place),
        "sizeMultiplier": str(contract.size_step),
        "symbolType": "perpetual",
        "minTradeUSDT": str(contract.min_trade_usdt),
        "maxSymbolOrderNum": "200",
        "maxProductOrderNum": "400",
        "maxPositionNum": "150",
        "symbolStatus": contract.status,
        "offTime": "-1",
        "limitOpenTime": "-1",
        "deliveryTime": "",
        "deliveryStartTime": "",
        "deliveryPeriod": "",
        "launchTime": "",
        "fundInterval": "8",
        "minLever": str(contract.min_lever),
        "maxLever": str(contract.max_lever),
        "posLimit": "0.05",
        "maintainTime": "",
    }
