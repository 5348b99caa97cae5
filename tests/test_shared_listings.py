"""One reading of positions, open orders and plans for the PositionGuard and the OrderManager's reconciliation.

The rule (``trading.shared_listings.listing_verdict``): a pass decides on the guard's reading only while it is
fresh, not older than the last view decided on, and read with no write of the bot's under way or made since. And
a pass acts only on its own reading: a shared reading showing anything to do is read again. On the simulator: a
write made after the shared reading is seen by the pass (the stop the bot cancelled is placed again; the stop
the bot placed is not placed twice), and idle the OrderManager no longer reads the listings itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.fencing import Fence, Superseded, fenced
from exchange.bitget.client import BitgetClient
from exchange.bitget.models import TpslRequest
from exchange.sim.engine import SimExchange
from parsing.signals import Side
from tests.e2e import running_system
from tests.order_side import OrderSide, order_side
from tests.waiting import wait_until
from trading.facts import FactStore
from trading.journal import Journal
from trading.reconcile import PlaceStop
from trading.reconciliation_applier import ReconcileSettings, ReconciliationApplier
from trading.shared_listings import Listings, SharedListings, WriteLog, WriteMark, listing_verdict

D = Decimal
LISTING_ENDPOINTS = ("all-position", "orders-pending", "orders-plan-pending")


SETTLED = WriteMark(3, 3)  # three writes so far, none under way


def _listing(observed_at: float = 100.0, writes: WriteMark = SETTLED) -> Listings:
    return Listings(positions=(), pending=(), plans=(), observed_at=observed_at, writes=writes, source="guard")


# --- the rule ----------------------------------------------------------------------------------------------------
def test_a_fresh_reading_with_no_write_since_may_be_decided_on() -> None:
    verdict = listing_verdict(_listing(), now=102.0, max_age_s=6.0, writes=WriteMark(3, 3), not_older_than=99.0)
    assert verdict.usable
    # the same reading again (no newer one yet, nothing written): still the newest view there is
    assert listing_verdict(_listing(), now=103.0, max_age_s=6.0, writes=WriteMark(3, 3), not_older_than=100.0).usable


@pytest.mark.parametrize(("listing", "now", "writes", "not_older_than", "why"), [
    (None, 100.0, WriteMark(3, 3), None, "no shared reading"),
    (_listing(), 106.5, WriteMark(3, 3), None, "older than its bound"),
    (_listing(), 99.0, WriteMark(3, 3), None, "stamped in the future"),
    (_listing(), 101.0, WriteMark(3, 3), 100.5, "an own reading came after it: decisions never go back in time"),
    (_listing(writes=WriteMark(4, 3)), 101.0, WriteMark(4, 4), None, "a write was under way while it was read"),
    (_listing(), 101.0, WriteMark(4, 3), None, "a write started since (still under way)"),
    (_listing(), 101.0, WriteMark(4, 4), None, "a write started and answered since (an order sent, a stop placed)"),
    (_listing(writes=WriteMark(4, 3)), 101.0, WriteMark(4, 3), None, "read during a write that is still running"),
])
def test_a_reading_is_not_decided_on(listing: Listings | None, now: float, writes: WriteMark,
                                     not_older_than: float | None, why: str) -> None:
    verdict = listing_verdict(listing, now=now, max_age_s=6.0, writes=writes, not_older_than=not_older_than)
    assert not verdict.usable, why
    assert verdict.reason


class _Exchange:
    """Stands for the exchange client behind the fence: one read, one write that may fail."""

    def __init__(self) -> None:
        self.fail = False

    def positions(self) -> list[Any]:
        return []

    def cancel_order(self, symbol: str, *, client_oid: str) -> str:
        if self.fail:
            raise RuntimeError("refused")
        return client_oid


def test_the_fenced_client_counts_every_write_and_no_read(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path / "journal.sqlite"))
    try:
        writes = WriteLog()
        exchange = _Exchange()
        client = fenced(exchange, Fence(journal, "order_manager"), writes)
        client.positions()
        assert writes.mark() == WriteMark(0, 0)
        client.cancel_order("BTCUSDT", client_oid="a")
        assert writes.mark() == WriteMark(1, 1)
        exchange.fail = True
        with pytest.raises(RuntimeError):
            client.cancel_order("BTCUSDT", client_oid="b")
        assert writes.mark() == WriteMark(2, 2), "a failed write is over too (it may still have changed something)"
        replaced = fenced(exchange, Fence(journal, "other"), writes)
        Fence(journal, "other")  # a newer instance: the older one's writes are refused before anything is sent
        with pytest.raises(Superseded):
            replaced.cancel_order("BTCUSDT", client_oid="c")
        assert writes.mark() == WriteMark(2, 2)
    finally:
        journal.close()


# --- a pass on the simulator -------------------------------------------------------------------------------------
class _Told:
    def __init__(self) -> None:
        self.notices: list[tuple[str, str]] = []

    def notify(self, kind: str, text: str) -> None:
        self.notices.append((kind, text))

    def order(self, leg: str, result: str) -> None:
        pass


def _applier(side: OrderSide, listings: SharedListings) -> ReconciliationApplier:
    return ReconciliationApplier(
        journal=side.journal, client=side.client, notifier=_Told(), metrics=_Told(), facts=FactStore(),
        settings=ReconcileSettings(pos_mode="one_way_mode", shared_listing_max_age_s=60.0),
        close_position=lambda position, size, reason: None, protect_later=lambda symbol, delay: None,
        listings=listings)


def _read_as_the_guard(client: BitgetClient, listings: SharedListings) -> None:
    import time
    writes, observed_at = listings.writes.mark(), time.monotonic()
    positions = tuple(p for p in client.positions() if p.total > 0)
    pending = tuple(client.pending_orders())
    plans = tuple(client.plan_orders_pending("profit_loss")) + tuple(client.plan_orders_pending("normal_plan"))
    listings.publish(Listings(positions, pending, plans, observed_at, writes, "guard"))


def _listing_requests(engine: SimExchange, since: int) -> list[str]:
    return [r.endpoint for r in engine.request_log[since:] if r.endpoint in LISTING_ENDPOINTS]


@contextmanager
def _protected_long(tmp_path: Path) -> Iterator[OrderSide]:
    """A long on BTC with its stop and take-profits, placed by the real OrderManager, which is then stopped: the
    test runs the passes itself."""
    with order_side(tmp_path, check_interval_s=3600) as side:
        bundle = side.entry(Side.LONG, size="0.010")
        side.send(bundle)
        wait_until(lambda: side.position_size("long") == D("0.010") and side.stop_cover("long") is not None
                   and len(side.take_profits("long")) == 3, what="the entry filled, stopped and its targets placed")
        side.stop_manager()
        yield side


def test_idle_a_pass_decides_on_the_shared_reading_without_reading_the_listings(tmp_path: Path) -> None:
    with _protected_long(tmp_path) as side:
        listings = SharedListings()
        applier = _applier(side, listings)
        _read_as_the_guard(side.client, listings)
        seen = len(side.engine.request_log)
        assert applier.gather() == []
        assert _listing_requests(side.engine, seen) == []
        assert listings.counts().get("used") == 1


def test_a_stop_the_bot_cancelled_after_the_shared_reading_is_placed_again(tmp_path: Path) -> None:
    with _protected_long(tmp_path) as side:
        listings = SharedListings()
        _read_as_the_guard(side.client, listings)  # the position with its stop: nothing to do
        stale = SharedListings()  # the same reading, blind to the write below (what the rule guards against)
        stale.publish(listings.latest())  # type: ignore[arg-type]
        stop = side.stops("long")[0]
        with listings.writes.writing():  # the bot's own write (a stop move whose new stop never got placed)
            side.client.cancel_plan_order("BTCUSDT", order_id=stop.order_id, plan_type=stop.plan_type)
        assert side.stops("long") == []
        assert _applier(side, stale).gather() == [], "the reading from before the cancel shows nothing to do"

        seen = len(side.engine.request_log)
        applier = _applier(side, listings)
        decisions = applier.gather()
        assert "all-position" in _listing_requests(side.engine, seen), "the pass read the exchange itself"
        assert [type(d) for d in decisions] == [PlaceStop]
        applier.apply(decisions)
        assert side.stop_cover("long") == D("0.010")
        assert "used" not in listings.counts()


def test_a_stop_the_bot_placed_after_the_shared_reading_is_not_placed_twice(tmp_path: Path) -> None:
    with _protected_long(tmp_path) as side:
        stop = side.stops("long")[0]
        side.client.cancel_plan_order("BTCUSDT", order_id=stop.order_id, plan_type=stop.plan_type)  # by hand
        listings = SharedListings()
        _read_as_the_guard(side.client, listings)  # the gap, as the guard saw it
        with listings.writes.writing():  # then the bot's repair (the guard's RepairStop) placed it
            side.client.place_tpsl_order(TpslRequest(symbol="BTCUSDT", plan_type="loss_plan", hold_side="buy",
                                                     trigger_price=stop.trigger_price, size=D("0.010"),
                                                     client_oid="fl_test_repair_sl"))
        applier = _applier(side, listings)
        decisions = applier.gather()
        applier.apply(decisions)
        assert decisions == [] and len(side.stops("long")) == 1, "one stop: not placed again on the old reading"


def test_a_shared_reading_showing_work_is_read_again_before_acting(tmp_path: Path) -> None:
    with _protected_long(tmp_path) as side:
        stop = side.stops("long")[0]
        side.client.cancel_plan_order("BTCUSDT", order_id=stop.order_id, plan_type=stop.plan_type)  # by hand
        listings = SharedListings()
        _read_as_the_guard(side.client, listings)
        seen = len(side.engine.request_log)
        applier = _applier(side, listings)
        decisions = applier.gather()
        assert "all-position" in _listing_requests(side.engine, seen)
        assert listings.counts().get("read_again") == 1 and [type(d) for d in decisions] == [PlaceStop]
        applier.apply(decisions)
        assert len(side.stops("long")) == 1 and side.stop_cover("long") == D("0.010")


# --- the whole bot, idle -----------------------------------------------------------------------------------------
FAST = {"poll_intervals": {"positions_seconds": 0.2, "open_orders_seconds": 0.2, "account_seconds": 5},
        "price_feed": {"mode": "ws"}, "health": {"port": 0}}


@pytest.mark.slow
def test_idle_the_order_manager_reads_no_listing_of_its_own(tmp_path: Path) -> None:
    with running_system(tmp_path, monitor=FAST) as system:
        listings = system.runtime.listings
        wait_until(lambda: listings.counts().get("used", 0) >= 1, what="a pass on the guard's reading")
        metrics = system.runtime.metrics.registry

        def guard_polls() -> float:
            return metrics.get_sample_value("following_poll_seconds_count", {"source": "positions"}) or 0.0

        own, polls, seen = listings.counts().get("own_reading", 0), guard_polls(), len(system.engine.request_log)
        used = listings.counts()["used"]
        wait_until(lambda: listings.counts().get("used", 0) >= used + 5, what="five more passes")
        polled = guard_polls() - polls
        positions_read = [r for r in system.engine.request_log[seen:] if r.endpoint == "all-position"]
        assert listings.counts().get("own_reading", 0) == own, "no pass read the listings itself"
        assert len(positions_read) <= polled + 1, "every positions reading is the guard's (one may be under way)"
