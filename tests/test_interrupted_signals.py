"""A signal the Parser handed on but no RiskGate decided, or one approved whose orders were never journaled (the
bot died in between), is never lost silently and never traded late: at start it is refused as interrupted and
the user is told."""

from __future__ import annotations

from pathlib import Path

from parsing.rules import parse_text
from tests.e2e import running_system
from tests.waiting import wait_until
from trading.journal import Journal


def test_a_signal_left_undecided_by_a_crash_is_refused_and_reported_at_start_never_traded(tmp_path: Path) -> None:
    reading = parse_text(
        "#BTC/USDT LONG\nEntry: 60000\nTarget 1: 61000\nStop: 59000\nLeverage: 5x"
    )[0]
    journal = Journal(str(tmp_path / "journal.sqlite"))
    try:
        # What a crash right after the Parser's journal write leaves behind.
        left = journal.record_signal("chan", 41, reading.to_json(), "parsed", "", symbol="BTCUSDT")
        # ... and a crash after the RiskGate approved, before the OrderManager journaled any order.
        approved = journal.record_signal("chan", 43, reading.to_json(), "approved", "size 0.01", symbol="BTCUSDT")
        decided = journal.record_signal("chan", 42, reading.to_json(), "refused", "MAX_LEVERAGE: x", symbol="BTCUSDT")
    finally:
        journal.close()

    with running_system(tmp_path) as system:
        assert system.runtime.journal is not None
        for signal_id in (left, approved):
            row = wait_until(lambda s=signal_id: (r := system.runtime.journal.signal(s)) and r.decision == "refused"
                             and r, what=f"signal {signal_id} refused")
            assert row.reason.startswith("INTERRUPTED")
        # Each refusal's event and count follow its decision (what the waits above saw): wait for both counted.
        wait_until(lambda: system.runtime.metrics.registry.get_sample_value(
            "following_refusals_total", {"reason": "interrupted"}) == 2.0, what="both refusals counted")
        # The RiskGate's interrupted refusal counts as a refused signal like every other refusal.
        wait_until(lambda: (system.runtime.metrics.registry.get_sample_value(
            "following_signals_total", {"outcome": "refused"}) or 0.0) >= 1.0, what="refused signal counted")
        refusals = [e.detail for e in system.events("SIGNAL_REFUSED")]
        assert sorted(r["signal_id"] for r in refusals) == [left, approved], "only the undecided signals"
        assert system.runtime.journal.signal(decided).reason == "MAX_LEVERAGE: x"
        assert not system.entry_orders(), "an interrupted signal is never traded"


def test_a_signal_marked_traded_by_an_instance_that_died_before_its_first_leg_is_refused_and_reported(
        tmp_path: Path) -> None:
    from parsing.signals import Side
    from tests.order_side import order_side

    with order_side(tmp_path, start=False) as om:
        bundle = om.entry(Side.LONG, size="0.010")
        # What a kill -9 right after the OrderManager marked the signal "sending the entries" leaves behind.
        assert om.journal.transition_signal(bundle.signal_id, ["approved"], "traded", "sending the entries")
        om.start_manager()
        row = wait_until(lambda: (r := om.journal.signal(bundle.signal_id)) and r.decision == "refused" and r,
                         what="the signal refused")
        assert row.reason.startswith("INTERRUPTED")
        wait_until(lambda: [n for n in om.notices if n.kind == "SIGNAL_REFUSED" and "INTERRUPTED" in n.text],
                   what="the user told")  # told right after the decision is journaled
        assert not om.journal.open_signals(), "no open trade that never was"
        assert not om.engine.orders("BTCUSDT"), "never traded late"
