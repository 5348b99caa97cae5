"""Anti-hallucination rules for a model's answer: pure functions, no I/O.

What a model says is a claim; only what the post backs is kept. For every field it fills, the answer
quotes its evidence (``schema.Evidence``):
- ``text`` evidence must be found in the post's text, ``image`` evidence in the image transcript (an
  independent OCR text when the caller has one, else the answer's own verbatim ``image_text``), ``both``
  in either. Matching ignores case and whitespace and treats a decimal comma as a point.
- The quote must contain the value (each price as a number, the side as a direction word, the coin's
  name, the leverage), the value must appear as a number in the source too (not inside a word like
  ``TP1``), and a stop's quote must name a stop.
- Each number must stand after its own field's label in the source (``field_numbers``): an entry after an
  entry label, a direction word or a market word, a stop after a stop label, a target after a target label, a
  leverage after its label or as ``20x``. A number that stands after a stop, target or leverage label anywhere
  in the source is never an entry, whatever the quote: an answer cannot take a target for the entry.
A value that fails is dropped and named in the warnings, never corrected. A value that contradicts the
rules' reading of the same post is dropped and named too.

A reading built from the answer trades only when every key field (coin, side, stop, and the entries
unless it is a market entry) survived, none is in ``uncertain_fields``, the model's ``confidence`` is at
least the threshold, ``safety`` is ``ok``, and the plan passes the same sanity limits as the rules
parser (stop on the right side and not too far, targets beyond the entries and in order).

Limit: an image transcript written by the model itself can only catch an answer that is inconsistent
with its own reading of the picture, not a consistent fabrication; hence ``ocr_text`` when available.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal

from parsing.rules import keywords as kw
from parsing.rules import parser as rules_parser
from parsing.rules.normalize import normalize
from parsing.rules.numbers import find_numbers, split_leverage, split_percentages
from parsing.rules.symbols import find_symbols, normalize_symbol
from parsing.signals import Action, Kind, ParsedMessage, Side
from parsing.vlm.schema import KEY_FIELDS, Evidence, VlmAnswer

_INVISIBLE = re.compile(r"[\s\u200b-\u200f\u2060\ufeff]+")
_DECIMAL_COMMA = re.compile(r"(?<=\d),(?=\d)")


def normalize_for_match(text: str) -> str:
    """Case, width, whitespace and decimal-comma insensitive form used to find a quote in a source."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _INVISIBLE.sub("", _DECIMAL_COMMA.sub(".", folded))


def quote_found(quote: str, source: str) -> bool:
    needle = normalize_for_match(quote)
    return bool(needle) and needle in normalize_for_match(source)


def _normalized(text: str) -> str:
    """The text as the rules read it (digits of every script, 万 / k multipliers, decimal commas decided per text),
    so that a value written "6万2" or "112,5k" is the number the model gives."""
    try:
        return normalize(text)
    except Exception:  # the rules' normalization must never break a check: the plain form is stricter
        return unicodedata.normalize("NFKC", text)


def _numbers(text: str) -> list[Decimal]:
    return find_numbers(_normalized(text))


# --- which field each number of a text belongs to ------------------------------------------------------------
_FIELD_OF_LABEL = {"entry": "entries", "sl": "stop_loss", "tp": "take_profits", "lev": "leverage"}
_ENUMERATOR = re.compile(r"^\s*(?:\d{1,2}\s*[).]\s+|[-•*➖▪️]+\s*)")
_LETTERS = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class FieldNumbers:
    """The numbers of a text by the field whose label they stand after (``entries`` also after a direction or
    market word); a number after no label is in none."""

    by_field: dict[str, frozenset[Decimal]]

    def of(self, name: str) -> frozenset[Decimal]:
        return self.by_field.get(name, frozenset())

    def elsewhere(self, name: str) -> frozenset[Decimal]:
        """Numbers that stand after the label of another field than ``name``."""
        return frozenset().union(*(values for field_name, values in self.by_field.items() if field_name != name))

    @property
    def labelled(self) -> bool:
        return any(self.by_field.values())


