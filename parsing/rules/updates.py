"""Updates, closes and cancels in every lexicon language, read from cues rather than whole-message patterns.

A *cue* is a lexicon word found in the text (close, keep, cancel, move, break-even, stopped out, target hit ...)
together with the tokens beside it: the percentage right after a close verb ("close 50 %", "止盈40%", "закрыть
50%") or right before it ("%50 kapat" is normalized to "50% kapat"), the target number after a target word
("TP2", "第1止盈"), the price, entry or break-even word after a stop word ("SL to 64100", "стоп в бу",
"止损移至开仓价"). ``read_updates`` returns the readings and whether any cue was *strong* (stopped out, all done,
a target hit, a fill, an add, a partial close with its share, a stop move with its place): a strong cue outranks an
incomplete entry; a weak one (a bare close, cancel, a stop price without a move word) only reads a post that is no
entry at all.

Fail closed: a share that is not a percentage in (0, 100], a stop move whose place is not stated (and not known
from the context), a side that contradicts the replied-to signal, an add to a position: the reading is
``notify_only`` with the reason in ``warnings``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation

from parsing.rules import keywords as kw
from parsing.rules import lexicon
from parsing.rules.numbers import NUMBER, to_decimal
from parsing.signals import Action, Kind, ParsedMessage, ReadingContext, Side, UpdateType

_I = re.IGNORECASE


def _words(category: str, exclude: tuple[str, ...] = ()) -> str:
    return lexicon.alternation(word for word in lexicon.words(category) if word not in exclude)


_TP_WORD = (
    r"(?:take[\s\-]*profit|targets?|tp|тп|тейк|цел[ьи]|hedef|止盈|目标|目標|mục\s*tiêu|alvo|objetivo|هدف|목표)"
)
_TARGET_NAMES = lexicon.alternation([*lexicon.words("target"), "take profit", "take-profit", "target", "targets", "tp",
                                     "тп", "тейк", "цель", "цели", "hedef", "止盈", "目标", "目標", "الهدف", "تارگت"])
_ORDINAL = lexicon.alternation(word for word in lexicon.ORDINALS if not word[0].isdigit())
TP_INDEX = re.compile(
    rf"(?:(?<![A-Za-zА-Яа-я]){_TP_WORD}|{_TARGET_NAMES})\s*(?:位|#|no\.?)?\s*(?P<n>[1-9]\d?)(?![\d.,])"
    r"|第\s*(?P<m>[1-9]\d?)\s*(?:个|個)?\s*(?:止盈|目标|目標)"
    r"|(?<![\d.,])(?P<k>[1-9])\s*(?:\.|-?(?:й|ый|ой|st|nd|rd|th)|차|번째?)?\s*"
    r"(?:тейк|tp|цел[ьи]|hedef|target|objetivo|alvo|mục\s*tiêu|목표|익절)"
    rf"|(?P<o>{_ORDINAL})\s*(?:{_TARGET_NAMES})|(?:{_TARGET_NAMES})\s*(?P<p>{_ORDINAL})",
    _I,
)


def tp_number(match: re.Match[str]) -> int:
    """The target number a ``TP_INDEX`` match names ("TP2", "第2止盈", "2. hedef", "second target", "الهدف الأول")."""
    for group in ("n", "m", "k"):
        if match.group(group):
            return int(match.group(group))
    word = (match.group("o") or match.group("p") or "").lower()
    return lexicon.ORDINALS.get(word) or next(
        (number for name, number in lexicon.ORDINALS.items() if re.fullmatch(lexicon.word_pattern(name), word)), 1
    )
STOP_WORD = re.compile(
    lexicon.alternation([*lexicon.words("stop"), "stops", "стопы", "стопа", "стопом", "стопов", "стопик", "стопчик"]),
    _I,
)
TARGET_WORD = re.compile(rf"(?<![A-Za-zА-Яа-я]){_TP_WORD}(?![A-Za-z])|" + _words("target"), _I)
CLOSE = lexicon.pattern("close")
CLOSE_HALF = lexicon.pattern("close_half")
KEEP = lexicon.pattern("keep")
ALL_DONE = lexicon.pattern("all_done")
CANCEL = lexicon.pattern("cancel")
MOVE = lexicon.pattern("move")
BREAKEVEN = lexicon.pattern("breakeven")
ENTRY_PRICE = lexicon.pattern("entry_price")
PARTIAL = lexicon.pattern("partial")
ADD = lexicon.pattern("add")
FILLED = lexicon.pattern("filled")
TP_HIT = lexicon.pattern("tp_hit")
STOP_HIT = lexicon.pattern("stop_hit")
_CHECK = re.compile(r"^[\s:：\-–—.!]*[✅✔☑✔️]")
# "close 50%", "закрыть 50 %", or a price then the share in brackets: "Скинул часть по 0,0765 (30%)"
_PERCENT_AFTER = re.compile(
    r"^[^\d\n%]{0,14}?(?P<p>\d{1,3}(?:\.\d+)?)\s*%|^[^\d\n%]{0,20}?\d[\d.]*\s*\(\s*(?P<q>\d{1,3}(?:\.\d+)?)\s*%\s*\)"
)
_PERCENT_BEFORE = re.compile(r"(?P<p>\d{1,3}(?:\.\d+)?)\s*%[^\d\n%]{0,6}$")
_LEVEL_GAP = re.compile(r"[+\-−]\s*$|(?<!\w)(?:at|with|в|по|на|con|com|ile|với)(?!\w)|@", _I)
_NEGATIVE_PERCENT = re.compile(r"(?<![\d.])-\s?\d+(?:\.\d+)?\s*%")
_CLAUSE_END = re.compile(r"[\n。！!;；,]|\s(?:and|then|и|và|y|e|ve|و)\s", _I)
_TOWARDS = re.compile(r"\s*(?:(?:moved\s+)?to|на|в|至|到|lên|về|→|->|=>)(?![A-Za-zА-Яа-я])", _I)
_TOWARDS_ANY = re.compile(r"(?<![A-Za-zА-Яа-я])(?:to|на|до|lên|về|para|a)(?![A-Za-zА-Яа-я])|至|到|→|->|=>", _I)
# a post that is only "BE" / "B/E" (with a coin or marks): break-even; only "止盈" / "TP": take profit, how much?
_BE_ALONE = re.compile(r"^\W*(?:[#$]?[A-Z0-9]{2,12}\W+)?(?:BE|B/E)\W*$")
_TP_ALONE = re.compile(r"^\W*(?:[#$]?[A-Za-z0-9]{2,12}\W+)?(?:止盈|止贏|take\s*profit|tp)\W*$", _I)
_CJK = re.compile(r"[\u4e00-\u9fff\uac00-\ud7af]")


_NEGATION = re.compile(r"(?:" + lexicon.alternation(lexicon.NEGATIONS) + r")[^\n.!?。！;；]{0,12}$", _I)


def _negated(text: str, start: int) -> bool:
    """A negation shortly before ``start`` on the same clause: "don't close yet", "不要平仓", "не закрываем"."""
    return bool(_NEGATION.search(text[max(0, start - 16) : start]))


def _first(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The first match of a cue that is not negated (nor, for a close, a candle close)."""
    return next((match for match in pattern.finditer(text)
                 if not _negated(text, match.start()) and not (pattern is CLOSE and _candle_close(text, match))), None)


