from __future__ import annotations

from decimal import Decimal

from parsing.rules import parse_text
from parsing.signals import Action, Kind, ParsedMessage, Side, UpdateType

D = Decimal


def one(text: str) -> ParsedMessage:
    readings = parse_text(text)
    assert len(readings) == 1, readings
    return readings[0]


def test_cornix_free_text_signal_is_a_complete_trade() -> None:
    reading = one(
        "⚡⚡ #SOL/USDT ⚡⚡\nExchanges: Binance Futures\nSignal Type: Regular (Long)\nLeverage: Isolated (10.0X)\n\n"
        "Entry Zone:\n140.5 - 142\n\nTake-Profit Targets:\n1) 145 - 50%\n2) 150 - 50%\n\nStop Targets:\n1) 135\n\n"
        "Trailing Configuration:\nStop: Moving Target - Trigger: Target (1)"
    )
    assert (reading.kind, reading.action) == (Kind.ENTRY, Action.TRADE)
    assert reading.symbol == "SOLUSDT" and reading.side is Side.LONG
    assert reading.entries == (D("140.5"), D("142")) and reading.stop_loss == D("135")
    assert reading.take_profits == (D("145"), D("150")) and reading.tp_percentages == (D("50"), D("50"))
    assert reading.leverage == 10 and reading.margin_mode == "isolated"
    assert reading.confidence == 1.0 and reading.warnings == ()


def test_russian_signal_with_comma_decimals_and_market_entry() -> None:
    reading = one("#ADAUSDT Шорт по рынку\nСтоп 0,5120\nТейк 1: 0,4800\nТейк 2: 0,4650\nПлечо 5х")
    assert reading.side is Side.SHORT and reading.market_entry and reading.entries == ()
    assert reading.stop_loss == D("0.5120") and reading.take_profits == (D("0.4800"), D("0.4650"))
    assert reading.leverage == 5 and reading.action is Action.TRADE


def test_chinese_signal_inline() -> None:
    reading = one("以太 2300-2310 做多，止损2250，止盈2350-2400，10倍")
    assert reading.symbol == "ETHUSDT" and reading.side is Side.LONG
    assert reading.entries == (D("2300"), D("2310")) and reading.stop_loss == D("2250")
    assert reading.take_profits == (D("2350"), D("2400")) and reading.leverage == 10
    assert reading.action is Action.TRADE


def test_turkish_and_cmp_and_numbered_targets() -> None:
    reading = one("$AVAX long CMP\nTP1: 31\nTP2: 33\nSL: 27\n10x kaldıraç")
    assert reading.market_entry and reading.take_profits == (D("31"), D("33")) and reading.stop_loss == D("27")
    assert reading.action is Action.TRADE and reading.leverage == 10


def test_missing_stop_is_notify_only_with_reason() -> None:
    reading = one("BTCUSDT LONG\nEntry 60000\nTP 62000")
    assert reading.kind is Kind.ENTRY and reading.action is Action.NOTIFY_ONLY
    assert any("no stop" in warning for warning in reading.warnings)
    # Complete but for the stop: flagged, so the risk gate may give it the default stop when configured to.
    assert reading.stop_missing and reading.stop_loss is None
    assert (reading.symbol, reading.side, reading.entries) == ("BTCUSDT", Side.LONG, (D("60000"),))


def test_stop_missing_is_not_flagged_when_anything_else_is_in_doubt() -> None:
    for text in (
        "BTCUSDT LONG\nEntry 60000\nTP 62000\nSL 5%",  # a stop we cannot read is not an absent one
        "BTC and ETH LONG\nEntry 60000\nTP 62000",  # two coins
        "BTCUSDT LONG now\nTP 62000",  # no entry price
        "BTCUSDT\nEntry 60000\nTP 62000",  # no direction word
    ):
        reading = one(text)
        assert reading.action is Action.NOTIFY_ONLY, text
        assert not reading.stop_missing, text
    assert not one("BTCUSDT LONG\nEntry 60000\nSL 59000\nTP 62000").stop_missing


