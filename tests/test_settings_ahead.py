"""Margin mode and leverage set ahead of signals on watched symbols (trading/settings_ahead.py): the pure rules,
the preparer alone against the loopback simulator (each pass called by hand), and the whole runtime."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from exchange.bitget.client import BitgetClient
from exchange.bitget.contracts import Contract
from exchange.sim.engine import SimExchange
from tests.e2e import System, running_system
from tests.order_side import OrderSide, order_side
from tests.waiting import wait_until
from trading.facts import Fact, FactStore, SymbolSettings
from trading.journal import Journal
from trading.risk import RiskLimits
from trading.settings_ahead import (
    LeverageGuess,
    PrepareSettings,
    SeenReading,
    SettingsPreparer,
    Touch,
    due,
    guess_requested_leverage,
    next_preparation,
    predicted_leverage,
    settings_steps,
    watched_symbols,
)

D = Decimal
NOW = 1_000_000.0
LOCKED = ("45117", "Currently holding positions or orders, the margin mode cannot be adjusted")


def _reading(signal_id: int, symbol: str, *, approved: bool = False, leverage: int | None = None) -> SeenReading:
    return SeenReading(signal_id, symbol, NOW - 100 + signal_id, approved, leverage)


def _contract(max_lever: int = 125, min_lever: int = 1) -> Contract:
    return Contract(symbol="XUSDT", base_coin="X", quote_coin="USDT", price_place=2, price_end_step=1,
                    volume_place=3, size_multiplier=D("0.001"), min_trade_num=D("0.001"), min_trade_usdt=D(5),
                    max_lever=max_lever, min_lever=min_lever)


def _known(margin_mode: str, long: int | None, short: int | None, at: float = NOW - 1) -> Fact[SymbolSettings]:
    return Fact(SymbolSettings(margin_mode, long, short), at, "reconcile")


# --- the rules --------------------------------------------------------------------------------------------------
def test_the_most_recently_named_symbols_come_first_then_the_configured_then_open_positions() -> None:
    recent = [_reading(1, "ETHUSDT"), _reading(3, "SOLUSDT"), _reading(2, "ETHUSDT")]
    assert watched_symbols(recent, ("BTCUSDT", "SOLUSDT"), ["XRPUSDT", "BTCUSDT"]) == (
        "SOLUSDT", "ETHUSDT", "BTCUSDT", "XRPUSDT")
    assert watched_symbols([], (), []) == ()


def test_the_leverage_guess_is_the_latest_approved_entrys_on_the_symbol_else_on_any_else_the_cap() -> None:
    recent = [_reading(1, "ETHUSDT", approved=True, leverage=7), _reading(2, "BTCUSDT", approved=True, leverage=20),
              _reading(3, "ETHUSDT", leverage=50),  # refused or an update: not what the bot trades with
              _reading(4, "SOLUSDT", approved=True, leverage=None)]
    assert guess_requested_leverage(recent, "ETHUSDT", 10).requested == 7
    assert guess_requested_leverage(recent, "BTCUSDT", 10).requested == 20
    assert guess_requested_leverage(recent, "XRPUSDT", 10).requested is None  # SOL's entry named none
    assert guess_requested_leverage(recent[:2], "XRPUSDT", 10).requested == 20
    assert guess_requested_leverage([_reading(1, "ETHUSDT", leverage=5)], "ETHUSDT", 10) == LeverageGuess(
        10, "no approved entry yet: risk.max_leverage")


def test_the_prediction_is_the_risk_gates_own_choice_for_that_contract() -> None:
    limits = RiskLimits(max_leverage=25, default_leverage=3)
    assert predicted_leverage(LeverageGuess(50, ""), limits, _contract(max_lever=125)) == 25  # the config's cap
    assert predicted_leverage(LeverageGuess(50, ""), limits, _contract(max_lever=20)) == 20  # the contract's
    assert predicted_leverage(LeverageGuess(None, ""), limits, _contract()) == 3  # names none: the default
    assert predicted_leverage(LeverageGuess(2, ""), limits, _contract(min_lever=5)) == 5
    assert predicted_leverage(LeverageGuess(50, ""), replace(limits, leverage_policy="REJECT"), _contract()) is None
    assert predicted_leverage(LeverageGuess(2, ""), limits, _contract(min_lever=30)) is None  # it would refuse


def test_only_what_differs_is_set_and_hedged_sides_each_get_theirs() -> None:
    steps = settings_steps(_known("isolated", 5, 5), margin_mode="isolated", leverage=5, hedged=False, now=NOW,
                           max_age_s=300)
    assert steps.nothing_to_do
    steps = settings_steps(_known("crossed", 5, 5), margin_mode="isolated", leverage=5, hedged=False, now=NOW,
                           max_age_s=300)
    assert steps.margin_mode and steps.leverage_sides == (None,)
    steps = settings_steps(_known("isolated", 5, 8), margin_mode="isolated", leverage=5, hedged=True, now=NOW,
                           max_age_s=300)
    assert not steps.margin_mode and steps.leverage_sides == ("short",)


def test_a_symbol_is_left_alone_for_the_interval_unless_its_settings_were_forgotten() -> None:
    known = _known("isolated", 5, 5)
    assert due(None, known, NOW, 300)
    assert not due(Touch(NOW - 10, True), known, NOW, 300)
    assert due(Touch(NOW - 10, True), None, NOW, 300), "forgotten since (an entry refused on them): again"
    assert not due(Touch(NOW - 10, False), None, NOW, 300), "a failure waits the whole interval"
    assert due(Touch(NOW - 300, False), None, NOW, 300)
    assert due(Touch(NOW + 10, True), known, NOW, 300), "touched in the future (clock stepped back): not trusted"


def test_the_next_symbol_is_the_first_with_something_to_do() -> None:
    args: dict[str, Any] = dict(touches={}, busy=set(), margin_mode="isolated", hedged=False, now=NOW,
                                interval_s=300)
    levers = {"BTCUSDT": 5, "ETHUSDT": 5, "SOLUSDT": 5}
    done = {"BTCUSDT": _known("isolated", 5, 5)}
    prep = next_preparation(["BTCUSDT", "ETHUSDT"], known=done, leverage_for=levers, **args)
    assert prep is not None and (prep.symbol, prep.read_first) == ("ETHUSDT", True)
    differs = {**done, "ETHUSDT": _known("isolated", 10, 10)}
    prep = next_preparation(["BTCUSDT", "ETHUSDT"], known=differs, leverage_for=levers, **args)
    assert prep is not None and (prep.symbol, prep.read_first, prep.leverage) == ("ETHUSDT", False, 5)
    assert next_preparation(["BTCUSDT", "ETHUSDT"], known=differs, leverage_for=levers,
                            **{**args, "busy": {"ETHUSDT"}}) is None, "a position or entry open on it: not set"
    assert next_preparation(["XRPUSDT"], known={}, leverage_for=levers, **args) is None, "no contract: skipped"
    assert next_preparation(["ETHUSDT"], known={}, leverage_for=levers,
                            **{**args, "touches": {"ETHUSDT": Touch(NOW - 1, False)}}) is None


# --- the preparer alone, against the simulator ------------------------------------------------------------------
@dataclass
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now


@dataclass
class Bench:
    om: OrderSide
    client: BitgetClient
    facts: FactStore[Any, Any]
    clock: Clock
    preparer: SettingsPreparer

    @property
    def engine(self) -> SimExchange:
        return self.om.engine

    @property
    def journal(self) -> Journal:
        return self.om.journal

    def requests(self) -> list[str]:
        return [r.endpoint for r in self.engine.request_log]

    def pass_(self) -> list[str]:
        """One reconciliation pass's preparation; the requests it made."""
        before = len(self.engine.request_log)
        self.preparer.prepare_one()
        return self.requests()[before:]


