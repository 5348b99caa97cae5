"""Price-like numbers in signal text: comma decimals, space thousands, ``$`` signs, scrubbing of ids.

Numbers are read as written and never repaired: a value that does not parse cleanly is not a price.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# A number token: not glued to a Latin/Cyrillic letter or another digit on either side (so hex ids,
# "30m" timeframes and "BTC2" stay out), with "." or "," as decimal mark, or groups of three digits
# separated by "," / thin spaces as thousands (only when a decimal part follows for spaces, to keep
# "TP 100 200" a list).
_LETTER = r"A-Za-zА-Яа-яЁё"
NUMBER = re.compile(
    rf"(?<![{_LETTER}\d.])"
    r"(?P<num>"
    r"[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?"  # 62,000 / 1,234.5
    r"|[1-9]\d{0,2}(?:[ \u202f\u2009]\d{3})+[.,]\d+"  # 64 012.30
    r"|0\.\s\d+"  # a broken "0. 0745"
    r"|\d+(?:[.,]\d+)?"
    r")"
    rf"(?![{_LETTER}\d])"
)
# "5-10%" (no spaces) is one percentage range; "0.2524 - 25%" is a price then a share
PERCENT = re.compile(r"(?<![\d.,])(\d+(?:[.,]\d+)?)(?:[-–]\d+(?:[.,]\d+)?)?\s*%")
LEVERAGE = re.compile(
    rf"(?:(?<![{_LETTER}])[xхX×]\s*(\d{{1,3}}(?:\.0+)?)(?![\d.]))"
    rf"|(?:(?<![\d.])(\d{{1,3}}(?:\.0+)?)\s*-?\s*[xхX×](?![{_LETTER}]))"
    r"|(?:(\d{1,3})\s*倍)"
)
_CONTACT = re.compile(
    r"(?i)(?:qq|tel|phone|wechat|whatsapp|微信|电话|電話|uid|id|vx|v信|tg|line|群|客服|联系|聯繫)\s*[:：#]?\s*\+?\d[\d\s-]{4,}\d"
    r"|\+\d[\d\s-]{7,}\d"
)
_URL = re.compile(r"(?i)\b(?:https?://|www\.|t\.me/)\S+")
_MENTION = re.compile(r"@\w+")
_LONG_INTEGER = re.compile(r"(?<![\d.,])\d{7,}(?![\d.,])")
# dates and clock times: "2024-05-12", "12.05.2024", "12/05/24", "14:30", "14:30:05 UTC" (a price has one dot)
_DATE_TIME = re.compile(
    r"(?<![\w.])(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./]\d{1,2}[./]\d{2,4}|\d{1,2}:\d{2}(?::\d{2})?)(?![\w.]|:\d)"
)


def to_decimal(raw: str) -> Decimal | None:
    """Read one number token (as matched by ``NUMBER``) into a Decimal, or None."""
    text = raw.strip().replace("\u202f", " ").replace("\u2009", " ")
    if re.fullmatch(r"0\.\s\d+", text):
        text = text.replace(" ", "")
    elif re.fullmatch(r"[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?", text):
        text = text.replace(",", "")
    elif " " in text:
        text = text.replace(" ", "").replace(",", ".")
    else:
        text = text.replace(",", ".")
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def find_numbers(text: str) -> list[Decimal]:
    numbers: list[Decimal] = []
    for match in NUMBER.finditer(text):
        value = to_decimal(match.group("num"))
        if value is not None:
            numbers.append(value)
    return numbers


def scrub(text: str) -> str:
    """Remove what must never become a price: urls, mentions, contact numbers, dates and times, long ids."""
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    text = _CONTACT.sub(" ", text)
    text = _DATE_TIME.sub(" ", text)
    return _LONG_INTEGER.sub(" ", text)


def split_percentages(text: str) -> tuple[str, list[Decimal]]:
    """Text without ``N%`` tokens, and those percentages in order."""
    found: list[Decimal] = []

    def take(match: re.Match[str]) -> str:
        value = to_decimal(match.group(1))
        if value is not None:
            found.append(value)
        return " "

    return PERCENT.sub(take, text), found


def split_leverage(text: str) -> tuple[str, list[int]]:
    """Text without leverage tokens (``x20``, ``20x``, ``75х``, ``10倍``) and the levels found."""
    found: list[int] = []

    def take(match: re.Match[str]) -> str:
        raw = next(group for group in match.groups() if group)
        try:
            level = int(Decimal(raw))
        except InvalidOperation:
            return " "
        if 1 <= level <= 200:
            found.append(level)
        return " "

    return LEVERAGE.sub(take, text), found
