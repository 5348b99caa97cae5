"""`following parse`: offline by default; with --conf, coins the configured exchange does not list are not traded."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from cli.main import main
from exchange.sim.catalogue import DEFAULT_CONTRACTS
from exchange.sim.engine import SimExchange
from exchange.sim.testing import running_sim

BTC = "#BTC/USDT LONG\nEntry: 65000\nStop: 64000\nTarget 1: 66000"
ETH = "#ETH/USDT SHORT\nEntry: 3200\nStop: 3300\nTarget 1: 3100"
CTK = "CTK / USDT\nLONG : 1.38\nTARGET 1 : 1.43$\nSTOP : 1.28$"


def _messages(tmp_path: Path, *texts: str) -> str:
    path = tmp_path / "messages.jsonl"
    path.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts), encoding="utf-8")
    return str(path)


def _conf(tmp_path: Path, text: str) -> str:
    path = tmp_path / "conf.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _parse(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict], str]:
    code = main(["parse", *args])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_offline_without_conf_checks_no_coin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, readings, err = _parse(["--jsonl", _messages(tmp_path, BTC, CTK)], capsys)
    assert code == 0 and err == ""
    assert [(r["symbol"], r["action"]) for r in readings] == [("BTCUSDT", "trade"), ("CTKUSDT", "trade")]


def test_dry_run_conf_checks_against_the_paper_catalogue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = _conf(tmp_path, "dry_run: true\npaper:\n  live_prices: false\n")
    code, readings, err = _parse(["--conf", conf, "--jsonl", _messages(tmp_path, BTC, CTK)], capsys)
    assert code == 0 and err == ""
    btc, ctk = readings
    assert btc["action"] == "trade" and btc["warnings"] == []
    assert ctk["action"] == "notify_only"
    assert "CTKUSDT is not a tradable contract on the exchange" in ctk["warnings"]


def test_live_conf_reads_the_contract_list_from_the_exchange(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    only_btc = SimExchange(contracts=[c for c in DEFAULT_CONTRACTS if c.symbol == "BTCUSDT"])
    with running_sim(engine=only_btc) as sim:
        conf = _conf(tmp_path, f"dry_run: false\nbitget:\n  base_url: {sim.base_url}\n")
        code, readings, err = _parse(["--conf", conf, "--jsonl", _messages(tmp_path, BTC, ETH)], capsys)
    assert code == 0 and err == ""
    # ETHUSDT is in the paper catalogue: refused only because this exchange does not list it
    assert [(r["symbol"], r["action"]) for r in readings] == [("BTCUSDT", "trade"), ("ETHUSDT", "notify_only")]


def test_unreachable_exchange_is_a_note_and_parsing_goes_on(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    conf = _conf(tmp_path, f"dry_run: false\nbitget:\n  base_url: {url}\n")
    code, readings, err = _parse(["--conf", conf, "--jsonl", _messages(tmp_path, BTC, CTK)], capsys)
    assert code == 0
    assert err.startswith("note: exchange at ") and url in err and "parsing offline" in err
    assert [(r["symbol"], r["action"]) for r in readings] == [("BTCUSDT", "trade"), ("CTKUSDT", "trade")]


def test_bad_conf_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, readings, err = _parse(["--conf", _conf(tmp_path, "dry_rn: true\n"), "--jsonl",
                                  _messages(tmp_path, BTC)], capsys)
    assert code == 2 and readings == [] and "dry_rn" in err


def test_symbol_check_leaves_unnamed_and_ignored_readings_alone() -> None:
    from parsing.rules import parse_text
    from trading.symbol_check import check_symbols

    update, noise = parse_text("Move stop to breakeven")[0], parse_text("gm")[0]
    assert check_symbols([update, noise], {"BTCUSDT"}) == [update, noise]
    (refused,) = check_symbols(parse_text(BTC), {"ETHUSDT"})
    assert refused.action.value == "notify_only" and refused.entries == parse_text(BTC)[0].entries
