"""A post on the channel becomes exactly one protected entry on the simulator; bad posts trade nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.e2e import System, running_system
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


def _ready(system: System) -> None:
    host, port = system.runtime.health_address or ("", 0)
    wait_until(lambda: requests.get(f"http://{host}:{port}/readyz", timeout=2).status_code == 200,
               timeout=15, what="/readyz 200")


def test_post_becomes_exactly_one_entry_with_attached_stop(tmp_path: Path) -> None:
    with running_system(tmp_path) as system:
        _ready(system)
        system.channel.add_post(system.long_signal("BTCUSDT"))
        entries = wait_until(lambda: system.entry_orders("BTCUSDT"), what="the entry on the simulator")
        assert len(entries) == 1
        assert entries[0].preset_stop_loss is not None
        assert entries[0].preset_stop_loss < system.engine.price("BTCUSDT")
        wait_until(lambda: system.stop_plans("BTCUSDT"), what="the stop plan on the position")

        # The same page polled many times more, and the listener restarted: still one entry.
        hits = system.channel.hits
        wait_until(lambda: system.channel.hits >= hits + 10, what="ten more polls")
        listener = system.runtime.directory.get("listener")
        assert listener is not None
        listener.stop()
        wait_until(lambda: (ref := system.runtime.directory.get("listener")) is not None and ref is not listener
                   and ref.is_alive(), what="the listener restarted")
        hits = system.channel.hits
        wait_until(lambda: system.channel.hits >= hits + 10, what="ten polls by the new listener")
        assert len(system.entry_orders("BTCUSDT")) == 1
        assert len(system.open_positions()) == 1


def test_signal_without_stop_places_no_order_and_notifies(tmp_path: Path) -> None:
    with running_system(tmp_path) as system:
        _ready(system)
        price = system.price("ETHUSDT")
        system.channel.add_post(f"ETH LONG\nEntry: {price}\nTargets: {system.price('ETHUSDT', '1.01')}")
        wait_until(lambda: system.events("NOTIFY_ONLY"), what="a notify_only event")
        assert system.entry_orders() == []


def test_stop_on_the_wrong_side_places_no_order(tmp_path: Path) -> None:
    with running_system(tmp_path) as system:
        _ready(system)
        system.channel.add_post(system.long_signal("SOLUSDT", stop_factor="1.05"))
        wait_until(lambda: system.events("NOTIFY_ONLY") or system.events("SIGNAL_REFUSED"),
                   what="a refusal")
        assert system.entry_orders() == []


def test_a_second_signal_on_a_symbol_with_a_working_entry_is_refused(tmp_path: Path) -> None:
    with running_system(tmp_path) as system:
        price = system.price("BTCUSDT", "0.98")  # a limit entry well below the market: it rests unfilled
        stop = system.price("BTCUSDT", "0.97")
        text = f"#BTC/USDT LONG\nEntry: {price}\nTarget 1: {system.price('BTCUSDT', '1.01')}\nStop: {stop}"
        system.channel.add_post(text)
        wait_until(lambda: system.entry_orders("BTCUSDT"), what="the resting entry")
        system.channel.add_post(system.long_signal("BTCUSDT"))
        wait_until(lambda: system.events("SIGNAL_REFUSED"), what="the second signal refused")
        assert len(system.entry_orders("BTCUSDT")) == 1
        assert system.open_positions() == []


def test_an_edited_post_is_never_traded_again_nor_late(tmp_path: Path) -> None:
    with running_system(tmp_path) as system:
        signal_id = system.channel.add_post(system.long_signal("BTCUSDT"))
        noise_id = system.channel.add_post("Good morning, signals later today")
        wait_until(lambda: system.entry_orders("BTCUSDT"), what="the entry")
        system.channel.edit_post(signal_id, system.long_signal("BTCUSDT", stop_factor="0.985"))
        system.channel.edit_post(noise_id, system.long_signal("ETHUSDT"))
        wait_until(lambda: len(system.events("SIGNAL_EDITED")) == 2, what="both edits noticed")
        assert len(system.entry_orders("BTCUSDT")) == 1
        assert system.entry_orders("ETHUSDT") == []


def test_take_profit_plans_are_not_polled_as_orders(tmp_path: Path) -> None:
    with running_system(tmp_path) as system:
        system.channel.add_post(system.long_signal("BTCUSDT"))
        wait_until(lambda: len([p for p in system.engine.plan_orders("BTCUSDT") if p.plan_type == "profit_plan"]) == 2,
                   what="the take-profit ladder")
        detail_calls = len(system.engine.requests_to("detail"))
        hits = system.channel.hits
        wait_until(lambda: system.channel.hits >= hits + 10, what="more polling cycles")
        assert len(system.engine.requests_to("detail")) == detail_calls, "filled entries and plans need no lookups"


def test_posts_on_the_channel_before_the_first_start_are_never_traded(tmp_path: Path) -> None:
    old_signal = ("#BTC/USDT LONG\nEntry Zone: 64900 - 65100\nTake-Profit Targets:\n1) 65600\n"
                  "Stop Targets:\n1) 64300\nLeverage: Isolated (5X)")
    with running_system(tmp_path, before_start=lambda channel: channel.add_post(old_signal)) as system:
        parser = system.runtime.directory.get("parser")
        assert parser is not None
        parser.stop()  # a restarted Parser reads what was recorded but never read
        wait_until(lambda: (ref := system.runtime.directory.get("parser")) is not None and ref is not parser
                   and ref.is_alive(), what="the parser restarted")
        hits = system.channel.hits
        wait_until(lambda: system.channel.hits >= hits + 10, what="more polls")
        assert system.entry_orders() == []
