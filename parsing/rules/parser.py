"""Rule-based reading of a signal post: ``parse_text(text) -> list[ParsedMessage]``.

Order of decisions (fail closed at every step):
1. admin posts / ads -> noise;
2. unambiguous update notifications (TP hit, stop hit, closed, filled, set stop, partial close) -> updates;
3. an entry structure (direction, coin, prices) -> entry, checked for consistency;
4. softer update wording (break-even, cancel, entry revision) -> updates;
5. anything else -> noise.
Numbers are never "corrected": an implausible target is dropped and named in ``warnings``; a stop on the
wrong side, a missing stop, two coins or two plans that cannot be told apart make the entry ``notify_only``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal

from parsing.rules import keywords as kw
from parsing.rules.lexicon import HEDGES, RECAP_WORDS, alternation, words
from parsing.rules.normalize import AMBIGUOUS_COMMA, comma_is_ambiguous, normalize
from parsing.rules.numbers import find_numbers, scrub, split_leverage, split_percentages
from parsing.rules.refs import find_signal_refs
from parsing.rules.symbols import coins_named, find_symbols, find_update_coin
from parsing.rules.updates import STOP_WORD, against_context, read_updates
from parsing.signals import Action, Kind, ParsedMessage, ReadingContext, Side, UpdateType

log = logging.getLogger(__name__)

_SEGMENT_SPLIT = re.compile(r"[，。；;｜|]|,\s|\s[-–—]\s(?=[A-Za-zА-Яа-я])")
_NOISE_RESULT = ParsedMessage(kind=Kind.NOISE, action=Action.IGNORE, confidence=0.9)
_MAX_TP_STEP = Decimal(3)  # a target more than 3x (or under 1/3 of) its neighbour is a typo
_MAX_TP_REACH = Decimal(5)  # a long target above 5x the entry (short: under 1/5) is implausible
_MAX_STOP_DISTANCE = Decimal("0.5")  # a stop more than 50 % away from the entry is implausible
_MAX_ENTRY_SPREAD = Decimal("1.5")
# A Telegram message holds at most 4,096 characters (a caption 1,024): a longer text is read only up to here
MAX_POST_CHARS = 8192
_MAX_UPDATE_CHARS = 600  # a longer post without a coin or signal id is commentary, whatever verbs it uses
_SIGNATURE = re.compile(r"(?i)(?:trader|трейдер|admin|админ)\s*#\s*[\wа-я]{1,3}\b")
_COMPOUND = re.compile(r"(?<![\d.,])\d+(?:[.,]\d+)?-(?=[A-Za-zА-Яа-яЁё]{2})")  # "2-фазный", "3-day": no price
# size shares and risk-reward notes beside prices: "(1/2)", "(RR 1:2)", "R:R 1:3.5", "RR: 1:3.89"
_ANNOTATION = re.compile(
    r"\(\s*[1-9]\s*/\s*[1-9]\d?\s*\)|(?i:\b(?:rr|r:r|r/r|risk[\s/:-]*reward))\s*[:=]?\s*\d+(?:\.\d+)?\s*[:/]\s*\d+(?:\.\d+)?"
)
_BRACKETED = re.compile(r"\([^()\n]{0,40}\)")
# a stop given as a condition ("SL: 22.80 (4H close below)", "стоп закрепление ниже 1.2"): placed at its price
_CONDITION = re.compile(r"(?i)\b(?:close|closing|candle|below|above|under)\b|закреп|ниже|выше|закрыти|收盘|跌破|突破|"
                        r"kapanış|đóng nến|cierre|fechamento")
# "long-term", "short squeeze", "long liquidations": direction words that give no trade direction
_NOT_A_SIDE = re.compile(r"(?i)\b(?:long|short)(?:[\s\-]*(?:term|squeeze|liquidations?))\b")
_RECAP = re.compile(alternation(RECAP_WORDS), re.I)
_HEDGE = re.compile(alternation(HEDGES), re.I)
_SELL_LABEL = re.compile(r"(?i)(?<![A-Za-z])sell(?:ing)?\s*(?:targets?|zone|levels?)?\s*[:：]")
_ENTRY_CONDITION = re.compile(
    r"(?i)\b(?:if|when|once|after|break|breaks|breaking|breakout|above|below|upon|retest|confirmation)\b"
    r"|если|при\s+пробое|пробо|после|выше|ниже|закреп|如果|突破|跌破|站稳|以上|以下|\bnếu\b|sau khi|phá vỡ|"
    r"\beğer\b|kırılım|kırarsa|\bsi\b|cuando|ruptura|rompe|encima|debajo|\bse\b|quando|rompimento|acima|abaixo|"
    r"\bjika\b|kalau|setelah|tembus|إذا|اختراق|اگر|شکست|돌파|이탈"
)
_MULTIPLIER = re.compile(r"(?<![\d.,])\d{1,4}(?:[.,]\d{1,3})?[kK万萬](?![A-Za-z])")
# "or" in each language (not the Spanish "o": in Portuguese it is "the")
_ALTERNATIVE = re.compile(r"或者|或是|(?<!\w)(?:or|или|hoặc|veya|atau|ou|أو)(?!\w)|또는|(?<!\w)یا(?!\w)", re.I)
# a section appended to an entry post that reports on it ("Upd: ожидания не подтвердились"): the entry is stale
_APPENDED_UPDATE = re.compile(r"(?im)^\s*(?:upd|update|апд|обновление|更新)\s*[:：]")
_UPDATE_VERBS = re.compile(alternation(w for c in ("close", "move", "cancel", "all_done") for w in words(c)), re.I)


@dataclass
class _Fields:
    entries: list[Decimal] = field(default_factory=list)
    head_numbers: list[Decimal] = field(default_factory=list)  # numbers on a direction line without label
    # prices beside a market word before the first label ("ETH 1710市价直接空 再挂1788"): the market leg's reference
    market_head: list[Decimal] = field(default_factory=list)
    stops: list[Decimal] = field(default_factory=list)
    take_profits: list[Decimal] = field(default_factory=list)
    tp_percentages: list[Decimal | None] = field(default_factory=list)
    leverages: list[int] = field(default_factory=list)
    stop_as_percent: bool = False
    stop_condition: bool = False
    entry_condition: bool = False  # an entry span says "if / on a break / above ...": a trigger, not a limit
    head_condition: bool = False


def parse_text(text: str, context: ReadingContext | None = None) -> list[ParsedMessage]:
    """Every reading of one post; never raises (an internal error becomes a notify-only result).

    ``context``: the signal the post replies to, when it replies to one (see ``ReadingContext``).
    """
    if not isinstance(text, str) or not text.strip():
        return [_NOISE_RESULT]
    try:
        return _parse(text, context)
    except Exception as exc:  # the safety net of a parser fed by strangers: report, never crash the caller
        log.exception("rule parser failed")
        return [
            ParsedMessage(
                kind=Kind.NOISE,
                action=Action.NOTIFY_ONLY,
                warnings=(f"parser error: {type(exc).__name__}",),
            )
        ]


def _parse(raw: str, context: ReadingContext | None) -> list[ParsedMessage]:
    overlong = len(raw) > MAX_POST_CHARS
    if overlong:
        raw = raw[:MAX_POST_CHARS]
    text = normalize(raw)
    refs = find_signal_refs(text)  # blanked out of the text: a signal id is never a price
    readings = _read(scrub(_ANNOTATION.sub(" ", _SIGNATURE.sub(" ", _COMPOUND.sub(" ", refs.text)))), refs.ref, context)
    if _APPENDED_UPDATE.search(text):
        readings = [
            replace(r, action=Action.NOTIFY_ONLY, warnings=(*r.warnings, "the post carries an update of itself"))
            if r.kind is Kind.ENTRY and r.action is Action.TRADE else r
            for r in readings
        ]
    if comma_is_ambiguous(raw):
        # "Вход: 1,875": read as 1875 by the comma rule, but in this language it may be 1.875; the user decides
        readings = [
            replace(r, action=Action.NOTIFY_ONLY, warnings=(*r.warnings, AMBIGUOUS_COMMA))
            if r.kind is Kind.ENTRY and r.action is Action.TRADE else r
            for r in readings
        ]
    if _MULTIPLIER.search(raw):
        # "112,5k", "6.7万": a rounded shorthand, not a price to place an order at
        readings = [
            replace(r, action=Action.NOTIFY_ONLY, warnings=(*r.warnings, "prices written with a k/万 multiplier"))
            if r.kind is Kind.ENTRY and r.action is Action.TRADE else r
            for r in readings
        ]
    if overlong:
        # no Telegram post is this long: read it for the user, never act on it
        readings = [
            replace(r, action=Action.NOTIFY_ONLY, warnings=(*r.warnings, f"post longer than {MAX_POST_CHARS} "
                                                            "characters: only its beginning was read"))
            if r.action is Action.TRADE else r
            for r in readings
        ]
    if refs.ambiguous:
        # "signals #12 and #13 ..." names several signals: no update may be applied to a guess
        readings = [
            replace(r, action=Action.NOTIFY_ONLY, warnings=(*r.warnings, "names several signals"))
            if r.kind in (Kind.UPDATE, Kind.CLOSE, Kind.CANCEL) and r.action is Action.TRADE else r
            for r in readings
        ]
    return readings


def _read(cleaned: str, signal_ref: str | None, context: ReadingContext | None = None) -> list[ParsedMessage]:
    if _SELL_LABEL.search(cleaned) and kw.WORD_LONG.search(_SELL_LABEL.sub(" ", cleaned)):
        # spot style "Buy: 0.40 - 0.38 | Sell: 0.45 - 0.50": "Sell:" under a buy names the targets, not a short
        cleaned = _SELL_LABEL.sub("Targets:", cleaned)
    trailing = kw.TRAILING_SECTION.search(cleaned)
    if trailing:
        cleaned = cleaned[: trailing.start()]  # Cornix trailing config reuses "Entry"/"Stop"/"Target" words
    cleaned = kw.KEYCAP.sub(" ", cleaned)
    advert = bool(kw.NOISE.search(cleaned))

    symbol = find_update_coin(cleaned, _UPDATE_VERBS)
    if len(cleaned) > _MAX_UPDATE_CHARS and signal_ref is None and symbol is None and not _one_symbol(cleaned):
        # a long post naming no coin and no signal: commentary, whatever words it uses
        return [replace(_NOISE_RESULT, warnings=("long commentary naming no coin and no signal",))]
    # 1. an entry with its coin, side, stop and entry (or market) is an entry, whatever management words it has
    entries = [] if advert else _entries(cleaned, signal_ref)
    if any(_complete(reading) for reading in entries):
        return entries
    # 2. update cues: strong ones outrank an incomplete entry (unless it is labelled as an entry and is no add);
    #    a reply is read as an update first
    sides = _sides(cleaned)
    cues = read_updates(cleaned, symbol=symbol, signal_ref=signal_ref, context=context)
    if advert and not cues.strong:
        return [replace(_NOISE_RESULT, warnings=("an advertisement or admin post",))]
    if cues.readings and context is None and _RECAP.search(cleaned) and len(coins_named(cleaned)) > 1:
        return [replace(_NOISE_RESULT, warnings=("a results recap of several coins",))]
    labelled_entry = context is None and sides and _has_entry_label(cleaned) and not _adds(cues.readings)
    if (cues.strong and not labelled_entry) or (
        cues.readings and (context is not None or not any(map(_entry_shaped, entries)))
    ):
        if labelled_entry and not entries and len(sides) == 1:
            # "空单入场理由 … 入场做空 … 第一止盈位 60950 移动止损至成本价": an entry's rationale and plan, without the
            # coin or prices to trade it; its management words describe the plan, they instruct nothing yet
            return [ParsedMessage(kind=Kind.ENTRY, action=Action.NOTIFY_ONLY, symbol=symbol, side=sides[0],
                                  confidence=0.2, signal_ref=signal_ref,
                                  warnings=("an entry post without the coin or prices to trade it",))]
        readings = against_context(_alternatives(cleaned, cues.readings), sides, context)
        if labelled_entry:  # an incomplete entry that also carries update words: the user decides
            readings = [replace(r, action=Action.NOTIFY_ONLY, warnings=(*r.warnings, "the post also reads as an entry"))
                        if r.action is Action.TRADE else r for r in readings]
        return readings
    if entries and not cues.readings and all(_bare_idea(reading) for reading in entries) and _HEDGE.search(cleaned):
        # "激进的可以在6.5万附近做空，个人会再观察", "potential SHORT ... Last price: 67847": an idea, not a signal
        return [replace(_NOISE_RESULT, warnings=("a suggestion without stop or targets",))]
    if entries:
        return entries
    if kw.ENTRY_REVISION.search(cleaned):
        return [ParsedMessage(kind=Kind.UPDATE, action=Action.NOTIFY_ONLY, symbol=symbol, confidence=0.4,
                              warnings=("entry revision: not applied automatically",), signal_ref=signal_ref)]
    return [_NOISE_RESULT]


def _alternatives(text: str, readings: list[ParsedMessage]) -> list[ParsedMessage]:
    """"close the add or close all": the post offers choices, the user picks; several closes at once likewise."""
    closes = {r.update_type for r in readings if r.kind is Kind.CLOSE or r.update_type is UpdateType.CLOSE_PARTIAL}
    adds = _adds(readings)
    if not (_ALTERNATIVE.search(text) or (closes and adds) or len(closes) > 1):
        return readings
    return [replace(r, action=Action.NOTIFY_ONLY, warnings=(*r.warnings, "the post offers alternatives"))
            if r.action is Action.TRADE else r for r in readings]


def _entries(text: str, signal_ref: str | None) -> list[ParsedMessage]:
    sides = _sides(text)
    if len(sides) > 1:
        split = _split_plans(text, signal_ref)
        if split:
            return split
        symbols, _ = find_symbols(text)
        return [
            ParsedMessage(
                kind=Kind.ENTRY,
                action=Action.NOTIFY_ONLY,
                symbol=symbols[0] if len(symbols) == 1 else None,
                confidence=0.2,
                warnings=("several signals or both directions in one message; not merged",),
                signal_ref=signal_ref,
            )
        ]
    entry = _entry(text, signal_ref)
    return [entry] if entry is not None else []


def _complete(reading: ParsedMessage) -> bool:
    """Coin, side, stop and entry (or market): an entry post, even when a doubt keeps it from trading."""
    return (reading.kind is Kind.ENTRY and reading.symbol is not None and reading.side is not None
            and reading.stop_loss is not None and bool(reading.entries or reading.market_entry))


def _entry_shaped(reading: ParsedMessage) -> bool:
    """A reading with an entry's own fields: a stop, targets, or coin and side with where to enter."""
    return reading.kind is Kind.ENTRY and (
        reading.stop_loss is not None or bool(reading.take_profits) or _substantial(reading)
    )


