"""The lexicon is data every language shares the same shape of, and normalization gives one plain form."""

from __future__ import annotations

from pathlib import Path

import pytest

from parsing.rules.lexicon import CATEGORIES, LANGUAGES, LEXICON, guess_language, pattern, readme_table
from parsing.rules.normalize import normalize

README = Path(__file__).resolve().parents[1] / "README.md"
CORE = ("entry", "stop", "target", "leverage", "long", "short", "market", "close", "cancel", "breakeven")


def test_readme_lists_the_languages_and_words_of_the_lexicon() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- lexicon-table:start -->") + len("<!-- lexicon-table:start -->\n")
    end = text.index("<!-- lexicon-table:end -->")
    assert text[start:end].strip() == readme_table(), "regenerate with python -m parsing.rules.lexicon --readme"


def test_every_language_has_its_core_words() -> None:
    assert set(LEXICON) == set(LANGUAGES)
    for code, entry in LEXICON.items():
        assert set(entry) <= set(CATEGORIES), code
        missing = [category for category in CORE if not entry.get(category)]
        assert not missing, f"{code} lacks {missing}"


@pytest.mark.parametrize(
    ("category", "text"),
    [
        ("close", "Đóng lệnh #SOL"), ("close", "#AVAX pozisyonu kapat"), ("close", "Закрываем #BTC"),
        ("close", "SOL 平仓"), ("close", "Cerramos la operación"), ("close", "Fechamos o BTC"),
        ("close", "إغلاق صفقة BTC"), ("close", "Tutup posisi ETH"), ("close", "BTC 청산"),
        ("cancel", "Signal no longer valid"), ("cancel", "iptal"), ("cancel", "Hủy lệnh ETH"),
        ("cancel", "Отменяем вход"), ("cancel", "撤单"), ("cancel", "سیگنال لغو شد"), ("cancel", "진입 취소"),
        ("breakeven", "стоп в БУ"), ("entry_price", "止损移到成本价"), ("breakeven", "做好成本保护"),
        ("breakeven", "SL ke titik impas"),
        ("stop", "Cắt lỗ: 100"), ("stop", "Zarar durdur 0.6"), ("stop", "손절가 95"), ("stop", "حد ضرر"),
        ("target", "Chốt lời 120"), ("target", "Alvo 1"), ("target", "목표가 130"), ("leverage", "Đòn bẩy x10"),
    ],
)
def test_lexicon_words_are_found_in_running_text(category: str, text: str) -> None:
    assert pattern(category).search(normalize(text)), (category, text)


def test_latin_words_never_match_inside_another_word() -> None:
    assert not pattern("stop").search("slow market, sleep well")
    assert not pattern("close").search("enclosed disclosure")


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("ＢＴＣ　ＬＯＮＧ　６５０００", "BTC LONG 65000"),  # full width
        ("𝐋𝐎𝐍𝐆 #𝐁𝐓𝐂 𝟔𝟓𝟎𝟎𝟎", "LONG #BTC 65000"),  # mathematical bold
        ("🅻🅾🅽🅶 Ⓢⓞⓛ", "LONG Sol"),  # squared and circled letters
        ("ورود: ۴۳۲۵۰٫۵", "ورود: 43250.5"),  # Persian digits and decimal mark
        ("سعر الدخول ١٢٣٫٤", "سعر الدخول 123.4"),  # Arabic-Indic digits
        ("#ВТС/USDT", "#BTC/USDT"),  # Cyrillic look-alikes in a Latin ticker
        ("#ЕТН", "#ETH"),  # an all look-alike tagged ticker
        ("Стоп 100", "Стоп 100"),  # a Russian word stays Russian
        ("SL:\u200b 1\u200e00", "SL: 100"),  # zero-width and direction marks
        ("**Entry:** 627.06", "Entry: 627.06"),  # markdown emphasis
        ("Entry 4,418 SL 4,309", "Entry 4418 SL 4309"),  # every comma before three digits: thousands
        ("Вход 9,39 тейк 9,550", "Вход 9.39 тейк 9.550"),  # another price has a decimal comma
        ("giriş 0,125 hedef 0,130", "giriş 0.125 hedef 0.130"),
        ("entry 43,250.0", "entry 43250.0"),
        ("背靠6万2阻力区", "背靠62000阻力区"), ("在6.7万空", "在67000空"), ("三万", "30000"),
        ("giriş 112,5k stop 110k", "giriş 112500 stop 110000"),
        ("第一止盈位已到", "第1止盈位已到"),
        ("止损1945，止盈1900", "止损1945, 止盈1900"),
    ],
)
def test_normalization(raw: str, plain: str) -> None:
    assert normalize(raw) == plain


def test_language_guess_by_script_and_words() -> None:
    assert guess_language("比特币 做多") == "zh"
    assert guess_language("Закрываем BTC") == "ru"
    assert guess_language("Đóng lệnh SOL") == "vi"
    assert guess_language("سیگنال جدید") == "fa"
    assert guess_language("Cerramos la posición") == "es"
    assert guess_language("Close SOL now") == "en"
