"""An order the exchange accepted but answered with something unreadable (JSON nested too deep, junk) is an
unknown outcome for the OrderManager: looked up by client id and found, never marked rejected, never sent twice,
and the actor does not crash."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from parsing.signals import Side
from tests.order_side import order_side
from tests.waiting import wait_until
from trading.journal import OrderState

pytestmark = pytest.mark.slow

NESTED = b'{"code":"00000","msg":"success","data":' + b"[" * 50_000 + b"]" * 50_000 + b"}"


@pytest.mark.parametrize("body", [NESTED, b"\xff\xfe not json", b'{"code":"00000","data":{"orderId":["x"]}}'],
                         ids=["nested", "junk", "bad-id"])
def test_an_unreadable_reply_to_an_accepted_entry_is_looked_up_not_rejected_nor_resent(tmp_path: Path,
                                                                                        body: bytes) -> None:
    with order_side(tmp_path) as side:
        side.engine.faults.garble_after_accept("place-order", body)
        bundle = side.entry(Side.LONG, size="0.010")
        side.send(bundle)
        oid = bundle.intent.legs[0].client_oid
        row = wait_until(lambda: (r := side.journal.order(oid)) and r.state in (OrderState.ACCEPTED,
                                                                                 OrderState.FILLED) and r,
                         what="the entry found by its client id")
        assert row.state is not OrderState.REJECTED
        assert [o.client_oid for o in side.engine.orders("BTCUSDT") if o.client_oid == oid] == [oid], "sent once"
        assert side.position_size("long") == Decimal("0.010")
        assert side.ref is not None and side.ref.is_alive()
        assert not [n for n in side.notices if n.kind == "ORDER_REJECTED"]