def _bare_idea(reading: ParsedMessage) -> bool:
    return reading.kind is Kind.ENTRY and reading.stop_loss is None and not reading.take_profits


def _adds(readings: list[ParsedMessage]) -> bool:
    return any("adds to a position" in warning for reading in readings for warning in reading.warnings)


def _has_entry_label(text: str) -> bool:
    """An entry label that is not the place a stop moves to ("move SL to entry")."""
    for match in kw.LABEL.finditer(text):
        if match.lastgroup == "entry" and not STOP_WORD.search(text[max(0, match.start() - 25) : match.start()]):
            return True
    return False


def _substantial(reading: ParsedMessage) -> bool:
    """An incomplete entry that still names coin, side and where to enter ("#UAI 市價多 0.45091"); a market entry
    only with a level ("#PEPE short now, TP ..."): "Close #BTC long now" is no entry."""
    return (reading.kind is Kind.ENTRY and reading.symbol is not None and reading.side is not None
            and bool(reading.entries or (reading.market_entry and (reading.stop_loss or reading.take_profits))))


def _sides(text: str) -> list[Side]:
    text = _NOT_A_SIDE.sub(" ", text)
    sides: list[Side] = []
    if kw.WORD_LONG.search(text):
        sides.append(Side.LONG)
    if kw.WORD_SHORT.search(text):
        sides.append(Side.SHORT)
    if sides:
        return sides
    if kw.DIRECTION_LONG.search(text):  # only a coloured circle
        sides.append(Side.LONG)
    if kw.DIRECTION_SHORT.search(text):
        sides.append(Side.SHORT)
    return sides


