"""Normalization before reading: one plain form of the many ways a channel writes the same signal.

``normalize(text)`` returns text where
- Unicode is NFKC (full-width digits, letters and punctuation, and the "fancy font" mathematical and circled letters
  become ASCII; "，" keeps a space after it so it still separates fields); squared letters ("🅻🅾🅽🅶") too;
- Persian and Arabic-Indic digits are ASCII digits ("٫" is a decimal point, "٬" a thousands separator);
- zero-width characters, direction marks and soft hyphens are gone;
- markdown emphasis (``**``, ``__``, ``~~``, backticks) is gone;
- a ticker written with Cyrillic or Greek look-alike letters ("ВТС" inside "#ВТСUSDT") is Latin;
- numbers have one form: thousands separators removed and a decimal comma turned into a point, decided per message
  from the other prices (a message with "9,39" writes decimals with a comma, so its "9,550" is 9.55; a message whose
  every comma is followed by three digits, "4,418", writes thousands);
- a percentage written sign first (Turkish "%50") is written "50%";
- Chinese numerals in "第一" and multipliers are expanded: "6万2" = 62000, "6.7万" = 67000, "112,5k" = 112500.
Nothing is guessed beyond that: a number that stays ambiguous is left as written for the number reader.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad\u180e]")
_MARKDOWN = re.compile(r"\*\*|__|~~|`+")
_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
# squared and negative circled/squared capitals ("🅻🅾🅽🅶"), which NFKC leaves alone: the plain letters
_ENCLOSED = {base + offset: chr(ord("A") + offset) for base in (0x1F130, 0x1F150, 0x1F170) for offset in range(26)}

# Cyrillic and Greek capitals (and a few small letters) that look like Latin ones.
_LOOKALIKE = str.maketrans(
    "АВСЕНІЈКМОРЅТХУаеорсухіјѕΑΒΕΖΗΙΚΜΝΟΡΤΥΧο",
    "ABCEHIJKMOPSTXYaeopcyxijsABEZHIKMNOPTYXo",
)
_LOOKALIKE_CHARS = set("АВСЕНІЈКМОРЅТХУаеорсухіјѕΑΒΕΖΗΙΚΜΝΟΡΤΥΧο")
# only tokens where a Latin letter touches a Cyrillic/Greek one, or a tag of Cyrillic/Greek capitals, are candidates
_MIXED_TOKEN = re.compile(
    r"[#$]?[0-9A-Za-z\u0370-\u03ff\u0400-\u04ff]*(?:[A-Za-z][\u0370-\u03ff\u0400-\u04ff]|[\u0370-\u03ff\u0400-\u04ff]"
    r"[A-Za-z])[0-9A-Za-z\u0370-\u03ff\u0400-\u04ff]*|[#$][\u0370-\u03ff\u0400-\u04ff]+"
)

_CN_DIGIT = {"零": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
             "九": 9, "十": 10}
_ORDINAL = re.compile(r"第([一二三四五六七八九十])")
_CN_WAN = re.compile(r"(?<![\d.])([一二两兩三四五六七八九])万")
_WAN = re.compile(r"(?<![\d.,])(\d+(?:\.\d+)?)\s*[万萬](?:([1-9])(?![\d.万萬千]))?")
_PERCENT_FIRST = re.compile(r"(?<![\d.,%])%\s?(\d{1,3}(?:[.,]\d+)?)(?![\d%])")  # Turkish "%50" is 50 %
_KILO = re.compile(r"(?<![\d.,\w])(\d{1,4}(?:[.,]\d{1,3})?)[kK](?![A-Za-z\d])")

# Evidence of a decimal comma: "0,125", "9,39", "1,5", "0,02104" (not three digits after a 1-3 digit integer).
_DECIMAL_COMMA = re.compile(r"(?<![\d.,])(?:0,\d+|[1-9]\d{0,2},(?:\d{1,2}|\d{4,}))(?![\d.,])")
_THOUSANDS_MIXED = re.compile(r"(?<![\d.,])[1-9]\d{0,2}(?:,\d{3})+\.\d+(?![\d.,])")
_COMMA_NUMBER = re.compile(r"(?<![\d.,])\d+,\d+(?![\d,])")
_GROUPED = re.compile(r"(?<![\d.,])[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?(?![\d,])")


_SPACE_GROUP_EVIDENCE = re.compile(r"(?<![\d.,])[1-9]\d{0,2}(?: \d{3})* 0\d{2}(?![\d])")
_SPACE_GROUPED = re.compile(r"(?<![\d.,])[1-9]\d{0,2}(?: \d{3})+(?![\d])")


def _lookalikes(text: str) -> str:
    if not any(char in _LOOKALIKE_CHARS for char in text):
        return text

    def fix(match: re.Match[str]) -> str:
        token = match.group(0)
        letters = [c for c in token if c.isalpha()]
        latin = sum(1 for c in letters if c.isascii())
        confusable = sum(1 for c in letters if c in _LOOKALIKE_CHARS)
        other = len(letters) - latin - confusable
        # mixed with Latin ("BТС", "ВТСUSDT"), or a tagged all-capital look-alike ticker ("#ВТС")
        tagged_caps = token[0] in "#$" and letters and all(c.isupper() for c in letters) and other == 0
        if other == 0 and confusable and (latin or tagged_caps):
            return token.translate(_LOOKALIKE)
        return token

    return _MIXED_TOKEN.sub(fix, text)


def _wan(match: re.Match[str]) -> str:
    try:
        value = Decimal(match.group(1)) * 10000
    except InvalidOperation:
        return match.group(0)
    if match.group(2):
        value += Decimal(match.group(2)) * 1000
    return _plain(value)


def _kilo(match: re.Match[str]) -> str:
    raw = match.group(1).replace(",", ".")
    try:
        return _plain(Decimal(raw) * 1000)
    except InvalidOperation:
        return match.group(0)


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _numbers(text: str) -> str:
    """One number form per message: thousands separators out, a decimal comma in as a point."""
    if _SPACE_GROUP_EVIDENCE.search(text):
        # "65 000" (a group after a space that starts with 0 is no list item): this message groups thousands by
        # spaces, so its "64 500" is 64500 too
        text = _SPACE_GROUPED.sub(lambda m: re.sub(r"[ \u00a0]", "", m.group(0)), text)
    if "," not in text:
        return text
    decimal_comma = bool(_DECIMAL_COMMA.search(text)) and not _THOUSANDS_MIXED.search(text)
    if decimal_comma:
        return _COMMA_NUMBER.sub(lambda m: m.group(0).replace(",", "."), text)
    return _GROUPED.sub(lambda m: m.group(0).replace(",", ""), text)


# Scripts and letters of languages that write a decimal comma (Russian, Turkish, Vietnamese, Spanish, Portuguese,
# Indonesian): there "1,875" alone may well be 1.875. Not IGNORECASE: "ı" would match every "i".
_DECIMAL_COMMA_LOCALE = re.compile(r"[А-Яа-яЁёğışİĞŞñÑçÇãõÃÕáéíóúÁÉÍÓÚăâđêôơưĂÂĐÊÔƠƯ]")
AMBIGUOUS_COMMA = "a comma in the prices may be a decimal comma or a thousands separator"


def comma_is_ambiguous(text: str) -> bool:
    """Prices like "1,875" with nothing else in the message deciding the comma, in a decimal-comma language."""
    text = unicodedata.normalize("NFKC", text)
    return bool(
        _GROUPED.search(text)
        and not _DECIMAL_COMMA.search(text)
        and not _THOUSANDS_MIXED.search(text)
        and _DECIMAL_COMMA_LOCALE.search(text)
    )


def normalize(text: str) -> str:
    text = _INVISIBLE.sub("", text)
    text = text.replace("，", ", ").replace("、", ", ")
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(_DIGITS).translate(_ENCLOSED).replace("٫", ".").replace("٬", ",")
    text = _MARKDOWN.sub("", text)
    text = _lookalikes(text)
    text = _PERCENT_FIRST.sub(r"\1%", text)
    text = _ORDINAL.sub(lambda m: "第" + str(_CN_DIGIT[m.group(1)]), text)
    text = _CN_WAN.sub(lambda m: str(_CN_DIGIT[m.group(1)]) + "万", text)
    # "112,5k" carries its own decimal comma: expand multipliers before the per-message comma decision
    text = _KILO.sub(_kilo, text)
    text = _numbers(text)
    return _WAN.sub(_wan, text)
