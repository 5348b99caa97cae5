"""The fast path on the simulator: a decision uses the facts observed off the critical path while they are fresh,
fetches the stale ones, and a symbol's margin mode and leverage are set once and again only on a difference."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import System, running_system
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

# Polls far apart: a fact is as old as the test makes it.
QUIET = {"poll_intervals": {"account_seconds": 30, "positions_seconds": 30, "open_orders_seconds": 30},
         "price_feed": {"mode": "rest", "interval_seconds": 30, "stale_after_seconds": 60}, "health": {"port": 0}}


def _decision_facts(system: System) -> list[dict[str, Any]]:
    return [event.detail for event in system.events("DECISION_FACTS")]


def _trade(system: System, symbol: str, text: str | None = None) -> int:
    before = len(system.entry_orders(symbol))
    logged = len(system.engine.requests_to("place-order"))
    system.channel.add_post(text or system.long_signal(symbol))
    wait_until(lambda: len(system.entry_orders(symbol)) > before, what=f"the {symbol} entry")
    wait_until(lambda: len(system.engine.requests_to("place-order")) > logged, what="the entry logged")
    return len(system.entry_orders(symbol))


def _endpoints(system: System) -> list[str]:
    return [r.endpoint for r in system.engine.request_log]


# Prices from the WebSocket (the simulator pushes on a change and at subscribe) and never from a REST poll while it
# is silent: a "ticker" request before the order can then only be the decision's own.
WS_PRICES = {"price_feed": {"mode": "ws", "interval_seconds": 0.2, "stale_after_seconds": 60}}


def test_a_decision_on_fresh_facts_asks_the_exchange_nothing_but_the_order(tmp_path: Path) -> None:
    with running_system(tmp_path, monitor=WS_PRICES, risk={"cooldown_seconds": 0, "max_fact_age_seconds": 30,
                                                           "max_price_age_seconds": 30}) as system:
        _trade(system, "BTCUSDT")  # the first entry on BTC sets margin mode and leverage, and watches its price
        system.engine.close_positions("BTCUSDT")
        # the guard's next polls (0.25 s and 0.3 s apart) show the position gone and come after the bot's last order
        wait_until(lambda: len(_decision_facts(system)) == 1, what="the first decision's facts")
        entries = len(system.entry_orders("BTCUSDT"))

        def polled_after_the_close() -> bool:
            # Both views the decision may take as known: the account poll and the positions poll each after the
            # bot's latest entry change (one without the other is fetched again, rightly).
            facts = system.runtime.facts
            account, fresh = facts.account(), facts.positions()
            last = system.runtime.journal.last_entry_change() if system.runtime.journal else None
            return (fresh is not None and account is not None and last is not None and fresh.observed_at > last
                    and account.observed_at > last and not fresh.value)

        wait_until(polled_after_the_close, what="an account and a positions poll after the close")
        seen = len(system.engine.request_log)
        _trade(system, "BTCUSDT")
        assert len(system.entry_orders("BTCUSDT")) == entries + 1
        second = _decision_facts(system)[-1]["facts"]
        assert second["price"]["source"].startswith("price_feed")
        assert second["account"]["source"] == "guard" and second["positions"]["source"] in ("guard", "reconcile")
        assert all(fact["age_s"] <= 30 for fact in second.values())
        between = _endpoints(system)[seen:]
        for decided_by_the_fast_path in ("set-margin-mode", "set-leverage", "contracts", "ticker"):
            assert decided_by_the_fast_path not in between[: between.index("place-order")]


def test_a_decision_on_stale_facts_fetches_them_again(tmp_path: Path) -> None:
    with running_system(tmp_path, monitor=QUIET, risk={"cooldown_seconds": 0, "max_fact_age_seconds": 0.05,
                                                       "max_price_age_seconds": 0.05}) as system:
        # The guard polls the account as it starts, in its own thread: the listener's first poll may come first.
        wait_until(lambda: system.runtime.facts.account() is not None, what="the guard's first poll, at start")
        seen = len(system.engine.request_log)
        _trade(system, "BTCUSDT")
        facts = _decision_facts(system)[-1]["facts"]
        assert {facts[name]["source"] for name in ("price", "account", "positions")} == {"fetched"}
        before_order = _endpoints(system)[seen:]
        before_order = before_order[: before_order.index("place-order")]
        assert {"ticker", "accounts", "all-position"} <= set(before_order)


def test_a_refusal_on_known_facts_is_decided_again_on_fetched_ones(tmp_path: Path) -> None:
    """The guard's last poll still shows a position the exchange closed since: not a reason to lose the signal."""
    with running_system(tmp_path, monitor=QUIET, risk={"cooldown_seconds": 0, "max_open_positions": 1,
                                                       "max_fact_age_seconds": 30}) as system:
        _trade(system, "BTCUSDT")
        journal = system.runtime.journal
        assert journal is not None
        # the entry's follow-up (its take-profits) done: no order of the bot changes after the view below
        wait_until(lambda: (journal.last_entry_change() or 0) < time.time() - 0.5, what="the orders settled")
        system.runtime.facts.put_positions(tuple(system.runtime.client.positions()), time.time(), "guard")
        system.engine.close_positions("BTCUSDT")
        _trade(system, "SOLUSDT")
        assert system.events("SIGNAL_REFUSED") == []
        assert _decision_facts(system)[-1]["facts"]["positions"]["source"] == "fetched"


def test_margin_mode_and_leverage_are_set_once_and_again_only_on_a_difference(tmp_path: Path) -> None:
    with running_system(tmp_path, risk={"cooldown_seconds": 0}) as system:
        engine = system.engine
        _trade(system, "BTCUSDT")
        assert len(engine.requests_to("set-margin-mode")) == 1 and len(engine.requests_to("set-leverage")) == 1
        engine.close_positions("BTCUSDT")
        _trade(system, "BTCUSDT")
        assert len(engine.requests_to("set-margin-mode")) == 1, "already isolated: not set again"
        assert len(engine.requests_to("set-leverage")) == 1, "already 5x: not set again"
        engine.close_positions("BTCUSDT")
        _trade(system, "BTCUSDT", system.long_signal("BTCUSDT").replace("(5X)", "(3X)"))
        assert len(engine.requests_to("set-leverage")) == 2 and engine.settings("BTCUSDT").long_leverage == 3
        assert len(engine.requests_to("set-margin-mode")) == 1, "only what differs is set"


def test_settings_changed_by_hand_are_found_by_reconciliation_and_set_again(tmp_path: Path) -> None:
    monitor = {"poll_intervals": {"account_seconds": 0.25, "positions_seconds": 0.3, "open_orders_seconds": 0.2},
               "price_feed": {"mode": "rest", "interval_seconds": 0.2}, "health": {"port": 0}}
    # On the entry's path: with settings ahead on, the next pass would set them back before the signal
    # (tests/test_settings_ahead.py).
    with running_system(tmp_path, monitor=monitor, risk={"cooldown_seconds": 0, "settings_recheck_seconds": 1,
                                                         "prepare_settings": False}) as system:
        engine = system.engine
        _trade(system, "BTCUSDT")
        engine.close_positions("BTCUSDT")
        engine.set_leverage("BTCUSDT", 20)  # by hand, on the exchange's site

        def reread() -> bool:
            known = system.runtime.facts.settings("BTCUSDT")
            return known is not None and known.source == "reconcile" and known.value.long_leverage == 20

        wait_until(reread, what="reconciliation reading the settings again")
        _trade(system, "BTCUSDT")
        assert len(engine.requests_to("set-leverage")) == 2 and engine.settings("BTCUSDT").long_leverage == 5