def _one_symbol(text: str) -> str | None:
    symbols, _ = find_symbols(text)
    return symbols[0] if len(symbols) == 1 else None


def _split_plans(text: str, signal_ref: str | None) -> list[ParsedMessage]:
    """Two plans in one post (e.g. a short now and a long lower): one reading each, or nothing."""
    chunks = [chunk for chunk in re.split(r"。|\n\s*\n", text) if chunk.strip()]
    plans = [chunk for chunk in chunks if _sides(chunk)]
    if len(plans) < 2 or any(len(_sides(plan)) != 1 for plan in plans):
        return []
    readings: list[ParsedMessage] = []
    for plan in plans:
        reading = _entry(plan, signal_ref)
        if reading is None:
            return []
        readings.append(
            ParsedMessage(
                **{
                    **reading.__dict__,
                    "warnings": (*reading.warnings, "one of several plans in the same message"),
                }
            )
        )
    return readings


def _segments(text: str) -> list[str]:
    segments: list[str] = []
    for line in text.split("\n"):
        parts = [part for part in _SEGMENT_SPLIT.split(line)]
        segments.extend(parts if parts else [""])
    return segments


def _is_number_line(segment: str) -> bool:
    # "🥉 10.71 (40% of profit)": a note in brackets does not make a price line a sentence
    stripped = kw.FILLER.sub(" ", kw.ENUMERATOR.sub(" ", _BRACKETED.sub(" ", segment)))
    return not kw.LETTERS.search(stripped)


