"""The account kind is named where a user looks: the start line and check-config (paper / Bitget demo / LIVE)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cli.main import main
from exchange.sim.testing import SimCredentials, running_sim
from parsing.channel_server import ChannelServer
from runtime.config import account_kind, load_secrets, parse_config
from runtime.wiring import Runtime
from tests.e2e import CHANNEL, fast_config, wait_listening

CREDS = SimCredentials(api_key="demo-key-1", api_secret="demo-secret-1", passphrase="demo-pass-1")
ENV = {"BITGET_API_KEY": CREDS.api_key, "BITGET_API_SECRET": CREDS.api_secret, "BITGET_PASSPHRASE": CREDS.passphrase}


@pytest.mark.parametrize(
    ("text", "kind", "shown"),
    [
        ("dry_run: true\n", "paper", "PAPER trading on the built-in simulator"),
        ("dry_run: false\nbitget:\n  demo_trading: true\n", "bitget_demo", "Bitget DEMO trading"),
        ("dry_run: false\n", "live", "LIVE trading with REAL MONEY"),
    ],
)
def test_check_config_names_the_account_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                             kind: str, shown: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "conf.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["check-config", "--conf", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"# account: {shown}")
    assert account_kind(parse_config({"dry_run": "false" not in text,
                                      "bitget": {"demo_trading": "demo_trading" in text}})) == kind


def test_demo_trading_start_line_says_bitget_demo_not_live(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="following")
    with running_sim(seed=4, credentials=CREDS, demo=True) as sim, ChannelServer(CHANNEL) as channel:
        config = fast_config(tmp_path, channel.start(), dry_run=False,
                             bitget={"base_url": sim.base_url, "demo_trading": True})
        runtime = Runtime(config, load_secrets(config, ENV), env=ENV)
        runtime.start()
        try:
            wait_listening(runtime)
        finally:
            runtime.stop()
    start = [r for r in caplog.records if r.name == "following" and "trading" in r.getMessage()]
    assert start, caplog.text
    line = start[0].getMessage()
    assert "Bitget DEMO trading" in line and "no real money" in line
    assert "LIVE" not in line and "REAL MONEY" not in line


def test_live_start_line_warns_of_real_money(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="following")
    with running_sim(seed=4, credentials=CREDS) as sim, ChannelServer(CHANNEL) as channel:
        config = fast_config(tmp_path, channel.start(), dry_run=False, bitget={"base_url": sim.base_url})
        runtime = Runtime(config, load_secrets(config, ENV), env=ENV)
        runtime.start()
        try:
            wait_listening(runtime)
        finally:
            runtime.stop()
    start = [r for r in caplog.records if r.name == "following" and "REAL MONEY" in r.getMessage()]
    assert start and start[0].levelno == logging.WARNING, caplog.text
