"""Coin names in signal text -> Bitget USDT-M contract names (``BTCUSDT``)."""

from __future__ import annotations

import re

from parsing.rules.lexicon import BARE_COINS, LEXICON, NICKNAMES, alternation

# Coin nicknames (lexicon.NICKNAMES: 大饼, 以太, биткоин, bitcoin ...) and XBT.
_ALIASES: dict[str, str] = {**{name.lower(): coin for name, coin in NICKNAMES.items()}, "xbt": "BTC"}
_BASE_RENAMES = {"XBT": "BTC"}
_USD_QUOTES = ("USDT", "USDC", "BUSD", "USD")
_OTHER_QUOTES = ("BTC", "ETH", "BNB", "EUR", "TRY", "RUB")
# Words that follow '#' or '$' but are not coins.
STOPWORDS = frozenset(
    {
        "SIGNAL", "SIGNALS", "LONG", "SHORT", "BUY", "SELL", "SPOT", "VIP", "FUTURES", "FUTURE", "TP", "SL",
        "NEW", "UPDATE", "ENTRY", "TARGET", "TARGETS", "STOP", "PUMP", "ALERT", "TRADE", "SCALP", "SETUP",
        "BINANCE", "BYBIT", "BITGET", "OKX", "USDT", "USD", "CROSS", "ISOLATED", "LEVERAGE", "FREE",
        "PREMIUM", "NEWS", "ANALYSIS", "RESULT", "RESULTS", "PROFIT", "LOSS", "AND", "THE", "FOR",
        # hashtags channels put beside the coin: styles, exchanges, labels
        "SWING", "SCALPING", "INTRADAY", "DAYTRADE", "MIDTERM", "SHORTTERM", "LONGTERM", "BREAKOUT", "ALTCOIN",
        "ALTCOINS", "CRYPTO", "TRADING", "TA", "HODL", "GEM", "HIDDENGEM", "RISK", "LOWRISK", "HIGHRISK",
        "MEDIUMRISK", "KUCOIN", "MEXC", "GATEIO", "HTX", "HUOBI", "BINGX", "BITMEX", "DERIBIT", "KRAKEN", "COINBASE",
        "STRONGSIGNAL", "SENTIMENT", "WEEKLY", "DAILY", "REPORT", "PAID", "USDC", "PERP", "PERPETUAL", "LEVERAGED",
        "STOPLOSS", "TAKEPROFIT", "CLOSED", "CANCELLED", "CANCELED", "REMINDER", "WARNING", "NOTICE",
        "NFA", "DYOR", "FOMO", "FUD", "ATH", "ATL", "PNL", "ROI",
    }
)

_PAIR = re.compile(
    r"(?<![A-Za-z0-9])[#$]?\s?([A-Za-z0-9]{1,15})\s*/\s*(USDT|USDC|BUSD|USD|BTC|ETH|BNB|EUR|TRY|RUB)"
    r"(?:\.P|\s*PERP)?(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_GLUED = re.compile(
    r"(?<![A-Za-z0-9])[#$]?([A-Za-z0-9]{1,15}?)(USDT|USDC|USD)(?:\.P|PERP)?(?![A-Za-z0-9])", re.IGNORECASE
)
_TAGGED = re.compile(r"(?<![A-Za-z0-9])[#$]((?:1000|10000|1000000|1M)?[A-Za-z][A-Za-z0-9]{0,14})(?![A-Za-z0-9_])")
_LABELLED = re.compile(
    r"(?i)\b(?:pair|coin|symbol|монета|пара|coin name)\s*[:：\-]?\s*[#$]?([A-Za-z0-9]{1,15})(?![A-Za-z0-9])"
)
_SIDE_WORDS = sorted({w for entry in LEXICON.values() for c in ("long", "short") for w in entry.get(c, ())
                      if re.fullmatch(r"[^\W\d_]+", w) and not re.search(r"[\u0600-\u06ff\uac00-\ud7af]", w)},
                     key=len, reverse=True)
