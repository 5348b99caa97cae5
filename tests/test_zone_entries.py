"""Several limit entries across a zone: the size is split, every leg carries the stop, and as the legs fill
one by one the stop coverage and the take-profit ladder follow the position."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from parsing.signals import Side
from tests.order_side import order_side
from tests.waiting import wait_until

D = Decimal


@pytest.mark.parametrize("pos_mode", ["one_way_mode", "hedge_mode"])
@pytest.mark.parametrize("side", [Side.LONG, Side.SHORT])
def test_zone_legs_fill_one_by_one_each_covered_by_its_stop(tmp_path: Path, pos_mode: str, side: Side) -> None:
    hold = side.value
    with order_side(tmp_path, pos_mode=pos_mode) as om:
        bundle = om.entry(side, size="0.060", zone_pct=("0.5", "1.0"), zone_split=3)
        om.send(bundle)
        legs = wait_until(lambda: len(om.entry_orders()) == 3 and om.entry_orders(), what="three resting legs")
        assert sum(o.size for o in legs) == D("0.060")
        assert {o.preset_stop_loss for o in legs} == {bundle.intent.stop_price}
        assert om.position_size(hold) == 0 and all(o.state == "live" for o in legs)

        by_price = sorted(legs, key=lambda o: o.price, reverse=side is Side.LONG)  # the nearest fills first
        filled = D(0)
        for leg in by_price:
            om.engine.set_price("BTCUSDT", leg.price)
            filled += leg.size
            wait_until(lambda f=filled: om.position_size(hold) == f and om.stop_cover(hold) == f
                       and sum(p.size for p in om.take_profits(hold)) == f, what=f"protection for {filled}")
        assert filled == D("0.060")
        assert [p.size for p in om.take_profits(hold)] == [D("0.020")] * 3
