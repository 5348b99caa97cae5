"""A model's answer is a claim: only values the post backs survive, and doubt never trades."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from parsing.rules import parse_text
from parsing.signals import Action, Side
from parsing.vlm.check import check_plan, model_reading, normalize_for_match, quote_found
from parsing.vlm.schema import AnswerRefused, parse_answer
from tests.vlm_helpers import CHART_TEXT, image_answer, text_answer, without_evidence

THRESHOLD = 0.8


def read(answer: dict[str, Any], *, text: str = "", image_sent: bool = True, **kwargs: Any):
    return model_reading(parse_answer(answer), text=text, threshold=THRESHOLD, image_sent=image_sent, **kwargs)


# --- schema ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"colour": "red"}, "colour"),  # unknown key: the reply is not the schema
        ({"stop_loss": -145.2}, "stop_loss"),
        ({"entries": ["150,5"]}, "entries"),  # a comma string is not a number: refused, not guessed
        ({"confidence": 1.5}, "confidence"),
        ({"side": "up"}, "side"),
        ({"uncertain_fields": ["price"]}, "uncertain_fields"),
        ({"evidence": {"stop_loss": {"quote": "SL: 145.2"}}}, "evidence"),  # evidence without its source
    ],
)
def test_reply_that_does_not_fit_the_schema_is_refused(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(AnswerRefused) as refused:
        parse_answer(image_answer(**change))
    assert problem in str(refused.value)


@pytest.mark.parametrize("missing", ["safety", "confidence", "source", "kind"])
def test_reply_missing_a_required_key_is_refused(missing: str) -> None:
    answer = image_answer()
    del answer[missing]
    with pytest.raises(AnswerRefused):
        parse_answer(answer)


def test_reply_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(AnswerRefused):
        parse_answer([image_answer()])


# --- evidence ---------------------------------------------------------------------------------------------
def test_fully_evidenced_image_answer_trades() -> None:
    reading = read(image_answer())
    assert reading.action is Action.TRADE
    assert (reading.symbol, reading.side, reading.stop_loss) == ("SOLUSDT", Side.LONG, Decimal("145.2"))
    assert reading.entries == (Decimal("150.5"),)
    assert reading.take_profits == (Decimal("156"), Decimal("162"))
    assert reading.source == "vlm"


@pytest.mark.parametrize("field", ["symbol", "side", "entries", "stop_loss"])
def test_key_field_without_evidence_is_dropped_and_the_post_is_notify_only(field: str) -> None:
    reading = read(without_evidence(image_answer(), field))
    assert reading.action is Action.NOTIFY_ONLY
    assert f"model {field} dropped: no evidence quoted" in reading.warnings
    assert not getattr(reading, field)


def test_target_without_evidence_is_dropped_but_the_rest_still_trades() -> None:
    answer = image_answer(take_profits=[156, 162, 170])  # 170 is nowhere in the image
    reading = read(answer)
    assert reading.take_profits == (Decimal("156"), Decimal("162"))
    assert "model target 170 dropped: not in its evidence" in reading.warnings
    assert reading.action is Action.TRADE


def test_stop_whose_quote_holds_another_number_is_dropped_never_corrected() -> None:
    answer = image_answer(stop_loss=145.0)  # the quote says 145.2
    reading = read(answer)
    assert reading.stop_loss is None
    assert reading.action is Action.NOTIFY_ONLY
    assert "model stop_loss 145.0 dropped: not in its evidence" in reading.warnings


def test_quote_not_in_the_image_transcript_is_dropped() -> None:
    answer = image_answer(evidence={**image_answer()["evidence"], "stop_loss": {"quote": "SL: 140", "source": "image"}},
                          stop_loss=140)
    reading = read(answer)
    assert reading.stop_loss is None
    assert "model stop_loss dropped: its evidence is not in the post" in reading.warnings


def test_stop_evidence_must_name_a_stop() -> None:
    evidence = {**image_answer()["evidence"], "stop_loss": {"quote": "Entry: 150.5", "source": "image"}}
    reading = read(image_answer(evidence=evidence, stop_loss=150.5))
    assert reading.stop_loss is None
    assert reading.action is Action.NOTIFY_ONLY


def test_side_evidence_must_say_that_side() -> None:
    reading = read(image_answer(side="short"))  # the quote says LONG
    assert reading.side is None
    assert "model side dropped: evidence has no short wording" in reading.warnings
    assert reading.action is Action.NOTIFY_ONLY


def test_number_inside_a_word_is_not_evidence() -> None:
    # "TP1" contains a 1 but not the number 1
    answer = image_answer(take_profits=[156, 1], evidence={
        **image_answer()["evidence"], "take_profits": {"quote": "TP1: 156", "source": "image"}})
    reading = read(answer)
    assert reading.take_profits == (Decimal("156"),)


def test_matching_ignores_case_spacing_and_decimal_commas() -> None:
    text = "sol / usdt   long\nentry : 150,5\nsl :   145,2\ntp1 : 156\ntp2: 162"
    reading = read(text_answer(), text=text, image_sent=False)
    assert reading.action is Action.TRADE
    assert reading.stop_loss == Decimal("145.2")
    assert quote_found("SL: 145.2", "sl :   145,2")
    assert normalize_for_match("ＳＬ：１４５，２") == normalize_for_match("sl:145.2")  # full-width forms


def test_image_evidence_without_an_image_sent_is_dropped() -> None:
    reading = read(image_answer(), text="", image_sent=False)
    assert reading.action is Action.NOTIFY_ONLY
    assert "model stop_loss dropped: evidence cites an image that was not read" in reading.warnings


def test_text_evidence_must_be_in_the_text_not_only_in_the_transcript() -> None:
    answer = image_answer()
    answer["evidence"]["stop_loss"]["source"] = "text"
    reading = read(answer, text="chart attached")
    assert reading.stop_loss is None
    assert reading.action is Action.NOTIFY_ONLY


def test_independent_ocr_text_overrides_the_models_own_transcript() -> None:
    ocr = CHART_TEXT.replace("SL: 145.2", "SL: 144.8")
    reading = read(image_answer(), ocr_text=ocr)  # the model's transcript agrees with itself, OCR does not
    assert reading.stop_loss is None
    assert reading.action is Action.NOTIFY_ONLY


# --- rules, doubt, sanity ---------------------------------------------------------------------------------
def test_value_contradicting_the_rules_is_dropped_and_flagged() -> None:
    text = "SOL/USDT LONG\nEntry: 150.5\nSL: 145.2\nSL: 140\nTP1: 156\nTP2: 162"
    rules = parse_text("SOL/USDT LONG\nEntry: 150.5\nSL: 140")[0]
    reading = read(text_answer(), text=text, image_sent=False, rules=rules)
    assert reading.stop_loss is None
    assert "model stop_loss dropped: it contradicts the rules' reading" in reading.warnings
    assert reading.action is Action.NOTIFY_ONLY


@pytest.mark.parametrize("field", ["symbol", "side", "entries", "stop_loss"])
def test_uncertain_key_field_gives_notify_only(field: str) -> None:
    reading = read(image_answer(uncertain_fields=[field]))
    assert reading.action is Action.NOTIFY_ONLY
    assert f"model is uncertain about {field}" in reading.warnings


def test_uncertain_target_is_not_used() -> None:
    reading = read(image_answer(uncertain_fields=["take_profits"]))
    assert reading.take_profits == ()
    assert "model take_profits dropped: the model is unsure of it" in reading.warnings


def test_confidence_below_threshold_gives_notify_only() -> None:
    reading = read(image_answer(confidence=0.79))
    assert reading.action is Action.NOTIFY_ONLY
    assert "model confidence 0.79 is below the threshold 0.80" in reading.warnings
    assert read(image_answer(confidence=0.8)).action is Action.TRADE


@pytest.mark.parametrize("status", ["suspicious", "unreadable"])
def test_safety_other_than_ok_gives_notify_only(status: str) -> None:
    reading = read(image_answer(safety={"status": status, "reason": "asks to ignore the rules"}))
    assert reading.action is Action.NOTIFY_ONLY
    assert any(w.startswith(f"model safety check says {status}") for w in reading.warnings)


def test_stop_on_the_wrong_side_is_refused_like_the_rules_do() -> None:
    image_text = "SOL/USDT LONG\nEntry: 150.5\nSL: 155.2\nTP1: 156\nTP2: 162"
    evidence = {**image_answer()["evidence"], "stop_loss": {"quote": "SL: 155.2", "source": "image"}}
    reading = read(image_answer(image_text=image_text, stop_loss=155.2, evidence=evidence))
    assert reading.action is Action.NOTIFY_ONLY
    assert "stop loss is not below every entry of a long" in reading.warnings


def test_plan_check_drops_targets_on_the_wrong_side() -> None:
    plan = check_plan(Side.SHORT, [Decimal(100)], False, Decimal(105), [Decimal(95), Decimal(101), Decimal(90)])
    assert plan.take_profits == (Decimal(95), Decimal(90))
    assert "target 101 dropped: not below the entries" in plan.warnings
    assert plan.doubts == ()


def test_model_reading_of_an_update_is_never_applied() -> None:
    reading = read(image_answer(kind="update"))
    assert reading.action is Action.NOTIFY_ONLY
    assert "update read by the model only" in reading.warnings


def test_model_warnings_are_passed_on() -> None:
    reading = read(image_answer(extraction_warnings=["second chart ignored"]))
    assert "model warning: second chart ignored" in reading.warnings
