from __future__ import annotations

import pytest

from parsing.rules import find_symbols, normalize_symbol


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("BTC", "BTCUSDT"),
        ("btc", "BTCUSDT"),
        ("#BTC", "BTCUSDT"),
        ("$btc", "BTCUSDT"),
        ("XBT", "BTCUSDT"),
        ("#xbt", "BTCUSDT"),
        ("BTC/USDT", "BTCUSDT"),
        ("BTC/USD", "BTCUSDT"),
        ("BTCUSD", "BTCUSDT"),
        ("BTCUSDT", "BTCUSDT"),
        ("#FARTCOINUSDT.P", "FARTCOINUSDT"),
        ("比特币", "BTCUSDT"),
        ("大饼", "BTCUSDT"),
        ("以太", "ETHUSDT"),
        ("以太币", "ETHUSDT"),
        ("1000PEPE", "1000PEPEUSDT"),
        ("1000PEPE/USDT", "1000PEPEUSDT"),
    ],
)
def test_names_map_to_bitget_usdt_m(raw: str, expected: str) -> None:
    assert normalize_symbol(raw) == expected


@pytest.mark.parametrize("raw", ["ETH/BTC", "USDT", "12345", "", "SIGNAL", "A/B/C", "with space!"])
def test_non_usdt_or_meaningless_names_are_refused(raw: str) -> None:
    assert normalize_symbol(raw) is None


def test_symbols_found_in_text_in_order_of_explicitness() -> None:
    assert find_symbols("#SIGNAL (BTC/USD) @someone")[0] == ["BTCUSDT"]
    assert find_symbols("Пара #IOTXUSDT #SHORT")[0] == ["IOTXUSDT"]
    assert find_symbols("SOL SHORT now")[0] == ["SOLUSDT"]
    assert find_symbols("比特与以太现价开空")[0] == ["BTCUSDT", "ETHUSDT"]


def test_spot_pair_in_text_is_named_in_warnings() -> None:
    symbols, warnings = find_symbols("ETH / BTC : LONG 0.027")
    assert symbols == [] and "ETH/BTC" in warnings[0]