@contextmanager
def _bench(tmp_path: Path, *, symbols: tuple[str, ...] = ("BTCUSDT",), positions_known: bool = True,
           pos_mode: str = "one_way_mode", max_leverage: int = 10, enabled: bool = True,
           allowed: Callable[[], bool] = lambda: True) -> Iterator[Bench]:
    with order_side(tmp_path, start=False, pos_mode=pos_mode) as om:
        client = om.sim.client(max_read_retries=0)
        client.contracts(refresh=True)
        facts: FactStore[Any, Any] = FactStore()
        clock = Clock(time.time())
        if positions_known:
            facts.put_positions((), clock.now, "guard")
        settings = PrepareSettings(enabled=enabled, symbols=symbols, recent_days=30, interval_s=300,
                                   margin_mode="isolated", pos_mode=pos_mode,  # type: ignore[arg-type]
                                   limits=RiskLimits(max_leverage=max_leverage), channel="order_side")
        preparer = SettingsPreparer(journal=om.journal, client=client, facts=facts, settings=settings,
                                    entries_allowed=allowed, clock=clock)
        yield Bench(om, client, facts, clock, preparer)


def test_a_configured_symbol_is_read_and_set_once_before_any_signal(tmp_path: Path) -> None:
    with _bench(tmp_path) as bench:
        assert bench.engine.settings("BTCUSDT").margin_mode == "crossed"  # the simulator's starting mode
        assert bench.pass_() == ["account", "set-margin-mode", "set-leverage"]
        settings = bench.engine.settings("BTCUSDT")
        assert (settings.margin_mode, settings.long_leverage, settings.short_leverage) == ("isolated", 10, 10)
        known = bench.facts.settings("BTCUSDT")
        assert known is not None and known.source == "prepared" and known.value.long_leverage == 10
        (event,) = bench.journal.events("SETTINGS_PREPARED")
        assert event.detail["symbol"] == "BTCUSDT" and event.detail["leverage"] == 10
        assert event.detail["sent"] == ["set-margin-mode isolated", "set-leverage 10"]
        assert event.detail["before"]["margin_mode"] == "crossed"
        bench.clock.now += 60
        assert bench.pass_() == [] and bench.pass_() == [], "in place: nothing more is sent"


