"""Refusals that change nothing (rate limits, an unreadable position list) are tried again, not given up on:
a panic still closes every position, a signal is not lost to a busy leverage endpoint."""

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
        wait_until(lambda: om.journal.events("PANIC_CLOSE"), what="the panic close journaled")
        assert len(om.journal.events("PANIC_CLOSE")) == 1


def test_a_signal_whose_leverage_call_was_rate_limited_is_traded_a_moment_later(tmp_path: Path) -> None:
    with order_side(tmp_path) as om:
        om.engine.faults.fail_next("set-leverage", http_status=429, times=2)
        bundle = om.entry(Side.SHORT, size="0.020", market=True)
        om.send(bundle)
        wait_until(lambda: om.position_size("short") == bundle.intent.size, what="the entry despite the 429s")
        assert [r.status for r in om.engine.requests_to("set-leverage")].count(429) == 2
        assert len(om.entry_orders()) == 1
        signal = om.journal.signal(bundle.signal_id)
        assert signal is not None and signal.decision == "traded"


def test_a_signal_whose_leverage_call_keeps_being_rate_limited_is_refused(tmp_path: Path) -> None:
    with order_side(tmp_path) as om:
        om.engine.faults.fail_next("set-leverage", http_status=429, times=10)
        bundle = om.entry(Side.LONG, size="0.020", market=True)
        om.send(bundle)
        wait_until(lambda: (s := om.journal.signal(bundle.signal_id)) is not None and s.decision == "refused",
                   what="the refusal after the retries")
        assert om.entry_orders() == []
        wait_until(lambda: om.notices, what="the refusal notice")
        assert [n.kind for n in om.notices] == ["SIGNAL_REFUSED"]
