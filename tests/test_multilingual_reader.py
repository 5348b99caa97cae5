"""The rule reader in every lexicon language: entries, updates, closes and cancels, with and without the coin.

The messages here are written for these tests (not copied from the dev sets) so that they check the general
mechanism: labels, directions and verbs from the lexicon, numbers normalized first.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from parsing.rules import parse_text
from parsing.signals import Action, Kind, ParsedMessage, ReadingContext, Side, UpdateType

D = Decimal


def only(text: str, context: ReadingContext | None = None) -> ParsedMessage:
    readings = parse_text(text, context)
    assert len(readings) == 1, readings
    return readings[0]


def kinds(text: str, context: ReadingContext | None = None) -> list[tuple[Kind, UpdateType | None]]:
    return [(r.kind, r.update_type) for r in parse_text(text, context)]


# ---- entries: the same trade written in each language --------------------------------------------------------
LONG_SOL = dict(symbol="SOLUSDT", side=Side.LONG, entries=(D("142.5"), D("140")), stop_loss=D("136"),
                take_profits=(D("146"), D("150"), D("158")))


@pytest.mark.parametrize(
    "text",
    [
        "#SOL LONG\nEntry: 142.5 - 140\nStop loss: 136\nTargets: 146 / 150 / 158\nLeverage: 10x",
        "#SOL Лонг\nВход: 142,5 - 140\nСтоп: 136\nЦели: 146 - 150 - 158\nПлечо: 10х",
        "SOL 做多\n入场：142.5-140\n止损：136\n目标：146/150/158\n杠杆：10倍",
        "SOL 做多\n進場：142.5-140\n止損：136\n目標：146/150/158\n槓桿：10倍",
        "#SOL long\nGiriş: 142,5 - 140\nZarar durdur: 136\nHedef: 146 - 150 - 158\nKaldıraç: 10x",
        "#SOL MUA\nVùng vào lệnh: 142.5 - 140\nCắt lỗ: 136\nChốt lời: 146 - 150 - 158\nĐòn bẩy: x10",
        "#SOL COMPRA (largo)\nEntrada: 142,5 - 140\nStop loss: 136\nObjetivos: 146 - 150 - 158\nApalancamiento: 10x",
        "#SOL COMPRA\nEntrada: 142,5 - 140\nStop: 136\nAlvos: 146 - 150 - 158\nAlavancagem: 10x",
        "#SOL لانگ\nورود: ۱۴۲٫۵ - ۱۴۰\nحد ضرر: ۱۳۶\nحد سود: ۱۴۶ - ۱۵۰ - ۱۵۸\nاهرم: 10x",
        "#SOL شراء\nالدخول: ١٤٢٫٥ - ١٤٠\nوقف الخسارة: ١٣٦\nالأهداف: ١٤٦ - ١٥٠ - ١٥٨\nالرافعة: 10x",
        "#SOL LONG\nArea masuk: 142.5 - 140\nStop loss: 136\nTarget: 146 - 150 - 158\nLeverage: 10x",
        "#SOL 롱\n진입: 142.5 - 140\n손절: 136\n목표: 146 / 150 / 158\n레버리지: 10x",
        "＃ＳＯＬ　ＬＯＮＧ\nEntry：１４２．５ － １４０\nSL：１３６\nTP：１４６ / １５０ / １５８\n10x",
        "**#SOL** **LONG**\n**Entry:** 142.5 - 140\n**SL:** 136\n**TP:** 146 - 150 - 158\n10x",
    ],
)
def test_the_same_entry_in_every_language(text: str) -> None:
    reading = only(text)
    assert reading.kind is Kind.ENTRY and reading.action is Action.TRADE, reading.warnings
    for name, value in LONG_SOL.items():
        assert getattr(reading, name) == value, (name, text)
    assert reading.leverage == 10


def test_a_thousands_comma_and_a_decimal_comma_are_decided_per_message() -> None:
    thousands = only("#BTC SHORT\nEntry: 97,250\nSL: 98,100\nTP: 95,800 - 94,000")
    assert (thousands.entries, thousands.stop_loss) == ((D("97250"),), D("98100"))
    decimal = only("#OP SHORT\nВход: 1,875\nСтоп: 1,93\nТейк: 1,750")
    assert (decimal.entries, decimal.stop_loss, decimal.take_profits) == ((D("1.875"),), D("1.93"), (D("1.75"),))


def test_cyrillic_lookalike_letters_in_a_ticker_read_as_the_latin_coin() -> None:
    reading = only("#ЕТН/USDT LONG\nEntry 3150\nSL 3080\nTP 3260")
    assert reading.symbol == "ETHUSDT" and reading.action is Action.TRADE


def test_chinese_nicknames_and_wan_multiplier_are_read_but_never_traded_as_rounded_prices() -> None:
    reading = only("大饼 6万2附近做空 止损6万3 止盈6万")
    assert reading.symbol == "BTCUSDT" and reading.side is Side.SHORT
    assert reading.entries == (D("62000"),) and reading.stop_loss == D("63000")
    assert reading.action is Action.NOTIFY_ONLY  # "6万2" is shorthand, not a price to place an order at


def test_contact_numbers_and_size_shares_are_never_prices() -> None:
    reading = only("#LINK LONG\n1) 14.20 (50%)\n2) 13.90 (1/2)\nSL 13.40\nTP 15.10 - 16.00\nWeChat: 13912345678")
    assert reading.entries == (D("14.20"), D("13.90")) and reading.action is Action.TRADE


def test_a_market_entry_keeps_its_quoted_reference_price() -> None:
    reading = only("#AVAX SHORT market 21.40\nSL 22.30\nTP 20.10")
    assert reading.entries == (D("21.40"),) and reading.stop_loss == D("22.30")
    assert reading.market_entry and reading.action is Action.TRADE  # the risk gate checks slippage from 21.40
    russian = only("#LINKUSDT LONG\nВход: 8.9960 рынок\nSL: 8.616\nTP1: 9.2169")
    assert russian.market_entry and russian.entries == (D("8.9960"),)
    legs = only("ETH 1710市价直接空 再挂1788 止盈1673/1618 止损1850")  # a market leg and a limit leg: both limits
    assert not legs.market_entry and legs.entries == (D(1710), D(1788))


def test_a_stop_given_only_as_a_percentage_is_not_traded() -> None:
    reading = only("#DOT LONG\nEntry 4.10\nSL -5%\nTP 4.40")
    assert reading.action is Action.NOTIFY_ONLY and "stop given only as a percentage" in reading.warnings


# ---- updates, closes and cancels --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "symbol"),
    [
        ("Close #BTC long now", "BTCUSDT"), ("Close SOL now", "SOLUSDT"), ("Book profits on #AVAX now", "AVAXUSDT"),
        ("SOL 平仓", "SOLUSDT"), ("ETH 平仓离场", "ETHUSDT"), ("Закрываем #BTC", "BTCUSDT"),
        ("Đóng lệnh #SOL", "SOLUSDT"), ("#AVAX pozisyonu kapat", "AVAXUSDT"), ("Cerramos #XRP", "XRPUSDT"),
        ("Fechamos #ADA agora", "ADAUSDT"),
        ("Fechamos o #DOT", "DOTUSDT"), ("إغلاق #BNB", "BNBUSDT"), ("Tutup posisi #DOGE", "DOGEUSDT"),
        ("#SUI 청산", "SUIUSDT"), ("#LTC ببندید", "LTCUSDT"), ("Stopped out on #APT", "APTUSDT"),
        ("#NEAR all targets hit 🎯", "NEARUSDT"), ("#TIA закрываю все", "TIAUSDT"),
    ],
)
def test_closes_in_every_language(text: str, symbol: str) -> None:
    reading = only(text)
    assert (reading.kind, reading.update_type, reading.action) == (Kind.CLOSE, UpdateType.CLOSE_ALL, Action.TRADE)
    assert reading.symbol == symbol


@pytest.mark.parametrize(
    ("text", "percent"),
    [
        ("#ETH close half", D(50)), ("#BTCUSDT TP1 ✅ закрыть 50%", D(50)), ("保留25%底仓", D(75)),
        ("BTC 止盈40%", D(40)), ("Fix 30 % on #ARB", D(30)), ("#ETH %50 kapat", D(50)),
        ("Chốt 70% lệnh #BNB", D(70)), ("Закрываю половину по #SOL", D(50)), ("Cerrar 25% de #XRP", D(25)),
        ("平一半", D(50)), ("Keep 20% running, close the rest", D(80)), ("#XRP 50% 익절 하세요", D(50)),
        ("ETH 第一目标已到，减仓30%", D(30)), ("#AVAX %30 kar al", D(30)), ("#ADA Fechar metade da posição", D(50)),
    ],
)
def test_partial_closes_with_their_share_in_any_word_order(text: str, percent: Decimal) -> None:
    partial = [r for r in parse_text(text) if r.update_type is UpdateType.CLOSE_PARTIAL]
    assert len(partial) == 1 and partial[0].action is Action.TRADE, parse_text(text)
    assert partial[0].update_percent == percent


def test_a_partial_close_without_its_share_asks_the_user() -> None:
    reading = only("Снял часть по текущим 0,91")
    assert reading.update_type is UpdateType.CLOSE_PARTIAL and reading.action is Action.NOTIFY_ONLY


@pytest.mark.parametrize(
    "text",
    ["Move stop to entry", "SL to breakeven", "Стоп в БУ", "стоп переносим в б/у", "止损移至开仓价", "做好成本保护",
     "Dời SL về hòa vốn", "Stop girişe çek", "Stopu girişe çekiyoruz", "Movemos el stop a entrada",
     "#BTC انقل وقف الخسارة إلى نقطة الدخول", "#ETH استاپ را به نقطه ورود ببرید",
     "Mover el stop a break even", "SL ke titik impas", "손절 본절로 이동",
     "حد ضرر را سربهسر کنید"],
)
def test_stop_to_break_even_in_every_language(text: str) -> None:
    assert (Kind.UPDATE, UpdateType.MOVE_SL_TO_BE) in kinds(text), parse_text(text)


@pytest.mark.parametrize(
    ("text", "price"),
    [("Move SL to 61250", D("61250")), ("Стоп переносим на 0,4120", D("0.4120")), ("止损上移至64100", D("64100")),
     ("#BTC new stop: 96,800", D("96800")), ("推保护价：77500", D("77500"))],
)
def test_stop_moved_to_a_price(text: str, price: Decimal) -> None:
    moves = [r for r in parse_text(text) if r.update_type is UpdateType.SET_STOP]
    assert len(moves) == 1 and moves[0].update_price == price and moves[0].action is Action.TRADE


def test_target_hits_with_and_without_the_coin() -> None:
    assert [(r.update_type, r.tp_index) for r in parse_text("比特币止盈1已到达，止损移至开仓价")] == [
        (UpdateType.TP_HIT, 1), (UpdateType.MOVE_SL_TO_BE, None)]
    readings = parse_text("DOGE đã chạm TP2 🎯 dời SL lên TP1")
    assert (readings[0].update_type, readings[0].tp_index, readings[0].symbol) == (UpdateType.TP_HIT, 2, "DOGEUSDT")
    move = readings[1]  # the stop goes to target 1, whose price only the signal knows
    assert move.update_type is UpdateType.SET_STOP and move.action is Action.NOTIFY_ONLY
    assert [(r.update_type, r.tp_index) for r in parse_text("第二止盈位已到")] == [(UpdateType.TP_HIT, 2)]
    assert [(r.update_type, r.tp_index) for r in parse_text("#OP hit TP3")] == [(UpdateType.TP_HIT, 3)]


@pytest.mark.parametrize(
    "text",
    ["Cancel #BTC, no longer valid", "#ETH iptal", "Hủy lệnh #SOL", "Отменяем вход по #ARB", "取消挂单",
     "Signal cancelled ❌", "لغو سیگنال #BNB", "#XRP 진입 취소", "Batal #DOGE"],
)
def test_cancels_in_every_language(text: str) -> None:
    assert kinds(text) == [(Kind.CANCEL, UpdateType.CANCEL_ENTRIES)], parse_text(text)


def test_adding_to_a_position_is_an_update_never_a_new_entry() -> None:
    for text in ("#FIL SHORT добор\nВход: 3.05 рынок", "BTC 加仓 64000", "#ETH add to position at 3000"):
        readings = parse_text(text)
        assert all(r.kind is Kind.UPDATE and r.action is Action.NOTIFY_ONLY for r in readings), text


def test_an_entry_with_management_words_stays_an_entry() -> None:
    reading = only("#ARB LONG\nEntry 0.80\nSL 0.76\nTP1 0.84 TP2 0.88\nAfter TP1 move SL to entry, close 50%")
    assert reading.kind is Kind.ENTRY and reading.action is Action.TRADE


def test_alternatives_are_the_user_s_choice() -> None:
    readings = parse_text("可以先平一半或者全部平仓")
    assert readings and all(r.action is Action.NOTIFY_ONLY for r in readings)


@pytest.mark.parametrize("text", ["gm fam", "STBL +10R 🔥", "итог недели: +12R", "今天休息", "Buenos días"])
def test_chatter_stays_noise(text: str) -> None:
    assert kinds(text) == [(Kind.NOISE, None)]


# ---- context: a reply is read with its signal in mind -------------------------------------------------------------
BTC_LONG = ReadingContext(symbol="BTCUSDT", side=Side.LONG, entries=(D("65000"),), stop_loss=D("64000"),
                          take_profits=(D("66000"), D("67000")))


def test_a_reply_needs_no_coin() -> None:
    assert kinds("close half", BTC_LONG) == [(Kind.UPDATE, UpdateType.CLOSE_PARTIAL)]
    assert kinds("move stop to entry", BTC_LONG) == [(Kind.UPDATE, UpdateType.MOVE_SL_TO_BE)]


def test_a_reply_with_the_signal_s_side_is_a_close_not_an_entry() -> None:
    reading = only("Close long now", BTC_LONG)
    assert (reading.kind, reading.action) == (Kind.CLOSE, Action.TRADE)
    assert only("Close short now", BTC_LONG).action is Action.NOTIFY_ONLY  # the other side: doubt


def test_a_reply_moving_the_stop_to_a_target_uses_the_signal_s_target() -> None:
    reading = only("SL lên TP1", BTC_LONG)
    assert (reading.update_type, reading.update_price, reading.action) == (UpdateType.SET_STOP, D("66000"),
                                                                          Action.TRADE)


def test_a_reply_giving_the_stop_sets_it() -> None:
    reading = only("止盈：66500-67200\n止损：64200", BTC_LONG)
    assert (reading.update_type, reading.update_price, reading.action) == (UpdateType.SET_STOP, D("64200"),
                                                                          Action.TRADE)
    alone = only("止盈：66500-67200\n止损：64200")  # not a reply: whose stop is it?
    assert alone.kind is Kind.UPDATE and alone.action is Action.NOTIFY_ONLY


# ---- more shapes seen in channels --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "index"),
    [("First target hit on #ADA 🎯", 1), ("#OP: second target reached", 2), ("Первый тейк по #SUI взят", 1),
     ("تحقق الهدف الأول ✅ #BTC", 1), ("WLD 2. hedef geldi ✅", 2), ("Objetivo 2 alcanzado ✅ #BNB", 2),
     ("Alvo 1 atingido ✅ #BNB", 1), ("#SOL TP1 chạm ✅", 1), ("ETH 止盈2到了", 2), ("BTC 第三目標已達成", 3),
     ("#SOL 1차 목표 도달 ✅", 1), ("#BTC حد سود اول فعال شد ✅", 1), ("#ETH Target 1 kena ✅", 1)],
)
def test_target_hits_by_number_or_ordinal(text: str, index: int) -> None:
    hits = [r for r in parse_text(text) if r.update_type is UpdateType.TP_HIT]
    assert [(r.tp_index, r.action) for r in hits] == [(index, Action.TRADE)], parse_text(text)


@pytest.mark.parametrize(
    "text", ["#DOT stop loss triggered", "Стоп сработал по #ETH", "#BTC 止损触发", "🛑 #LINK SL hit -12%"]
)
def test_stop_reached_is_a_close(text: str) -> None:
    assert kinds(text) == [(Kind.CLOSE, UpdateType.CLOSE_ALL)]


def test_a_signed_percentage_after_close_is_a_result_not_a_share() -> None:
    assert kinds("Closed #AVAX at +35% profit") == [(Kind.CLOSE, UpdateType.CLOSE_ALL)]
    assert only("Закрыл часть #SOL по 142 (30%)").update_percent == D(30)


def test_targets_with_notes_in_brackets_entry_legs_and_a_short_stop_label() -> None:
    atom = only("#ATOM/USDT (Long, x20)\nEntry - 10.5\nTake-Profit:\n🥉 10.71 (40% of profit)\n🥈 10.82 (60% of profit)"
                "\nStop loss - 10.1")
    assert atom.take_profits == (D("10.71"), D("10.82")) and atom.action is Action.TRADE
    legs = only("SOL/USDT LONG\nEntry 1: 145\nEntry 2: 141\nTP1 150 TP2 155 TP3 -\nSL 137")
    assert legs.entries == (D(145), D(141)) and legs.take_profits == (D(150), D(155))
    short_label = only("BTC 多 64000-63500 损 62800 目标 65500 66800")
    assert (short_label.entries, short_label.stop_loss) == ((D(64000), D(63500)), D(62800))


def test_a_stop_given_as_a_condition_is_placed_at_its_price_and_said() -> None:
    reading = only("#INJ Long\nEntry: 24.10\nSL: 22.80 (4H close below)\nTP: 25 / 26.2")
    assert reading.stop_loss == D("22.80") and reading.action is Action.TRADE
    assert "stop given as a condition; placed as a plain stop at its price" in reading.warnings


def test_an_overlong_text_is_never_traded() -> None:
    text = "#SOL LONG\nEntry: 142.5\nSL: 136\nTP: 146\n" + "blah " * 3000
    assert all(r.action is not Action.TRADE for r in parse_text(text))


@pytest.mark.parametrize(
    "text", ["Don't close yet, hold #BTC", "不要平仓", "Не закрываем #ETH, держим", "đừng đóng lệnh",
             "Do not cancel your orders", "No need to move stop to BE"],
)
def test_a_negated_instruction_is_no_instruction(text: str) -> None:
    assert all(r.action is not Action.TRADE for r in parse_text(text)), parse_text(text)


@pytest.mark.parametrize(
    "text",
    ["SL moved from 63000 to 64100 #BTC", "стоп с 63000 на 64100", "止损从63000上移至64100", "SL 63000 -> 64100"],
)
def test_a_stop_move_takes_the_new_price_not_the_old(text: str) -> None:
    assert [(r.update_type, r.update_price) for r in parse_text(text)] == [(UpdateType.SET_STOP, D(64100))]


def test_a_multiple_after_a_target_label_is_no_leverage() -> None:
    assert only("#SOL LONG\nEntry: 142\nSL: 136\nTP: 150, then 2x").leverage is None
    assert only("#SOL LONG 5x\nEntry: 142\nSL: 136\nTP: 150").leverage == 5


def test_space_grouped_thousands_are_decided_per_message() -> None:
    reading = only("BTC LONG\nВход: 65 000\nСтоп: 64 000\nЦель: 66 500")
    assert (reading.entries, reading.stop_loss, reading.take_profits) == ((D(65000),), D(64000), (D(66500),))


def test_coloured_circles_give_the_side_only_when_no_word_does() -> None:
    reading = only("#BTC 🔴 SHORT\n🔰 Entry: 65000\n🟢 TP: 63000\n🔴 SL: 66000")
    assert (reading.side, reading.action) == (Side.SHORT, Action.TRADE)


def test_more_entry_shapes() -> None:
    pepe = only("1000PEPE LONG\nEntry: 0.0125\nSL: 0.0118\nTP: 0.0135")
    assert pepe.symbol == "1000PEPEUSDT" and pepe.action is Action.TRADE
    market = only("#ETH LONG\nEntry: market\nSL: 3050\nTP: 3300")
    assert market.market_entry and market.entries == () and market.action is Action.TRADE
    near = only("以太坊 3150附近多，止损3080，目标3250/3300")
    assert (near.symbol, near.side, near.entries, near.stop_loss) == ("ETHUSDT", Side.LONG, (D(3150),), D(3080))


def test_a_target_on_the_wrong_side_puts_the_whole_signal_in_doubt() -> None:
    reading = only("#BTC short 64000 tp 66000 sl 65000")
    assert reading.action is Action.NOTIFY_ONLY


def test_noise_says_why_when_it_is_more_than_plain_chatter() -> None:
    advert = only("会员群福利：BTC 做多 64000 止损 63000")
    assert advert.kind is Kind.NOISE and advert.warnings == ("an advertisement or admin post",)
    essay = only("Market thoughts. " + "The trend is strong and we stay patient. " * 20 + "Close when unsure.")
    assert essay.kind is Kind.NOISE and essay.warnings == ("long commentary naming no coin and no signal",)


def test_a_comma_nothing_decides_in_a_decimal_comma_language_is_not_traded() -> None:
    russian = only("#OP ШОРТ\nВход: 1,875\nСтоп: 1,930\nТейк: 1,750")  # 1.875 or 1875? the message cannot say
    assert russian.action is Action.NOTIFY_ONLY and any("decimal comma" in w for w in russian.warnings)
    english = only("#ETH LONG\nEntry: 4,418\nSL: 4,309\nTP: 4,611")  # English writes thousands with a comma
    assert english.entries == (D(4418),) and english.action is Action.TRADE


def test_style_and_exchange_hashtags_are_not_coins() -> None:
    reading = only("#Scalp #Swing #SOL LONG\nEntry 142\nSL 136\nTP 150\n#Binance #KuCoin")
    assert reading.symbol == "SOLUSDT" and reading.action is Action.TRADE


@pytest.mark.parametrize(
    "text",
    ["#BTC LONG if it breaks 66000\nSL 64000\nTP 68000", "#LINK long above 15.20, target 16.50, invalidation 14.70",
     "#ETH ЛОНГ при пробое 3200\nСтоп 3100\nЦель 3400", "BTC 65000以上做多 止损64000 止盈67000",
     "#SOL LONG\nEntry: 150 (after retest)\nSL: 140\nTP: 165"],
)
def test_an_entry_on_a_condition_is_not_placed_as_a_limit(text: str) -> None:
    reading = only(text)
    assert reading.kind is Kind.ENTRY and reading.action is Action.NOTIFY_ONLY, reading.warnings


def test_spot_style_sell_targets_under_a_buy() -> None:
    reading = only("#FET Buy: 0.40 - 0.38 | Sell: 0.45 - 0.50 | SL: 0.36")
    assert (reading.side, reading.entries, reading.take_profits) == (Side.LONG, (D("0.40"), D("0.38")),
                                                                      (D("0.45"), D("0.50")))
    assert reading.action is Action.TRADE


def test_well_known_tickers_in_lower_case_beside_a_direction() -> None:
    assert only("sol long 142 sl 136 tp 150").symbol == "SOLUSDT"
    assert only("doge short\nentry 0.152\nsl 0.158\ntp 0.145").symbol == "DOGEUSDT"
    assert only("near long 5.2 sl 5.0 tp 5.6").action is Action.NOTIFY_ONLY  # "near" is a word: capitals only


def test_a_results_recap_of_several_coins_is_noise() -> None:
    for text in ("Weekly results 🔥\nBTC TP1 ✅ +25%\nETH TP3 ✅ +60%\nSOL SL ❌ -10%",
                 "Итоги недели:\n#BTC тейк 2 взят\n#ETH стоп"):
        assert kinds(text) == [(Kind.NOISE, None)], parse_text(text)
    assert kinds("#BTC result: TP1 hit ✅") == [(Kind.UPDATE, UpdateType.TP_HIT)]


@pytest.mark.parametrize(
    "text",
    ["BTC LONG 2024-05-12 65000 sl 64000 tp 66000", "#BTC LONG 12.05.2024\nEntry 65000\nSL 64000\nTP 66000",
     "🕐 14:30 #BTC LONG 65000 SL 64000 TP 66000", "#BTC LONG\nEntry 65000 (12:30 UTC)\nSL 64000\nTP 66000"],
)
def test_dates_and_clock_times_are_never_prices(text: str) -> None:
    reading = only(text)
    assert (reading.entries, reading.stop_loss, reading.action) == ((D(65000),), D(64000), Action.TRADE)


def test_one_word_replies() -> None:
    for text in ("BE", "#BTC BE", "SL BE", "БУ", "保本"):
        assert kinds(text, BTC_LONG) == [(Kind.UPDATE, UpdateType.MOVE_SL_TO_BE)], text
    for text in ("ETH 止盈", "TP"):  # take profit, but how much? the user decides
        (reading,) = parse_text(text, BTC_LONG)
        assert reading.kind is Kind.UPDATE and reading.action is Action.NOTIFY_ONLY
    assert kinds("be", BTC_LONG) == [(Kind.NOISE, None)]


def test_long_term_and_short_squeeze_give_no_direction() -> None:
    assert kinds("ETH long-term target 10000") == [(Kind.NOISE, None)]
    assert kinds("Big short squeeze incoming on #BTC 70000") == [(Kind.NOISE, None)]


def test_an_entry_rationale_without_coin_or_prices_is_an_entry_not_its_management_words() -> None:
    (reading,) = parse_text("空单入场理由\n入场做空\n第一止盈位附近移动止损至成本价")
    assert (reading.kind, reading.action, reading.side) == (Kind.ENTRY, Action.NOTIFY_ONLY, Side.SHORT)


def test_a_ticker_right_after_a_direction_in_capitals() -> None:
    assert only("LONG BTC\nEntry 65000\nSL 64000\nTP 66000").symbol == "BTCUSDT"
    assert only("BUY TONNEL\nEntry: NOW\nDCA: 2.7-1.5").kind is Kind.ENTRY  # "DCA:" labels a plan, adds nothing


def test_notes_under_targets_and_disclaimer_tags_are_not_read() -> None:
    inj = only("$INJ\nLONG 🟢\nEntry: 24.5 - 23.8\nSL: 22.9\nTP: 25.5 - 26.8 - 28.5\n(Use 5-10x)")
    assert inj.take_profits == (D("25.5"), D("26.8"), D("28.5")) and inj.action is Action.TRADE
    sol = only("🔥 SCALP SHORT $SOL\nEntry: 142.50\nTP1: 141.00 | TP2: 139.50\nSL: 144.00\nLev: 20x\n#NFA")
    assert sol.symbol == "SOLUSDT" and sol.action is Action.TRADE and sol.leverage == 20
    assert kinds("We took a long on #BTC") == [(Kind.NOISE, None)]  # opened, not closed


def test_traditional_chinese_updates() -> None:
    assert [(r.update_type, r.tp_index) for r in parse_text("比特幣止盈1已達，止損移至開倉價")] == [
        (UpdateType.TP_HIT, 1), (UpdateType.MOVE_SL_TO_BE, None)]
    assert kinds("#ETH 保本出場") == [(Kind.CLOSE, UpdateType.CLOSE_ALL)]
    assert kinds("以太 取消掛單") == [(Kind.CANCEL, UpdateType.CANCEL_ENTRIES)]
    assert only("大餅 減倉50%").update_percent == D(50)


@pytest.mark.parametrize(
    "text",
    ["Aggressive traders could short #BTC near 65000, I'm watching", "激进的可以在6.5万附近做空，个人会再观察",
     "#ETH можно лонг от 3000, смотрим", "#BTCUSDT potential SHORT\nLast price: 67847.16"],
)
def test_a_suggestion_without_stop_or_targets_is_commentary(text: str) -> None:
    assert kinds(text) == [(Kind.NOISE, None)]


def test_a_plain_entry_without_stop_is_still_an_entry() -> None:
    reading = only("#BTC LONG 65000")
    assert reading.kind is Kind.ENTRY and reading.stop_missing


@pytest.mark.parametrize(
    ("text", "expected"),
    [("BTC 进场了", (Kind.UPDATE, UpdateType.ENTRY_FILLED)),
     ("SOL 多单 第二止盈到位", (Kind.UPDATE, UpdateType.TP_HIT)),
     ("ETH 止损打掉了", (Kind.CLOSE, UpdateType.CLOSE_ALL)),
     ("BTC 空单 现价64500可以先出一半", (Kind.UPDATE, UpdateType.CLOSE_PARTIAL)),
     ("姨太多单继续持有，止损拉到成本价", (Kind.UPDATE, UpdateType.MOVE_SL_TO_BE))],
)
def test_chinese_prose_updates(text: str, expected: tuple[Kind, UpdateType]) -> None:
    assert kinds(text) == [expected], parse_text(text)


@pytest.mark.parametrize(
    "text",
    ["#ETH 4H close below 3000 = exit", "If BTC loses 60000, close longs", "Move SL to BE when TP1 hits",
     "如果跌破63000就平仓", "Если закрепимся ниже 3000, закрываем #ETH"],
)
def test_an_instruction_on_a_condition_is_not_applied(text: str) -> None:
    readings = parse_text(text)
    assert readings and all(r.action is not Action.TRADE for r in readings), readings


def test_a_candle_close_is_no_close_instruction() -> None:
    assert all(r.update_type is not UpdateType.CLOSE_ALL
               for r in parse_text("A daily close above 70000 on #BTC would be bullish"))


def test_cancelling_targets_or_the_stop_is_no_cancel_of_the_entries() -> None:
    for text in ("Cancel stop loss #BTC", "cancel the TP orders", "取消止盈"):
        (reading,) = parse_text(text)
        assert (reading.kind, reading.action) == (Kind.UPDATE, Action.NOTIFY_ONLY), text
    assert kinds("Cancel remaining limit orders #ETH") == [(Kind.CANCEL, UpdateType.CANCEL_ENTRIES)]


def test_turkish_and_vietnamese_prose_updates() -> None:
    assert kinds("#XRP hedefler tamamlandı ✅") == [(Kind.CLOSE, UpdateType.CLOSE_ALL)]
    assert only("Pozisyonun yarısını kapatın #SOL").update_percent == D(50)
    assert kinds("Dời SL về giá vào lệnh #ETH") == [(Kind.UPDATE, UpdateType.MOVE_SL_TO_BE)]
    assert kinds("Lệnh #BNB đã khớp") == [(Kind.UPDATE, UpdateType.ENTRY_FILLED)]