def _marks(line: str) -> list[tuple[int, int, str]]:
    """(start, end, field) of every label, direction and market word of a line, overlaps resolved to the first."""
    found = [(m.start(), m.end(), _FIELD_OF_LABEL[m.lastgroup or "entry"]) for m in kw.LABEL.finditer(line)
             if m.end() > m.start()]
    for pattern in (kw.DIRECTION_LONG, kw.DIRECTION_SHORT, kw.MARKET):
        found += [(m.start(), m.end(), "entries") for m in pattern.finditer(line) if m.end() > m.start()]
    found.sort()
    kept: list[tuple[int, int, str]] = []
    for mark in found:
        if kept and mark[0] < kept[-1][1]:
            continue  # "buy zone" is one entry label, not a direction inside a label
        kept.append(mark)
    return kept


def field_numbers(text: str) -> FieldNumbers:
    """Each number of ``text`` under the field label it follows on its line, or on a line above when only
    numbers stand between (a target list written one per line)."""
    fields: dict[str, set[Decimal]] = {name: set() for name in _FIELD_OF_LABEL.values()}
    current: str | None = None
    for raw_line in _normalized(text).split("\n"):
        line, levels = split_leverage(raw_line)
        fields["leverage"].update(Decimal(level) for level in levels)
        line = _ENUMERATOR.sub(" ", line)
        marks = _marks(line)
        if not marks:
            if current is not None and not _LETTERS.search(line):
                fields[current].update(_numbers(split_percentages(line)[0]))
            elif line.strip():
                current = None
            continue
        for index, (_, end, name) in enumerate(marks):
            stop = marks[index + 1][0] if index + 1 < len(marks) else len(line)
            fields[name].update(_numbers(split_percentages(line[end:stop])[0]))
            current = name
    return FieldNumbers({name: frozenset(values) for name, values in fields.items()})


@dataclass
class ModelFields:
    """The answer's values that survived the evidence rules, and what was dropped or doubted."""

    kind: Kind
    symbol: str | None = None
    side: Side | None = None
    entries: list[Decimal] = field(default_factory=list)
    market_entry: bool = False
    stop_loss: Decimal | None = None
    take_profits: list[Decimal] = field(default_factory=list)
    leverage: int | None = None
    warnings: list[str] = field(default_factory=list)
    blocking: list[str] = field(default_factory=list)  # reasons this reading must not trade

    def has(self, name: str) -> bool:
        value = getattr(self, name)
        return bool(value) if isinstance(value, (list, bool)) else value is not None

    def clear(self, name: str) -> None:
        value = getattr(self, name)
        setattr(self, name, [] if isinstance(value, list) else False if isinstance(value, bool) else None)

    def flag(self, message: str, *, blocking: bool) -> None:
        self.warnings.append(message)
        if blocking:
            self.blocking.append(message)


class _Sources:
    def __init__(self, text: str, image_text: str, image_sent: bool) -> None:
        self.text = text
        self.image = image_text if image_sent else ""

    def haystack(self, evidence: Evidence) -> str | None:
        """Where a quote must be found; None when it names an image that was not sent."""
        if evidence.source == "text":
            return self.text
        if not self.image:
            return None
        return self.image if evidence.source == "image" else f"{self.text}\n{self.image}"