# "a daily close below 60000", "4H close above", "закрытие свечи ниже": a candle's close, not a position's
_CANDLE_AFTER = re.compile(
    r"^\W{0,3}(?:\w+\s+){0,2}?(?:below|above|under|over|ниже|выше|下方|上方|altında|üstünde)", _I
)
_CANDLE_BEFORE = re.compile(r"(?:\b(?:daily|weekly|monthly|candle|the|a|\d{1,2}\s?[hHdDwW]|h\d|d1|w1)|свеч\w*)\W{0,2}$",
                            _I)


# "if it loses 3000, close", "если закрепимся ниже, выходим", "如果跌破就平仓": an exit on a condition
_IF = re.compile(lexicon.alternation((
    "if", "when", "once", "in case", "если", "когда", "如果", "若是", "假如", "nếu", "khi", "eğer", "si", "jika",
    "kalau", "إذا", "اگر", "만약",
)), _I)


def conditional(text: str) -> bool:
    """Whether a post's instruction waits for a condition (an "if", or a candle close beyond a level)."""
    return bool(_IF.search(text)) or any(_candle_close(text, match) for match in CLOSE.finditer(text))


def _candle_close(text: str, match: re.Match[str]) -> bool:
    after = text[match.end() : match.end() + 30]
    before = text[max(0, match.start() - 12) : match.start()]
    return bool(_CANDLE_AFTER.search(after) or _CANDLE_BEFORE.search(before))


