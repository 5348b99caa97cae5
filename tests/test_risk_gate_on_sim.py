"""The RiskGate against the simulator: every rule proven end to end (post -> parser -> gate -> exchange).

Approved entries are sized from the simulator's equity and the stop distance, fees included, never above the
budget or max_notional_per_trade, with isolated margin and the (capped) leverage set before the entry. Every
refusal is journaled with its reason and counted in following_refusals_total. The pure rules and their edges
are in test_risk_checks.py, test_position_sizing.py, test_leverage_cap.py and test_risk_stoploss_required.py;
the drawdown breaker in test_circuit_breaker_drawdown.py.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import System, running_system
from tests.waiting import wait_until
from trading.risk import unit_loss

pytestmark = pytest.mark.slow


def _events(system: System, kind: str) -> list[Any]:
    assert system.runtime.journal is not None
    return system.runtime.journal.events(kind)


def _refusals(system: System, reason: str) -> float | None:
    return system.runtime.metrics.registry.get_sample_value("following_refusals_total", {"reason": reason})


def _limit_long(system: System, symbol: str, entry_factor: str, leverage: str = "5") -> str:
    """A single-price long entry ``entry_factor`` times the live price, stop 3% below the entry."""
    entry = Decimal(entry_factor)
    return (
        f"#{symbol[:-4]}/USDT LONG\nEntry: {system.price(symbol, entry_factor)}\n"
        f"Target 1: {system.price(symbol, str(entry * Decimal('1.05')))}\n"
        f"Stop: {system.price(symbol, str(entry * Decimal('0.97')))}\nLeverage: Isolated ({leverage}X)"
    )


def test_an_approved_entry_is_sized_from_equity_and_stop_distance_with_margin_and_leverage_set_first(
    tmp_path: Path,
) -> None:
    risk = {"cooldown_seconds": 0, "account_risk_per_trade": 0.003, "max_notional_per_trade": 10_000}
    with running_system(tmp_path, risk=risk) as system:
        engine = system.engine
        contract = engine.contract("BTCUSDT")
        equity = engine.account().equity
        text = system.long_signal("BTCUSDT")  # zone 0.9995..1.0005 of the live price, stop 0.99, 5x
        top, stop = system.price("BTCUSDT", "1.0005"), system.price("BTCUSDT", "0.99")
        system.channel.add_post(text)
        (entry,) = wait_until(lambda: system.entry_orders("BTCUSDT"), what="the entry")

        budget = equity * Decimal("0.003")
        loss_per_unit = unit_loss(top, stop, contract.taker_fee_rate)  # sized at the worst (highest) entry
        expected = (budget / loss_per_unit).quantize(contract.size_step, rounding=ROUND_DOWN)
        assert entry.size == expected > 0
        assert entry.size * loss_per_unit <= budget, "the worst case, fees included, stays within the budget"
        assert (entry.size + contract.min_trade_num) * loss_per_unit > budget, "and uses the budget"
        assert entry.preset_stop_loss == stop

        settings = engine.settings("BTCUSDT")
        assert settings.margin_mode == "isolated" and settings.long_leverage == 5
        wait_until(lambda: engine.requests_to("place-order"), what="the entry logged")  # logged after the reply
        endpoints = [r.endpoint for r in engine.request_log if r.code == "00000"]
        placed = endpoints.index("place-order")
        assert endpoints.index("set-margin-mode") < placed and endpoints.index("set-leverage") < placed


def test_max_notional_per_trade_caps_the_size(tmp_path: Path) -> None:
    risk = {"cooldown_seconds": 0, "account_risk_per_trade": 0.05, "max_notional_per_trade": 150}
    with running_system(tmp_path, risk=risk) as system:
        system.channel.add_post(system.long_signal("BTCUSDT"))
        (entry,) = wait_until(lambda: system.entry_orders("BTCUSDT"), what="the entry")
        top = system.price("BTCUSDT", "1.0005")
        assert entry.size * top <= 150
        assert (entry.size + system.engine.contract("BTCUSDT").min_trade_num) * top > 150


def test_leverage_above_the_maximum_is_capped_under_cap(tmp_path: Path) -> None:
    with running_system(tmp_path, risk={"cooldown_seconds": 0, "max_leverage": 3, "default_leverage": 1}) as system:
        system.channel.add_post(system.long_signal("BTCUSDT"))  # asks for 5x
        wait_until(lambda: system.entry_orders("BTCUSDT"), what="the entry")
        assert system.engine.settings("BTCUSDT").long_leverage == 3
        assert _events(system, "SIGNAL_REFUSED") == []


Case = tuple[dict[str, Any], Callable[[System], str], str]
REFUSALS: dict[str, Case] = {
    "leverage REJECT": ({"max_leverage": 3, "default_leverage": 1, "leverage_policy": "REJECT"},
                        lambda s: s.long_signal("BTCUSDT"), "leverage_above_max"),
    "zone far from the live price": ({}, lambda s: s.long_signal("BTCUSDT").replace(
        f"{s.price('BTCUSDT', '0.9995')} - {s.price('BTCUSDT', '1.0005')}",
        f"{s.price('BTCUSDT', '0.97')} - {s.price('BTCUSDT', '0.975')}").replace(
        f"1) {s.price('BTCUSDT', '0.99')}", f"1) {s.price('BTCUSDT', '0.96')}"), "slippage"),
    "limit the price already passed": ({}, lambda s: _limit_long(s, "BTCUSDT", "1.02"), "slippage"),
    # No target: the parser trades the entry and its stop but rates the reading less complete (confidence 0.8).
    "signal quality": ({"min_signal_quality": 0.95}, lambda s: "\n".join(
        line for line in _limit_long(s, "BTCUSDT", "1").splitlines() if not line.startswith("Target")), "low_quality"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_each_refusal_is_journaled_with_its_reason_counted_and_sends_nothing(tmp_path: Path, case: str) -> None:
    overrides, text, reason = REFUSALS[case]
    with running_system(tmp_path, risk={"cooldown_seconds": 0, **overrides}) as system:
        system.channel.add_post(text(system))
        (refused,) = wait_until(lambda: _events(system, "SIGNAL_REFUSED"), what="the refusal")
        assert refused.detail["reason"] == reason, refused.detail
        # Counted just after the event is journaled (what the wait above saw).
        wait_until(lambda: _refusals(system, reason) == 1, what="the refusal counted")
        journal = system.runtime.journal
        assert journal is not None
        row = journal.signal(refused.detail["signal_id"])
        assert row is not None and row.decision == "refused" and row.reason.startswith(reason)
        assert system.entry_orders() == [] and system.engine.requests_to("place-order") == []


def test_a_limit_entry_waiting_below_the_price_is_kept(tmp_path: Path) -> None:
    with running_system(tmp_path) as system:
        system.channel.add_post(_limit_long(system, "BTCUSDT", "0.98"))
        (entry,) = wait_until(lambda: system.entry_orders("BTCUSDT"), what="the resting entry")
        assert entry.order_type == "limit" and entry.state == "live"
        assert entry.price == system.price("BTCUSDT", "0.98")


def test_max_open_positions_and_the_cooldown_per_symbol(tmp_path: Path) -> None:
    with running_system(tmp_path, risk={"cooldown_seconds": 600, "max_open_positions": 2}) as system:
        btc = system.channel.add_post(system.long_signal("BTCUSDT"))
        system.channel.add_post(system.long_signal("SOLUSDT"))
        wait_until(lambda: len(system.open_positions()) == 2, what="two positions")
        system.channel.add_post(system.long_signal("ETHUSDT"))
        (refused,) = wait_until(lambda: _events(system, "SIGNAL_REFUSED"), what="the third refused")
        assert refused.detail["reason"] == "max_open_positions"
        # Counted just after the event is journaled (what the wait above saw).
        wait_until(lambda: _refusals(system, "max_open_positions") == 1, what="the refusal counted")

        # BTC closed: a slot is free, but BTC itself is cooling down; another symbol is not.
        system.channel.add_post("#BTC/USDT close all", reply_to=btc)
        wait_until(lambda: len(system.open_positions()) == 1, what="BTC closed")
        system.channel.add_post(system.long_signal("BTCUSDT"))
        wait_until(lambda: len(_events(system, "SIGNAL_REFUSED")) == 2, what="BTC refused again")
        assert _events(system, "SIGNAL_REFUSED")[1].detail["reason"] == "cooldown"
        wait_until(lambda: _refusals(system, "cooldown") == 1, what="the cooldown refusal counted")
        system.channel.add_post(system.long_signal("ETHUSDT"))
        wait_until(lambda: system.entry_orders("ETHUSDT"), what="ETH traded")
        assert len(system.entry_orders("BTCUSDT")) == 1


def test_an_entry_whose_leverage_the_exchange_refuses_is_not_sent_and_the_refusal_is_journaled(tmp_path: Path) -> None:
    with running_system(tmp_path) as system:
        system.engine.faults.reject_next("set-leverage", "40797", "Exceeded the maximum settable leverage")
        system.channel.add_post(system.long_signal("BTCUSDT"))
        (refused,) = wait_until(lambda: _events(system, "SIGNAL_REFUSED"), what="the refusal")
        assert refused.detail["reason"] == "leverage_not_set" and "40797" in refused.detail["detail"]
        wait_until(lambda: _refusals(system, "leverage_not_set") == 1, what="the refusal counted")
        assert system.engine.requests_to("place-order") == [] and system.open_positions() == []


def test_an_entry_meeting_a_rate_limited_exchange_is_asked_again_not_dropped(tmp_path: Path) -> None:
    # Slow polls, so that the entry check is the only caller of all-position during the test.
    quiet = {"poll_intervals": {"account_seconds": 30, "positions_seconds": 30, "open_orders_seconds": 30},
             "price_feed": {"mode": "rest", "interval_seconds": 30, "stale_after_seconds": 60}, "health": {"port": 0}}
    # No fact is fresh enough to decide on (max_fact_age_seconds): the gate reads the positions itself.
    with running_system(tmp_path, monitor=quiet, risk={"cooldown_seconds": 0, "max_fact_age_seconds": 0.001,
                                                      "stoploss": {"stop_deadline_seconds": 60}}) as system:
        # Three 429s: the client's own read retries all fail, so the gate meets a rate-limited exchange.
        system.engine.faults.fail_next("all-position", http_status=429, times=3)
        system.channel.add_post(system.long_signal("BTCUSDT"))
        wait_until(lambda: system.entry_orders("BTCUSDT"), what="the entry, on the gate's second try")
        assert [r.code for r in system.engine.requests_to("all-position")].count("429") == 3
        assert _events(system, "SIGNAL_REFUSED") == []