def verify_answer(answer: VlmAnswer, *, text: str, image_sent: bool, ocr_text: str | None = None) -> ModelFields:
    """Keep each value of ``answer`` only if its evidence is found in the post and contains the value."""
    sources = _Sources(text or "", ocr_text if ocr_text is not None else answer.image_text, image_sent)
    fields = ModelFields(kind=Kind(answer.kind))

    def evidence_for(name: str) -> tuple[str, str] | None:
        evidence = answer.evidence.get(name)  # type: ignore[call-overload]
        if evidence is None:
            fields.flag(f"model {name} dropped: no evidence quoted", blocking=name in KEY_FIELDS)
            return None
        haystack = sources.haystack(evidence)
        if haystack is None:
            fields.flag(f"model {name} dropped: evidence cites an image that was not read",
                        blocking=name in KEY_FIELDS)
            return None
        if not quote_found(evidence.quote, haystack):
            fields.flag(f"model {name} dropped: its evidence is not in the post", blocking=name in KEY_FIELDS)
            return None
        return evidence.quote, haystack

    if answer.symbol is not None:
        symbol = normalize_symbol(answer.symbol)
        found = evidence_for("symbol")
        if symbol is None:
            fields.flag("model symbol dropped: not a USDT-M contract name", blocking=True)
        elif found is not None:
            named = _coins(found[1])
            if not _names_symbol(found[0], symbol):
                fields.flag(f"model symbol dropped: evidence does not name {symbol}", blocking=True)
            elif len(named) > 1:
                # the rules refuse a post naming two coins; a model choosing one of them is a guess
                fields.flag(f"model symbol dropped: the post names several coins ({', '.join(sorted(named))})",
                            blocking=True)
            else:
                fields.symbol = symbol
    if answer.side is not None and (found := evidence_for("side")) is not None:
        pattern = kw.DIRECTION_LONG if answer.side == "long" else kw.DIRECTION_SHORT
        if pattern.search(found[0]):
            fields.side = Side(answer.side)
        else:
            fields.flag(f"model side dropped: evidence has no {answer.side} wording", blocking=True)
    if answer.market_entry and (found := evidence_for("market_entry")) is not None:
        if kw.MARKET.search(found[0]):
            fields.market_entry = True
        else:
            fields.flag("model market entry dropped: evidence has no market wording", blocking=True)
    if answer.entries and (found := evidence_for("entries")) is not None:
        kept = _backed(answer.entries, *found)
        for value in answer.entries:
            if value not in kept:
                # a plan with one entry less is another plan: never traded as is
                fields.flag(f"model entry {value} dropped: not in its evidence", blocking=True)
            elif (problem := _misplaced(value, "entries", *found)) is not None:
                kept.remove(value)
                fields.flag(f"model entry {value} dropped: {problem}", blocking=True)
        fields.entries = kept
    if answer.stop_loss is not None and (found := evidence_for("stop_loss")) is not None:
        quote, haystack = found
        if not _names_stop(quote):
            fields.flag("model stop_loss dropped: its evidence does not name a stop", blocking=True)
        elif not _backed([answer.stop_loss], quote, haystack):
            fields.flag(f"model stop_loss {answer.stop_loss} dropped: not in its evidence", blocking=True)
        elif (problem := _misplaced(answer.stop_loss, "stop_loss", quote, haystack)) is not None:
            fields.flag(f"model stop_loss {answer.stop_loss} dropped: {problem}", blocking=True)
        else:
            fields.stop_loss = answer.stop_loss
    if answer.take_profits and (found := evidence_for("take_profits")) is not None:
        kept = _backed(answer.take_profits, *found)
        for value in answer.take_profits:
            if value not in kept:
                fields.flag(f"model target {value} dropped: not in its evidence", blocking=False)
            elif (problem := _misplaced(value, "take_profits", *found)) is not None:
                kept.remove(value)
                fields.flag(f"model target {value} dropped: {problem}", blocking=False)
        fields.take_profits = kept
    if answer.leverage is not None and (found := evidence_for("leverage")) is not None:
        quote, haystack = found
        levels = split_leverage(unicodedata.normalize("NFKC", quote))[1]
        if not (answer.leverage in levels or Decimal(answer.leverage) in _numbers(quote)):
            fields.flag(f"model leverage {answer.leverage} dropped: not in its evidence", blocking=False)
        elif (problem := _misplaced(Decimal(answer.leverage), "leverage", quote, haystack)) is not None:
            fields.flag(f"model leverage {answer.leverage} dropped: {problem}", blocking=False)
        else:
            fields.leverage = answer.leverage
    for name in answer.uncertain_fields:
        if name not in KEY_FIELDS and fields.has(name):
            # a number the model itself doubts is not used; key fields are handled by trust_problems
            fields.clear(name)
            fields.flag(f"model {name} dropped: the model is unsure of it", blocking=False)
    return fields


def _backed(values: list[Decimal], quote: str, haystack: str) -> list[Decimal]:
    """The values written as numbers both in the quote and in the source it was found in."""
    in_quote, in_source = _numbers(quote), _numbers(haystack)
    return [value for value in values if value in in_quote and value in in_source]


_LABEL_WORDS = {"entries": "an entry label, direction or market word", "stop_loss": "a stop label",
                "take_profits": "a target label", "leverage": "a leverage label"}