@dataclass
class Cues:
    readings: list[ParsedMessage] = field(default_factory=list)
    strong: bool = False


def _clause_after(text: str, end: int, limit: int = 40) -> str:
    window = text[end : end + limit]
    stop = _CLAUSE_END.search(window)
    return window[: stop.start()] if stop else window


def _first_price(span: str) -> Decimal | None:
    """The first number of a span when it is a price (not a percentage, not a target's number)."""
    for match in NUMBER.finditer(span):
        after = span[match.end() : match.end() + 2]
        if "%" in after:
            return None
        before = span[max(0, match.start() - 6) : match.start()]
        if TARGET_WORD.search(before) and re.search(r"[A-Za-zА-Яа-я止盈标]\s*$", before):
            return None
        value = to_decimal(match.group("num"))
        return value if value is not None and value > 0 else None
    return None


def _percent_near(text: str, match: re.Match[str]) -> Decimal | None:
    after = _PERCENT_AFTER.search(text[match.end() : match.end() + 40])
    raw = (after.group("p") or after.group("q")) if after else None
    if after is not None and raw is not None:
        # "closed at +35%", "закрыл в +5%": a result, not a share ("Скинул часть по 0,0765 (30%)" is a share)
        gap = after.group(0)[: after.start("p")] if after.group("p") else after.group(0)[: after.start("q")][-3:]
        if _LEVEL_GAP.search(gap):
            return None
    if raw is None:
        before = _PERCENT_BEFORE.search(text[max(0, match.start() - 12) : match.start()])
        raw = before.group("p") if before else None
    if raw is None:
        return None
    try:
        return Decimal(raw)
    except InvalidOperation:
        return None


def _tp_hit_index(text: str, used: list[tuple[int, int]]) -> int | None:
    for match in TP_INDEX.finditer(text):
        if any(start <= match.start() < end for start, end in used):
            continue
        index = tp_number(match)
        tail = text[match.end() : match.end() + 30].split("\n", 1)[0]
        head = text[max(0, match.start() - 20) : match.start()].rsplit("\n", 1)[-1]
        if _CHECK.search(tail):
            return index
        hit_after = TP_HIT.search(tail)
        if hit_after and not NUMBER.search(tail[: hit_after.start()]):
            return index
        if TP_HIT.search(head) and not NUMBER.search(head):
            return index
    return None


@dataclass
class _StopMove:
    kind: str  # "be" | "price" | "target" | "unknown"
    price: Decimal | None = None
    target: int | None = None
    explicit: bool = False  # a move word or a break-even word says it is a move
    span: tuple[int, int] = (0, 0)


