"""VLMClient over HTTP (``responses``): request shape, retries, typed errors, no key in any error."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pytest
import requests
import responses

from parsing.vlm.client import (
    VlmAuthError,
    VlmBadImage,
    VlmBadReply,
    VLMClient,
    VlmError,
    VlmRateLimited,
    VlmRejected,
    VlmTimeout,
    VlmUnavailable,
)
from tests.vlm_helpers import JPEG_HEAD, PNG_1PX, image_answer

BASE = "https://vlm.test/v1"
URL = f"{BASE}/chat/completions"
KEY = "nvapi-SECRET-key-0123456789"


def completion(content: str) -> dict[str, Any]:
    return {"id": "x", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}


def good() -> dict[str, Any]:
    return completion(json.dumps(image_answer()))


class Recorder:
    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.observed: list[tuple[str, float]] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def observe(self, outcome: str, seconds: float) -> None:
        self.observed.append((outcome, seconds))


def client(recorder: Recorder, provider: str = "nim", **kwargs: Any) -> VLMClient:
    options: dict[str, Any] = {"timeout": 2.0, "max_retries": 2, "backoff_base": 0.5, "backoff_max": 4.0}
    options.update(kwargs)
    return VLMClient(provider=provider, model="meta/llama-3.2-90b-vision-instruct", base_url=BASE + "/",  # type: ignore[arg-type]
                     api_key=KEY, sleep=recorder.sleep, on_request=recorder.observe, rng=random.Random(7),
                     **options)


@responses.activate
def test_request_carries_key_prompt_text_and_image_as_data_url() -> None:
    responses.post(URL, json=good())
    recorder = Recorder()
    answer = client(recorder).extract(PNG_1PX, "look at the chart", more_images=[JPEG_HEAD])
    assert answer.symbol == "SOL/USDT"
    call = responses.calls[0].request
    assert call.headers["Authorization"] == f"Bearer {KEY}"
    body = json.loads(call.body)
    assert body["model"] == "meta/llama-3.2-90b-vision-instruct"
    system, user = body["messages"]
    assert system["role"] == "system" and '"evidence"' in system["content"]
    parts = user["content"]
    assert parts[0] == {"type": "text", "text": "Post text:\nlook at the chart"}
    assert parts[1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG_1PX).decode()
    assert parts[2]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert body["response_format"]["type"] == "json_schema"
    assert "evidence" in body["response_format"]["json_schema"]["schema"]["properties"]
    assert recorder.observed[0][0] == "ok"


@responses.activate
def test_kimi_uses_json_mode_and_a_text_only_request_has_no_image() -> None:
    responses.post(URL, json=good())
    client(Recorder(), provider="kimi").extract(None, "BTC long")
    body = json.loads(responses.calls[0].request.body)
    assert body["response_format"] == {"type": "json_object"}
    assert [part["type"] for part in body["messages"][1]["content"]] == ["text"]


@responses.activate
def test_code_fences_around_the_json_are_stripped() -> None:
    responses.post(URL, json=completion("```json\n" + json.dumps(image_answer()) + "\n```"))
    assert client(Recorder()).extract(PNG_1PX, "").stop_loss is not None


def test_unknown_image_format_is_refused_before_any_request() -> None:
    with responses.RequestsMock() as mock:
        with pytest.raises(VlmBadImage):
            client(Recorder()).extract(b"GIF-not-really", "")
        assert len(mock.calls) == 0


@responses.activate
def test_429_is_retried_after_retry_after_seconds() -> None:
    responses.post(URL, status=429, headers={"Retry-After": "3"}, json={"error": "slow down"})
    responses.post(URL, json=good())
    recorder = Recorder()
    client(recorder).extract(PNG_1PX, "")
    assert len(responses.calls) == 2
    assert recorder.sleeps == [3.0]
    assert [outcome for outcome, _ in recorder.observed] == ["rate_limited", "ok"]


@responses.activate
def test_429_asking_for_a_longer_pause_than_the_cap_gives_up_at_once() -> None:
    responses.post(URL, status=429, headers={"Retry-After": "120"})
    recorder = Recorder()
    with pytest.raises(VlmRateLimited):
        client(recorder).extract(PNG_1PX, "")
    assert len(responses.calls) == 1
    assert recorder.sleeps == []


@responses.activate
def test_5xx_is_retried_with_capped_jittered_backoff_then_fails_typed() -> None:
    for _ in range(4):
        responses.post(URL, status=503, body="upstream down")
    recorder = Recorder()
    with pytest.raises(VlmUnavailable) as failed:
        client(recorder, max_retries=3, backoff_base=1.0, backoff_max=2.5).extract(PNG_1PX, "")
    assert len(responses.calls) == 4
    assert failed.value.status == 503
    ceilings = [1.0, 2.0, 2.5]  # base * 2**attempt, capped
    assert len(recorder.sleeps) == 3
    for slept, ceiling in zip(recorder.sleeps, ceilings, strict=True):
        assert ceiling / 2 <= slept <= ceiling
    assert [outcome for outcome, _ in recorder.observed] == ["unavailable"] * 4


@responses.activate
def test_5xx_then_success_returns_the_answer() -> None:
    responses.post(URL, status=502)
    responses.post(URL, json=good())
    assert client(Recorder()).extract(PNG_1PX, "").confidence == pytest.approx(0.93)
    assert len(responses.calls) == 2


@responses.activate
@pytest.mark.parametrize(("status", "error"), [(400, VlmRejected), (404, VlmRejected), (413, VlmRejected),
                                               (401, VlmAuthError), (403, VlmAuthError)])
def test_other_4xx_is_not_retried(status: int, error: type[VlmError]) -> None:
    responses.post(URL, status=status, json={"error": {"message": "bad request"}})
    recorder = Recorder()
    with pytest.raises(error):
        client(recorder).extract(PNG_1PX, "")
    assert len(responses.calls) == 1
    assert recorder.sleeps == []


@responses.activate
def test_timeout_is_retried_then_raises_a_typed_timeout() -> None:
    for _ in range(3):
        responses.post(URL, body=requests.exceptions.ReadTimeout("read timed out"))
    recorder = Recorder()
    with pytest.raises(VlmTimeout):
        client(recorder).extract(PNG_1PX, "")
    assert len(responses.calls) == 3
    assert [outcome for outcome, _ in recorder.observed] == ["timeout"] * 3


@responses.activate
def test_connection_error_is_retried() -> None:
    responses.post(URL, body=requests.exceptions.ConnectionError("refused"))
    responses.post(URL, json=good())
    client(Recorder()).extract(PNG_1PX, "")
    assert len(responses.calls) == 2


@responses.activate
@pytest.mark.parametrize("content", ["not json at all", '{"kind": "entry"', json.dumps(image_answer(extra=1)), "",
                                     json.dumps([1, 2])])
def test_malformed_or_off_schema_reply_is_refused_without_retry(content: str) -> None:
    responses.post(URL, json=completion(content))
    recorder = Recorder()
    with pytest.raises(VlmBadReply):
        client(recorder).extract(PNG_1PX, "")
    assert len(responses.calls) == 1
    assert recorder.observed[0][0] == "bad_reply"


@responses.activate
def test_response_that_is_not_a_chat_completion_is_refused() -> None:
    responses.post(URL, json={"result": "ok"})
    with pytest.raises(VlmBadReply):
        client(Recorder()).extract(PNG_1PX, "")


@responses.activate
def test_the_key_never_appears_in_error_text_or_repr() -> None:
    responses.post(URL, status=401, body=f"invalid key {KEY} for this model")
    recorder = Recorder()
    vlm = client(recorder)
    with pytest.raises(VlmAuthError) as failed:
        vlm.extract(PNG_1PX, "")
    assert KEY not in str(failed.value)
    assert "***" in str(failed.value)
    assert KEY not in repr(vlm)


def test_observer_failure_does_not_break_extraction() -> None:
    def broken(outcome: str, seconds: float) -> None:
        raise RuntimeError("metrics down")

    with responses.RequestsMock() as mock:
        mock.post(URL, json=good())
        vlm = VLMClient(provider="kimi", model="m", base_url=BASE, api_key=KEY, on_request=broken)
        assert vlm.extract(PNG_1PX, "").kind == "entry"


def test_empty_key_and_unknown_provider_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        VLMClient(provider="nim", model="m", base_url=BASE, api_key="")
    with pytest.raises(ValueError, match="provider"):
        VLMClient(provider="openai", model="m", base_url=BASE, api_key=KEY)  # type: ignore[arg-type]