def _misplaced(value: Decimal, name: str, quote: str, haystack: str) -> str | None:
    """Why ``value`` cannot be the ``name`` field by where it stands in the post (None: it can)."""
    source = field_numbers(haystack)
    if value not in source.of(name):
        return f"it does not stand after {_LABEL_WORDS[name]} in the post"
    if name == "entries" and value in source.elsewhere(name):
        return "it is a stop, target or leverage in the post"
    quoted = field_numbers(quote)
    if quoted.labelled and value not in quoted.of(name):
        return f"its evidence does not give it after {_LABEL_WORDS[name]}"
    return None


def _coins(source: str) -> set[str]:
    try:
        return set(find_symbols(_normalized(source))[0])
    except Exception:  # the rules' coin finder failing leaves the quote check alone
        return set()


def _names_symbol(quote: str, symbol: str) -> bool:
    if symbol in find_symbols(quote)[0]:
        return True
    base = symbol.removesuffix("USDT")
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(base)}(?![A-Za-z])", quote, re.IGNORECASE) is not None


def _names_stop(quote: str) -> bool:
    return any(match.lastgroup == "sl" for match in kw.LABEL.finditer(quote))


# --- contradictions with the rules -----------------------------------------------------------------------
def contradictions(fields: ModelFields, rules: ParsedMessage | None) -> list[str]:
    """Fields where the model and the rules both read a value and the values differ."""
    if rules is None:
        return []
    found: list[str] = []
    pairs: list[tuple[str, object, object]] = [
        ("symbol", fields.symbol, rules.symbol),
        ("side", fields.side, rules.side),
        ("entries", sorted(fields.entries), sorted(rules.entries)),
        ("stop_loss", fields.stop_loss, rules.stop_loss),
        ("take_profits", list(fields.take_profits), list(rules.take_profits)),
        ("leverage", fields.leverage, rules.leverage),
    ]
    for name, model_value, rules_value in pairs:
        if model_value in (None, []) or rules_value in (None, []):
            continue
        if model_value != rules_value:
            found.append(name)
    return found


def drop_contradictions(fields: ModelFields, rules: ParsedMessage | None) -> list[str]:
    """Drop (and flag) every model value that contradicts the rules; returns the key fields among them."""
    names = contradictions(fields, rules)
    for name in names:
        fields.clear(name)
        fields.flag(f"model {name} dropped: it contradicts the rules' reading", blocking=name in KEY_FIELDS)
    return [name for name in names if name in KEY_FIELDS]


# --- trust and sanity --------------------------------------------------------------------------------------
def trust_problems(answer: VlmAnswer, threshold: float) -> list[str]:
    """Why the model's answer as a whole cannot make a trade (empty: it can)."""
    problems: list[str] = []
    uncertain = [name for name in answer.uncertain_fields if name in KEY_FIELDS]
    if uncertain:
        problems.append("model is uncertain about " + ", ".join(uncertain))
    if answer.confidence < threshold:
        problems.append(f"model confidence {answer.confidence:.2f} is below the threshold {threshold:.2f}")
    if answer.safety.status != "ok":
        reason = f": {answer.safety.reason[:120]}" if answer.safety.reason else ""
        problems.append(f"model safety check says {answer.safety.status}{reason}")
    return problems


@dataclass(frozen=True)
class PlanCheck:
    take_profits: tuple[Decimal, ...]
    warnings: tuple[str, ...]
    doubts: tuple[str, ...]  # problems that forbid a trade


def check_plan(side: Side | None, entries: list[Decimal], market_entry: bool, stop: Decimal | None,
               take_profits: list[Decimal]) -> PlanCheck:
    """The rules parser's sanity limits applied to a plan read by other means."""
    warnings: list[str] = []
    doubts: list[str] = []
    if entries and max(entries) / min(entries) > rules_parser._MAX_ENTRY_SPREAD:
        doubts.append("entry prices implausibly far apart")
    if stop is not None and side is not None and entries:
        if side is Side.LONG and not stop < min(entries):
            doubts.append("stop loss is not below every entry of a long")
        elif side is Side.SHORT and not stop > max(entries):
            doubts.append("stop loss is not above every entry of a short")
        elif abs(stop - entries[0]) / entries[0] > rules_parser._MAX_STOP_DISTANCE:
            doubts.append("stop loss implausibly far from the entry")
    kept: list[Decimal] = []
    for target in take_profits:
        reason = _target_problem(side, entries, stop, kept, target)
        if reason:
            warnings.append(f"target {target} dropped: {reason}")
        else:
            kept.append(target)
    if market_entry and stop is not None and side is not None:
        if not kept:
            doubts.append("market entry without targets: stop side cannot be checked")
        elif (side is Side.LONG and stop >= min(kept)) or (side is Side.SHORT and stop <= max(kept)):
            doubts.append("stop loss on the wrong side of the targets")
    return PlanCheck(tuple(kept), tuple(warnings + doubts), tuple(doubts))


