"""Relative paths in a config file are relative to the file's folder, so the bot works from any directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from cli.main import main
from runtime.config import SHIPPED_DEMO_POSTS, load_config, load_secrets, parse_config
from runtime.wiring import Runtime
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "etc" / "following"
    folder.mkdir(parents=True)
    conf = folder / "conf.yaml"
    conf.write_text(
        "storage:\n  db_path: journal.sqlite\n  media_dir: ../media\n"
        "kill_switch:\n  file: KILL\n"
        "telegram:\n  session_path: /abs/telegram\n"
        "demo:\n  posts_file: posts.yaml\n",
        encoding="utf-8",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(Path(os.path.relpath(conf, elsewhere)))  # a relative --conf works too
    assert config.storage.db_path == str(folder / "journal.sqlite")
    assert config.storage.media_dir == str(tmp_path / "etc" / "media")
    assert config.kill_switch.file == str(folder / "KILL")
    assert config.telegram.session_path == "/abs/telegram"
    assert config.demo.posts_file == str(folder / "posts.yaml")


def test_defaults_also_live_next_to_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "conf.yaml"
    conf.write_text("dry_run: true\n", encoding="utf-8")
    monkeypatch.chdir(REPO)
    config = load_config(conf)
    assert config.storage.db_path == str(tmp_path / "var" / "following.sqlite")
    assert config.kill_switch.file == str(tmp_path / "KILL_SWITCH")
    assert config.demo.posts_file == str(SHIPPED_DEMO_POSTS)


def test_a_config_without_a_file_keeps_its_paths() -> None:
    assert parse_config({"storage": {"db_path": "x.sqlite"}}).storage.db_path == "x.sqlite"


def test_shipped_configs_point_into_the_checkout_from_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    demo = load_config(REPO / "conf" / "demo.yaml")
    assert demo.storage.db_path == str(REPO / "var" / "demo.sqlite")
    assert Path(demo.demo.posts_file).is_file()
    prod = load_config(REPO / "conf" / "prod.yaml")
    assert prod.storage.db_path == str(REPO / "var" / "following.sqlite")
    assert prod.kill_switch.file == str(REPO / "KILL_SWITCH")


def test_a_missing_demo_posts_file_is_a_config_error_naming_the_key(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "demo.yaml"
    conf.write_text("demo:\n  enabled: true\n  posts_file: nowhere.yaml\n", encoding="utf-8")
    assert main(["check-config", "--conf", str(conf)]) == 2
    assert "demo.posts_file: cannot read" in capsys.readouterr().err


def test_the_demo_runs_from_another_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo config copied with its posts into a folder, started from elsewhere: posts are read and journaled."""
    folder = tmp_path / "conf"
    folder.mkdir()
    demo = yaml.safe_load((REPO / "conf" / "demo.yaml").read_text(encoding="utf-8"))
    demo["monitor"]["health"]["port"] = 0
    demo["demo"]["posts_file"] = "my-posts.yaml"
    (folder / "my-posts.yaml").write_text(
        '- id: hello\n  after_seconds: 0\n  text: "Good morning"\n', encoding="utf-8")
    (folder / "demo.yaml").write_text(yaml.safe_dump(demo), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config("../conf/demo.yaml")
    runtime = Runtime(config, load_secrets(config, {}), env={})
    try:
        runtime.start()
        journal = runtime.journal
        assert journal is not None
        wait_until(lambda: journal.post("demo_signals", 1) is not None, what="the demo post read and journaled")
    finally:
        runtime.stop()
    assert (tmp_path / "var" / "demo.sqlite").is_file()
    assert not (elsewhere / "var").exists()
