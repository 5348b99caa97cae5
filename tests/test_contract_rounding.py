"""Contract steps from the contracts endpoint: prices land on the tick, sizes never round risk up."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from exchange.bitget.contracts import Contract

BTC_ROW = {
    "symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin": "USDT", "minTradeNum": "0.001", "priceEndStep": "1",
    "volumePlace": "3", "pricePlace": "1", "sizeMultiplier": "0.001", "minTradeUSDT": "5", "maxLever": "125",
    "symbolStatus": "normal",
}  # fmt: skip
DEMO_ROW = {**BTC_ROW, "symbol": "SBTCSUSDT", "priceEndStep": "5"}
BTC = Contract.from_api(BTC_ROW)
STEP5 = Contract.from_api(DEMO_ROW)


def test_tick_is_price_end_step_times_ten_to_minus_price_place() -> None:
    assert BTC.tick_size == Decimal("0.1")
    assert STEP5.tick_size == Decimal("0.5")
    assert BTC.size_step == Decimal("0.001")


def test_price_rounding_nearest_and_directional() -> None:
    assert BTC.round_price("37355.55") == Decimal("37355.6")
    assert BTC.round_price(Decimal("37355.59"), ROUND_DOWN) == Decimal("37355.5")
    assert STEP5.round_price("100.2") == Decimal("100.0")
    assert STEP5.round_price("100.3") == Decimal("100.5")
    assert STEP5.round_price("100.1", ROUND_UP) == Decimal("100.5")


def test_size_rounds_down_so_risk_is_never_increased() -> None:
    assert BTC.round_size("0.0019") == Decimal("0.001")
    assert BTC.round_size_up("0.0011") == Decimal("0.002")
    assert BTC.round_size("0.0009") == Decimal("0.000")


def test_minimums() -> None:
    assert BTC.meets_minimums(Decimal("0.001"), Decimal("30000"))
    assert not BTC.meets_minimums(Decimal("0.001"), Decimal("4000"))  # 4 USDT < 5 USDT notional
    assert not BTC.meets_minimums(Decimal("0.0005"), Decimal("30000"))


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000"), places=4))
def test_rounded_prices_are_multiples_of_the_tick(price: Decimal) -> None:
    for contract in (BTC, STEP5):
        rounded = contract.round_price(price)
        assert (rounded / contract.tick_size) % 1 == 0
        assert abs(rounded - price) <= contract.tick_size / 2


@given(st.decimals(min_value=Decimal("0"), max_value=Decimal("10000"), places=6))
def test_rounded_sizes_are_multiples_of_the_step_and_never_larger(size: Decimal) -> None:
    rounded = BTC.round_size(size)
    assert rounded <= size
    assert (rounded / BTC.size_step) % 1 == 0
    assert size - rounded < BTC.size_step