def _target_problem(side: Side | None, entries: list[Decimal], stop: Decimal | None, kept: list[Decimal],
                    target: Decimal) -> str | None:
    reach = rules_parser._MAX_TP_REACH
    if side is Side.LONG:
        if entries and target <= max(entries):
            return "not above the entries"
        if entries and target > max(entries) * reach:
            return "implausibly far above the entries"
        if kept and target < kept[-1]:
            return "out of order"
        if stop is not None and target <= stop:
            return "on the stop's side"
    elif side is Side.SHORT:
        if entries and target >= min(entries):
            return "not below the entries"
        if entries and target * reach < min(entries):
            return "implausibly far below the entries"
        if kept and target > kept[-1]:
            return "out of order"
        if stop is not None and target >= stop:
            return "on the stop's side"
    step = rules_parser._MAX_TP_STEP
    if kept and (target > kept[-1] * step or target * step < kept[-1]):
        return "implausible beside the other targets"
    return None


def missing_key_fields(symbol: str | None, side: Side | None, entries: list[Decimal] | tuple[Decimal, ...],
                       market_entry: bool, stop: Decimal | None) -> list[str]:
    missing = [name for name, value in (("symbol", symbol), ("side", side), ("stop_loss", stop)) if value is None]
    if not entries and not market_entry:
        missing.append("entries")
    return missing


# --- the model's reading ---------------------------------------------------------------------------------
def model_reading(answer: VlmAnswer, *, text: str, threshold: float, image_sent: bool,
                  ocr_text: str | None = None, rules: ParsedMessage | None = None) -> ParsedMessage:
    """The answer as a ParsedMessage: every rule above applied; ``trade`` only when nothing is in doubt."""
    fields = verify_answer(answer, text=text, image_sent=image_sent, ocr_text=ocr_text)
    drop_contradictions(fields, rules)
    return build_reading(fields, answer, threshold=threshold, source="vlm")


def build_reading(fields: ModelFields, answer: VlmAnswer, *, threshold: float, source: str,
                  extra_doubts: list[str] | None = None) -> ParsedMessage:
    """A reading from checked fields: notify_only unless every gate passes."""
    warnings = list(fields.warnings)
    warnings.extend(f"model warning: {text[:160]}" for text in answer.extraction_warnings)
    doubts = [*fields.blocking, *(extra_doubts or [])]
    if fields.kind is not Kind.ENTRY:
        # the model's reading of an update is shown to the user, never applied
        return ParsedMessage(
            kind=fields.kind, action=Action.IGNORE if fields.kind is Kind.NOISE else Action.NOTIFY_ONLY,
            symbol=fields.symbol, confidence=round(answer.confidence, 3),
            warnings=tuple(warnings + ([] if fields.kind is Kind.NOISE else ["update read by the model only"])),
            source=source,
        )
    plan = check_plan(fields.side, fields.entries, fields.market_entry, fields.stop_loss, fields.take_profits)
    warnings.extend(plan.warnings)
    doubts.extend(plan.doubts)
    problems = trust_problems(answer, threshold)
    warnings.extend(problems)
    missing = missing_key_fields(fields.symbol, fields.side, fields.entries, fields.market_entry, fields.stop_loss)
    if missing:
        warnings.append("missing " + ", ".join(missing))
    trade = not (doubts or problems or missing)
    return ParsedMessage(
        kind=Kind.ENTRY,
        action=Action.TRADE if trade else Action.NOTIFY_ONLY,
        symbol=fields.symbol,
        side=fields.side,
        entries=tuple(fields.entries),
        market_entry=fields.market_entry and not fields.entries,
        stop_loss=fields.stop_loss,
        take_profits=plan.take_profits,
        leverage=fields.leverage,
        confidence=round(answer.confidence, 3),
        warnings=tuple(dict.fromkeys(warnings)),
        source=source,
    )
