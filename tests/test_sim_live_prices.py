"""The paper exchange follows live public tickers when it can read them, and its own path when it cannot.

"Live Bitget" is played by a second simulator on loopback: it serves the real V2 tickers endpoint.
"""

from __future__ import annotations

import socket
from decimal import Decimal
from pathlib import Path

import pytest
import responses

from exchange.sim.engine import SimExchange
from exchange.sim.live_prices import (
    TICKERS_PATH,
    LivePriceSource,
    LiveTickersError,
    parse_live_tickers,
)
from exchange.sim.testing import running_sim


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_parse_reads_last_and_mark_and_skips_unusable_rows() -> None:
    quotes = parse_live_tickers({
        "code": "00000",
        "data": [
            {"symbol": "BTCUSDT", "lastPr": "64000.5", "markPrice": "64001"},
            {"symbol": "ETHUSDT", "lastPr": "0", "markPrice": "3000"},  # not a price
            {"symbol": "SOLUSDT", "lastPr": "abc"},
            {"lastPr": "1"},  # no symbol
            "junk",
        ],
    })
    assert set(quotes) == {"BTCUSDT"}
    assert quotes["BTCUSDT"].last == Decimal("64000.5")
    assert quotes["BTCUSDT"].mark == Decimal("64001")


@pytest.mark.parametrize(
    "payload",
    [[], {"code": "40001", "msg": "nope", "data": []}, {"code": "00000", "data": {"symbol": "BTCUSDT"}}],
)
def test_parse_refuses_an_error_envelope_or_a_wrong_shape(payload: object) -> None:
    with pytest.raises(LiveTickersError):
        parse_live_tickers(payload)


def test_the_paper_exchange_takes_live_last_and_mark_prices() -> None:
    with running_sim(seed=5) as live:
        live.engine.set_price("BTCUSDT", "71234.5", mark="71230")
        live.engine.set_price("ETHUSDT", "3456.78")
        paper = SimExchange(seed=9)
        source = LivePriceSource(paper, base_url=live.base_url, interval_s=60)
        try:
            assert source.poll_once() == "live"
        finally:
            source.stop()
    assert paper.price("BTCUSDT") == Decimal("71234.5")
    assert paper.mark_price("BTCUSDT") == Decimal("71230")
    assert paper.price("ETHUSDT") == Decimal("3456.78")
    assert source.live_updates == 1 and source.own_steps == 0


def test_without_the_network_prices_follow_the_own_path_and_return_to_live_later() -> None:
    paper = SimExchange(seed=9)
    before = {symbol: paper.price(symbol) for symbol in paper.contracts}
    source = LivePriceSource(paper, base_url=_closed_port_url(), interval_s=60, timeout_s=2)
    try:
        assert source.poll_once() == "own"
        assert source.own_steps == 1
        moved = [symbol for symbol in paper.contracts if paper.price(symbol) != before[symbol]]
        assert moved, "the own path must keep prices moving while the live source is away"
    finally:
        source.stop()

    with running_sim(seed=5) as live:
        live.engine.set_price("BTCUSDT", "70000")
        back = LivePriceSource(paper, base_url=live.base_url, interval_s=60)
        try:
            assert back.poll_once() == "live"
        finally:
            back.stop()
    assert paper.price("BTCUSDT") == Decimal("70000")


@responses.activate
def test_an_error_answer_or_bad_json_is_not_taken_for_prices() -> None:
    url = "https://live.example" + TICKERS_PATH
    responses.get(url, json={"code": "40404", "msg": "gone", "data": None})
    responses.get(url, body="<html>maintenance</html>")
    paper = SimExchange(seed=1)
    source = LivePriceSource(paper, base_url="https://live.example", interval_s=60)
    assert source.poll_once() == "own"
    assert source.poll_once() == "own"
    assert source.own_steps == 2 and source.live_updates == 0
    assert all(call.request.url.startswith(url) for call in responses.calls)
    assert "productType=USDT-FUTURES" in responses.calls[0].request.url


def test_dry_run_with_paper_live_prices_trades_on_the_live_price(tmp_path: Path) -> None:
    from tests.e2e import running_system
    from tests.waiting import wait_until

    with running_sim(seed=5) as live:
        live.engine.set_price("BTCUSDT", "71234.5")
        paper = {"seed": 3, "tick_seconds": 3600, "live_prices": True, "live_prices_url": live.base_url}
        with running_system(tmp_path, paper=paper) as system:
            wait_until(lambda: system.engine.price("BTCUSDT") == Decimal("71234.5"),
                       what="paper follows the live price")
            assert system.runtime.paper is not None
            assert system.runtime.paper.live_prices.source == "live"


# --- a believable paper run: the real contract list at live prices by default, a loud fallback -------------------