def _collect(text: str) -> _Fields:
    fields = _Fields()
    current: str | None = None
    for raw_segment in _segments(text):
        segment, levels = split_leverage(raw_segment)
        if levels and _leverage_here(segment):
            fields.leverages.extend(levels)
        segment = kw.ENUMERATOR.sub(" ", segment)
        if not segment.strip():
            continue
        labels = list(kw.LABEL.finditer(segment))
        if not labels:
            if current and _is_number_line(segment):
                _assign(fields, current, _BRACKETED.sub(" ", segment))  # "(Use 5-10x)" under the targets: a note
            elif _sides(segment):
                body, _ = split_percentages(segment)
                numbers = find_numbers(body)
                fields.head_numbers.extend(numbers)
                fields.head_condition = fields.head_condition or bool(numbers and _ENTRY_CONDITION.search(body))
                current = "head"  # "#LINK LONG" then "1) 14.20 (50%)" lines: its entries
            else:
                current = None
            continue
        head = segment[: labels[0].start()]
        if _sides(head):
            body, _ = split_percentages(head)
            numbers = find_numbers(body)
            fields.head_numbers.extend(numbers)
            fields.head_condition = fields.head_condition or bool(numbers and _ENTRY_CONDITION.search(body))
            if kw.MARKET.search(head):
                fields.market_head.extend(find_numbers(body))
        for index, label in enumerate(labels):
            end = labels[index + 1].start() if index + 1 < len(labels) else len(segment)
            current = label.lastgroup
            _assign(fields, current or "", segment[label.end() : end])
    return fields


