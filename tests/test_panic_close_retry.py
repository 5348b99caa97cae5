"""Panic closes every position even when the position list cannot be read at the moment panic arrives."""

from __future__ import annotations

from pathlib import Path

from actors.messages import ModeChanged
from parsing.signals import Side
from tests.order_side import order_side
from tests.waiting import wait_until
from trading.modes import Mode


def test_panic_close_is_retried_until_the_positions_can_be_read(tmp_path: Path) -> None:
    with order_side(tmp_path, check_interval_s=3600) as om:
        om.send(om.entry(Side.LONG, size="0.020", market=True))
        wait_until(lambda: om.position_size("long") > 0, what="an open position")
        om.engine.faults.fail_next("all-position", http_status=429, times=3)  # one whole read fails
        assert om.ref is not None
        om.ref.tell(ModeChanged(Mode.PANIC, Mode.NORMAL, "operator panic"))
        wait_until(lambda: om.position_size("long") == 0, what="the panic close despite the unreadable positions")
        assert [r.status for r in om.engine.requests_to("all-position")].count(429) == 3
        assert len(om.journal.events("PANIC_CLOSE")) == 1
