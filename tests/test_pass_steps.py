"""A reconciliation pass in steps: an entry told while a pass reads the exchange is sent between two of the pass's
requests, not after the whole pass (issue 14, the p90 over a network), and a write made between two steps makes
the pass read again, so it never decides on a view from before that write."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

from exchange.bitget.models import OrderRequest, Position
from parsing.signals import Side
from tests.order_side import order_side
from tests.test_shared_listings import _applier, _protected_long
from tests.waiting import wait_until
from trading.reconcile import PlaceStop, PlaceTakeProfit
from trading.reconciliation_applier import run_through
from trading.shared_listings import SharedListings

D = Decimal


class _GatedClient:
    """The OrderManager's client with a gate on all-position: once armed, the next reading waits for the test."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.armed = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def positions(self) -> list[Position]:
        if self.armed:
            self.armed = False
            self.entered.set()
            assert self.release.wait(30), "the test never released the gate"
        result: list[Position] = self._client.positions()
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_an_entry_told_during_a_pass_is_sent_between_two_of_its_requests(tmp_path: Path) -> None:
    with order_side(tmp_path, check_interval_s=0.2, start=False) as side:
        gated = _GatedClient(side.client)
        listings = SharedListings()
        side.start_manager(client=gated, listings=listings)
        wait_until(lambda: side.status.get("orders_reconciled"), what="the start-up pass")
        bundle = side.entry(Side.LONG, size="0.010")
        gated.armed = True
        assert gated.entered.wait(30), "a regular pass reads the positions"
        seen = len(side.engine.request_log)
        side.send(bundle)  # waits in the mailbox while the pass's first request is under way
        gated.release.set()
        wait_until(lambda: side.position_size("long") == D("0.010") and side.stop_cover("long") is not None
                   and len(side.take_profits("long")) == 3, what="the entry filled and protected")
        wait_until(lambda: "orders-pending" in [r.endpoint for r in side.engine.request_log[seen:]],
                   what="the pass's next request")
        after = [r.endpoint for r in side.engine.request_log[seen:]]
        assert after.index("place-order") < after.index("orders-pending"), after
        # the entry was a write between two of the pass's reads: the pass read the exchange again
        wait_until(lambda: listings.counts().get("read_over", 0) >= 1, what="the pass read over")
        assert len(side.entry_orders()) == 1 and len(side.stops("long")) == 1


def test_a_close_made_during_a_pause_of_the_reading_is_not_decided_on_the_view_before_it(tmp_path: Path) -> None:
    with _protected_long(tmp_path) as side:
        listings = SharedListings()
        applier = _applier(side, listings)
        steps = applier.gather_steps()
        next(steps)  # the positions read (the long with its stop), then a pause
        with listings.writes.writing():  # the bot closes the position in the pause (an exit of the channel's)
            side.client.place_order(OrderRequest(symbol="BTCUSDT", side="sell", size=D("0.010"),
                                                 order_type="market", margin_mode="isolated",
                                                 client_oid="fl_test_close", reduce_only=True))
        assert side.position_size("long") == 0
        decisions = run_through(steps)
        placed = [d for d in decisions if isinstance(d, (PlaceStop, PlaceTakeProfit))]
        assert placed == [], "no stop or take-profit for the position closed meanwhile"
        assert listings.counts().get("read_over") == 1


def test_without_a_write_in_its_pauses_a_pass_reads_once(tmp_path: Path) -> None:
    with _protected_long(tmp_path) as side:
        listings = SharedListings()
        applier = _applier(side, listings)
        seen = len(side.engine.request_log)
        assert run_through(applier.gather_steps()) == []
        assert [r.endpoint for r in side.engine.request_log[seen:]].count("all-position") == 1
        assert "read_over" not in listings.counts()