def test_settings_already_in_place_are_only_read(tmp_path: Path) -> None:
    with _bench(tmp_path) as bench:
        bench.engine.set_margin_mode("BTCUSDT", "isolated")
        bench.engine.set_leverage("BTCUSDT", 10)
        assert bench.pass_() == ["account"]
        assert bench.pass_() == []
        assert bench.journal.events("SETTINGS_PREPARED") == []


def test_a_symbol_the_channel_named_is_watched_with_the_latest_approved_entrys_leverage(tmp_path: Path) -> None:
    with _bench(tmp_path, symbols=()) as bench:
        assert bench.pass_() == [], "nothing watched yet"
        journal = bench.journal
        journal.set_signal_closed(journal.record_signal("order_side", 1, {"kind": "entry", "leverage": 7}, "traded",
                                                        "", symbol="ETHUSDT"))
        journal.record_signal("order_side", 2, {"kind": "entry", "leverage": None}, "notify_only", "no stop",
                              symbol="SOLUSDT")
        journal.record_signal("elsewhere", 3, {"kind": "entry", "leverage": 3}, "parsed", "", symbol="XRPUSDT")
        journal.record_signal("order_side", 4, {"kind": "noise"}, "ignored", "", symbol="DOGEUSDT")
        assert bench.pass_() == ["account", "set-margin-mode", "set-leverage"]  # SOL: named last
        assert bench.pass_() == ["account", "set-margin-mode", "set-leverage"]  # then ETH
        assert bench.pass_() == [], "neither another channel's symbol nor one named in chatter is watched"
        assert bench.engine.settings("SOLUSDT").long_leverage == 7, "the latest approved entry asked 7"
        assert bench.engine.settings("ETHUSDT").long_leverage == 7
        assert [e.detail["symbol"] for e in journal.events("SETTINGS_PREPARED")] == ["SOLUSDT", "ETHUSDT"]


def test_unknown_symbols_are_skipped_and_positions_are_only_read(tmp_path: Path) -> None:
    with _bench(tmp_path, symbols=("NOSUCHUSDT", "BTCUSDT")) as bench:
        bench.engine.set_margin_mode("BTCUSDT", "isolated")
        bench.engine.set_leverage("BTCUSDT", 3)
        position = [p for p in bench.client.positions()]  # none yet: put one in the guard's view
        assert position == []
        bench.journal.set_signal_closed(bench.journal.record_signal(
            "order_side", 1, {"kind": "entry", "leverage": 3}, "traded", "", symbol="ETHUSDT"))
        bench.facts.put_positions((_position("BTCUSDT"),), bench.clock.now, "guard")
        # ETH (named) first, then BTC: read only, a position is open on it; the unknown symbol never asked for
        assert bench.pass_() == ["account", "set-margin-mode", "set-leverage"]
        assert bench.pass_() == ["account"]
        assert bench.pass_() == []
        assert bench.engine.settings("BTCUSDT").long_leverage == 3


