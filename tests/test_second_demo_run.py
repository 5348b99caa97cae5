"""A second run on a journal left over: the demo says its posts were handled and how to start afresh, and a new
paper account is not measured against an earlier run's peak equity."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from actors.position_guard import PEAK_FLAG
from runtime.config import load_config, load_secrets
from runtime.wiring import Runtime
from tests.e2e import running_system
from tests.waiting import wait_until
from trading.journal import Journal
from trading.modes import Mode

REPO = Path(__file__).resolve().parents[1]


def _demo_config(tmp_path: Path) -> Path:
    demo = yaml.safe_load((REPO / "conf" / "demo.yaml").read_text(encoding="utf-8"))
    demo["monitor"]["health"]["port"] = 0
    demo["storage"] = {"db_path": "var/demo.sqlite", "media_dir": "var/media"}
    demo["kill_switch"] = {"file": "KILL_SWITCH"}
    demo["demo"]["posts_file"] = "posts.yaml"
    (tmp_path / "posts.yaml").write_text('- id: hello\n  after_seconds: 0\n  text: "Good morning"\n',
                                         encoding="utf-8")
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(demo), encoding="utf-8")
    return path


def _run_demo_until_revealed(conf: Path, caplog: pytest.LogCaptureFixture) -> list[str]:
    caplog.clear()
    config = load_config(conf)
    runtime = Runtime(config, load_secrets(config, {}), env={})
    try:
        runtime.start()
        journal = runtime.journal
        assert journal is not None
        wait_until(lambda: any("post 1 revealed" in r.getMessage() for r in caplog.records), what="the reveal")
        wait_until(lambda: journal.post("demo_signals", 1) is not None, what="post 1 journaled")
    finally:
        runtime.stop()
    return [r.getMessage() for r in caplog.records if r.name == "following"]


def test_a_second_demo_run_says_the_posts_were_handled_and_how_to_start_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="following")
    conf = _demo_config(tmp_path)
    first = _run_demo_until_revealed(conf, caplog)
    assert not [m for m in first if "already" in m]
    second = _run_demo_until_revealed(conf, caplog)
    warning = next(m for m in second if "already holds demo posts" in m)
    journal = str(tmp_path / "var" / "demo.sqlite")
    assert journal in warning and "delete" in warning and "afresh" in warning
    assert any("post 1 revealed (already handled in an earlier run" in m for m in second)


def test_a_new_paper_account_does_not_trip_the_breaker_against_an_old_peak(tmp_path: Path) -> None:
    with Journal(str(tmp_path / "journal.sqlite")) as journal:
        journal.set_flag(PEAK_FLAG, "5000")  # an earlier paper run that grew its account
    paper = {"starting_equity": 1000}
    with running_system(tmp_path, paper=paper, risk={"max_account_drawdown_pct": 0.15}) as system:
        journal = system.runtime.journal
        assert journal is not None
        wait_until(lambda: journal.get_flag(PEAK_FLAG) is not None and Decimal(journal.get_flag(PEAK_FLAG) or 0)
                   == Decimal(1000), what="the peak measured from the new paper account")
        assert system.events("DRAWDOWN_BREAKER") == []
        assert system.events("PEAK_EQUITY_REBASED")
        assert system.runtime.gate.mode is Mode.NORMAL