def _stop_move(text: str) -> _StopMove | None:
    for match in STOP_WORD.finditer(text):
        if _negated(text, match.start()):
            continue  # "don't move the stop to entry yet"
        clause = _clause_after(text, match.end())
        before = text[max(0, match.start() - 16) : match.start()].rsplit("\n", 1)[-1]
        moved = bool(MOVE.search(clause) or MOVE.search(before) or _TOWARDS.match(clause))
        span = (match.start(), match.end() + len(clause))
        towards = list(_TOWARDS_ANY.finditer(clause))
        if towards and NUMBER.search(clause, towards[-1].end()) and NUMBER.search(clause[: towards[-1].start()]):
            # "SL moved from 63000 to 64100", "стоп с 63000 на 64100", "止损从63000上移至64100": the new place
            clause = " " * towards[-1].end() + clause[towards[-1].end() :]
            moved = True
        if BREAKEVEN.search(clause):
            return _StopMove("be", explicit=True, span=span)
        target = TP_INDEX.search(clause)
        # a target's own number ("на 1 тейк", "lên TP1") is never the new stop price
        price = _first_price(clause[: target.start()] + " " * len(target.group(0)) + clause[target.end() :]
                             if target else clause)
        price_at = NUMBER.search(clause[target.end() :] if target else clause)
        entry_word = ENTRY_PRICE.search(clause)
        if entry_word and (moved or entry_word.start() <= 3 or re.match(r"^\s*at\b", clause, _I)):
            return _StopMove("be", explicit=True, span=span)
        if target and moved and (price is None or price_at is not None):
            return _StopMove("target", target=tp_number(target), explicit=True, span=span)
        if price is not None:
            return _StopMove("price", price=price, explicit=moved, span=span)
    return None