def test_stop_on_wrong_side_is_notify_only_never_swapped() -> None:
    reading = one("BTCUSDT LONG\nEntry 60000\nSL 61000\nTP 62000")
    assert reading.action is Action.NOTIFY_ONLY and reading.stop_loss == D("61000")
    assert any("not below" in warning for warning in reading.warnings)


def test_target_ten_times_the_entry_is_dropped_not_corrected() -> None:
    reading = one("ETHUSDT LONG\nEntry 2000\nSL 1900\nTP1 2100\nTP2 22000\nTP3 2300")
    assert reading.take_profits == (D("2100"), D("2300"))
    assert any("22000" in warning for warning in reading.warnings)


def test_contact_numbers_never_become_prices() -> None:
    reading = one("BTC LONG 60000\nSL 59000\nTP 61000\nQQ:158241758 tel +7 912 345 67 89")
    assert reading.entries == (D("60000"),) and reading.take_profits == (D("61000"),)


def test_two_coins_are_refused_not_merged() -> None:
    (reading,) = parse_text("BTC and ETH LONG now\nSL 100\nTP 200")
    assert reading.action is Action.NOTIFY_ONLY and reading.symbol is None


def test_two_plans_become_two_readings() -> None:
    readings = parse_text("BTCUSDT SHORT 61000, SL 62000, TP 60000\n\nBTCUSDT LONG 58000, SL 57000, TP 59000")
    assert [r.side for r in readings] == [Side.SHORT, Side.LONG]
    assert [r.entries for r in readings] == [(D("61000"),), (D("58000"),)]


def test_tp_hit_update() -> None:
    reading = one("#DOT/USDT Take-Profit target 2 ✅\nProfit: 69.8% 📈")
    assert (reading.kind, reading.update_type, reading.tp_index) == (Kind.UPDATE, UpdateType.TP_HIT, 2)
    assert reading.symbol == "DOTUSDT" and reading.action is Action.TRADE


def test_move_stop_to_break_even_and_set_stop() -> None:
    assert one("Move stop to breakeven").update_type is UpdateType.MOVE_SL_TO_BE
    reading = one("#SOL/USDT set stoploss 135,5")
    assert reading.update_type is UpdateType.SET_STOP and reading.update_price == D("135.5")


def test_close_partial_and_close_all_and_cancel() -> None:
    partial = one("Close 25% and hold the rest")
    assert partial.update_type is UpdateType.CLOSE_PARTIAL and partial.update_percent == D("25")
    closed = one("Close all positions now")
    assert (closed.kind, closed.update_type) == (Kind.CLOSE, UpdateType.CLOSE_ALL)
    cancel = one("#H/USDT Cancelled ❌")
    assert (cancel.kind, cancel.update_type) == (Kind.CANCEL, UpdateType.CANCEL_ENTRIES)


def test_signal_id_is_carried_for_linking() -> None:
    assert one("SIGNAL ID: #2001\nClosed Manually").signal_ref == "2001"


def test_entry_filled_update() -> None:
    reading = one("#ENA/USDT Entry 1 ✅\nAverage Entry Price: 0.09428 💵")
    assert reading.update_type is UpdateType.ENTRY_FILLED and reading.kind is Kind.UPDATE


def test_noise_is_ignored() -> None:
    for text in ["gm everyone", "MARKET ANALYSIS: BTC likely consolidating", "", "   ", "Join our VIP now!"]:
        assert one(text).action is Action.IGNORE


def test_comma_and_space_separated_number_formats() -> None:
    reading = one("BTCUSDT SHORT\nEntry: 64 012.30\nSL: 65 100.50\nTP: 62,000")
    assert reading.entries == (D("64012.30"),) and reading.stop_loss == D("65100.50")
    assert reading.take_profits == (D("62000"),)
