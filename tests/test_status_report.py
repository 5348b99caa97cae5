"""`following status` and `following report` on a journal written by hand: filters, figures, no traceback when the
bot or the journal is missing."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from cli import status as sc
from cli.main import main as cli_main
from exchange.bitget.models import PlanOrder, Position
from runtime.config import parse_config
from trading.journal import FillRow, Journal

D = Decimal


def _fill(trade_id: str, signal_id: int, *, opening: bool, price: str, size: str, fee: str, profit: str | None = None,
          ts: int, cause: str | None = None) -> FillRow:
    return FillRow(trade_id=trade_id, order_id=f"o{trade_id}", symbol="BTCUSDT", side="buy",
                   trade_side="open" if opening else "close", hold_side="long", opening=opening, price=D(price),
                   size=D(size), fee=D(fee), profit=None if profit is None else D(profit), ts=ts,
                   signal_id=signal_id, leg="entry1" if opening else "tp1", cause=cause)


def _journal(path: Path, clock: list[float]) -> Journal:
    journal = Journal(str(path), clock=lambda: clock[0])
    entry = {"kind": "entry", "side": "long"}
    clock[0] = 1_700_000_000.0  # 2023-11-14
    a = journal.record_signal("alpha", 1, entry, "traded", "size 1", symbol="BTCUSDT")
    journal.record_intent("a_entry", signal_id=a, symbol="BTCUSDT", leg="entry1", side="buy", trade_side="open",
                          order_type="limit", size=D(1), price=D(100), reduce_only=False,
                          payload={"risk_usdt": "2", "position_side": "long"})
    journal.record_fill(_fill("1", a, opening=True, price="100", size="1", fee="-0.06", ts=1))
    journal.record_fill(_fill("2", a, opening=False, price="104", size="1", fee="-0.06", profit="4", ts=2,
                              cause="take_profit"))
    journal.record_signal("alpha", 2, {"kind": "entry"}, "notify_only", "NO_STOP_LOSS: no stop", symbol="ETHUSDT")
    clock[0] = 1_710_000_000.0  # 2024-03-09
    b = journal.record_signal("alpha", 3, entry, "traded", "size 1", symbol="BTCUSDT")
    journal.record_fill(_fill("3", b, opening=True, price="100", size="1", fee="-0.06", ts=3))
    journal.record_fill(_fill("4", b, opening=False, price="98", size="1", fee="-0.06", profit="-2", ts=4,
                              cause="stop"))
    c = journal.record_signal("beta", 1, entry, "traded", "size 1", symbol="BTCUSDT")
    journal.record_intent("c_entry", signal_id=c, symbol="BTCUSDT", leg="entry1", side="buy", trade_side="open",
                          order_type="limit", size=D(2), price=D(99), reduce_only=False, payload={})
    journal.record_fill(_fill("5", c, opening=True, price="99", size="1", fee="-0.05", ts=5))
    return journal


def test_report_figures_per_channel_and_filters(tmp_path: Path) -> None:
    clock = [0.0]
    with _journal(tmp_path / "j.sqlite", clock) as journal:
        rows = sc.collect_report(journal)
        by_name = {report.channel: (report, trades) for report, trades in rows}
        alpha, trades = by_name["alpha"]
        assert (alpha.signals, alpha.traded, alpha.closed_trades, alpha.wins, alpha.losses) == (3, 2, 2, 1, 1)
        assert alpha.notify_only == {"NO_STOP_LOSS": 1}
        assert alpha.realized_pnl == D("3.88") - D("2.12") and alpha.fees == D("0.24")
        assert alpha.max_drawdown == D("2.12")
        assert trades[0]["r_multiple"] == str(D("3.88") / 2)  # over the journaled sized risk
        beta, _ = by_name["beta"]
        assert beta.closed_trades == 0 and beta.traded == 1  # still open: not a closed trade
        (only,) = sc.collect_report(journal, channel="alpha", since=sc.parse_since("2024-01-01"))
        assert only[0].channel == "alpha" and only[0].closed_trades == 1 and only[0].realized_pnl == D("-2.12")
        text = sc.render_report(rows, trades=True)
        assert "channel alpha" in text and "win rate 50.0%" in text and "take_profit" in text


def test_status_without_the_bot_shows_the_journal_and_says_what_is_unknown(tmp_path: Path) -> None:
    clock = [0.0]
    config = parse_config({"storage": {"db_path": str(tmp_path / "j.sqlite")}})
    with _journal(tmp_path / "j.sqlite", clock) as journal:
        journal.set_order_state("a_entry", "FILLED", filled_size=D(1))
        journal.set_order_state("c_entry", "PARTIAL", filled_size=D(1))
        status = sc.collect_status(config, journal, bot=lambda path: None)
    assert not status.bot_running and status.ready is None and status.positions_source == "none"
    assert any("not running" in note for note in status.notes)
    assert [w["client_oid"] for w in status.working_entries] == ["c_entry"]
    assert [t["signal_id"] for t in status.open_trades] == [4]
    assert status.last_signals[-1]["channel"] == "beta"
    json.dumps(status.to_json())


def test_position_view_has_stop_and_targets_left() -> None:
    position = Position(symbol="BTCUSDT", hold_side="long", total=D("0.002"), available=D("0.002"), locked=D(0),
                        average_open_price=D(65000), mark_price=D(65100), liquidation_price=None, leverage=D(5),
                        margin_mode="isolated", unrealized_pnl=D("0.2"), pos_mode="one_way_mode")

    def plan(plan_type: str, price: str) -> PlanOrder:
        return PlanOrder(order_id=price, client_oid=None, symbol="BTCUSDT", plan_type=plan_type,
                         trigger_price=D(price), trigger_type="mark_price", execute_price=None, size=None, side=None,
                         trade_side=None, pos_side="long", status="live")

    (view,) = sc.position_views([position], [plan("pos_loss", "64000"), plan("profit_plan", "67000"),
                                            plan("profit_plan", "66000")], "one_way_mode")
    assert view["stop"] == ["64000"] and view["targets_left"] == ["66000", "67000"]
    assert view["mark"] == "65100" and view["unrealized_pnl"] == "0.2"


def test_cli_refuses_bad_input_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "c.yaml"
    conf.write_text(yaml.safe_dump({"storage": {"db_path": str(tmp_path / "none.sqlite")}}), encoding="utf-8")
    assert cli_main(["report", "--conf", str(conf)]) == 1
    assert "no journal" in capsys.readouterr().err
    assert cli_main(["status", "--conf", str(conf), "--json"]) == 1
    assert cli_main(["report", "--conf", str(conf), "--since", "yesterday"]) == 2
    assert "not a date" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite").exists(), "reading never creates a journal"