def read_updates(
    text: str, *, symbol: str | None, signal_ref: str | None, context: ReadingContext | None = None
) -> Cues:
    cues = Cues()

    def add(kind: Kind, update_type: UpdateType, *, strong: bool, action: Action = Action.TRADE,
            confidence: float = 0.85, warnings: tuple[str, ...] = (), **extra: object) -> None:
        cues.readings.append(ParsedMessage(
            kind=kind, action=action, symbol=symbol, update_type=update_type, confidence=confidence,
            signal_ref=signal_ref, warnings=warnings, **extra,  # type: ignore[arg-type]
        ))
        cues.strong = cues.strong or strong

    # ---- the position is over: stopped out, every target done, closed in full --------------------------
    if _first(STOP_HIT, text) or kw.STOP_HIT.search(text) or _stop_reached(text):
        add(Kind.CLOSE, UpdateType.CLOSE_ALL, strong=True)
        return cues
    if (_first(ALL_DONE, text) or kw.ALL_TARGETS.search(text) or kw.CLOSED_STRONG.search(text)) and not KEEP.search(
        text
    ):
        add(Kind.CLOSE, UpdateType.CLOSE_ALL, strong=True)
        return cues

    move = _stop_move(text)
    used = [move.span] if move is not None and move.kind == "target" else []
    tp_index = _tp_hit_index(text, used)

    # ---- partial or full closes ---------------------------------------------------------------------------
    share: Decimal | None = None
    share_stated = False
    close = _first(CLOSE, text)
    for match in CLOSE.finditer(text):
        if _negated(text, match.start()) or _candle_close(text, match):
            continue
        share = _percent_near(text, match)
        if share is not None:
            share_stated = True
            break
    if share is None:
        for match in TARGET_WORD.finditer(text):
            after = re.match(r"\s*(?P<p>\d{1,3}(?:\.\d+)?)\s*%", text[match.end() : match.end() + 12])
            if after:
                share, share_stated = Decimal(after.group("p")), True
                break
    if share is None:
        for match in KEEP.finditer(text):
            kept = re.match(r"[^\d\n]{0,4}?(?P<p>\d{1,3}(?:\.\d+)?)\s*%", text[match.end() : match.end() + 12])
            if kept:
                share, share_stated = Decimal(100) - Decimal(kept.group("p")), True
                break
    if share is None:
        half = _first(CLOSE_HALF, text)
        if half and (close or TARGET_WORD.search(text) or _CJK.search(half.group(0))):
            share, share_stated = Decimal(50), True
    if share_stated and tp_index is None:
        # "тп1 фикс 50%": the target named beside a partial close is the one it closes at
        for match in TP_INDEX.finditer(text):
            labels_a_price = re.match(r"\s*[:：=]?\s*\d", text[match.end() :])
            if not labels_a_price and not any(a <= match.start() < b for a, b in used):
                tp_index = tp_number(match)
                break
    if share_stated and share is not None:
        if Decimal(0) < share <= Decimal(100):
            add(Kind.UPDATE, UpdateType.CLOSE_PARTIAL, strong=True, update_percent=share, tp_index=tp_index)
        else:
            add(Kind.UPDATE, UpdateType.CLOSE_PARTIAL, strong=True, action=Action.NOTIFY_ONLY, confidence=0.3,
                warnings=("partial close with an impossible percentage",))
    elif tp_index is not None:
        add(Kind.UPDATE, UpdateType.TP_HIT, strong=True, tp_index=tp_index)
    elif close and PARTIAL.search(text):
        add(Kind.UPDATE, UpdateType.CLOSE_PARTIAL, strong=True, action=Action.NOTIFY_ONLY, confidence=0.4,
            warnings=("partial close without its share",))

    # ---- the stop ------------------------------------------------------------------------------------------
    if move is not None:
        if move.kind == "be":
            if not (close and not share_stated):  # "closed at break-even" is a close, not a stop move
                add(Kind.UPDATE, UpdateType.MOVE_SL_TO_BE, strong=True, confidence=0.8)
        elif move.kind == "target":
            targets = context.take_profits if context is not None else ()
            if move.target is not None and 0 < move.target <= len(targets):
                add(Kind.UPDATE, UpdateType.SET_STOP, strong=True, update_price=targets[move.target - 1],
                    warnings=(f"stop moved to target {move.target} of the replied-to signal",))
            else:
                add(Kind.UPDATE, UpdateType.SET_STOP, strong=True, action=Action.NOTIFY_ONLY, confidence=0.4,
                    warnings=(f"stop moved to target {move.target}; its price is not in the post",))
        elif move.kind == "price" and move.price is not None:
            if move.explicit or context is not None:
                add(Kind.UPDATE, UpdateType.SET_STOP, strong=move.explicit, update_price=move.price)
            else:
                add(Kind.UPDATE, UpdateType.SET_STOP, strong=False, action=Action.NOTIFY_ONLY, confidence=0.4,
                    update_price=move.price, warnings=("a stop price without a move word; not applied",))
    elif (_first(BREAKEVEN, text) or _BE_ALONE.match(text)) and not (close and not share_stated):
        add(Kind.UPDATE, UpdateType.MOVE_SL_TO_BE, strong=True, confidence=0.75)
    elif MOVE.search(text) and re.search(r"(?:移至|移到|上移|下移|至|to)\s*\d", text) and not cues.readings:
        add(Kind.UPDATE, UpdateType.SET_STOP, strong=False, action=Action.NOTIFY_ONLY, confidence=0.3,
            warnings=("a move without saying what moves; not applied",))

    # ---- fills, adds, cancels, the bare close ------------------------------------------------------------
    if FILLED.search(text) or kw.ENTRY_FILLED.search(text):
        add(Kind.UPDATE, UpdateType.ENTRY_FILLED, strong=True)
    add_word = _first(ADD, text)
    if add_word and not re.match(r"\s*[:：]", text[add_word.end() :]):  # "DCA: 2.7-1.5" is a label of a plan
        cues.readings.append(ParsedMessage(
            kind=Kind.UPDATE, action=Action.NOTIFY_ONLY, symbol=symbol, confidence=0.4, signal_ref=signal_ref,
            warnings=("adds to a position: not applied automatically",),
        ))
        cues.strong = True
    cancel = _first(CANCEL, text)
    if cancel:
        # "cancel TP", "cancel the stop loss", "取消止盈": not the entries; what then? the user decides
        nearby = text[cancel.end() : cancel.end() + 24].split("\n", 1)[0]
        of_exits = re.match(r"\s*(?:(?:the|all|your|remaining|our)\s+)*(?:" + TARGET_WORD.pattern + "|"
                            + STOP_WORD.pattern + ")", nearby, _I)
        if of_exits:
            cues.readings.append(ParsedMessage(
                kind=Kind.UPDATE, action=Action.NOTIFY_ONLY, symbol=symbol, confidence=0.3, signal_ref=signal_ref,
                warnings=("cancels targets or the stop, not the entries: not applied",),
            ))
        else:
            add(Kind.CANCEL, UpdateType.CANCEL_ENTRIES, strong=False, confidence=0.7)
    whole = _first(ALL_DONE, text) or close
    if whole and not share_stated and tp_index is None and KEEP.search(text) and not any(
        r.update_type is UpdateType.CLOSE_PARTIAL for r in cues.readings
    ):
        # "take it all off ... the remaining position stays": a partial close whose share is not said
        add(Kind.UPDATE, UpdateType.CLOSE_PARTIAL, strong=True, action=Action.NOTIFY_ONLY, confidence=0.4,
            warnings=("partial close without its share",))
    if close and not share_stated and tp_index is None and not any(
        r.update_type is UpdateType.CLOSE_PARTIAL for r in cues.readings
    ):
        cues.readings = [r for r in cues.readings if r.update_type is not UpdateType.MOVE_SL_TO_BE]
        add(Kind.CLOSE, UpdateType.CLOSE_ALL, strong=False, confidence=0.7)
    if not cues.readings and _TP_ALONE.match(text):
        add(Kind.UPDATE, UpdateType.CLOSE_PARTIAL, strong=False, action=Action.NOTIFY_ONLY, confidence=0.3,
            warnings=("take profit without saying how much or at which target",))
    if not cues.readings and STOP_WORD.search(text) and _NEGATIVE_PERCENT.search(text) and not _has_price(text):
        add(Kind.CLOSE, UpdateType.CLOSE_ALL, strong=False, action=Action.NOTIFY_ONLY, confidence=0.4,
            warnings=("reports a stop-out; the exchange stop closes the position",))
    if conditional(text):
        cues.readings = [
            replace(r, action=Action.NOTIFY_ONLY, warnings=(*r.warnings, "an instruction on a condition"))
            if r.action is Action.TRADE and r.update_type in _CONDITIONAL_TYPES else r
            for r in cues.readings
        ]
    return cues


