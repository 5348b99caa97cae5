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
