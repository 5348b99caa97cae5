"""Configs: whatever the file holds (not UTF-8, nested thousands deep, .inf/.nan, absurd numbers, random keys and
values, YAML oddities), loading it gives a Config or a ConfigError naming the problem, never another exception
or a hang; check-config exits 0 or 2. Non-finite or unbounded durations and money are errors naming the key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from cli.main import main
from runtime.config import Config, ConfigError, load_config


def _known_keys() -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for name, field in Config.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys[name] = list(annotation.model_fields)
    return keys


KNOWN = _known_keys()
NASTY = [".inf", "-.inf", ".nan", "1e300", "-1", "0", "1e12", "9" * 400, "~", "''", "[]", "{}", "yes", "0x1F",
         "!!binary aGVsbG8=", "*undefined", "&a 5", "'\\x00'", '"\\ud800"', "2026-13-45", "!!float nan"]

scalar = st.one_of(st.sampled_from(NASTY), st.integers(-(10**20), 10**20).map(str),
                   st.floats(allow_nan=False, allow_infinity=False).map(repr), st.text(max_size=12).map(repr))


@st.composite
def config_texts(draw: st.DrawFn) -> str:
    lines: list[str] = []
    for section in draw(st.lists(st.sampled_from([*KNOWN, "bogus", "dry_run"]), max_size=5, unique=True)):
        if section == "dry_run":
            lines.append(f"dry_run: {draw(scalar)}")
            continue
        lines.append(f"{section}:")
        keys = [*KNOWN.get(section, ["x"]), "unknown_key"]
        for key in draw(st.lists(st.sampled_from(keys), max_size=4, unique=True)):
            lines.append(f"  {key}: {draw(scalar)}")
    return "\n".join(lines) + "\n"


def _load(tmp_path: Path, data: bytes) -> Config | ConfigError:
    path = tmp_path / "conf.yaml"
    path.write_bytes(data)
    try:
        return load_config(path)
    except ConfigError as error:
        assert error.problems and all(isinstance(k, str) and isinstance(m, str) for k, m in error.problems)
        return error


FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@FUZZ
@given(text=config_texts())
def test_random_configs_load_or_name_their_problem(tmp_path: Path, text: str) -> None:
    _load(tmp_path, text.encode("utf-8", "surrogatepass"))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_random_bytes_load_or_name_their_problem(tmp_path: Path, data: bytes) -> None:
    _load(tmp_path, data)


@pytest.mark.parametrize("body", [
    b"risk:\n  max_leverage: \xff\xfe5\n",  # not UTF-8
    b"a: " + b"[" * 20_000 + b"]" * 20_000 + b"\n",
    b"a: " + b"{b: " * 5_000 + b"1" + b"}" * 5_000 + b"\n",
    b"risk:\n" + b"".join(b"  " * i + b"k:\n" for i in range(1, 3000)),
])
def test_odd_files_exit_2_with_a_reason(tmp_path: Path, body: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "conf.yaml"
    path.write_bytes(body)
    assert main(["check-config", "--conf", str(path)]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and "Traceback" not in err


@pytest.mark.parametrize(("yaml_text", "key"), [
    ("monitor:\n  poll_intervals:\n    positions_seconds: .inf\n", "monitor.poll_intervals.positions_seconds"),
    ("risk:\n  cooldown_seconds: .nan\n", "risk.cooldown_seconds"),
    ("risk:\n  max_notional_per_trade: .inf\n", "risk.max_notional_per_trade"),
    ("risk:\n  account_risk_per_trade: .nan\n", "risk.account_risk_per_trade"),
    ("paper:\n  starting_equity: 1.0e+300\n", "paper.starting_equity"),
    ("listener:\n  polling_seconds: 1.0e+200\n", "listener.polling_seconds"),
])
def test_non_finite_or_absurd_numbers_are_errors_naming_the_key(tmp_path: Path, yaml_text: str, key: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "conf.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    assert main(["check-config", "--conf", str(path)]) == 2
    assert key in capsys.readouterr().err


def test_yaml_aliases_cannot_blow_up(tmp_path: Path) -> None:
    rows = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        rows.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    rows.append("media:\n  allowed_hosts: *i")
    result = _load(tmp_path, "\n".join(rows).encode())
    assert isinstance(result, ConfigError)
    assert len(result.problems) <= 31


def test_the_shipped_example_still_loads() -> None:
    config = load_config(Path(__file__).resolve().parents[1] / "conf" / "example.yaml")
    data: dict[str, Any] = config.model_dump()
    assert yaml.safe_dump(data)


def test_money_and_percentages_are_exact_decimals(tmp_path: Path) -> None:
    path = tmp_path / "conf.yaml"
    path.write_text("risk:\n  account_risk_per_trade: 0.1\n  max_notional_per_trade: 250.35\n"
                    "paper:\n  starting_equity: 1234.56\n", encoding="utf-8")
    config = load_config(path)
    assert config.risk.account_risk_per_trade == Decimal("0.1")  # not 0.1000000000000000055511151231257827
    assert config.risk.max_notional_per_trade == Decimal("250.35")
    assert config.paper.starting_equity == Decimal("1234.56")
    assert isinstance(config.risk.default_stop_loss_pct, Decimal)


def test_an_integer_too_large_for_a_float_is_an_error_naming_the_key(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "conf.yaml"
    path.write_text("media:\n  max_bytes: " + "9" * 400 + "\n", encoding="utf-8")
    assert main(["check-config", "--conf", str(path)]) == 2
    err = capsys.readouterr().err
    assert "media.max_bytes" in err and "Traceback" not in err