def _live_engine_with_an_extra_coin() -> SimExchange:
    """'Live Bitget': the built-in contracts plus one the simulator's catalogue does not have."""
    from exchange.sim.catalogue import DEFAULT_CONTRACTS, _contract

    wif = _contract("WIFUSDT", "WIF", price_place=4, volume_place=0, min_trade_num="1", max_lever=50)
    engine = SimExchange(seed=5, contracts=[*DEFAULT_CONTRACTS, wif], prices={"WIFUSDT": Decimal("2.5000")})
    engine.set_price("BTCUSDT", "71234.5")
    return engine


def test_live_prices_are_on_by_default_and_in_the_prod_template_but_not_in_the_offline_demo() -> None:
    from runtime.config import load_config, parse_config

    repo = Path(__file__).resolve().parents[1]
    assert parse_config({}).paper.live_prices is True
    assert load_config(repo / "conf" / "prod.yaml").paper.live_prices is True
    assert load_config(repo / "conf" / "demo.yaml").paper.live_prices is False


def test_a_paper_run_trades_a_real_channel_coin_on_the_live_contract_list(tmp_path: Path) -> None:
    from tests.e2e import running_system
    from tests.waiting import wait_until

    with running_sim(engine=_live_engine_with_an_extra_coin()) as live:
        paper = {"seed": 3, "tick_seconds": 3600, "live_prices": True, "live_prices_url": live.base_url}
        with running_system(tmp_path, paper=paper) as system:
            assert "WIFUSDT" in system.engine.contracts  # the live list, not the 11 built-in contracts
            assert system.engine.price("WIFUSDT") == Decimal("2.5000")
            assert system.engine.price("BTCUSDT") == Decimal("71234.5")  # live from the first moment
            system.channel.add_post("#WIF/USDT LONG\nEntry: 2.5\nTarget 1: 2.6\nStop: 2.4\nLeverage: 5x")
            wait_until(lambda: system.entry_orders("WIFUSDT"), what="the WIF entry on the paper exchange")


def test_without_the_live_market_the_paper_run_warns_loudly_and_walks_its_own_prices(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from exchange.sim.catalogue import DEFAULT_CONTRACTS
    from tests.e2e import running_system

    caplog.set_level(logging.INFO)
    paper = {"seed": 3, "tick_seconds": 3600, "live_prices": True, "live_prices_url": _closed_port_url(),
             "live_prices_timeout_seconds": 1}
    with running_system(tmp_path, paper=paper) as system:
        assert set(system.engine.contracts) == {c.symbol for c in DEFAULT_CONTRACTS}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "PAPER PRICES ARE SIMULATED" in
                r.getMessage()]
    assert warnings, caplog.text
    assert "cannot be read" in warnings[0].getMessage()


def test_reading_the_live_market_is_bounded_when_the_server_never_answers() -> None:
    from exchange.sim.live_prices import LiveMarketUnavailable, fetch_live_market

    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(LiveMarketUnavailable):
            fetch_live_market(url, timeout_s=0.2)


def test_parse_with_a_dry_run_conf_checks_coins_against_the_same_live_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from cli.main import main

    messages = tmp_path / "messages.jsonl"
    texts = ["#WIF/USDT LONG\nEntry: 2.5\nStop: 2.4\nTarget 1: 2.6", "CTK / USDT\nLONG : 1.38\nSTOP : 1.28$"]
    messages.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    conf = tmp_path / "conf.yaml"
    with running_sim(engine=_live_engine_with_an_extra_coin()) as live:
        conf.write_text(f"dry_run: true\npaper:\n  live_prices_url: {live.base_url}\n", encoding="utf-8")
        assert main(["parse", "--conf", str(conf), "--jsonl", str(messages)]) == 0
    captured = capsys.readouterr()
    actions = [(r["symbol"], r["action"]) for r in map(json.loads, captured.out.splitlines())]
    assert actions == [("WIFUSDT", "trade"), ("CTKUSDT", "notify_only")]
    assert captured.err == ""

    conf.write_text(f"dry_run: true\npaper:\n  live_prices_url: {_closed_port_url()}\n"
                    "  live_prices_timeout_seconds: 1\n", encoding="utf-8")
    assert main(["parse", "--conf", str(conf), "--jsonl", str(messages)]) == 0
    captured = capsys.readouterr()
    assert "cannot be read" in captured.err and "11 built-in contracts" in captured.err
    actions = [(r["symbol"], r["action"]) for r in map(json.loads, captured.out.splitlines())]
    assert actions == [("WIFUSDT", "notify_only"), ("CTKUSDT", "notify_only")]  # as the fallback run would


def test_a_live_prices_url_that_is_no_http_url_is_a_config_error() -> None:
    from runtime.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"paper\.live_prices_url"):
        parse_config({"paper": {"live_prices_url": "api.bitget.com"}})
