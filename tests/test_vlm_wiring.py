"""The Parser with the vision model: answers heartbeats during a slow model call, keeps posts in order,
and the journal image loader feeds it the stored images."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from actors.messages import Heartbeat, PostSeen, SignalParsed
from actors.parser import Parser
from cli.main import main
from ops.metrics import Metrics
from parsing.hybrid import HybridReader
from parsing.posts import Post
from parsing.vlm.schema import VlmAnswer, parse_answer
from runtime.config import ConfigError, load_secrets, parse_config
from runtime.vision import build_vision, journal_image_loader
from tests.vlm_helpers import CHART_TEXT, PNG_1PX, image_answer
from tests.waiting import wait_until
from trading.journal import Journal


class GatedModel:
    """Answers only once ``release`` is set; records the images it was given."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.images: list[list[bytes]] = []

    def extract(self, image_bytes: bytes | None, text_context: str, *,
                more_images: Sequence[bytes] = ()) -> VlmAnswer:
        self.images.append([i for i in (image_bytes, *more_images) if i])
        assert self.release.wait(10), "the test never released the model"
        return parse_answer(image_answer())


class Inbox:
    def __init__(self) -> None:
        self.items: list[Any] = []

    def tell(self, message: Any) -> None:
        self.items.append(message)

    def notify(self, kind: str, text: str) -> None:
        self.items.append((kind, text))


@pytest.fixture
def journal() -> Iterator[Journal]:
    with Journal(":memory:") as opened:
        yield opened


def test_parser_answers_heartbeats_during_a_model_call_and_keeps_post_order(journal: Journal) -> None:
    model = GatedModel()
    risk_gate, notifier = Inbox(), Inbox()
    vision = HybridReader(model, threshold=0.8, load_images=lambda post: [PNG_1PX])
    parser = Parser.start(name="parser", supervisor=None, journal=journal, risk_gate=risk_gate,
                          notifier=notifier, metrics=Metrics(), vision=vision)
    image_post = Post("chan", 1, "", image_urls=("https://cdn.test/1.jpg",))
    text_post = Post("chan", 2, CHART_TEXT.replace("SOL/USDT", "ETH/USDT").replace("150.5", "150.4"))
    for post in (image_post, text_post):
        journal.record_post(post)
        parser.tell(PostSeen(post))
    wait_until(lambda: model.images, what="the model called")
    assert parser.ask(Heartbeat(), timeout=2) is True  # answered while the model works
    assert journal.signal_for_post("chan", 2, 0) is None  # the later post waits for the earlier one
    model.release.set()
    wait_until(lambda: len(risk_gate.items) == 2, what="both posts traded")
    assert [m.message_id for m in risk_gate.items if isinstance(m, SignalParsed)] == [1, 2]
    assert [m.parsed.symbol for m in risk_gate.items] == ["SOLUSDT", "ETHUSDT"]
    assert model.images == [[PNG_1PX]]  # the complete text post never reached the model
    parser.stop()


def test_journal_loader_returns_stored_images_only(journal: Journal, tmp_path: Path) -> None:
    stored = tmp_path / "a.png"
    stored.write_bytes(PNG_1PX)
    journal.record_media("https://cdn.test/a.png", "sha-a", str(stored), len(PNG_1PX), "image/png")
    journal.record_media("https://cdn.test/gone.png", "sha-b", str(tmp_path / "gone.png"), 10, "image/png")
    journal.record_media("https://cdn.test/big.png", "sha-c", str(stored), 10_000, "image/png")
    load = journal_image_loader(journal, max_bytes=1000)
    post = Post("chan", 3, "", image_urls=("https://cdn.test/a.png", "https://cdn.test/unknown.png",
                                           "https://cdn.test/gone.png", "https://cdn.test/big.png"))
    assert load(post) == [PNG_1PX]


def test_vlm_metrics_count_latency_and_errors_by_reason() -> None:
    metrics = Metrics()
    metrics.vlm_request("ok", 0.4)
    metrics.vlm_request("timeout", 30.0)
    metrics.vlm_request("rate_limited", 0.1)
    text = metrics.render().decode()
    assert "following_vlm_request_seconds_count 3.0" in text
    assert 'following_vlm_errors_total{reason="timeout"} 1.0' in text
    assert 'following_vlm_errors_total{reason="rate_limited"} 1.0' in text
    assert 'reason="ok"' not in text


def test_vlm_enabled_without_its_key_is_a_clear_error(tmp_path: Path, journal: Journal,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    config = parse_config({"vlm": {"enabled": True, "api_key_env": "TEST_VLM_KEY_UNSET"}})
    with pytest.raises(ConfigError, match=r"vlm\.api_key_env: environment variable TEST_VLM_KEY_UNSET is not set"):
        build_vision(config, load_secrets(config, {}), Metrics(), journal)
    conf = tmp_path / "conf.yaml"
    conf.write_text("vlm:\n  enabled: true\n  api_key_env: TEST_VLM_KEY_UNSET\n", encoding="utf-8")
    monkeypatch.delenv("TEST_VLM_KEY_UNSET", raising=False)
    assert main(["check-config", "--conf", str(conf)]) == 2
    assert "vlm.api_key_env: environment variable TEST_VLM_KEY_UNSET is not set" in capsys.readouterr().err


def test_vlm_disabled_builds_no_reader_and_enabled_builds_one(journal: Journal) -> None:
    disabled = parse_config({})
    assert build_vision(disabled, load_secrets(disabled, {}), Metrics(), journal) is None
    enabled = parse_config({"vlm": {"enabled": True, "provider": "kimi", "base_url": "http://127.0.0.1:9/v1"}})
    reader = build_vision(enabled, load_secrets(enabled, {"NIM_API_KEY": "k-123456"}), Metrics(), journal)
    assert reader is not None and reader.threshold == 0.8
    assert "k-123456" not in repr(reader.extractor)
