"""Pure rules of the local guard and of stop coverage: when a price closes a position, when a stale price is
neither a trigger nor a sign of safety, one close per crossing with retries, and how much of a position its
stops cover."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from tests.test_execution_and_guard_rules import plan, position
from trading.guard import (
    LocalStopLatch,
    local_stop_flag,
    local_stop_verdict,
    position_has_stop,
    uncovered_size,
)

D = Decimal
STALE_AFTER = 5.0


def verdict(side: str, stop: str | None, *, mark: str | None, last: str | None = None, age: float | None = 0.1
            ) -> str:
    return local_stop_verdict(side, D(stop) if stop else None, mark=D(mark) if mark else None,
                              last=D(last) if last else None, price_age_s=age, stale_after_s=STALE_AFTER)


@pytest.mark.parametrize(("side", "stop", "mark", "expected"), [
    ("long", "64000", "64000.1", "hold"),
    ("long", "64000", "64000", "close"),  # touching the stop is crossing it
    ("long", "64000", "63000", "close"),
    ("short", "66000", "65999.9", "hold"),
    ("short", "66000", "66000", "close"),
    ("short", "66000", "67000", "close"),
])
def test_a_fresh_price_at_or_past_the_stop_closes(side: str, stop: str, mark: str, expected: str) -> None:
    assert verdict(side, stop, mark=mark) == expected


def test_the_mark_price_is_preferred_and_the_last_price_stands_in_without_it() -> None:
    # The last price dipped through the stop, the mark did not: the mark decides (as the exchange's stops do).
    assert verdict("long", "64000", mark="64100", last="63900") == "hold"
    assert verdict("long", "64000", mark=None, last="63900") == "close"
    assert verdict("short", "66000", mark=None, last="65900") == "hold"


@pytest.mark.parametrize("side", ["long", "short"])
def test_a_stale_or_missing_price_never_triggers_nor_counts_as_safe(side: str) -> None:
    crossed = "63000" if side == "long" else "67000"
    assert verdict(side, "64000" if side == "long" else "66000", mark=crossed, age=STALE_AFTER + 0.1) == "stale"
    assert verdict(side, "64000", mark=crossed, age=None) == "stale"  # no price seen yet
    assert verdict(side, "64000", mark=None, last=None) == "stale"


def test_without_a_stop_there_is_nothing_to_watch() -> None:
    assert verdict("long", None, mark="1") == "no_stop"


def test_one_close_per_crossing_then_a_retry_while_the_position_stays_open() -> None:
    latch = LocalStopLatch(retry_s=1.0)
    assert latch.observe("BTC:long:1", "hold", now=0.0) is None
    assert latch.observe("BTC:long:1", "close", now=1.0) == "trigger"
    assert latch.observe("BTC:long:1", "close", now=1.5) is None  # the close is on its way: not twice
    # Still open a retry interval later (refused or lost): sent again, even if the price came back.
    assert latch.observe("BTC:long:1", "hold", now=2.0) == "retry"
    assert latch.observe("BTC:long:1", "stale", now=2.5) is None
    assert latch.triggered("BTC:long:1") and not latch.triggered("BTC:short:1")
    latch.forget_except(set())  # closed
    assert latch.observe("BTC:long:1", "hold", now=3.0) is None


def test_a_reopened_position_gets_its_own_local_stop() -> None:
    assert local_stop_flag("BTCUSDT", "long", 1000) != local_stop_flag("BTCUSDT", "long", 2000)
    assert local_stop_flag("BTCUSDT", "long", 1000) != local_stop_flag("BTCUSDT", "short", 1000)


# --- coverage: a stop counts for the size it covers ------------------------------------------------------------
@pytest.mark.parametrize("pos_mode", ["one_way_mode", "hedge_mode"])
def test_a_sized_stop_covers_only_its_size(pos_mode: str) -> None:
    grown = position("long", "0.010")
    # The preset stop of the first fill, sized to it: the position grew past it.
    assert not position_has_stop(grown, [plan("pos_loss", "0.004")], pos_mode)
    assert uncovered_size(grown, [plan("pos_loss", "0.004")], pos_mode) == D("0.006")
    assert uncovered_size(grown, [plan("loss_plan", "0.004"), plan("loss_plan", "0.006")], pos_mode) == 0
    # A stop without a size is position-level: it covers whatever the size.
    assert position_has_stop(grown, [plan("pos_loss", None)], pos_mode)
    assert uncovered_size(grown, [plan("pos_loss", None)], pos_mode) == 0


def test_the_stop_price_a_position_reports_does_not_hide_a_gap_its_listed_stops_leave() -> None:
    reported = replace(position("long", "0.010"), stop_loss=D("64000"))
    assert not position_has_stop(reported, [plan("loss_plan", "0.004")], "one_way_mode")
    assert uncovered_size(reported, [plan("loss_plan", "0.004")], "one_way_mode") == D("0.006")
    assert position_has_stop(reported, [], "one_way_mode")  # nothing listed: the position's own stop


def test_a_crossing_journaled_before_a_restart_is_not_triggered_again_and_its_close_is_due_at_once() -> None:
    latch = LocalStopLatch(retry_s=1.0)
    latch.restore("BTC:long:1", now=10.0)
    assert latch.observe("BTC:long:1", "close", now=10.0) == "retry"
    assert latch.observe("BTC:long:1", "close", now=10.5) is None
