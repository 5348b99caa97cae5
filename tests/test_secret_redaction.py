"""One scrubber for logs, notices, the journal and errors: a secret never leaves the process in any of them,
not even a piece of it cut at a length limit; check-config and `following sim` print no secret either."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
import requests

from cli.main import main
from exchange.redact import MASK, RedactingFilter, Redactor, register_secret
from exchange.sim.__main__ import run_sim
from ops.notify import Notifier
from parsing.vlm.client import VLMClient
from runtime.config import NotifyConfig
from trading.journal import Journal

VLM_KEY = "nvapi-" + "Zq7" * 20  # 66 characters


def _pieces(secret: str, length: int = 8) -> list[str]:
    return [secret[i:i + length] for i in range(len(secret) - length + 1)]


def _leaks(text: str, secret: str) -> list[str]:
    return [piece for piece in _pieces(secret) if piece in text]


def _response(status: int, body: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body.encode()
    response.encoding = "utf-8"
    return response


@pytest.mark.parametrize("offset", [150, 190, 195, 199, 200])
def test_a_model_key_crossing_the_cut_of_an_error_body_leaves_no_piece_behind(offset: int) -> None:
    client = VLMClient(provider="nim", model="m", base_url="http://127.0.0.1:9", api_key=VLM_KEY)
    body = "x" * offset + VLM_KEY + " was refused" + "y" * 300
    error = client._answer(_response(401, body))
    assert _leaks(str(error), VLM_KEY) == [], str(error)
    assert MASK in str(error) or offset > 200 - len(MASK)


def test_a_registered_secret_is_masked_in_notices_journal_and_logs(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    VLMClient(provider="nim", model="m", base_url="http://127.0.0.1:9", api_key=VLM_KEY)  # registers its key
    notifier = Notifier(NotifyConfig())
    seen: list[str] = []
    notifier.listeners.append(lambda notice: seen.append(notice.text))
    notifier.notify("VLM_FAILED", f"the model said: bad key {VLM_KEY}")
    assert seen and _leaks(seen[0], VLM_KEY) == []

    with Journal(str(tmp_path / "j.sqlite")) as journal:
        journal.record_event("VLM_FAILED", {"error": f"HTTP 401: {VLM_KEY}", "nested": [{"body": VLM_KEY}]})
        (event,) = journal.events("VLM_FAILED")
        assert _leaks(repr(event.detail), VLM_KEY) == []
    assert VLM_KEY[10:30] not in (tmp_path / "j.sqlite").read_bytes().decode("latin-1")

    logger = logging.getLogger("following.test_redaction")
    handler_filter = RedactingFilter()
    caplog.handler.addFilter(handler_filter)
    try:
        try:
            raise RuntimeError(f"refused: {VLM_KEY}")
        except RuntimeError:
            logger.exception("call failed with key %s", VLM_KEY)
    finally:
        caplog.handler.removeFilter(handler_filter)
    assert _leaks(caplog.text, VLM_KEY) == [], caplog.text


def test_url_and_json_forms_of_a_secret_are_masked_too() -> None:
    redactor = Redactor(["https://hooks.example/T0/B1/secretpath?token=abc123def", 'tok"en/with+chars'])
    text = redactor.scrub("posting to /T0/B1/secretpath?token=abc123def and tok%22en%2Fwith%2Bchars and "
                          'tok\\"en/with+chars')
    assert "secretpath" not in text and "abc123def" not in text and "with" not in text, text


def test_check_config_prints_neither_the_webhook_nor_a_key_put_in_an_env_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    webhook = "https://hooks.example.com/services/T000/B000/XXXXsecretXXXX"
    key = "bg_4f3c2a1b9e8d7c6b5a4f3e2d1c0b9a8f"
    path = tmp_path / "conf.yaml"
    path.write_text(f"notify:\n  webhook:\n    enabled: true\n    url: {webhook}\n"
                    f"bitget:\n  api_key_env: {key}\n", encoding="utf-8")
    main(["check-config", "--conf", str(path)])
    captured = capsys.readouterr()
    everything = captured.out + captured.err
    assert "XXXXsecretXXXX" not in everything and "/services/T000" not in everything
    assert _leaks(everything, key) == [], everything
    assert "bitget.api_key_env: looks like a key" in captured.err
    assert "BITGET_API_SECRET" in captured.out  # a variable's name is shown as it is


def test_following_sim_does_not_print_a_non_default_key(capsys: pytest.CaptureFixture[str]) -> None:
    key = "my-real-looking-key-0123456789"
    stop = threading.Event()
    runner = threading.Thread(target=run_sim, kwargs={"port": 0, "ws_port": 0, "api_key": key, "stop_event": stop,
                                                      "tick_interval_s": 0})
    runner.start()
    try:
        printed = ""
        deadline = time.monotonic() + 10
        while "credentials" not in printed and time.monotonic() < deadline:
            printed += capsys.readouterr().out
            threading.Event().wait(0.02)
        assert "credentials" in printed
        assert _leaks(printed, key) == [], printed
    finally:
        stop.set()
        runner.join(timeout=10)


def test_register_secret_ignores_empty_values() -> None:
    register_secret(None, "", "abc")  # too short to mask without masking ordinary words
    assert Redactor(["abc"]).scrub("abc") == "abc"
