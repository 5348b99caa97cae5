"""The README's walkthrough (demo -> paper on real prices -> Bitget demo -> live) stays true: every setting it
names is a valid config value, every step's config passes check-config with the account kind it announces, and
the lines it says the bot prints are lines the bot prints."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.main import main
from runtime.config import parse_config

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
ENV = {"BITGET_API_KEY": "k-walkthrough", "BITGET_API_SECRET": "s-walkthrough", "BITGET_PASSPHRASE": "p-walk"}


def _walkthrough() -> str:
    match = re.search(r"^## From the demo to real money, step by step\n(.*?)^## ", README, re.S | re.M)
    assert match, "the README has a walkthrough section"
    return match.group(1)


def _settings(text: str) -> list[tuple[str, str]]:
    """Every `dotted.key: value` the text names."""
    return re.findall(r"`([a-z_]+(?:\.[a-z_]+)*): ([^`]+)`", text)


def _nested(key: str, value: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    node = data
    *sections, last = key.split(".")
    for section in sections:
        node = node.setdefault(section, {})
    node[last] = yaml.safe_load(value)
    return data


def _step(number: int) -> str:
    match = re.search(rf"^{number}\. (.*?)(?=^\d\. |\Z)", _walkthrough(), re.S | re.M)
    assert match, f"step {number}"
    return match.group(1)


def test_the_walkthrough_has_the_four_steps_and_says_how_to_stop() -> None:
    text = _walkthrough()
    for title in ("The demo, offline", "Paper trading on real prices", "Bitget demo trading",
                  "Live, with a small risk"):
        assert title in text
    assert "Ctrl-C" in text and "KILL_SWITCH" in text and "reset-mode" in text


@pytest.mark.parametrize(("key", "value"), _settings(_walkthrough()))
def test_every_setting_named_is_a_valid_config_value(key: str, value: str) -> None:
    parse_config(_nested(key, value))


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict):
            _merge(into.setdefault(key, {}), value)
        else:
            into[key] = value
    return into


@pytest.mark.parametrize(("step", "kind"), [(2, "PAPER trading"), (3, "Bitget DEMO trading"),
                                            (4, "LIVE trading with REAL MONEY")])
def test_each_steps_config_passes_check_config_with_its_account_kind(
    step: int, kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    data = yaml.safe_load((REPO / "conf" / "prod.yaml").read_text(encoding="utf-8"))
    for number in range(2, step + 1):  # each step keeps what the earlier ones set
        for key, value in _settings(_step(number)):
            _merge(data, _nested(key, value))
    conf = tmp_path / "mine.yaml"
    conf.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["check-config", "--conf", str(conf)]) == 0
    assert capsys.readouterr().out.startswith(f"# account: {kind}")


@pytest.mark.parametrize("line", ["PAPER PRICES ARE SIMULATED", "paper trading on Bitget's real market",
                                  "first start on", "Bitget DEMO trading on", "LIVE trading with REAL MONEY on",
                                  "NOTIFY_ONLY"])
def test_the_lines_it_quotes_are_printed_by_the_bot(line: str) -> None:
    assert line in _walkthrough()
    sources = "".join(path.read_text(encoding="utf-8")
                      for package in ("actors", "cli", "ops", "runtime") for path in (REPO / package).glob("*.py"))
    assert line in sources
