"""Signals composed from each language's lexicon words in several layouts: every one is traded exactly as written.

This checks the mechanism rather than any message: labels, directions and numbers of every language, in block,
inline and piped layouts, long and short, with coins of several price scales.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from parsing.rules import parse_text
from parsing.rules.lexicon import LEXICON
from parsing.signals import Action, Kind, Side, UpdateType

D = Decimal
COINS = [("BTC", D("64250"), D("1000")), ("SOL", D("142.35"), D("3")), ("PEPE", D("0.00001234"), D("0.0000003")),
         ("ARB", D("0.8123"), D("0.02"))]
LAYOUTS = {
    "block": "#{coin} {side}\n{entry}: {e1} - {e2}\n{stop}: {sl}\n{target}: {t1} / {t2}",
    "inline": "#{coin} {side} {entry} {e1}-{e2} {stop} {sl} {target} {t1} {t2}",
    "piped": "{coin}/USDT {side} | {entry}: {e1} - {e2} | {target}: {t1} - {t2} | {stop}: {sl}",
    "lines": "{side} #{coin}\n\n{entry}:\n{e1}\n{e2}\n\n{target}:\n1) {t1}\n2) {t2}\n\n{stop}:\n{sl}",
}
WORD = {
    code: {category: words[category][0] for category in ("entry", "stop", "target", "long", "short")}
    for code, words in LEXICON.items()
}


def _cases() -> list[tuple[str, str, str, bool]]:
    return [(code, layout, coin, long) for code in LEXICON for layout in LAYOUTS for coin, _, _ in COINS
            for long in (True, False)]


@pytest.mark.parametrize(("code", "layout", "coin", "long"), _cases())
def test_a_composed_signal_is_traded_exactly(code: str, layout: str, coin: str, long: bool) -> None:
    _, price, step = next(c for c in COINS if c[0] == coin)
    sign = 1 if long else -1
    e1, e2 = price, price - sign * step
    sl = e2 - sign * 2 * step
    t1, t2 = price + sign * 2 * step, price + sign * 4 * step
    words = WORD[code]
    text = LAYOUTS[layout].format(coin=coin, side=words["long" if long else "short"], entry=words["entry"],
                                  stop=words["stop"], target=words["target"], e1=e1, e2=e2, sl=sl, t1=t1, t2=t2)
    readings = parse_text(text)
    assert len(readings) == 1, (text, readings)
    reading = readings[0]
    assert reading.action is Action.TRADE, (text, reading.warnings)
    assert (reading.symbol, reading.side) == (coin + "USDT", Side.LONG if long else Side.SHORT), text
    assert (reading.entries, reading.stop_loss, reading.take_profits) == ((e1, e2), sl, (t1, t2)), text


COMMA_LANGUAGES = ("ru", "tr", "vi", "es", "pt", "id")
PERSIAN_DIGITS = str.maketrans("0123456789.", "۰۱۲۳۴۵۶۷۸۹٫")
ARABIC_DIGITS = str.maketrans("0123456789.", "٠١٢٣٤٥٦٧٨٩٫")


@pytest.mark.parametrize(("code", "coin"), [(code, coin) for code in (*COMMA_LANGUAGES, "fa", "ar")
                                            for coin in ("SOL", "PEPE", "ARB")])
def test_local_number_forms_read_the_same(code: str, coin: str) -> None:
    _, price, step = next(c for c in COINS if c[0] == coin)
    words = WORD[code]
    e1, sl, t1 = price, price - 3 * step, price + 2 * step
    text = f"#{coin} {words['long']}\n{words['entry']}: {e1}\n{words['stop']}: {sl}\n{words['target']}: {t1}"
    table = PERSIAN_DIGITS if code == "fa" else ARABIC_DIGITS if code == "ar" else str.maketrans(".", ",")
    head, body = text.split("\n", 1)
    (reading,) = parse_text(head + "\n" + body.translate(table))
    assert reading.action is Action.TRADE, (text, reading.warnings)
    assert (reading.entries, reading.stop_loss, reading.take_profits) == ((e1,), sl, (t1,))


UPDATE_WORDS = {
    code: {category: words[category][0] for category in ("close", "cancel", "target", "tp_hit", "stop", "breakeven")}
    for code, words in LEXICON.items()
}


@pytest.mark.parametrize("code", list(LEXICON))
@pytest.mark.parametrize("coin", ["#SOL", "SOL", ""])
def test_composed_updates_in_every_language(code: str, coin: str) -> None:
    words = UPDATE_WORDS[code]
    symbol = "SOLUSDT" if coin else None
    (close,) = parse_text(f"{coin} {words['close']}".strip())
    assert (close.kind, close.update_type, close.symbol, close.action) == (
        Kind.CLOSE, UpdateType.CLOSE_ALL, symbol, Action.TRADE)
    (cancel,) = parse_text(f"{coin} {words['cancel']}".strip())
    assert (cancel.kind, cancel.symbol) == (Kind.CANCEL, symbol)
    (hit,) = parse_text(f"{coin} {words['target']} 2 {words['tp_hit']} ✅".strip())
    assert (hit.update_type, hit.tp_index, hit.symbol) == (UpdateType.TP_HIT, 2, symbol)
    (be,) = parse_text(f"{coin} {words['stop']} {words['breakeven']}".strip())
    assert (be.update_type, be.symbol, be.action) == (UpdateType.MOVE_SL_TO_BE, symbol, Action.TRADE)