def _leverage_here(rest: str) -> bool:
    """Whether an "x20" / "20x" / "10倍" in a segment is the trade's leverage: beside a leverage label, a direction,
    a coin or a margin mode, or on its own; not after a target or entry label ("TP: 2x", "Potential 3x")."""
    labels = {match.lastgroup for match in kw.LABEL.finditer(rest)}
    if "lev" in labels or _sides(rest) or kw.MARGIN_CROSS.search(rest) or kw.MARGIN_ISOLATED.search(rest):
        return True
    if labels:
        return False
    return bool(find_symbols(rest)[0]) or len(kw.LETTERS.findall(rest)) <= 2


def _assign(fields: _Fields, label: str, span: str) -> None:
    body, percents = split_percentages(span)
    body = kw.FILLER.sub(" ", body)
    numbers = [number for number in find_numbers(body) if number > 0]
    if label == "entry":
        fields.entries.extend(numbers)
        fields.entry_condition = fields.entry_condition or bool(numbers and _ENTRY_CONDITION.search(body))
    elif label == "head":
        fields.head_numbers.extend(numbers)
    elif label == "sl":
        fields.stops.extend(numbers)
        if numbers and _CONDITION.search(body):
            fields.stop_condition = True
        if percents and not numbers:
            fields.stop_as_percent = True
    elif label == "tp":
        fields.take_profits.extend(numbers)
        share = percents[0] if len(numbers) == 1 and len(percents) == 1 else None
        fields.tp_percentages.extend([share] * len(numbers) if len(numbers) == 1 else [None] * len(numbers))
    elif label == "lev":
        fields.leverages.extend(int(n) for n in numbers if n == int(n) and 1 <= n <= 200)


