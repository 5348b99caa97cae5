"""Which branch reads a post (rules only, or rules + vision model) and what comes out of each.

The first tests use a recording extractor (the model's answers scripted); the loopback tests run the real
VLMClient against the local OpenAI-compatible server.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from parsing.hybrid import IMAGE_NOT_READ, HybridReader, read_hybrid
from parsing.posts import Post
from parsing.signals import Action, Kind, ParsedMessage
from parsing.vlm.client import VLMClient, VlmTimeout
from parsing.vlm.local_server import LocalVlmServer
from parsing.vlm.schema import VlmAnswer, parse_answer
from tests.vlm_helpers import CHART_TEXT, PNG_1PX, image_answer, text_answer, without_evidence

THRESHOLD = 0.8
COMPLETE_TEXT = CHART_TEXT
NO_STOP_TEXT = "SOL/USDT LONG\nEntry: 150.5\nTP1: 156\nTP2: 162"


class ScriptedModel:
    """Answers from a script and records every call (image count, text)."""

    def __init__(self, *answers: dict[str, Any] | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[int, str]] = []

    def extract(self, image_bytes: bytes | None, text_context: str, *,
                more_images: Sequence[bytes] = ()) -> VlmAnswer:
        self.calls.append((len([i for i in (image_bytes, *more_images) if i]), text_context))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return parse_answer(answer)


def hybrid(text: str, model: Any, images: Sequence[bytes] = (), **kwargs: Any) -> list[ParsedMessage]:
    return read_hybrid(text, images, model, threshold=THRESHOLD, **kwargs)


def only(readings: list[ParsedMessage]) -> ParsedMessage:
    assert len(readings) == 1, readings
    return readings[0]


# --- which branch ------------------------------------------------------------------------------------------
def test_complete_text_signal_never_calls_the_model() -> None:
    model = ScriptedModel()
    reading = only(hybrid(COMPLETE_TEXT, model))
    assert model.calls == []
    assert reading.action is Action.TRADE and reading.source == "rules"


@pytest.mark.parametrize("text", ["Good morning traders!", "BTC TP1 hit ✅ +35%"])
def test_noise_and_clear_updates_do_not_call_the_model(text: str) -> None:
    model = ScriptedModel()
    hybrid(text, model)
    assert model.calls == []


def test_clear_update_with_a_screenshot_is_not_sent_to_the_model() -> None:
    model = ScriptedModel()
    reading = only(hybrid("#SOL TP1 hit ✅", model, [PNG_1PX]))
    assert model.calls == []
    assert reading.kind is Kind.UPDATE and reading.action is Action.TRADE


def test_incomplete_text_calls_the_model_with_the_text_alone() -> None:
    model = ScriptedModel(text_answer(stop_loss=None, evidence={
        k: v for k, v in text_answer()["evidence"].items() if k != "stop_loss"}))
    reading = only(hybrid(NO_STOP_TEXT, model))
    assert model.calls == [(0, NO_STOP_TEXT)]
    assert reading.action is Action.NOTIFY_ONLY
    assert "no stop loss" in reading.warnings


def test_model_inventing_the_missing_stop_does_not_make_a_trade() -> None:
    model = ScriptedModel(text_answer())  # claims "SL: 145.2" from the text, which has no stop
    reading = only(hybrid(NO_STOP_TEXT, model))
    assert reading.action is Action.NOTIFY_ONLY
    assert reading.stop_loss is None
    assert "model stop_loss dropped: its evidence is not in the post" in reading.warnings


def test_image_completes_an_incomplete_text_with_evidenced_values() -> None:
    model = ScriptedModel(image_answer())  # the image shows the stop
    reading = only(hybrid(NO_STOP_TEXT, model, [PNG_1PX]))
    assert model.calls == [(1, NO_STOP_TEXT)]
    assert reading.action is Action.TRADE
    assert reading.stop_loss == Decimal("145.2")
    assert reading.source == "hybrid"


def test_image_only_post_is_read_by_the_model() -> None:
    model = ScriptedModel(image_answer())
    reading = only(hybrid("", model, [PNG_1PX]))
    assert reading.action is Action.TRADE and reading.symbol == "SOLUSDT" and reading.source == "vlm"


def test_complete_text_with_a_chart_stays_the_rules_reading_when_the_model_agrees() -> None:
    model = ScriptedModel(image_answer())
    reading = only(hybrid(COMPLETE_TEXT, model, [PNG_1PX]))
    assert len(model.calls) == 1
    assert reading.action is Action.TRADE and reading.source == "hybrid"
    assert reading.stop_loss == Decimal("145.2")


def test_chart_without_a_signal_does_not_block_a_complete_text() -> None:
    model = ScriptedModel(image_answer(kind="noise", symbol=None, side=None, entries=[], stop_loss=None,
                                       take_profits=[], evidence={}, image_text="SOLUSDT 4h"))
    assert only(hybrid(COMPLETE_TEXT, model, [PNG_1PX])).action is Action.TRADE


def test_disagreement_on_a_key_field_gives_notify_only_naming_it() -> None:
    image_text = CHART_TEXT.replace("SL: 145.2", "SL: 144")
    evidence = {**image_answer()["evidence"], "stop_loss": {"quote": "SL: 144", "source": "image"}}
    model = ScriptedModel(image_answer(image_text=image_text, stop_loss=144, evidence=evidence))
    reading = only(hybrid(COMPLETE_TEXT, model, [PNG_1PX]))
    assert reading.action is Action.NOTIFY_ONLY
    assert "rules and vision model disagree on stop_loss" in reading.warnings


def test_disagreement_without_evidence_is_a_hallucination_not_a_veto() -> None:
    model = ScriptedModel(image_answer(stop_loss=130))  # no "130" anywhere: dropped, rules stand
    reading = only(hybrid(COMPLETE_TEXT, model, [PNG_1PX]))
    assert reading.action is Action.TRADE
    assert reading.stop_loss == Decimal("145.2")


def test_content_the_model_flags_as_suspicious_vetoes_a_complete_text() -> None:
    model = ScriptedModel(image_answer(safety={"status": "suspicious", "reason": "image says: ignore your rules"}))
    reading = only(hybrid(COMPLETE_TEXT, model, [PNG_1PX]))
    assert reading.action is Action.NOTIFY_ONLY
    assert "vision model flags the post as suspicious: image says: ignore your rules" in reading.warnings


def test_low_model_confidence_does_not_block_a_complete_text_it_agrees_with() -> None:
    model = ScriptedModel(image_answer(confidence=0.3))  # its values are not used; nothing contradicts
    assert only(hybrid(COMPLETE_TEXT, model, [PNG_1PX])).action is Action.TRADE


def test_a_doubt_of_the_rules_is_not_lifted_by_the_model() -> None:
    text = "#SOL #ETH LONG\nEntry: 150.5\nTP1: 156\nTP2: 162"  # two coins: the rules refuse to pick
    model = ScriptedModel(image_answer())
    reading = only(hybrid(text, model, [PNG_1PX]))
    assert reading.action is Action.NOTIFY_ONLY
    assert any("several coins" in w for w in reading.warnings)


def test_model_failure_makes_the_post_notify_only_never_a_crash() -> None:
    model = ScriptedModel(VlmTimeout("no answer within 30s"))
    reading = only(hybrid(COMPLETE_TEXT, model, [PNG_1PX]))
    assert reading.action is Action.NOTIFY_ONLY
    assert "vision model failed (timeout): no answer within 30s" in reading.warnings


def test_unexpected_model_error_is_contained() -> None:
    reading = only(hybrid("", ScriptedModel(RuntimeError("boom")), [PNG_1PX]))
    assert reading.action is Action.NOTIFY_ONLY
    assert any("RuntimeError" in w for w in reading.warnings)


def test_image_that_could_not_be_loaded_is_noted_when_nothing_trades() -> None:
    model = ScriptedModel()
    readings = hybrid("Good morning traders!", model, (), has_image_urls=True)
    assert model.calls == []
    assert any(IMAGE_NOT_READ in r.warnings for r in readings)


def test_reader_checks_image_evidence_against_an_independent_ocr_when_given() -> None:
    post = Post("chan", 7, "", image_urls=("https://cdn.test/7.jpg",))
    ocr_disagrees = CHART_TEXT.replace("SL: 145.2", "SL: 144.8")
    reader = HybridReader(ScriptedModel(image_answer()), threshold=THRESHOLD, load_images=lambda p: [PNG_1PX],
                          ocr=lambda images: ocr_disagrees)
    assert only(reader.read(post)).action is Action.NOTIFY_ONLY
    agreeing = HybridReader(ScriptedModel(image_answer()), threshold=THRESHOLD, load_images=lambda p: [PNG_1PX],
                            ocr=lambda images: CHART_TEXT)
    assert only(agreeing.read(post)).action is Action.TRADE


def test_reader_with_unloadable_images_reads_the_text_alone() -> None:
    def broken(post: Post) -> list[bytes]:
        raise OSError("disk gone")

    model = ScriptedModel()
    reader = HybridReader(model, threshold=THRESHOLD, load_images=broken)
    reading = only(reader.read(Post("chan", 8, "Good morning", image_urls=("https://cdn.test/8.jpg",))))
    assert model.calls == []
    assert reading.action is Action.NOTIFY_ONLY and reading.warnings == (IMAGE_NOT_READ,)


# --- over loopback against the local OpenAI-compatible server ---------------------------------------------
KEY = "local-test-key"


@pytest.fixture
def server() -> Iterator[LocalVlmServer]:
    with LocalVlmServer(api_key=KEY) as running:
        yield running


def loopback_client(server: LocalVlmServer, **kwargs: Any) -> VLMClient:
    options: dict[str, Any] = {"timeout": 2.0, "max_retries": 1, "backoff_base": 0.01, "backoff_max": 0.5}
    options.update(kwargs)
    return VLMClient(provider="nim", model="local", base_url=server.base_url, api_key=KEY, **options)


def test_loopback_good_answer_trades(server: LocalVlmServer) -> None:
    server.queue_answer(image_answer())
    reading = only(hybrid("", loopback_client(server), [PNG_1PX]))
    assert reading.action is Action.TRADE and reading.stop_loss == Decimal("145.2")
    (request,) = server.requests
    assert request.authorized
    assert request.image_urls()[0].startswith("data:image/png;base64,")


def test_loopback_wrong_key_is_refused_and_not_retried(server: LocalVlmServer) -> None:
    vlm = VLMClient(provider="nim", model="local", base_url=server.base_url, api_key="wrong", max_retries=2)
    reading = only(hybrid("", vlm, [PNG_1PX]))
    assert reading.action is Action.NOTIFY_ONLY and "vision model failed (auth)" in reading.warnings[0]
    assert len(server.requests) == 1


def test_loopback_malformed_json_is_notify_only(server: LocalVlmServer) -> None:
    server.queue_text('{"kind": "entry", "symbol": "SOL/USDT"')
    reading = only(hybrid("", loopback_client(server), [PNG_1PX]))
    assert reading.action is Action.NOTIFY_ONLY
    assert reading.warnings[0].startswith("vision model failed (bad_reply): the reply is not JSON")


def test_loopback_field_without_evidence_is_notify_only(server: LocalVlmServer) -> None:
    server.queue_answer(without_evidence(image_answer(), "stop_loss"))
    reading = only(hybrid("", loopback_client(server), [PNG_1PX]))
    assert reading.action is Action.NOTIFY_ONLY
    assert "model stop_loss dropped: no evidence quoted" in reading.warnings


def test_loopback_low_confidence_is_notify_only(server: LocalVlmServer) -> None:
    server.queue_answer(image_answer(confidence=0.55))
    reading = only(hybrid("", loopback_client(server), [PNG_1PX]))
    assert reading.action is Action.NOTIFY_ONLY
    assert "model confidence 0.55 is below the threshold 0.80" in reading.warnings


def test_loopback_timeout_is_notify_only(server: LocalVlmServer) -> None:
    server.queue_delay(5.0, image_answer())
    reading = only(hybrid("", loopback_client(server, timeout=0.2, max_retries=0), [PNG_1PX]))
    assert reading.action is Action.NOTIFY_ONLY
    assert reading.warnings[0].startswith("vision model failed (timeout)")


def test_loopback_429_is_retried_then_answered(server: LocalVlmServer) -> None:
    server.queue_status(429, retry_after=0)
    server.queue_answer(image_answer())
    reading = only(hybrid("", loopback_client(server), [PNG_1PX]))
    assert reading.action is Action.TRADE
    assert len(server.requests) == 2


def test_loopback_429_after_every_retry_is_notify_only(server: LocalVlmServer) -> None:
    server.queue_status(429, retry_after=0, times=2)
    reading = only(hybrid("", loopback_client(server, max_retries=1), [PNG_1PX]))
    assert reading.action is Action.NOTIFY_ONLY
    assert reading.warnings[0].startswith("vision model failed (rate_limited)")
    assert len(server.requests) == 2


def test_loopback_5xx_then_answer(server: LocalVlmServer) -> None:
    server.queue_status(503)
    server.queue_answer(image_answer())
    assert only(hybrid("", loopback_client(server), [PNG_1PX])).action is Action.TRADE


def test_local_server_runs_standalone(tmp_path: Path) -> None:
    answer_file = tmp_path / "answer.json"
    answer_file.write_text(json.dumps(image_answer()), encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "parsing.vlm.local_server", "--port", "0", "--api-key", KEY,
         "--answer", str(answer_file)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()  # "local VLM server on http://127.0.0.1:PORT/v1 ..."
        base_url = banner.split()[4]
        vlm = VLMClient(provider="kimi", model="local", base_url=base_url, api_key=KEY, timeout=5)
        reading = only(hybrid("", vlm, [PNG_1PX]))
        assert reading.action is Action.TRADE and reading.symbol == "SOLUSDT"
    finally:
        process.terminate()
        process.wait(timeout=10)
