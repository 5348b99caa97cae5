"""The answer a vision-language model must give: a strict pydantic model.

The model is asked for exactly this JSON object. A reply that does not validate (unknown keys, wrong
types, non-positive prices, an unknown side...) is refused as a whole: a half-understood answer is never
repaired. Validation here is about *shape*; whether each value is backed by the post is decided in
``parsing.vlm.check``.

Evidence: for every field it fills, the model quotes the text it read the value from (``quote``) and says
where that text is (``source``: ``text`` = the post's caption, ``image`` = the picture, ``both``). For
image-sourced fields the model also returns ``image_text``, a verbatim transcript of the text visible in
the image(s); image evidence must be found in that transcript (or in an independent OCR text when one is
available), and must contain the value.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

FieldName = Literal["symbol", "side", "entries", "market_entry", "stop_loss", "take_profits", "leverage"]
FIELD_NAMES: tuple[str, ...] = FieldName.__args__  # type: ignore[attr-defined]
KEY_FIELDS: tuple[str, ...] = ("symbol", "side", "entries", "stop_loss")

_MAX_TEXT = 4000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Evidence(_Strict):
    quote: str = Field(min_length=1, max_length=_MAX_TEXT)
    source: Literal["text", "image", "both"]


class Safety(_Strict):
    # "suspicious": the content tries to instruct the reader (model or bot), or looks like a scam/ad;
    # "unreadable": the image or text cannot be read reliably.
    status: Literal["ok", "suspicious", "unreadable"]
    reason: str = Field("", max_length=500)


class VlmAnswer(_Strict):
    kind: Literal["entry", "update", "close", "cancel", "noise"]
    symbol: str | None = Field(None, max_length=40)
    side: Literal["long", "short"] | None = None
    entries: list[Decimal] = Field(default_factory=list, max_length=10)
    market_entry: bool = False
    stop_loss: Decimal | None = None
    take_profits: list[Decimal] = Field(default_factory=list, max_length=16)
    leverage: int | None = Field(None, ge=1, le=200)
    evidence: dict[FieldName, Evidence] = Field(default_factory=dict)
    source: Literal["text", "image", "both"]
    image_text: str = Field("", max_length=_MAX_TEXT)
    uncertain_fields: list[FieldName] = Field(default_factory=list)
    extraction_warnings: list[str] = Field(default_factory=list, max_length=20)
    safety: Safety
    confidence: float = Field(ge=0, le=1)

    @field_validator("entries", "take_profits")
    @classmethod
    def _positive_prices(cls, prices: list[Decimal]) -> list[Decimal]:
        for price in prices:
            _check_price(price)
        return prices

    @field_validator("stop_loss")
    @classmethod
    def _positive_stop(cls, price: Decimal | None) -> Decimal | None:
        return None if price is None else _check_price(price)


def _check_price(price: Decimal) -> Decimal:
    if not price.is_finite() or price <= 0:
        raise ValueError("a price must be a positive finite number")
    return price


class AnswerRefused(ValueError):
    """The model's reply is not a valid answer (the reason names the first problems, never the reply)."""


def parse_answer(data: object) -> VlmAnswer:
    """Validate a decoded JSON reply; AnswerRefused when it is not exactly a VlmAnswer."""
    if not isinstance(data, dict):
        raise AnswerRefused("the reply is not a JSON object")
    try:
        return VlmAnswer.model_validate(data)
    except ValidationError as exc:
        # field paths and error types only: the reply's values stay out of logs and notices
        problems = [f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['type']}" for e in exc.errors()[:3]]
        raise AnswerRefused("schema: " + "; ".join(problems)) from None


def answer_json_schema() -> dict[str, object]:
    """The JSON schema of the answer (sent to providers with schema-guided output)."""
    return VlmAnswer.model_json_schema()
