"""Keyword patterns for labels, directions and update intents, built from the per-language lexicon.

All patterns are compiled once at import: the parser runs them on every post.
"""

from __future__ import annotations

import re

from parsing.rules import lexicon

_I = re.IGNORECASE

# ---- field labels, longest alternatives first so "Take-Profit Targets" never reads as "Targets" ------
# The hand-written forms come first (they take a number glued to the label: "TP1", "тп2"); every language's label
# words from the lexicon follow, so a new language is a lexicon edit.


def _words(category: str, exclude: tuple[str, ...] = ()) -> str:
    return lexicon.alternation(word for word in lexicon.words(category) if word not in exclude)


LABEL = re.compile(
    r"(?<![A-Za-zА-Яа-яЁё])(?:(?P<tp>take[\s\-]*profits?(?:\s*targets?)?(?:\s*\d{1,2}(?![\d.,]))?|selling\s+targets?"
    r"|tp\s*\d{0,2}(?![\d.,])|targets?\s*\d{0,2}(?![\d.,])|тп\s*\d{0,2}(?![\d.,])|тейк[а-я]*\s*\d{0,2}(?![\d.,])"
    r"|цел[ьи]\s*\d{0,2}(?![\d.,])|hedef\s*\d{0,2}(?![\d.,])|止盈|目标|目標|止盈位|" + _words("target") + ")"
    r"|(?P<sl>stop[\s\-]*loss|stoploss|stop\s*targets?|stop|sl(?![a-z])|стоп[\s\-]*лосс|стоп|止损|止損|zarar\s*kes|"
    + _words("stop") + ")"
    r"|(?P<entry>entry\s*(?:zone|targets?|orders?|price|points?)?(?:\s*#?[1-9]\s*(?=[:)]))?|2nd\s+entry|entries|buy\s+(?:around|at|zone)"
    r"|open\s+(?:long|short)\s+for\s+the\s+price\s+between|вход|точка\s+входа|giriş|入场|进场|入場|開倉|开仓|"
    + _words("entry") + ")"
    r"|(?P<lev>leverage|lev(?![a-z])|плечо|kaldıraç|杠杆|槓桿|" + _words("leverage") + "))",
    _I,
)
_LONG_WORDS = r"(?<![A-Za-z])(?:long|buy)(?![A-Za-z])|лонг|做多|开多|開多|多单|多單|(?<![一-龥])多(?![一-龥])|"
_SHORT_WORDS = r"(?<![A-Za-z])(?:short|sell)(?![A-Za-z])|шорт|做空|开空|開空|空单|空單|市價空|市价空|(?<=\d)空|"
DIRECTION_LONG = re.compile(_LONG_WORDS + "🟢|" + _words("long"), _I)
DIRECTION_SHORT = re.compile(_SHORT_WORDS + "🔴|" + _words("short"), _I)
# Directions in words only: a coloured circle decorates labels too ("🟢 TP", "🔴 SL"), so it counts only when no
# word gives the direction (see parser._sides)
WORD_LONG = re.compile(_LONG_WORDS + _words("long"), _I)
WORD_SHORT = re.compile(_SHORT_WORDS + _words("short"), _I)
MARKET = re.compile(
    r"(?<![A-Za-z])(?:market\s+(?:price|entry|order)|at\s+market|cmp|current\s+price)(?![A-Za-z])"
    r"|(?<![A-Za-z])(?:entry|enter|entries)\s*[:：\-]?\s*(?:market|now)(?![A-Za-z])"
    r"|(?<![A-Za-z])market\s*[:：@]?\s*(?=\d)"
    r"|по\s+рынку|с\s+текущих|текущая\s+цена|现价|現價|市价|市價|piyasa|"
    + _words("market", exclude=("market", "now")),
    _I,
)
TRAILING_SECTION = re.compile(r"(?im)^.*trailing\s+configuration.*$")
ENUMERATOR = re.compile(r"^\s*(?:\d{1,2}\s*[).]\s+|[-•*➖▪️]+\s*)")
KEYCAP = re.compile(r"\d\ufe0f?\u20e3")
FILLER = re.compile(r"(?i)close\s+the\s+(?:order|position)\s+at\s+the\s+price|null|take|profit")
MARGIN_CROSS = re.compile(r"(?i)\bcross(?:ed)?\b|кросс|全仓|全倉")
MARGIN_ISOLATED = re.compile(r"(?i)\bisolated\b|изолир|逐仓|逐倉")
LETTERS = re.compile(r"[A-Za-zА-Яа-яЁё\u4e00-\u9fff]")

# ---- noise first: ads and admin posts that quote signal words --------------------------------------
NOISE = re.compile(
    r"会员|欢迎加入|#админ|join\s+(?:premium|vip|our)|dm\s+now|market\s+analysis|analysis\s*:"
    r"|new\s+pair\s+at",
    _I,
)

# ---- update phrases kept from the first reader (the lexicon words in updates.py do the rest) ----------
ALL_TARGETS = re.compile(r"(?i)all\s+(?:take[\s\-]*profit\s+)?targets\s+achieved|все\s+цели\s+(?:взяты|достигнуты)")
STOP_HIT = re.compile(
    r"(?i)stop\s*target\s+hit|stop[\s\-]*loss\s*(?:hit|⛔)|stoploss\s*⛔|hit\s+(?:the\s+)?stop[\s\-]*loss"
    r"|closed\s+at\s+(?:trailing\s+)?stop[\s\-]*loss|стоп\s+(?:выбило|сработал)|止损出局|止損出局"
)
CLOSED_STRONG = re.compile(
    r"(?i)closed\s+due\s+to\s+opposite|closed\s+manually|manually\s+closed|close\s+(?:all|full|everything)"
    r"|закр(?:ыть|ойте|ываю|ыл)[^.\n]{0,30}вс[её]|все\s+позиции|全部平仓|全部平倉|全平|止盈掉"
)
ENTRY_FILLED = re.compile(
    r"(?i)entry\s*\d{1,2}\s*✅|average\s+entry\s+price|all\s+entr(?:y|ies)\s+(?:targets\s+)?achieved"
    r"|entered\s+entry\s+zone|entry\s+filled|вход\s+исполнен"
)
ENTRY_REVISION = re.compile(r"(?i)入场改为|entry\s+(?:changed|updated|revised)\s+to|вход\s+изменен")