def _unique(values: list[Decimal]) -> list[Decimal]:
    seen: list[Decimal] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def _entry(text: str, signal_ref: str | None) -> ParsedMessage | None:
    sides = _sides(text)
    symbols, symbol_warnings = find_symbols(text)
    fields = _collect(text)
    positive = [n for n in fields.market_head + fields.entries if n > 0]
    entries = _unique(positive) or _unique([n for n in fields.head_numbers if n > 0])
    conditional = fields.entry_condition if positive else fields.head_condition
    stops = _unique(fields.stops)
    market = bool(kw.MARKET.search(text))
    has_prices = bool(entries or stops or fields.take_profits)
    if not sides:
        if not (symbols and entries and (stops or fields.take_profits)):
            return None
    elif not (symbols or entries or symbol_warnings) or not (has_prices or market):
        return None

    warnings: list[str] = list(symbol_warnings)
    doubt = False
    side = sides[0] if sides else None
    if side is None:
        reference = entries[0]
        if stops and stops[0] != reference:
            side = Side.LONG if stops[0] < reference else Side.SHORT
        warnings.append("no direction word; direction inferred from prices")
        doubt = True
    symbol = symbols[0] if len(symbols) == 1 else None
    if len(symbols) > 1:
        warnings.append(f"several coins named ({', '.join(symbols)}); not merged")
        doubt = True
    elif symbol is None:
        warnings.append("no usable coin name")
        doubt = True

    market_entry = False
    if not entries:
        if market:
            market_entry = True
        else:
            warnings.append("no entry price")
            doubt = True
    elif market and len(entries) == 1:
        # "Вход: 8.9960 рынок", "Entry: CMP (24.10)": a market entry; its quoted price stays as the reference the
        # risk gate's slippage check measures the live price against
        market_entry = True
        warnings.append("market entry: the quoted price is the reference for the slippage check")
    elif market:
        warnings.append("market wording beside several entry prices; the prices are used as limits")
    if entries and conditional:
        # "long if it breaks 66000", "вход при пробое 1.20", "65000以上做多": a trigger, which a limit order is not
        warnings.append("entry on a condition (a break, 'if', above/below): not placed as a limit")
        doubt = True
    if len(entries) > 10:
        warnings.append("more than 10 entries")
        doubt = True
    if entries and max(entries) / min(entries) > _MAX_ENTRY_SPREAD:
        warnings.append("entry prices implausibly far apart")
        doubt = True

    stop: Decimal | None = None
    # An absent stop is kept apart from the doubts (see stop_missing); a stop written only as a percentage is a
    # stop we cannot read, which is a doubt.
    no_stop_given = not stops and not fields.stop_as_percent
    if not stops:
        warnings.append("stop given only as a percentage" if fields.stop_as_percent else "no stop loss")
        doubt = doubt or fields.stop_as_percent
    elif len(stops) > 1:
        warnings.append("several stop prices")
        doubt = True
    else:
        stop = stops[0]
        if side is not None and entries:
            if side is Side.LONG and not stop < min(entries):
                warnings.append("stop loss is not below every entry of a long")
                doubt = True
            elif side is Side.SHORT and not stop > max(entries):
                warnings.append("stop loss is not above every entry of a short")
                doubt = True
            elif abs(stop - entries[0]) / entries[0] > _MAX_STOP_DISTANCE:
                warnings.append("stop loss implausibly far from the entry")
                doubt = True

    if stop is not None and fields.stop_condition:
        warnings.append("stop given as a condition; placed as a plain stop at its price")
    take_profits, tp_shares = _check_targets(side, entries, stop, fields, warnings)
    if any(w.endswith(("not above the entries", "not below the entries", "on the stop's side")) for w in warnings):
        # "short 64000 tp 66000": the direction and the prices disagree; which one is wrong is not ours to guess
        warnings.append("a target on the wrong side of the entries or the stop")
        doubt = True
    if market_entry and stop is not None and take_profits and side is not None:
        wrong = stop >= min(take_profits) if side is Side.LONG else stop <= max(take_profits)
        if wrong:
            warnings.append("stop loss on the wrong side of the targets")
            doubt = True
    if market_entry and not entries and not take_profits:
        warnings.append("market entry without targets: stop side cannot be checked")
        doubt = True

    leverage = min(fields.leverages) if fields.leverages else None  # the lower of "X10 X25" is the safe one
    margin_mode = (
        "isolated" if kw.MARGIN_ISOLATED.search(text) else "crossed" if kw.MARGIN_CROSS.search(text) else None
    )
    stop_missing = no_stop_given and not doubt and symbol is not None and side is not None
    completeness = (
        0.15 * bool(symbol) + 0.2 * bool(side) + 0.2 * bool(entries or market_entry)
        + 0.25 * bool(stop is not None or stop_missing) + 0.2 * bool(take_profits)
    )
    # Confidence rates how surely the post was read; an absent stop is said by stop_missing, not doubted here.
    counted = [w for w in warnings if not (stop_missing and w == "no stop loss")]
    confidence = max(0.0, min(1.0, completeness - 0.1 * len(counted)))
    trade = not doubt and symbol is not None and side is not None and stop is not None
    return ParsedMessage(
        kind=Kind.ENTRY,
        action=Action.TRADE if trade else Action.NOTIFY_ONLY,
        symbol=symbol,
        side=side,
        entries=tuple(entries),
        market_entry=market_entry,
        stop_loss=stop,
        take_profits=tuple(take_profits),
        tp_percentages=tp_shares,
        leverage=leverage,
        margin_mode=margin_mode,
        confidence=round(confidence, 3),
        warnings=tuple(warnings),
        signal_ref=signal_ref,
        stop_missing=stop_missing,
    )


