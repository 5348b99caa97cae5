"""Signals have an age: an entry that would fill at once, posted longer ago than risk.max_signal_age_seconds when it
is decided, is notify_only with its age; a limit entry still waiting for its price may wait; exits have no age
limit (a close posted while the bot was down is executed when it comes back)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from exchange.sim.engine import SimExchange
from exchange.sim.testing import SimCredentials, running_sim
from parsing.channel_server import ChannelServer
from runtime.config import load_secrets
from runtime.wiring import Runtime
from tests.e2e import CHANNEL, System, fast_config, running_system, wait_listening
from tests.waiting import wait_until
from trading.signal_age import entry_age_verdict, posted_epoch, signal_age_s

D = Decimal


def _iso(seconds_ago: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)).replace(microsecond=0).isoformat()


def test_age_is_measured_from_the_post_date_and_never_negative() -> None:
    assert posted_epoch("2024-05-01T10:00:00+00:00") == 1714557600.0
    assert posted_epoch("2024-05-01T10:00:00Z") == 1714557600.0
    assert posted_epoch("2024-05-01T12:00:00+02:00") == 1714557600.0
    assert posted_epoch("yesterday") is None and posted_epoch(None) is None
    assert signal_age_s("2024-05-01T10:00:00+00:00", 1714557600.0 + 75) == 75
    assert signal_age_s("2024-05-01T10:00:00+00:00", 1714557600.0 - 3) == 0  # clocks a little apart
    assert signal_age_s(None, 1000.0, seen_at=900.0) == 100  # no date: first seen is a lower bound
    assert signal_age_s(None, 1000.0) is None


def test_a_market_entry_or_a_reached_zone_is_too_old_past_the_limit_a_waiting_limit_entry_is_not() -> None:
    common = {"max_age_s": 60.0, "is_long": True, "live": D("100")}
    market = entry_age_verdict(age_s=61, market_entry=True, entries=(), **common)
    assert market.too_old and market.detail == "posted 61s ago (max 60s for a market entry)"
    assert not entry_age_verdict(age_s=59, market_entry=True, entries=(), **common).too_old
    reached = entry_age_verdict(age_s=600, market_entry=False, entries=(D("99"), D("101")), **common)
    assert reached.too_old and "whose zone the price has reached" in reached.detail
    # A long's limit below the market rests on the book until the price comes down: it may wait.
    assert not entry_age_verdict(age_s=3600, market_entry=False, entries=(D("95"), D("97")), **common).too_old
    # A short's limit above the market likewise; one below it would fill at once.
    short = {**common, "is_long": False}
    assert not entry_age_verdict(age_s=3600, market_entry=False, entries=(D("103"),), **short).too_old
    assert entry_age_verdict(age_s=3600, market_entry=False, entries=(D("99"),), **short).too_old
    assert not entry_age_verdict(age_s=3600, market_entry=True, entries=(), **{**common, "max_age_s": 0}).too_old
    assert not entry_age_verdict(age_s=None, market_entry=True, entries=(), **common).too_old


def test_a_stale_entry_is_notify_only_with_its_age_counted_journaled_and_notified(tmp_path: Path) -> None:
    with running_system(tmp_path) as system:
        journal = system.runtime.journal
        assert journal is not None
        # Not the channel's first post: a post dated before the first start on an empty channel is history.
        hello = system.channel.add_post("Good morning traders")
        wait_until(lambda: journal.last_message_id(CHANNEL) == hello, what="the first post read")
        post = system.channel.add_post(system.long_signal("BTCUSDT"), date=_iso(180))
        event = wait_until(lambda: next((e.detail for e in journal.events("SIGNAL_REFUSED")
                                         if e.detail["message_id"] == post), None), what="the stale entry refused")
        assert event["reason"] == "SIGNAL_TOO_OLD"
        assert 180 <= event["age_s"] < 240
        (row,) = [s for s in (journal.signal_for_post(CHANNEL, post, 0),) if s is not None]
        assert row.decision == "notify_only" and row.reason.startswith("SIGNAL_TOO_OLD: posted 1")
        # Counted just after the event is journaled (what the wait above saw).
        wait_until(lambda: system.runtime.metrics.registry.get_sample_value(
            "following_refusals_total", {"reason": "signal_too_old"}) == 1.0, what="the refusal counted")
        assert not system.entry_orders()
        # A fresh one right after it is traded as usual.
        system.channel.add_post(system.long_signal("ETHUSDT"))
        wait_until(lambda: system.entry_orders("ETHUSDT"), what="the fresh entry sent")


class _OnServer(System):
    def __init__(self, runtime: Runtime, channel: ChannelServer, engine: SimExchange) -> None:
        super().__init__(runtime, channel)
        self._engine = engine

    @property
    def engine(self) -> SimExchange:
        return self._engine


def test_a_close_posted_while_the_bot_was_down_is_executed_when_it_comes_back(tmp_path: Path) -> None:
    creds = SimCredentials()
    env = {"BITGET_API_KEY": creds.api_key, "BITGET_API_SECRET": creds.api_secret,
           "BITGET_PASSPHRASE": creds.passphrase}
    with running_sim(engine=SimExchange(seed=4), credentials=creds) as sim, ChannelServer(CHANNEL) as channel:
        config = fast_config(tmp_path, channel.start(), dry_run=False, bitget={"base_url": sim.base_url})
        first = Runtime(config, load_secrets(config, env), env=env)
        first.start()
        try:
            wait_listening(first)
            system = _OnServer(first, channel, sim.engine)
            signal = channel.add_post(system.long_signal("BTCUSDT"))
            wait_until(lambda: system.open_positions(), what="the position open")
        finally:
            first.stop()
        # Posted while the bot is down, dated long before it comes back: exits have no age limit.
        channel.add_post("Close all BTC now", reply_to=signal, date=_iso(3600))
        second = Runtime(config, load_secrets(config, env), env=env)
        second.start()
        try:
            wait_until(lambda: not system.open_positions(), what="the position closed after the restart")
            assert second.journal is not None
            assert not [e for e in second.journal.events("SIGNAL_REFUSED") if e.detail["reason"] == "SIGNAL_TOO_OLD"]
        finally:
            second.stop()
