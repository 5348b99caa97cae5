"""Outcome rules: which position a fill acted on, why it closed, a trade's P&L after fees and R, channel figures;
the journal keeps each fill and each notice once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from exchange.bitget.models import Fill
from trading import outcomes as rules
from trading.journal import FillRow, Journal, SignalRow

D = Decimal


def fill(trade_id: str, *, opening: bool, price: str, size: str, fee: str, profit: str | None = None, ts: int = 0,
         leg: str = "entry1", cause: str | None = None, hold_side: str = "long", signal_id: int | None = 1) -> FillRow:
    return FillRow(
        trade_id=trade_id, order_id=f"o{trade_id}", symbol="BTCUSDT", side="buy", trade_side="open" if opening else
        "close", hold_side=hold_side, opening=opening, price=D(price), size=D(size), fee=D(fee),
        profit=None if profit is None else D(profit), ts=ts, signal_id=signal_id, leg=leg, cause=cause,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("pos_loss_market", "stop"), ("loss_market", "stop"), ("loss_limit", "stop"),
        ("pos_profit_market", "take_profit"), ("profit_market", "take_profit"), ("liquidation", "liquidation"),
        ("delivery_close_long", "liquidation"), ("normal", "manual"), ("market", "manual"), (None, "manual"),
    ],
)
def test_exit_kind_from_bitget_order_source(source: str | None, kind: str) -> None:
    assert rules.exit_kind_of_source(source) == kind


@pytest.mark.parametrize(
    ("side", "trade_side", "pos_mode", "opening", "hold"),
    [
        ("buy", "open", "hedge_mode", True, "long"),
        ("sell", "open", "hedge_mode", True, "short"),
        ("buy", "close", "hedge_mode", False, "long"),  # Bitget hedge mode: buy + close closes a long
        ("sell", "close", "hedge_mode", False, "short"),
        ("sell", "close", "one_way_mode", False, "long"),  # one-way: a sell reduces a long
        ("buy", "close", "one_way_mode", False, "short"),
        ("sell", "sell_single", "one_way_mode", False, "long"),  # reduce-only from the order, below
    ],
)
def test_which_position_a_fill_acted_on(side: str, trade_side: str, pos_mode: str, opening: bool, hold: str) -> None:
    reduce_only = None if trade_side in ("open", "close") else True
    assert rules.fill_opens(trade_side, side, reduce_only=reduce_only) is opening
    assert rules.fill_hold_side(side, opening, pos_mode) == hold


def test_one_way_fill_without_trade_side_uses_the_known_position_side() -> None:
    assert rules.fill_opens(None, "sell", position_side="long") is False
    assert rules.fill_opens(None, "buy", position_side="long") is True


@pytest.mark.parametrize(
    ("leg", "kwargs", "cause"),
    [
        ("tp1", {}, "take_profit"),
        ("take_profit", {}, "take_profit"),
        ("stop", {}, "stop"),
        ("stop", {"break_even": True}, "break_even_stop"),
        ("sl2", {}, "stop"),
        ("close", {"payload_cause": "channel_close"}, "channel_close"),
        ("close", {"payload_cause": "panic"}, "panic"),
        ("close", {"payload_cause": "liquidation_reduce"}, "liquidation_reduce"),
        ("close", {"payload_cause": "stop", "break_even": True}, "break_even_stop"),
        ("close", {"payload_reason": "signal 4: close all"}, "channel_close"),  # rows journaled before causes
        ("close", {"payload_reason": "panic: SIGUSR2"}, "panic"),
        ("close", {"payload_reason": "stop could not be repaired in time"}, "protective"),
        ("liquidation", {}, "external"),
        ("manual", {}, "manual"),
    ],
)
def test_close_cause(leg: str, kwargs: dict[str, Any], cause: str) -> None:
    assert rules.close_cause(leg, **kwargs) == cause


def test_trade_pnl_is_the_exchanges_profit_plus_every_fee_and_r_is_over_the_sized_risk() -> None:
    fills = [
        fill("1", opening=True, price="100", size="2", fee="-0.12", ts=1000),
        fill("2", opening=True, price="98", size="1", fee="-0.0588", ts=2000, leg="entry2"),
        fill("3", opening=False, price="110", size="1.5", fee="-0.099", profit="15.5", ts=5000, leg="tp1",
             cause="take_profit"),
        fill("4", opening=False, price="99.4", size="1.5", fee="-0.08946", profit="0.5", ts=65000, leg="stop",
             cause="break_even_stop"),
    ]
    outcome = rules.summarize(7, fills, risk=D("6"))
    assert outcome is not None and outcome.closed
    assert outcome.entry_size == D("3") and outcome.avg_entry == D("298") / 3
    assert outcome.gross_pnl == D("16.0")
    assert outcome.fees == D("0.36726")
    assert outcome.realized_pnl == D("16.0") - D("0.36726")
    assert outcome.r_multiple == outcome.realized_pnl / D("6")
    assert outcome.cause == "break_even_stop"
    assert outcome.holding_seconds == 64.0


def test_open_trade_is_not_closed_and_has_no_cause() -> None:
    fills = [fill("1", opening=True, price="100", size="2", fee="-0.1"),
             fill("2", opening=False, price="101", size="1", fee="-0.05", profit="1", leg="tp1", cause="take_profit")]
    outcome = rules.summarize(1, fills, risk=None)
    assert outcome is not None and not outcome.closed and outcome.cause is None and outcome.r_multiple is None
    assert outcome.open_size == D("1")
    assert rules.summarize(1, fills[1:], risk=None) is None  # nothing opened


def test_missing_profit_is_computed_from_the_average_entry_for_a_short() -> None:
    fills = [fill("1", opening=True, price="100", size="1", fee="0", hold_side="short"),
             fill("2", opening=False, price="90", size="1", fee="0", hold_side="short", leg="close",
                  cause="channel_close")]
    outcome = rules.summarize(1, fills, risk=None)
    assert outcome is not None and outcome.gross_pnl == D("10") and outcome.cause == "channel_close"


def test_closing_fill_goes_to_the_oldest_signal_still_open() -> None:
    assert rules.pick_remaining([(1, D(0)), (2, D("0.5")), (3, D(1))]) == 2
    assert rules.pick_remaining([(1, D(0))]) is None


def test_max_drawdown_of_realized_equity() -> None:
    assert rules.max_drawdown([D(5), D(-3), D(-4), D(10), D(-2)]) == D(7)
    assert rules.max_drawdown([]) == D(0)
    assert rules.max_drawdown([D(-1), D(-1)]) == D(2)


def _signal(sid: int, decision: str, reason: str) -> SignalRow:
    return SignalRow(id=sid, channel="c", message_id=sid, index=0, symbol="BTCUSDT", parsed={}, decision=decision,
                     reason=reason, closed=False, created_at=0.0, updated_at=0.0, closed_at=None)


def test_channel_report_figures() -> None:
    signals = [_signal(1, "traded", ""), _signal(2, "traded", ""), _signal(3, "notify_only", "NO_STOP_LOSS: x"),
               _signal(4, "refused", "MAX_LEVERAGE: 50"), _signal(5, "notify_only", "NO_STOP_LOSS: y")]
    win = rules.summarize(1, [fill("1", opening=True, price="100", size="1", fee="-0.1", ts=1),
                              fill("2", opening=False, price="110", size="1", fee="-0.1", profit="10", ts=2,
                                   cause="take_profit")], risk=D(5))
    loss = rules.summarize(2, [fill("3", opening=True, price="100", size="1", fee="-0.1", ts=3, signal_id=2),
                               fill("4", opening=False, price="95", size="1", fee="-0.1", profit="-5", ts=4,
                                    cause="stop", signal_id=2)], risk=D(5))
    assert win is not None and loss is not None
    report = rules.channel_report("c", 9, signals, [win, loss])
    assert (report.posts, report.signals, report.traded) == (9, 5, 2)
    assert report.notify_only == {"MAX_LEVERAGE": 1, "NO_STOP_LOSS": 2}
    assert (report.closed_trades, report.wins, report.losses) == (2, 1, 1)
    assert report.win_rate == D("0.5")
    assert report.realized_pnl == D("9.8") + D("-5.2") and report.fees == D("0.4")
    assert report.expectancy == report.realized_pnl / 2
    assert report.average_r == (D("9.8") / 5 + D("-5.2") / 5) / 2
    assert report.max_drawdown == D("5.2")


def test_journal_stores_each_fill_once_and_claims_each_notice_once(tmp_path: Any) -> None:
    path = str(tmp_path / "j.sqlite")
    with Journal(path) as journal:
        row = fill("42", opening=True, price="100", size="1", fee="-0.06", signal_id=None)
        assert journal.record_fill(row) is True
        assert journal.record_fill(row) is False
        assert journal.claim_notice("closed:1", "POSITION_CLOSED", {"a": 1}) is True
        assert journal.claim_notice("closed:1", "POSITION_CLOSED", {"a": 1}) is False
    with Journal(path) as reopened:  # across a restart
        assert [f.trade_id for f in reopened.fills()] == ["42"]
        assert reopened.fills()[0].price == D("100") and reopened.fills()[0].fee == D("-0.06")
        assert reopened.claim_notice("closed:1", "POSITION_CLOSED", {}) is False
        assert reopened.notice_claimed("closed:1")


def test_bitget_fill_row_keeps_position_mode_and_scope() -> None:
    row = {"tradeId": "1", "symbol": "BTCUSDT", "orderId": "2", "price": "37271.4", "baseVolume": "0.001",
           "feeDetail": [{"deduction": "no", "feeCoin": "USDT", "totalDeductionFee": None,
                          "totalFee": "-0.02236284"}], "side": "buy", "quoteVolume": "37.2714", "profit": "-0.0007",
           "enterPointSource": "web", "tradeSide": "close", "posMode": "hedge_mode", "tradeScope": "taker",
           "cTime": "1700720700342"}
    parsed = Fill.from_api(row)
    assert parsed.pos_mode == "hedge_mode" and parsed.trade_scope == "taker" and parsed.fee == D("-0.02236284")
    opening = rules.fill_opens(parsed.trade_side, parsed.side)
    assert rules.fill_hold_side(parsed.side, opening, parsed.pos_mode) == "long"


@pytest.mark.parametrize(
    ("price", "side", "kind"),
    [("94.9", "long", "stop"), ("95.2", "long", "stop"), ("110.1", "long", "take_profit"), ("103", "long", "manual"),
     ("105.1", "short", "stop"), ("89.9", "short", "take_profit"), ("97", "short", "manual")],
)
def test_exit_kind_guessed_from_the_stop_and_targets_when_the_exchange_does_not_say(price: str, side: str,
                                                                                     kind: str) -> None:
    stop, targets = (D(95), [D(110), D(120)]) if side == "long" else (D(105), [D(90), D(80)])
    assert rules.guess_exit_kind(D(price), side, stop, targets) == kind


@pytest.mark.parametrize(("reason", "group"), [
    ("NO_STOP_LOSS: no stop", "NO_STOP_LOSS"), ("MODE_NOT_NORMAL: checked before send", "MODE_NOT_NORMAL"),
    ("no stop loss", "no stop loss"), ("stop loss is not above every entry of a short;target 1 dropped",
                                       "stop loss is not above every entry of a short"), ("", "unknown")])
def test_notify_only_reasons_group_by_code_else_first_clause(reason: str, group: str) -> None:
    assert rules.notify_only_reason(reason) == group