def test_a_symbol_whose_signal_is_being_decided_is_left_to_its_entry(tmp_path: Path) -> None:
    with _bench(tmp_path, symbols=()) as bench:
        signal_id = bench.journal.record_signal("order_side", 1, {"kind": "entry", "leverage": 3}, "parsed", "",
                                                symbol="SOLUSDT")
        assert bench.pass_() == ["account"], "read, not set: the entry being decided sets what it needs"
        assert bench.pass_() == []
        bench.journal.set_signal_decision(signal_id, "refused", "SLIPPAGE")
        assert bench.pass_() == ["set-margin-mode", "set-leverage"], "refused: the next signal on it will not pay"
        assert bench.engine.settings("SOLUSDT").long_leverage == 10


def test_without_a_view_of_the_positions_nothing_is_set(tmp_path: Path) -> None:
    with _bench(tmp_path, positions_known=False) as bench:
        assert bench.pass_() == ["account"]
        assert bench.pass_() == []
        assert bench.engine.settings("BTCUSDT").margin_mode == "crossed"


def test_a_locked_margin_mode_is_not_forced_and_not_asked_again_within_the_interval(tmp_path: Path) -> None:
    with _bench(tmp_path) as bench:
        bench.engine.faults.reject_next("set-margin-mode", *LOCKED)
        assert bench.pass_() == ["account", "set-margin-mode"]
        assert bench.engine.settings("BTCUSDT").margin_mode == "crossed"
        known = bench.facts.settings("BTCUSDT")
        assert known is not None and known.value.margin_mode == "crossed", "what was read still holds"
        assert bench.journal.events("SETTINGS_PREPARED") == [], "nothing changed"
        for _ in range(3):
            bench.clock.now += 60
            assert bench.pass_() == []
        bench.clock.now += 120
        assert bench.pass_() == ["set-margin-mode", "set-leverage"], "tried again after the interval"


def test_unreadable_settings_are_left_for_the_interval(tmp_path: Path) -> None:
    with _bench(tmp_path) as bench:
        bench.engine.faults.fail_next("account", http_status=500)
        assert bench.pass_() == ["account"]
        assert bench.pass_() == [] and bench.facts.settings("BTCUSDT") is None
        bench.clock.now += 301
        assert bench.pass_() == ["account", "set-margin-mode", "set-leverage"]


def test_a_rate_limit_stops_the_pass_and_pauses_preparation(tmp_path: Path) -> None:
    with _bench(tmp_path) as bench:
        bench.engine.faults.fail_next("set-leverage", http_status=429)
        assert bench.pass_() == ["account", "set-margin-mode", "set-leverage"]  # no raise
        (event,) = bench.journal.events("SETTINGS_PREPARED")
        assert event.detail["sent"] == ["set-margin-mode isolated"] and event.detail["error"] == "429"
        assert bench.pass_() == [], "paused"
        bench.clock.now += 6
        assert bench.pass_() == ["account", "set-leverage"], "after the pause: read again, only the leverage set"
        assert bench.engine.settings("BTCUSDT").long_leverage == 10


def test_a_failed_set_is_not_repeated_within_the_interval(tmp_path: Path) -> None:
    with _bench(tmp_path) as bench:
        bench.engine.faults.reject_next("set-leverage", "40797", "Exceeded the maximum settable leverage")
        assert bench.pass_() == ["account", "set-margin-mode", "set-leverage"]
        assert bench.facts.settings("BTCUSDT") is None, "partly set: not trusted"
        assert bench.pass_() == [] and bench.pass_() == []


def test_settings_forgotten_after_a_refused_entry_are_prepared_again(tmp_path: Path) -> None:
    with _bench(tmp_path) as bench:
        assert bench.pass_() == ["account", "set-margin-mode", "set-leverage"]
        bench.facts.forget_settings("BTCUSDT")  # what EntrySender does when every entry leg was rejected
        assert bench.pass_() == ["account"]


def test_hedge_mode_prepares_each_side(tmp_path: Path) -> None:
    with _bench(tmp_path, pos_mode="hedge_mode") as bench:
        assert bench.pass_() == ["account", "set-margin-mode", "set-leverage", "set-leverage"]
        sides = [r.params.get("holdSide") for r in bench.engine.requests_to("set-leverage")]
        assert sides == ["long", "short"]


def test_nothing_is_prepared_while_entries_are_stopped_or_when_turned_off(tmp_path: Path) -> None:
    with _bench(tmp_path, allowed=lambda: False) as bench:
        assert bench.pass_() == []
    (tmp_path / "off").mkdir()
    with _bench(tmp_path / "off", enabled=False) as bench:
        assert bench.pass_() == []