_CONDITIONAL_TYPES = (UpdateType.CLOSE_ALL, UpdateType.CLOSE_PARTIAL, UpdateType.SET_STOP, UpdateType.MOVE_SL_TO_BE,
                      UpdateType.CANCEL_ENTRIES)


def _stop_reached(text: str) -> bool:
    """A stop word with a "reached" word right after it ("stop loss triggered", "стоп сработал", "SL chạm")."""
    for match in STOP_WORD.finditer(text):
        tail = text[match.end() : match.end() + 14].split("\n", 1)[0]
        hit = TP_HIT.search(tail)
        if hit and not re.search(r"\d|\b(?:to|at|на|в)\b", tail[: hit.start()], _I):
            return True
    return False


def _has_price(text: str) -> bool:
    stripped = re.sub(r"\d+(?:\.\d+)?\s*%", " ", text)
    return bool(NUMBER.search(stripped))


def against_context(readings: list[ParsedMessage], sides: list[Side], context: ReadingContext | None
                    ) -> list[ParsedMessage]:
    """A reply whose text names the other side than the signal it replies to is doubted, never applied."""
    if context is None or context.side is None or len(sides) != 1 or sides[0] is context.side:
        return readings
    why = f"the post says {sides[0].value} but replies to a {context.side.value} signal"
    return [replace(r, action=Action.NOTIFY_ONLY, warnings=(*r.warnings, why)) if r.action is Action.TRADE else r
            for r in readings]
