"""End to end on the simulator: an entry fills, target 1 fills, the stop moves to break-even, the stop fills.

The user hears each of it once (ENTRY_FILLED, TAKE_PROFIT_FILLED, STOP_MOVED, STOP_FILLED, POSITION_CLOSED) with
the structured webhook fields, the P&L and fees equal the simulator's own fills, and nothing is announced twice
after a restart."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli import status as sc
from cli.main import main as cli_main
from runtime.config import load_secrets
from runtime.wiring import Runtime
from tests.e2e import CHANNEL, running_system
from tests.notify_server import NotifyServer
from tests.waiting import wait_until
from trading.journal import Journal, OrderState

KINDS = ("ENTRY_FILLED", "TAKE_PROFIT_FILLED", "STOP_MOVED", "STOP_FILLED", "POSITION_CLOSED")


def _bodies(server: NotifyServer, kind: str | None = None) -> list[dict[str, Any]]:
    return [r.body for r in server.requests() if kind is None or r.body.get("kind") == kind]


@pytest.mark.slow
@pytest.mark.parametrize("pos_mode", ["one_way_mode", "hedge_mode"])
def test_entry_target_break_even_stop_told_once_each_with_exchange_figures(
        tmp_path: Path, pos_mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    with NotifyServer() as hook:
        overrides: dict[str, Any] = {
            "notify": {"webhook": {"enabled": True, "url": f"{hook.url}/hook"}},
            "bitget": {"position_mode": pos_mode},
            "risk": {"cooldown_seconds": 0, "stoploss": {"break_even_buffer_pct": 0.002}},
        }
        with running_system(tmp_path, **overrides) as system:
            engine = system.engine
            post_id = system.channel.add_post(system.long_signal())
            ladder = wait_until(lambda: sorted((p for p in engine.plan_orders("BTCUSDT")
                                                if p.plan_type == "profit_plan"), key=lambda p: p.trigger_price),
                                what="the take-profit ladder")
            entered = wait_until(lambda: _bodies(hook, "ENTRY_FILLED"), what="ENTRY_FILLED")
            position = system.open_positions()[0]
            assert Decimal(str(entered[0]["size"])) == position.size
            assert Decimal(str(entered[0]["price"])) == position.average_price
            journal = system.runtime.journal
            assert journal is not None and system.runtime.health_address is not None
            health = "http://{}:{}".format(*system.runtime.health_address)

            def status() -> sc.Status:
                return sc.collect_status(system.runtime.config, journal, bot=lambda path: sc.ask_bot(health, path))

            shown = status()
            assert shown.bot_running and shown.positions_source == "bot" and shown.mode == "normal"
            (open_position,) = shown.positions
            assert open_position["symbol"] == "BTCUSDT" and open_position["side"] == "long"
            assert Decimal(open_position["size"]) == position.size and open_position["stop"]
            assert len(open_position["targets_left"]) == 2
            assert shown.last_signals[-1]["decision"] == "traded"
            assert "BTCUSDT long" in sc.render_status(shown)

            engine.set_price("BTCUSDT", ladder[0].trigger_price)  # target 1 only
            wait_until(lambda: _bodies(hook, "TAKE_PROFIT_FILLED"), what="TAKE_PROFIT_FILLED")
            moved = wait_until(lambda: _bodies(hook, "STOP_MOVED"), what="STOP_MOVED")
            (stop,) = wait_until(lambda: [p for p in system.stop_plans("BTCUSDT")
                                          if Decimal(str(moved[0]["new_stop"])) == p.trigger_price],
                                 what="the break-even stop on the exchange")
            engine.set_price("BTCUSDT", engine.contract("BTCUSDT").round_price(stop.trigger_price * Decimal("0.998")))
            wait_until(lambda: _bodies(hook, "POSITION_CLOSED"), what="POSITION_CLOSED")
            assert not system.open_positions()
            assert status().positions == [] and status().open_trades == []
            get = system.runtime.metrics.registry.get_sample_value
            wait_until(lambda: get("following_closes_total", {"channel": CHANNEL, "cause": "break_even_stop"}) == 1,
                       what="the close counted")
            wait_until(lambda: get("following_realized_pnl_usdt", {"channel": CHANNEL}) is not None,
                       what="the realized P&L published")
            assert get("following_fills_total", {"channel": CHANNEL, "leg": "tp"}) == 1
            assert get("following_entry_latency_seconds_count", {"channel": CHANNEL}) == 1
            metric_pnl = get("following_realized_pnl_usdt", {"channel": CHANNEL})

            fills = engine.fills("BTCUSDT")
            assert fills
            reads = engine.requests_to("fills")
            assert reads and all(int(r.params["startTime"]) <= fills[0].c_time for r in reads), "bounded history"
            signal = journal.signal_for_post(CHANNEL, post_id)
            assert signal is not None
            tp_rows = {r.leg: r.state for r in journal.orders(signal_id=signal.id) if r.leg.startswith("tp")}
            assert tp_rows == {"tp1": OrderState.FILLED, "tp2": OrderState.CANCELED}, "no take-profit left ACCEPTED"
            # One more pass must not repeat anything.
            recorder_passes = len(hook.requests())
            wait_until(lambda: len(journal.fills()) == len(fills), what="every fill journaled")
        assert len(hook.requests()) == recorder_passes

        bodies = _bodies(hook)
        kinds = [b["kind"] for b in bodies if b["kind"] in KINDS]
        assert sorted(kinds) == sorted(KINDS), kinds
        by_kind = {b["kind"]: b for b in bodies}
        for body in (by_kind[k] for k in KINDS):
            assert body["channel"] == CHANNEL and body["message_id"] == post_id and body["symbol"] == "BTCUSDT"
            assert body["side"] == "long" and body["signal_id"] == signal.id and isinstance(body["text"], str)
            assert body["link"].endswith(f"/{CHANNEL}/{post_id}")
        assert "break-even" in by_kind["STOP_MOVED"]["reason"]
        assert by_kind["TAKE_PROFIT_FILLED"]["target"] == 1
        assert by_kind["STOP_FILLED"]["cause"] == "break_even_stop"
        closed = by_kind["POSITION_CLOSED"]
        realized = sum(f.profit for f in fills) + sum(f.fee for f in fills)  # the simulator's fee is negative
        fees = -sum(f.fee for f in fills)
        assert Decimal(str(closed["realized_pnl"])) == pytest.approx(realized, abs=Decimal("1e-8"))
        assert Decimal(str(closed["fees"])) == pytest.approx(fees, abs=Decimal("1e-8"))
        assert Decimal(closed["size"]) == sum(f.size for f in fills if f.trade_side == "close")
        assert closed["cause"] == "break_even_stop"
        assert closed["r_multiple"] is not None and closed["holding_seconds"] is not None
        assert metric_pnl == pytest.approx(float(realized))

        # `following report --json` (the bot stopped): one closed trade whose P&L and fees are the exchange's.
        conf = tmp_path / "report.yaml"
        conf.write_text(yaml.safe_dump({"storage": {"db_path": str(tmp_path / "journal.sqlite")}}), encoding="utf-8")
        capsys.readouterr()
        assert cli_main(["report", "--conf", str(conf), "--json", "--trades"]) == 0
        (channel,) = json.loads(capsys.readouterr().out)["channels"]
        assert channel["channel"] == CHANNEL and channel["traded"] == 1 and channel["closed_trades"] == 1
        assert Decimal(channel["realized_pnl"]) == realized and Decimal(channel["fees"]) == fees
        assert channel["wins"] + channel["losses"] == 1
        (trade,) = channel["trades"]
        assert trade["cause"] == "break_even_stop" and Decimal(trade["realized_pnl"]) == realized
        assert cli_main(["status", "--conf", str(conf)]) == 0  # the bot is down: journal only, no traceback
        assert "not running" in capsys.readouterr().out

        # After a restart on the same journal nothing is announced again.
        before = len(hook.requests())
        config = system.runtime.config
        runtime = Runtime(config, load_secrets(config, {}), env={})
        runtime.start()
        try:
            assert runtime.journal is not None
            journal2: Journal = runtime.journal
            wait_until(lambda: journal2.events("RECONCILED"), what="the restarted bot reconciled")
        finally:
            runtime.stop()
        assert len(hook.requests()) == before


@pytest.mark.slow
def test_channel_close_is_told_as_close_filled_and_position_closed(tmp_path: Path) -> None:
    with NotifyServer() as hook:
        overrides: dict[str, Any] = {"notify": {"webhook": {"enabled": True, "url": f"{hook.url}/hook"}}}
        with running_system(tmp_path, **overrides) as system:
            post_id = system.channel.add_post(system.long_signal())
            wait_until(lambda: _bodies(hook, "ENTRY_FILLED"), what="ENTRY_FILLED")
            system.channel.add_post("#BTC/USDT close all now", reply_to=post_id)
            (closed,) = wait_until(lambda: _bodies(hook, "POSITION_CLOSED"), what="POSITION_CLOSED")
            (close,) = _bodies(hook, "CLOSE_FILLED")
            assert close["cause"] == closed["cause"] == "channel_close"
            assert close["message_id"] == post_id and close["side"] == "long"
            fills = system.engine.fills("BTCUSDT")
            assert Decimal(str(closed["realized_pnl"])) == pytest.approx(
                sum(f.profit for f in fills) + sum(f.fee for f in fills), abs=Decimal("1e-8"))
            assert not _bodies(hook, "STOP_FILLED") and not _bodies(hook, "TAKE_PROFIT_FILLED")


@pytest.mark.slow
def test_a_local_guard_stop_is_told_as_a_stop(tmp_path: Path) -> None:
    from tests.test_local_guard import LOCAL_GUARD, PRICE_FEED, cross, open_locally_guarded

    with NotifyServer() as hook:
        notify = {"webhook": {"enabled": True, "url": f"{hook.url}/hook"}}
        with running_system(tmp_path, risk=LOCAL_GUARD, monitor={"price_feed": PRICE_FEED}, notify=notify) as system:
            _, stop = open_locally_guarded(system.runtime, system.engine, system.channel, "long")
            wait_until(lambda: _bodies(hook, "ENTRY_FILLED"), what="ENTRY_FILLED")
            cross(system.engine, stop, "long")
            (closed,) = wait_until(lambda: _bodies(hook, "POSITION_CLOSED"), what="POSITION_CLOSED")
            (stopped,) = _bodies(hook, "STOP_FILLED")
            assert stopped["cause"] == closed["cause"] == "stop"
            assert Decimal(closed["realized_pnl"]) < 0 and Decimal(closed["r_multiple"]) < 0
            assert not _bodies(hook, "CLOSE_FILLED")