_BESIDE_SIDE = re.compile(
    r"(?<![A-Za-z0-9#$])((?:1000|10000|1000000|1M)?[A-Z][A-Z0-9]{1,14})\s+(?:UPDATE|Update|(?i:"
    + "|".join(map(re.escape, _SIDE_WORDS)) + r"))(?!\w)"
)
_BARE_MAJOR = re.compile(r"(?<![A-Za-z0-9#$])(BTC|ETH|XBT|btc|eth)(?![A-Za-z0-9])")
# "LONG BTC", "BUY TONNEL": a ticker in capitals right after a direction word in capitals
_SIDE_THEN_COIN = re.compile(r"(?<![A-Za-z0-9])(?:LONG|SHORT|BUY|SELL)\s+((?:1000)?[A-Z][A-Z0-9]{1,14})(?![A-Za-z0-9])")
# "sol long", "doge short": a well-known ticker in lower case right before a direction word
_BARE_BESIDE_SIDE = re.compile(
    r"(?<![A-Za-z0-9#$])(" + "|".join(sorted(BARE_COINS, key=len, reverse=True)) + r")\s+(?i:"
    + "|".join(map(re.escape, _SIDE_WORDS)) + r")(?!\w)"
)
_ALIAS = re.compile(alternation(_ALIASES), re.IGNORECASE)


def normalize_symbol(raw: object) -> str | None:
    """A coin or pair as written -> Bitget USDT-M name, or None when it is not a USDT-M perpetual name.

    ``BTC``, ``#btc``, ``$BTC``, ``XBT``, ``BTC/USDT``, ``BTCUSD``, ``BTCUSDT.P``, ``比特币`` -> ``BTCUSDT``;
    ``1000PEPE`` -> ``1000PEPEUSDT``. Pairs quoted in another coin (``ETH/BTC``) -> None.
    """
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if text.lower() in _ALIASES:
        return _ALIASES[text.lower()] + "USDT"
    text = text.lstrip("#$").strip().upper().replace(" ", "")
    for suffix in (".P", "PERP", "-PERP", "_PERP", "_UMCBL"):
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
    base = text
    if "/" in text or "-" in text or "_" in text:
        parts = re.split(r"[/\-_]", text)
        if len(parts) != 2 or not parts[0]:
            return None
        base, quote = parts
        if quote not in _USD_QUOTES:
            return None
    else:
        for quote in _USD_QUOTES:
            if text.endswith(quote) and len(text) > len(quote):
                base = text[: -len(quote)]
                break
    base = _BASE_RENAMES.get(base, base)
    if not re.fullmatch(r"[A-Z0-9]{1,15}", base) or base.isdigit() or base in STOPWORDS:
        return None
    if base in _USD_QUOTES:
        return None
    return base + "USDT"


def find_symbols(text: str) -> tuple[list[str], list[str]]:
    """USDT-M names mentioned in ``text`` (first-seen order, unique) and warnings.

    The most explicit notation present wins: pairs, then glued ``XXXUSDT``, then labelled or tagged
    names, then a ticker beside a direction word, then Chinese nicknames.
    """
    warnings: list[str] = []
    found: list[str] = []

    def add(symbol: str | None) -> None:
        if symbol and symbol not in found:
            found.append(symbol)

    for match in _PAIR.finditer(text):
        quote = match.group(2).upper()
        if quote in _OTHER_QUOTES:
            warnings.append(f"pair {match.group(1).upper()}/{quote} is not a USDT-margined contract")
            continue
        add(normalize_symbol(f"{match.group(1)}/{quote}"))
    if found or warnings:
        return found, warnings
    for match in _GLUED.finditer(text):
        add(normalize_symbol(match.group(0)))
    if found:
        return found, warnings
    # Weaker notations: a coin named in passing elsewhere in the text counts too, so that
    # "BTC and ETH LONG" reads as two coins (refused later) rather than silently as ETH.
    for pattern in (_LABELLED, _TAGGED, _BESIDE_SIDE, _BARE_BESIDE_SIDE, _SIDE_THEN_COIN):
        for match in pattern.finditer(text):
            if pattern is _SIDE_THEN_COIN and match.group(1).upper() in _NOT_COINS:
                continue  # "LONG NOW", "SHORT ENTRY"
            add(normalize_symbol(match.group(1)))
        if found:
            break
    for match in _ALIAS.finditer(text):
        add(normalize_symbol(match.group(0)))
    for match in _BARE_MAJOR.finditer(text):
        add(normalize_symbol(match.group(1)))
    return found, warnings


