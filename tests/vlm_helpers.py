"""Answers a vision model might give, for the VLM tests (built as plain dicts, as the wire carries them)."""

from __future__ import annotations

import copy
from typing import Any

# A 1x1 PNG: real magic bytes, so the client sends it as image/png.
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6300010000000500010d0a2db40000000049454e44ae426082"
)
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01"

CHART_TEXT = "SOL/USDT LONG\nEntry: 150.5\nSL: 145.2\nTP1: 156\nTP2: 162"


def image_answer(image_text: str = CHART_TEXT, **overrides: Any) -> dict[str, Any]:
    """A SOLUSDT long read from the image, each field with image evidence in the transcript."""
    answer: dict[str, Any] = {
        "kind": "entry",
        "symbol": "SOL/USDT",
        "side": "long",
        "entries": [150.5],
        "market_entry": False,
        "stop_loss": 145.2,
        "take_profits": [156, 162],
        "leverage": None,
        "evidence": {
            "symbol": {"quote": "SOL/USDT", "source": "image"},
            "side": {"quote": "SOL/USDT LONG", "source": "image"},
            "entries": {"quote": "Entry: 150.5", "source": "image"},
            "stop_loss": {"quote": "SL: 145.2", "source": "image"},
            "take_profits": {"quote": "TP1: 156\nTP2: 162", "source": "image"},
        },
        "source": "image",
        "image_text": image_text,
        "uncertain_fields": [],
        "extraction_warnings": [],
        "safety": {"status": "ok", "reason": ""},
        "confidence": 0.93,
    }
    answer.update(copy.deepcopy(overrides))
    return answer


def text_answer(**overrides: Any) -> dict[str, Any]:
    """The same signal read from the post's text (the text must then contain CHART_TEXT)."""
    answer = image_answer(image_text="")
    answer["source"] = "text"
    for evidence in answer["evidence"].values():
        evidence["source"] = "text"
    answer.update(copy.deepcopy(overrides))
    return answer


def without_evidence(answer: dict[str, Any], field: str) -> dict[str, Any]:
    answer = copy.deepcopy(answer)
    del answer["evidence"][field]
    return answer
