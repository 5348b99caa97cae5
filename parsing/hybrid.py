"""Rules first, then the vision-language model where the rules cannot finish the job.

Which branch runs (``needs_model``):
- a text the rules read completely, or read as noise and nothing in it looks like a signal or an update,
  without an image: rules only, the model is never called;
- a text the rules read as noise that looks like a signal or an update
  (``looks_like_signal``: at least two of a coin, a field label, a direction, a market word, an update word,
  a number): the model reads it as text, under the same evidence rules (a model reading of an update is
  shown to the user, never applied);
- an entry the rules read but cannot trade (a key field missing or in doubt), or a post with an image:
  the model is asked, with the post's text as context and the image(s) when there are any;
- a post the rules read as a clear update (target hit, stop moved...) is not sent to the model: model
  readings of updates are never applied, so asking would only add delay;
- a text with several plans is not merged with one answer: the rules' readings stand.

How the answer is used (every check is in ``parsing.vlm.check``):
- the model's values are kept only with evidence found in the post; values contradicting the rules are
  dropped, and a contradiction on a key field (coin, side, entries, stop) makes the post notify_only,
  naming the field;
- a complete rules reading stays the reading (the model can only veto it: a key-field disagreement, or
  content it flags as suspicious); an incomplete one may be
  completed by the model's evidenced values, and trades only when the model passes every gate (key fields
  certain, confidence at least the threshold, safety ok) and the completed plan passes the sanity limits;
- any model failure (timeout, rate limit after retries, unreadable or invalid reply) makes the post
  notify_only with the reason: never a crash, never a trade.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

from parsing.posts import Post
from parsing.reading import MAX_TEXT_CHARS, OnError, clean_text, guarded
from parsing.rules import find_symbols, parse_text
from parsing.rules import keywords as kw
from parsing.rules.numbers import find_numbers
from parsing.signals import Action, Kind, ParsedMessage
from parsing.vlm.check import ModelFields, build_reading, drop_contradictions, verify_answer
from parsing.vlm.schema import KEY_FIELDS, VlmAnswer

log = logging.getLogger(__name__)

IMAGE_NOT_READ = "post has an image the rules cannot read"

# Rules warnings that only say a field is absent (the model may supply it), by the field that settles them.
_ABSENCE_WARNINGS = {
    "no usable coin name": "symbol",
    "no direction word; direction inferred from prices": "side",
    "no entry price": "entries",
    "no stop loss": "stop_loss",
    "stop given only as a percentage": "stop_loss",
}
# Rules warnings that describe what was done, not a doubt (the rules trade with them too), or that the
# plan check repeats on the completed plan.
_INFORMATIVE_PREFIXES = ("target ", "market wording beside", "one of several plans", "more than 16 targets",
                         "market entry without targets")


class Extractor(Protocol):
    def extract(self, image_bytes: bytes | None, text_context: str, *,
                more_images: Sequence[bytes] = ()) -> VlmAnswer: ...


# Update wording the rules know, in every language of their lexicon (names looked up so the reader's own modules
# can grow or rename them without breaking this).
def _update_patterns() -> tuple[re.Pattern[str], ...]:
    found = [pattern for name in ("TP_HIT_STRONG", "TP_HIT_CN", "ALL_TARGETS", "STOP_HIT", "CLOSED_STRONG",
                                  "ENTRY_FILLED", "CANCEL", "SET_STOP", "PARTIAL_CLOSE", "MOVE_TO_BE")
             if isinstance(pattern := getattr(kw, name, None), re.Pattern)]
    try:
        from parsing.rules import lexicon

        found += [lexicon.pattern(category) for category in ("tp_hit", "stop_hit", "close", "close_half", "all_done",
                                                             "cancel", "breakeven", "add", "filled")
                  if category in lexicon.CATEGORIES]
    except Exception:  # an older or reshaped lexicon: the keyword patterns above still serve
        log.debug("no lexicon update words", exc_info=True)
    return tuple(found)


_UPDATE_PATTERNS = _update_patterns()


def looks_like_signal(text: str) -> bool:
    """Whether a text the rules could not read still looks like a signal or an update: at least two of a coin,
    a field label, a direction, a market word, an update word and a number. Chatter ("good morning", "BTC to
    the moon") has at most one."""
    sample = unicodedata.normalize("NFKC", text[:4000])
    try:
        coin = bool(find_symbols(sample)[0])
    except Exception:  # the reader's coin finder; its failure only means "no coin seen"
        coin = False
    features = [
        coin,
        kw.LABEL.search(sample) is not None,
        kw.DIRECTION_LONG.search(sample) is not None or kw.DIRECTION_SHORT.search(sample) is not None,
        kw.MARKET.search(sample) is not None,
        any(pattern.search(sample) for pattern in _UPDATE_PATTERNS),
        bool(find_numbers(sample)),
    ]
    return sum(features) >= 2


def needs_model(readings: Sequence[ParsedMessage], has_images: bool, text: str = "") -> bool:
    """True when the model must be asked about a post the rules read as ``readings`` (``text``: the post's)."""
    entries = [r for r in readings if r.kind is Kind.ENTRY]
    if len(entries) > 1:
        return False
    if any(r.action is Action.TRADE for r in readings) and not entries:
        return False  # a clear update
    incomplete_entry = any(r.action is not Action.TRADE for r in entries)
    if incomplete_entry or has_images:
        return True
    # read as noise only: an update read with doubt stays the rules' (a model reading of an update is never applied)
    unread = all(r.kind is Kind.NOISE for r in readings)
    return unread and bool(text) and looks_like_signal(text)


def read_hybrid(
    text: str,
    images: Sequence[bytes],
    extractor: Extractor,
    *,
    threshold: float,
    has_image_urls: bool = False,
    ocr_text: str | None = None,
    parse: Callable[[str], list[ParsedMessage]] = parse_text,
) -> list[ParsedMessage]:
    """Every reading of one post (text + images), the model consulted only where it is needed."""
    text = clean_text(text)
    readings = guarded(parse)(text)
    if len(text) > MAX_TEXT_CHARS or not needs_model(readings, bool(images), text):
        return with_image_note(readings, has_image_urls=has_image_urls and not images)
    base = next((r for r in readings if r.kind is Kind.ENTRY), None)
    others = [r for r in readings if r is not base and r.action is not Action.IGNORE]
    try:
        answer = extractor.extract(images[0] if images else None, text or "", more_images=tuple(images[1:]))
    except Exception as exc:  # a model failure is a notice, never a crash and never a trade
        reason = getattr(exc, "reason", None) or type(exc).__name__
        log.warning("vision model failed (%s): post not traded", reason)
        return [*others, _failed(base, f"vision model failed ({reason}): {exc}")]
    try:
        return _use_answer(answer, base, others, text, images, threshold, ocr_text)
    except Exception as exc:  # a bug meeting an odd answer: the post is told, never traded, never a crash
        log.exception("checking the vision model's answer failed")
        return [*others, _failed(base, f"vision model answer could not be checked: {type(exc).__name__}")]


def _use_answer(answer: VlmAnswer, base: ParsedMessage | None, others: list[ParsedMessage], text: str,
                images: Sequence[bytes], threshold: float, ocr_text: str | None) -> list[ParsedMessage]:
    fields = verify_answer(answer, text=text or "", image_sent=bool(images), ocr_text=ocr_text)
    conflicts = drop_contradictions(fields, base)
    if base is not None and base.action is Action.TRADE:
        return [*others, _veto(base, fields, conflicts, answer)]
    if base is None:
        reading = build_reading(fields, answer, threshold=threshold, source="vlm")
        return [*others, reading] if reading.action is not Action.IGNORE or not others else others
    return [*others, _complete(base, fields, answer, conflicts, threshold)]


class HybridReader:
    """Reads posts with rules and model; ``load_images(post)`` gives the post's image bytes (maybe none), and
    ``ocr(images)``, when given, an independent transcript that image evidence is then checked against."""

    def __init__(self, extractor: Extractor, *, threshold: float,
                 load_images: Callable[[Post], list[bytes]] = lambda post: [],
                 ocr: Callable[[list[bytes]], str | None] | None = None,
                 parse: Callable[[str], list[ParsedMessage]] = parse_text,
                 on_parse_error: OnError | None = None) -> None:
        self.extractor = extractor
        self.threshold = threshold
        self.load_images = load_images
        self.ocr = ocr
        self.parse = guarded(parse)  # asking whether to call the model: a rules failure is counted by read()
        self._on_parse_error = on_parse_error
        self._parse_counted = guarded(parse, on_parse_error)

    def wants_model(self, post: Post, parse: Callable[[str], list[ParsedMessage]] | None = None) -> bool:
        """Cheap: whether reading this post may call the model (decides where the read runs). ``parse``: the rules
        to read this post with instead of the reader's own (e.g. with the context of the signal it replies to)."""
        rules = self.parse if parse is None else guarded(parse)
        return needs_model(rules(post.text or ""), bool(post.image_urls), post.text or "")

    def read(self, post: Post, parse: Callable[[str], list[ParsedMessage]] | None = None) -> list[ParsedMessage]:
        try:
            images = list(self.load_images(post)) if post.image_urls else []
        except Exception:  # an unreadable stored image: read as if it were not there, and say so
            log.exception("could not load the images of %s/%s", post.channel, post.message_id)
            images = []
        ocr_text = self.ocr(images) if self.ocr is not None and images else None
        return read_hybrid(post.text or "", images, self.extractor, threshold=self.threshold,
                           has_image_urls=bool(post.image_urls), ocr_text=ocr_text,
                           parse=self._parse_counted if parse is None else guarded(parse, self._on_parse_error))


def with_image_note(readings: list[ParsedMessage], *, has_image_urls: bool) -> list[ParsedMessage]:
    """An image nobody read, on a post that trades nothing, is worth telling the user about."""
    if has_image_urls and not any(r.action is Action.TRADE for r in readings):
        kept = [r for r in readings if r.action is not Action.IGNORE]  # "no signal in the text" says nothing
        readings = [*kept, ParsedMessage(kind=Kind.NOISE, action=Action.NOTIFY_ONLY, warnings=(IMAGE_NOT_READ,))]
    return readings or [ParsedMessage(kind=Kind.NOISE, action=Action.IGNORE)]


def _failed(base: ParsedMessage | None, why: str) -> ParsedMessage:
    if base is None:
        return ParsedMessage(kind=Kind.NOISE, action=Action.NOTIFY_ONLY, warnings=(why[:300],), source="hybrid")
    # A failed model read is never traded, not even with the default stop.
    return replace(base, action=Action.NOTIFY_ONLY, warnings=(*base.warnings, why[:300]), source="hybrid",
                   stop_missing=False)


def _disagreement(conflicts: list[str]) -> str:
    return "rules and vision model disagree on " + ", ".join(conflicts)


def _veto(base: ParsedMessage, fields: ModelFields, conflicts: list[str], answer: VlmAnswer) -> ParsedMessage:
    """A complete rules reading: the model can only stop it, never change it."""
    vetoes = [_disagreement(conflicts)] if conflicts else []
    if answer.safety.status == "suspicious":  # e.g. instructions aimed at the reader, or a scam
        vetoes.append("vision model flags the post as suspicious" + (f": {answer.safety.reason[:120]}"
                                                                        if answer.safety.reason else ""))
    if vetoes:
        return replace(base, action=Action.NOTIFY_ONLY, warnings=(*base.warnings, *vetoes), source="hybrid")
    notes = [w for w in fields.warnings if "contradicts" in w]
    return replace(base, warnings=(*base.warnings, *notes), source="hybrid")


def _complete(base: ParsedMessage, fields: ModelFields, answer: VlmAnswer, conflicts: list[str],
              threshold: float) -> ParsedMessage:
    """An incomplete rules reading completed with the model's evidenced values (rules values first)."""
    merged = ModelFields(
        kind=Kind.ENTRY,
        symbol=base.symbol or fields.symbol,
        side=base.side or fields.side,
        entries=list(base.entries) or fields.entries,
        market_entry=base.market_entry or (fields.market_entry and not base.entries),
        stop_loss=base.stop_loss if base.stop_loss is not None else fields.stop_loss,
        take_profits=list(base.take_profits) or fields.take_profits,
        leverage=base.leverage if base.leverage is not None else fields.leverage,
        warnings=list(fields.warnings),
        blocking=[b for b in fields.blocking if _blocks(b, base)],
    )
    doubts = [_disagreement(conflicts)] if conflicts else []
    for warning in base.warnings:
        settled_by = _ABSENCE_WARNINGS.get(warning)
        if settled_by is not None:
            if not merged.has(settled_by) or (settled_by == "side" and fields.side is None):
                doubts.append(warning)  # still absent (or still only inferred)
        elif warning.startswith(_INFORMATIVE_PREFIXES):
            merged.warnings.append(warning)
        else:
            doubts.append(warning)  # a doubt of the rules (two coins, several stops...) the model cannot lift
    reading = build_reading(merged, answer, threshold=threshold, source="hybrid", extra_doubts=doubts)
    return replace(reading, warnings=tuple(dict.fromkeys([*doubts, *reading.warnings])),
                   tp_percentages=base.tp_percentages if list(base.take_profits) == list(reading.take_profits)
                   else (), margin_mode=base.margin_mode, signal_ref=base.signal_ref)


def _blocks(message: str, base: ParsedMessage) -> bool:
    """A dropped model value blocks the trade unless the rules already hold that field."""
    for name in KEY_FIELDS:
        if message.startswith(f"model {name} ") or (name == "entries" and message.startswith("model entry ")):
            value = getattr(base, name)
            return not (value if isinstance(value, tuple) else value is not None)
    return True