# Latin words of the lexicon and common capitalised chatter: never a coin when they stand alone.
_NOT_COINS = frozenset(
    {word.upper() for entry in LEXICON.values() for values in entry.values() for word in values
     if re.fullmatch(r"[A-Za-z]{2,10}", word)}
    | {"ALL", "NOW", "HOLD", "WAIT", "GM", "GN", "OK", "WOW", "RISK", "NOTE", "HIT", "DONE", "BOOK", "TAKE",
       "HALF", "ALT", "ALTS", "PNL", "ROI", "RR", "DCA", "USDT", "LIMIT", "ORDER", "ORDERS", "POSITION", "TRADER",
       "ADMIN", "GUYS", "TEAM", "TODAY", "SIGNAL", "MARKET", "PROFIT", "PROFITS", "LOSS", "WIN", "BOS", "CHOCH",
       "FVG", "OB", "OS", "TF", "UTC", "GMT", "AM", "PM", "ATH", "ATL", "SPOT", "FUTURES", "VIP", "FREE", "MORE"}
    | STOPWORDS
)
_LEAD_TOKEN = re.compile(r"^[^\w\n]*[#$]?(?P<coin>[A-Za-z][A-Za-z0-9]{1,11})(?![A-Za-z0-9])")
_AFTER_VERB = re.compile(r"\s*(?:on\s+)?[#$]?(?P<coin>[A-Za-z][A-Za-z0-9]{1,11})(?![A-Za-z0-9])")


def _bare_coin(token: str) -> str | None:
    if token.upper() in _NOT_COINS or (token[-1].isdigit() and token.upper().rstrip("0123456789") in _NOT_COINS):
        return None
    if token.isupper() or token.lower() in BARE_COINS:
        return normalize_symbol(token)
    return None


def find_update_coin(text: str, verbs: re.Pattern[str] | None = None) -> str | None:
    """The one coin an update names, or None.

    Every notation ``find_symbols`` knows first; else a bare ticker that opens a line ("SOL 平仓", "DOGE đã chạm
    TP2", "sol - в бу") or follows an update verb ("Close SOL now"): capitals, or a well-known coin in lower case.
    Several different coins: None (the update cannot be applied to a guess).
    """
    symbols, _ = find_symbols(text)
    if symbols:
        return symbols[0] if len(symbols) == 1 else None
    found: list[str] = []
    for line in text.split("\n"):
        match = _LEAD_TOKEN.match(line)
        coin = _bare_coin(match.group("coin")) if match else None
        if coin and coin not in found:
            found.append(coin)
    if verbs is not None:
        for verb in verbs.finditer(text):
            match = _AFTER_VERB.match(text, verb.end())
            coin = _bare_coin(match.group("coin")) if match else None
            if coin and coin not in found:
                found.append(coin)
    return found[0] if len(found) == 1 else None


def coins_named(text: str) -> list[str]:
    """Every coin a post names in any notation, or opening one of its lines (for recaps of several coins)."""
    symbols, _ = find_symbols(text)
    found = list(symbols)
    for line in text.split("\n"):
        match = _LEAD_TOKEN.match(line)
        coin = _bare_coin(match.group("coin")) if match else None
        if coin and coin not in found:
            found.append(coin)
    return found
