"""Updates on the live runtime: a post naming a signal moves or closes exactly that signal's position."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import CHANNEL, System, running_system
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


def _live_stops(system: System, symbol: str) -> list:
    return [plan for plan in system.stop_plans(symbol) if plan.status == "live"]


def _sizes(system: System) -> dict[str, object]:
    return {position.symbol: position.size for position in system.open_positions()}


def test_update_naming_a_signal_id_or_post_link_acts_on_that_signal_only(tmp_path: Path) -> None:
    with running_system(tmp_path) as system:
        journal = system.runtime.journal
        assert journal is not None
        system.channel.add_post("SIGNAL ID: #7\n" + system.long_signal("BTCUSDT"))
        eth_post = system.channel.add_post("SIGNAL ID: #8\n" + system.long_signal("ETHUSDT"))
        wait_until(lambda: len(journal.open_signals()) == 2 and _live_stops(system, "BTCUSDT")
                   and _live_stops(system, "ETHUSDT"), timeout=15, what="two protected positions")
        before = _sizes(system)
        assert set(before) == {"BTCUSDT", "ETHUSDT"}
        btc_stops = {plan.trigger_price for plan in _live_stops(system, "BTCUSDT")}

        # No reply, no signal named, no coin: two positions are open, so nothing may be guessed.
        unlinked = system.channel.add_post("Close 50% now")
        wait_until(lambda: any(e.detail.get("message_id") == unlinked and "not linked" in e.detail.get("why", "")
                               for e in journal.events("NOTIFY_ONLY")), what="the unlinked update notified")
        assert _sizes(system) == before
        assert not [o for o in system.engine.orders() if o.reduce_only and o.order_source == "normal"]

        # A link to the ETH signal's post moves the ETH stop; the BTC stop stays where it was.
        new_stop = system.price("ETHUSDT", "0.995")
        system.channel.add_post(f"https://t.me/{CHANNEL}/{eth_post}\nMove stop to {new_stop}")
        wait_until(lambda: [p.trigger_price for p in _live_stops(system, "ETHUSDT")] == [new_stop],
                   what="the ETH stop moved")
        assert {plan.trigger_price for plan in _live_stops(system, "BTCUSDT")} == btc_stops

        # The BTC signal's id closes the BTC position; the ETH position stays open.
        system.channel.add_post("SIGNAL ID: #7\nClosed Manually")
        wait_until(lambda: "BTCUSDT" not in _sizes(system) and len(journal.open_signals()) == 1,
                   what="the BTC position closed and its signal with it")
        assert _sizes(system) == {"ETHUSDT": before["ETHUSDT"]}
        assert [row.symbol for row in journal.open_signals()] == ["ETHUSDT"]
