"""The command line explains itself: --version, help and defaults for every option, YAML errors with line, column
and cause, and an unknown key with the nearest known one."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import pytest

from cli.main import build_parser, main
from exchange.sim.__main__ import build_parser as build_sim_parser

REPO = Path(__file__).resolve().parents[1]


def _helper_parsers() -> list[argparse.ArgumentParser]:
    """The helper commands the README names: the Telegram login and the local vision model stand-in."""
    captured: list[argparse.ArgumentParser] = []

    class Stop(Exception):
        pass

    def capture(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        captured.append(self)
        raise Stop

    from parsing import telegram_source
    from parsing.vlm import local_server

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = capture  # type: ignore[method-assign,assignment]
    try:
        for run in (telegram_source._login, local_server.main):
            with contextlib.suppress(Stop):
                run([])
    finally:
        argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]
    return captured


def _parsers() -> list[argparse.ArgumentParser]:
    main_parser = build_parser()
    found = [main_parser, build_sim_parser(), *_helper_parsers()]
    for action in main_parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += [p for name, p in action.choices.items() if name != "sim"]
    return found


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    version = [line for line in (REPO / "pyproject.toml").read_text().splitlines() if line.startswith("version")]
    expected = version[0].split('"')[1]
    assert capsys.readouterr().out.strip() == f"following {expected}"


@pytest.mark.parametrize("parser", _parsers(), ids=lambda p: p.prog)
def test_every_option_has_help_and_its_default(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        assert action.help and action.help.strip(), f"{parser.prog} {action.option_strings}: no help"
        if action.nargs != 0 and not action.required:  # a flag (store_true) is off unless given
            assert "default" in action.help or "required" in action.help or action.dest == "version", (
                f"{parser.prog} {action.option_strings}: default not said")
    text = parser.format_help()
    assert "``" not in text and ":class:" not in text and ".. " not in text  # no reStructuredText


def test_yaml_error_names_line_column_and_cause(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "conf.yaml"
    conf.write_text("risk:\n  max_leverage: 5\n listener: {}\n", encoding="utf-8")
    assert main(["check-config", "--conf", str(conf)]) == 2
    err = capsys.readouterr().err
    assert "invalid YAML at line 3, column 2: expected <block end>" in err
    conf.write_text('listener:\n  target_url: "https://t.me/s/x\n', encoding="utf-8")
    assert main(["check-config", "--conf", str(conf)]) == 2
    err = capsys.readouterr().err
    assert "line 3, column 1: found unexpected end of stream" in err and "quoted scalar at line 2, column 15" in err


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("risk:\n  max_levrage: 5\n", "risk.max_levrage: unknown key; did you mean 'max_leverage'?"),
        ("monitor:\n  health:\n    prot: 1\n", "monitor.health.prot: unknown key; did you mean 'port'?"),
        ("dry_rn: true\n", "dry_rn: unknown key; did you mean 'dry_run'?"),
        ("polling_seconds: 3\n", "'polling_seconds' belongs in 'listener.polling_seconds'"),
    ],
)
def test_unknown_key_suggests_the_nearest_known_one(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                                   hint: str) -> None:
    conf = tmp_path / "conf.yaml"
    conf.write_text(text, encoding="utf-8")
    assert main(["check-config", "--conf", str(conf)]) == 2
    assert hint in capsys.readouterr().err


def test_a_key_given_twice_is_an_error_not_a_silent_override(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "conf.yaml"
    conf.write_text("risk:\n  max_leverage: 3\ndry_run: true\nrisk:\n  cooldown_seconds: 1\n", encoding="utf-8")
    assert main(["check-config", "--conf", str(conf)]) == 2
    err = capsys.readouterr().err
    assert "line 4, column 1: key 'risk' given twice (first at line 1)" in err


def test_a_bad_value_names_the_line_it_is_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "conf.yaml"
    conf.write_text("dry_run: true\nrisk:\n  max_levrage: 5\n  leverage_policy: SOMETIMES\n", encoding="utf-8")
    assert main(["check-config", "--conf", str(conf)]) == 2
    err = capsys.readouterr().err
    assert "risk.max_levrage: unknown key; did you mean 'max_leverage'? (line 3)" in err
    assert "risk.leverage_policy: expected 'CAP' or 'REJECT' (got 'SOMETIMES') (line 4)" in err
