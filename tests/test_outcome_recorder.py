"""The OutcomeRecorder against a sparse exchange (another Bitget-compatible server): fills without tradeSide,
posMode or profit, and orders it cannot describe. Attribution falls back on the signal's own stop and targets,
P&L on the average entry; every notice is sent once, also after a restart; plan rows leave ACCEPTED."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.outcomes import OutcomeRecorder
from exchange.bitget.errors import OrderNotFound
from exchange.bitget.models import Fill, Order
from trading.journal import Journal, OrderState

D = Decimal


class SparseExchange:
    def __init__(self) -> None:
        self.fill_list: list[Fill] = []

    def fills(self, symbol: str, order_id: str | None = None, *, start_time_ms: int | None = None) -> list[Fill]:
        return [f for f in self.fill_list if f.symbol == symbol]

    def order_detail(self, symbol: str, *, order_id: str | None = None, client_oid: str | None = None) -> Order:
        raise OrderNotFound("40109", "no such order", "detail")


class Notices:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def notify(self, kind: str, text: str, fields: Any = None) -> None:
        self.sent.append((kind, text, dict(fields or {})))


def fill(trade_id: str, order_id: str, side: str, price: str, size: str, fee: str, ts_ms: int) -> Fill:
    return Fill(trade_id=trade_id, order_id=order_id, symbol="BTCUSDT", side=side, trade_side=None, price=D(price),
                size=D(size), fee=D(fee), fee_coin="USDT", profit=None, ts=ts_ms)


def test_sparse_exchange_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "j.sqlite")
    now = time.time()
    exchange, notices = SparseExchange(), Notices()
    with Journal(path) as journal:
        sid = journal.record_signal("chan", 7, {"kind": "entry", "side": "long", "stop_loss": "95",
                                                "take_profits": ["110", "120"]}, "traded", "size 1", symbol="BTCUSDT")
        journal.record_intent("e1", signal_id=sid, symbol="BTCUSDT", leg="entry1", side="buy", trade_side=None,
                              order_type="limit", size=D(1), price=D(100), reduce_only=False,
                              payload={"stop_loss": "95", "risk_usdt": "5", "position_side": "long"})
        journal.set_order_state("e1", OrderState.ACCEPTED, exchange_order_id="E1")
        for n, price in ((1, "110"), (2, "120")):
            journal.record_intent(f"tp{n}", signal_id=sid, symbol="BTCUSDT", leg=f"tp{n}", side="sell",
                                  trade_side=None, order_type="profit_plan", size=D("0.5"), price=D(price),
                                  reduce_only=True, payload={})
            journal.set_order_state(f"tp{n}", OrderState.ACCEPTED, exchange_order_id=f"P{n}")
        recorder = OutcomeRecorder(journal=journal, client=exchange, notifier=notices, pos_mode="one_way_mode")
        base = int(now * 1000)
        exchange.fill_list.append(fill("1", "E1", "buy", "100", "1", "-0.06", base - 120_000))
        assert recorder.poll() == 1
        exchange.fill_list.append(fill("2", "X1", "sell", "110.1", "0.5", "-0.033", base - 60_000))
        recorder.poll()
        journal.record_event("STOP_MOVED", {"symbol": "BTCUSDT", "stop": "100.2", "reason": "first target filled",
                                            "break_even": True})
        exchange.fill_list.append(fill("3", "X2", "sell", "100.1", "0.5", "-0.03", base + 59_000))
        recorder.poll()
        recorder.poll()  # nothing new: nothing sent again
        kinds = [k for k, _, _ in notices.sent]
        assert kinds == ["ENTRY_FILLED", "TAKE_PROFIT_FILLED", "STOP_MOVED", "STOP_FILLED", "POSITION_CLOSED"]
        by_kind = {k: f for k, _, f in notices.sent}
        assert by_kind["ENTRY_FILLED"]["price"] == "100" and D(by_kind["ENTRY_FILLED"]["risk"]) == 5
        assert by_kind["TAKE_PROFIT_FILLED"]["target"] == 1
        assert by_kind["STOP_MOVED"]["old_stop"] == "95" and by_kind["STOP_MOVED"]["new_stop"] == "100.2"
        assert by_kind["STOP_FILLED"]["cause"] == "break_even_stop"
        closed = by_kind["POSITION_CLOSED"]
        realized = D("0.5") * D("10.1") + D("0.5") * D("0.1") - D("0.123")
        # money as exact decimal text, never through a binary float
        assert D(closed["realized_pnl"]) == realized and D(closed["fees"]) == D("0.123")
        assert D(closed["r_multiple"]) == realized / 5 and closed["cause"] == "break_even_stop"
        assert closed["holding_seconds"] == 179.0
        assert {r.leg: r.state for r in journal.orders(signal_id=sid) if r.leg.startswith("tp")} == {
            "tp1": OrderState.FILLED, "tp2": OrderState.CANCELED}
        assert journal.signal(sid).closed  # type: ignore[union-attr]
    with Journal(path) as reopened:  # a restarted bot announces nothing again
        again = Notices()
        OutcomeRecorder(journal=reopened, client=exchange, notifier=again, pos_mode="one_way_mode").poll()
        assert again.sent == []


def test_a_hand_made_close_is_manual_and_a_foreign_open_is_not_ours(tmp_path: Path) -> None:
    now = time.time()
    exchange, notices = SparseExchange(), Notices()
    with Journal(str(tmp_path / "j.sqlite")) as journal:
        sid = journal.record_signal("chan", 1, {"kind": "entry", "side": "long", "stop_loss": "95",
                                                "take_profits": ["110"]}, "traded", "", symbol="BTCUSDT")
        journal.record_intent("e1", signal_id=sid, symbol="BTCUSDT", leg="entry1", side="buy", trade_side=None,
                              order_type="market", size=D(1), price=None, reduce_only=False,
                              payload={"stop_loss": "95", "position_side": "long"})
        journal.set_order_state("e1", OrderState.FILLED, exchange_order_id="E1")
        recorder = OutcomeRecorder(journal=journal, client=exchange, notifier=notices, pos_mode="hedge_mode")
        base = int(now * 1000)
        exchange.fill_list += [fill("1", "E1", "buy", "100", "1", "-0.06", base),
                               fill("2", "M1", "sell", "103", "1", "-0.06", base + 5000)]
        recorder.poll()
        closed = [f for k, _, f in notices.sent if k == "POSITION_CLOSED"]
        assert closed and closed[0]["cause"] == "manual"
        assert [k for k, _, _ in notices.sent] == ["ENTRY_FILLED", "CLOSE_FILLED", "POSITION_CLOSED"]
        assert D(closed[0]["r_multiple"]) == (D(3) - D("0.12")) / 5  # risk from the stop: (100 - 95) * 1


def test_daily_summary_once_a_day_just_after_its_time(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    import pytest

    from runtime.config import ConfigError, parse_config
    from trading.outcomes import daily_summary_due

    at = datetime(2026, 3, 5, 20, 0, tzinfo=timezone.utc).timestamp()
    assert daily_summary_due(at + 60, "20:00") == "2026-03-05"
    assert daily_summary_due(at - 60, "20:00") is None
    assert daily_summary_due(at + 2 * 3600, "20:00") is None  # down at that time: skipped, not late
    assert daily_summary_due(at + 60, "") is None
    clock = [at + 30]
    notices = Notices()
    with Journal(str(tmp_path / "j.sqlite"), clock=lambda: clock[0]) as journal:
        recorder = OutcomeRecorder(journal=journal, client=SparseExchange(), notifier=notices, clock=lambda: clock[0])
        assert recorder.daily_summary("20:00") is True
        assert recorder.daily_summary("20:00") is False
        ((kind, _text, fields),) = notices.sent
        assert kind == "DAILY_SUMMARY" and fields["date"] == "2026-03-05" and fields["closed_trades"] == 0
    assert parse_config({"notify": {"daily_summary_at": "7:05"}}).notify.daily_summary_at == "07:05"
    with pytest.raises(ConfigError):
        parse_config({"notify": {"daily_summary_at": "25:00"}})


def test_a_failing_pass_never_stops_the_tracker(tmp_path: Path) -> None:
    from actors.messages import Tick
    from actors.outcomes import OutcomeTracker
    from ops.metrics import Metrics

    class Broken(SparseExchange):
        def fills(self, symbol: str, order_id: str | None = None, *, start_time_ms: int | None = None) -> list[Fill]:
            raise RuntimeError("a bug in a reply")

    metrics = Metrics()
    with Journal(str(tmp_path / "j.sqlite")) as journal:
        journal.record_signal("chan", 1, {"kind": "entry", "side": "long"}, "traded", "", symbol="BTCUSDT")
        ref = OutcomeTracker.start(name="outcomes", supervisor=None, journal=journal, client=Broken(),
                                   notifier=Notices(), metrics=metrics, interval_s=3600)
        try:
            ref.ask(Tick("outcomes"))
            ref.ask(Tick("outcomes"))
            assert ref.is_alive()
            assert metrics.registry.get_sample_value("following_poll_errors_total", {"source": "fills"}) == 2
        finally:
            ref.stop()