def _check_targets(
    side: Side | None,
    entries: list[Decimal],
    stop: Decimal | None,
    fields: _Fields,
    warnings: list[str],
) -> tuple[list[Decimal], tuple[Decimal, ...]]:
    """Targets kept in order; each wrong-side, out-of-order or implausible one is dropped and named."""
    kept: list[Decimal] = []
    shares: list[Decimal | None] = []
    raw_shares = fields.tp_percentages + [None] * (len(fields.take_profits) - len(fields.tp_percentages))
    for target, share in zip(fields.take_profits, raw_shares, strict=True):
        reason: str | None = None
        if side is Side.LONG:
            if entries and target <= max(entries):
                reason = "not above the entries"
            elif entries and target > max(entries) * _MAX_TP_REACH:
                reason = "implausibly far above the entries"
            elif kept and target < kept[-1]:
                reason = "out of order"
        elif side is Side.SHORT:
            if entries and target >= min(entries):
                reason = "not below the entries"
            elif entries and target * _MAX_TP_REACH < min(entries):
                reason = "implausibly far below the entries"
            elif kept and target > kept[-1]:
                reason = "out of order"
        if reason is None and kept and (target > kept[-1] * _MAX_TP_STEP or target * _MAX_TP_STEP < kept[-1]):
            reason = "implausible beside the other targets"
        beyond_stop = stop is not None and (
            (side is Side.LONG and target <= stop) or (side is Side.SHORT and target >= stop)
        )
        if reason is None and beyond_stop:
            reason = "on the stop's side"
        if reason:
            warnings.append(f"target {target} dropped: {reason}")
            continue
        kept.append(target)
        shares.append(share)
    if len(kept) > 16:
        warnings.append("more than 16 targets; extra ones dropped")
        kept, shares = kept[:16], shares[:16]
    tp_shares: tuple[Decimal, ...] = ()
    if kept and all(share is not None for share in shares):
        tp_shares = tuple(share for share in shares if share is not None)
    return kept, tp_shares
