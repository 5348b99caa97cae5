"""Properties of the reader on mutated real messages: whatever is cut, swapped, retyped or inserted, a trade never has
its stop on the wrong side, a non-finite or non-positive price, or a coin the text does not name."""

from __future__ import annotations

import json
import unicodedata
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.devset_report import shared_fixture
from parsing.rules import parse_text
from parsing.rules.lexicon import NICKNAMES
from parsing.rules.normalize import normalize
from parsing.signals import Action, Kind, ParsedMessage, ReadingContext, Side

EXCERPT = Path(__file__).resolve().parent / "fixtures" / "signals" / "excerpt.jsonl"
OWN = [
    "#SOL LONG\nEntry: 142.5 - 140\nStop loss: 136\nTargets: 146 / 150 / 158\nLeverage: 10x",
    "#SOL Лонг\nВход: 142,5 - 140\nСтоп: 136\nЦели: 146 - 150 - 158",
    "SOL 做多\n入场：142.5-140\n止损：136\n目标：146/150/158",
    "#SOL MUA\nVùng vào lệnh: 142.5 - 140\nCắt lỗ: 136\nChốt lời: 146 - 150 - 158\nĐòn bẩy: x10",
    "#SOL لانگ\nورود: ۱۴۲٫۵ - ۱۴۰\nحد ضرر: ۱۳۶\nحد سود: ۱۴۶ - ۱۵۰",
    "#BTC SHORT\nEntry: 97,250\nSL: 98,100\nTP: 95,800 - 94,000",
    "ETH 1710市价直接空 再挂1788 止盈1673/1618 止损1850",
    "#LINK LONG\n1) 14.20 (50%)\n2) 13.90 (1/2)\nSL 13.40\nTP 15.10 - 16.00",
    "DOGE long giriş 0,125 hedef 0,130 - 0,135 stop 0,120 15x",
    "#BTCUSDT TP1 ✅ закрыть 50%", "比特币止盈1已到达，止损移至开仓价", "Move SL to 61250",
]


def _messages() -> list[str]:
    texts = list(OWN)
    for path in (EXCERPT, shared_fixture("signals-dev.jsonl"), shared_fixture("signals-dev-2.jsonl")):
        if path.exists():
            texts += [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line]
    return texts


MESSAGES = _messages()
INSERTS = ["LONG", "SHORT", "做空", "шорт", "SL 1", "TP 0.5", "Entry 100", "x125", "-", "\n", "#ETH", "$PEPE", "0",
           "1,5", "1.000,5", "6万", "12k", "%", "😀", "\u200b", "\u202e", "ЕТН", "**", "close", "iptal", "QQ:1234567"]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(MESSAGES))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["cut", "swap", "insert", "digit", "fullwidth", "case", "dup"]))
        size = len(text)
        at = draw(st.integers(0, size)) if size else 0
        if op == "cut" and size:
            text = text[:at] + text[at + draw(st.integers(1, 12)):]
        elif op == "swap":
            lines = text.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        elif op == "insert":
            text = text[:at] + draw(st.sampled_from(INSERTS)) + text[at:]
        elif op == "digit":
            digits = [k for k, c in enumerate(text) if c.isdigit()]
            if digits:
                k = draw(st.sampled_from(digits))
                text = text[:k] + draw(st.sampled_from("0123456789.,")) + text[k + 1:]
        elif op == "fullwidth":
            end = min(size, at + draw(st.integers(1, 20)))
            wide = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text[at:end])
            text = text[:at] + wide + text[end:]
        elif op == "case":
            text = text.lower() if draw(st.booleans()) else text.upper()
        elif op == "dup" and size:
            end = min(size, at + draw(st.integers(1, 30)))
            text = text[:at] + text[at:end] + text[at:]
    return text


def _named(symbol: str, text: str) -> bool:
    plain = normalize(unicodedata.normalize("NFKC", text))
    base = symbol.removesuffix("USDT")
    folded = plain.upper()
    nicknames = [name for name, coin in NICKNAMES.items() if coin == base] + (["XBT"] if base == "BTC" else [])
    return base in folded or any(name.upper() in folded for name in nicknames)


def _price_ok(value: Decimal | None) -> bool:
    return value is None or (value.is_finite() and value > 0)


def _check(text: str, readings: list[ParsedMessage]) -> None:
    assert readings
    assert not [w for r in readings for w in r.warnings if w.startswith("parser error")], text
    for reading in readings:
        if reading.action is not Action.TRADE:
            continue
        prices = [*reading.entries, *reading.take_profits, reading.stop_loss, reading.update_price]
        assert all(_price_ok(price) for price in prices), reading
        if reading.symbol is not None:
            assert _named(reading.symbol, text), (reading.symbol, text)
        if reading.kind is not Kind.ENTRY:
            continue
        assert reading.symbol and reading.side and reading.stop_loss is not None
        levels = reading.entries or reading.take_profits
        if reading.side is Side.LONG:
            assert all(reading.stop_loss < level for level in levels), (reading, text)
            assert all(target > max(reading.entries) for target in reading.take_profits if reading.entries)
        else:
            assert all(reading.stop_loss > level for level in levels), (reading, text)
            assert all(target < min(reading.entries) for target in reading.take_profits if reading.entries)
        if reading.leverage is not None:
            assert 1 <= reading.leverage <= 200


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(mutated())
def test_mutated_real_messages_never_trade_something_the_text_does_not_say(text: str) -> None:
    _check(text, parse_text(text))


def test_every_unmutated_message_holds_the_properties_too() -> None:
    for text in MESSAGES:
        _check(text, parse_text(text))


REPLY_TO = ReadingContext(symbol="ETHUSDT", side=Side.LONG, entries=(Decimal(3000),), stop_loss=Decimal(2900),
                          take_profits=(Decimal(3100), Decimal(3200)))


@PROPERTY
@given(mutated())
def test_read_as_a_reply_too_a_mutated_message_never_trades_what_it_does_not_say(text: str) -> None:
    _check(text, parse_text(text, REPLY_TO))
