"""`following parse --jsonl` with image paths: the model reads them when --conf enables it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from parsing.hybrid import IMAGE_NOT_READ
from parsing.vlm.local_server import LocalVlmServer
from tests.vlm_helpers import PNG_1PX, image_answer

KEY_ENV = "FOLLOWING_TEST_VLM_KEY"


def write_inputs(tmp_path: Path) -> Path:
    (tmp_path / "chart.png").write_bytes(PNG_1PX)
    lines = [{"text": "", "image": "chart.png"}, {"text": "Good morning"}]
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


def outputs(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_without_a_model_an_image_only_message_is_notify_only(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", "--jsonl", str(write_inputs(tmp_path))]) == 0
    image_reading, text_reading = outputs(capsys)
    assert image_reading["action"] == "notify_only" and image_reading["warnings"] == [IMAGE_NOT_READ]
    assert text_reading["action"] == "ignore"


def test_with_the_model_enabled_the_image_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with LocalVlmServer(api_key="cli-key", default_answer=image_answer()) as server:
        conf = tmp_path / "conf.yaml"
        conf.write_text(f"vlm:\n  enabled: true\n  provider: kimi\n  api_key_env: {KEY_ENV}\n"
                        f"  base_url: {server.base_url}\n  max_retries: 0\npaper:\n  live_prices: false\n",
                        encoding="utf-8")
        monkeypatch.setenv(KEY_ENV, "cli-key")
        assert main(["parse", "--jsonl", str(write_inputs(tmp_path)), "--conf", str(conf)]) == 0
        image_reading, text_reading = outputs(capsys)
        assert len(server.requests) == 1  # "Good morning" never reaches the model
    assert image_reading["action"] == "trade" and image_reading["symbol"] == "SOLUSDT"
    assert image_reading["stop_loss"] == "145.2" and image_reading["source"] == "vlm"
    assert text_reading["action"] == "ignore"


def test_enabled_model_without_its_key_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "conf.yaml"
    conf.write_text(f"vlm:\n  enabled: true\n  api_key_env: {KEY_ENV}\npaper:\n  live_prices: false\n",
                    encoding="utf-8")
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert main(["parse", "--jsonl", str(write_inputs(tmp_path)), "--conf", str(conf)]) == 2
    assert f"vlm.api_key_env: environment variable {KEY_ENV} is not set" in capsys.readouterr().err


def test_missing_image_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_text(json.dumps({"text": "x", "image": "nowhere.png"}) + "\n", encoding="utf-8")
    assert main(["parse", "--jsonl", str(path)]) == 1
    assert "nowhere.png: cannot read image" in capsys.readouterr().err