def _position(symbol: str) -> Any:
    from exchange.bitget.models import Position

    return Position(symbol=symbol, hold_side="long", total=D("0.01"), available=D("0.01"), locked=D(0),
                    average_open_price=D("100"), mark_price=None, liquidation_price=None, leverage=D(3),
                    margin_mode="isolated", unrealized_pnl=D(0), pos_mode="one_way_mode")


# --- the whole runtime ------------------------------------------------------------------------------------------
# Prices from the WebSocket (pushed at subscribe and on a change), account and positions polled fast: the decision
# fetches nothing; what remains before the order is what the settings need.
MONITOR = {"price_feed": {"mode": "ws", "interval_seconds": 0.2, "stale_after_seconds": 60}}
RISK = {"cooldown_seconds": 0, "max_fact_age_seconds": 30, "max_price_age_seconds": 30, "max_leverage": 5,
        "settings_recheck_seconds": 120}


def _between_post_and_order(system: System, text: str, symbol: str) -> list[str]:
    seen = len(system.engine.request_log)
    entries = len(system.entry_orders(symbol))
    system.channel.add_post(text)
    wait_until(lambda: len(system.entry_orders(symbol)) > entries, what=f"the {symbol} entry")
    endpoints = [r.endpoint for r in system.engine.request_log[seen:]]
    wait_until(lambda: "place-order" in [r.endpoint for r in system.engine.request_log[seen:]], what="logged")
    endpoints = [r.endpoint for r in system.engine.request_log[seen:]]
    return endpoints[: endpoints.index("place-order")]


def _prepared(system: System, symbol: str) -> bool:
    return any(e.detail["symbol"] == symbol for e in system.events("SETTINGS_PREPARED"))


@pytest.mark.slow
def test_a_watched_symbols_first_signal_sends_only_its_order(tmp_path: Path) -> None:
    with running_system(tmp_path, monitor=MONITOR, risk={**RISK, "prepare_settings_symbols": ["eth", "BTC/USDT"]},
                        ) as system:
        wait_until(lambda: _prepared(system, "BTCUSDT") and _prepared(system, "ETHUSDT"), what="both prepared")
        assert system.engine.settings("ETHUSDT").margin_mode == "isolated"
        assert system.engine.settings("ETHUSDT").long_leverage == 5
        before = _between_post_and_order(system, system.long_signal("ETHUSDT"), "ETHUSDT")
        for not_on_the_path in ("account", "set-margin-mode", "set-leverage", "contracts"):
            assert not_on_the_path not in before, before
        facts = system.events("DECISION_FACTS")[-1].detail["facts"]
        # (the price of a symbol never named before is still read on the path: the price feed watches it from then)
        assert {name for name, fact in facts.items() if fact["source"] == "fetched"} <= {"price"}
        assert len(system.engine.requests_to("set-leverage")) == 2, "once per watched symbol, never on the path"


@pytest.mark.slow
def test_a_signal_on_a_new_symbol_makes_it_watched_and_another_leverage_is_still_set_on_the_path(
        tmp_path: Path) -> None:
    with running_system(tmp_path, monitor=MONITOR, risk=RISK) as system:
        # a post naming SOL without a stop: not traded, but SOL is now watched
        signal = system.long_signal("SOLUSDT")
        no_stop = signal[: signal.index("Stop Targets:")] + signal[signal.index("Leverage"):]
        system.channel.add_post(no_stop)
        wait_until(lambda: _prepared(system, "SOLUSDT"), what="SOL prepared after the first post naming it")
        assert system.engine.settings("SOLUSDT").long_leverage == 5 and system.runtime.journal is not None
        before = _between_post_and_order(system, system.long_signal("SOLUSDT"), "SOLUSDT")
        assert "set-leverage" not in before and "set-margin-mode" not in before
        system.engine.close_positions("SOLUSDT")
        wait_until(lambda: not system.runtime.journal.open_signals(), what="the signal closed")  # type: ignore[union-attr]
        # the next signal asks 3x: set on its path, as before settings ahead
        before = _between_post_and_order(system, system.long_signal("SOLUSDT").replace("(5X)", "(3X)"), "SOLUSDT")
        assert "set-leverage" in before and "set-margin-mode" not in before
        assert system.engine.settings("SOLUSDT").long_leverage == 3
