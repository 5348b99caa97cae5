"""The freshness rules of the facts a decision uses (trading/facts.py): pure, no exchange."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from trading.facts import (
    Fact,
    FactStore,
    SymbolSettings,
    settings_after_set,
    settings_from_exchange,
    settings_plan,
    settings_to_recheck,
    usable,
    used,
)


def test_a_fact_is_usable_only_while_fresh_and_known() -> None:
    fact = Fact("x", observed_at=100.0, source="guard")
    assert usable(fact, now=103.0, max_age_s=5)
    assert not usable(fact, now=105.5, max_age_s=5), "older than its bound: fetched again"
    assert not usable(None, now=100.0, max_age_s=5), "never observed: fetched"
    assert not usable(fact, now=99.0, max_age_s=5), "from the future (the clock stepped back): not trusted"


def test_a_view_asked_for_before_the_bots_own_order_is_stale_whatever_its_age() -> None:
    fact = Fact("positions", observed_at=100.0, source="guard")
    assert not usable(fact, now=100.5, max_age_s=5, not_before=100.2)
    assert not usable(fact, now=100.5, max_age_s=5, not_before=100.0), "asked for at the same instant: stale"
    assert usable(fact, now=100.5, max_age_s=5, not_before=99.9)


@given(st.floats(0, 1e6), st.floats(-1e3, 1e3), st.floats(0.001, 100))
def test_usable_means_age_within_bound(observed: float, delta: float, bound: float) -> None:
    fact = Fact(1, observed_at=observed, source="x")
    assert usable(fact, observed + delta, bound) == (0 <= (observed + delta) - observed <= bound)


def test_used_reports_source_and_age_for_the_journal() -> None:
    fact = used("price", Fact(Decimal("1"), observed_at=10.0, source="price_feed:ws"), now=10.25)
    assert fact.as_event() == {"source": "price_feed:ws", "age_s": 0.25}


def test_margin_mode_and_leverage_are_set_when_unknown_or_too_old() -> None:
    plan = settings_plan(None, margin_mode="isolated", leverage=5, hold_side=None, now=0, max_age_s=300)
    assert plan.set_margin_mode and plan.set_leverage
    known = Fact(SymbolSettings("isolated", 5, 5), observed_at=0.0, source="set")
    old = settings_plan(known, margin_mode="isolated", leverage=5, hold_side=None, now=301, max_age_s=300)
    assert old.set_margin_mode and old.set_leverage


def test_settings_already_in_place_are_not_set_again() -> None:
    known = Fact(SymbolSettings("isolated", 5, 5), observed_at=0.0, source="set")
    plan = settings_plan(known, margin_mode="isolated", leverage=5, hold_side=None, now=10, max_age_s=300)
    assert plan.nothing_to_do


def test_only_what_differs_is_set_again() -> None:
    known = Fact(SymbolSettings("isolated", 5, 5), observed_at=0.0, source="set")
    lev = settings_plan(known, margin_mode="isolated", leverage=3, hold_side=None, now=10, max_age_s=300)
    assert lev.set_leverage and not lev.set_margin_mode
    mode = settings_plan(known, margin_mode="crossed", leverage=5, hold_side=None, now=10, max_age_s=300)
    assert mode.set_margin_mode and mode.set_leverage, "a mode switch may bring another leverage: both"


def test_hedge_mode_sides_have_their_own_leverage() -> None:
    after_long = settings_after_set(None, margin_mode="isolated", leverage=5, hold_side="long")
    assert after_long == SymbolSettings("isolated", 5, None)
    known = Fact(after_long, observed_at=0.0, source="set")
    assert settings_plan(known, margin_mode="isolated", leverage=5, hold_side="long", now=1, max_age_s=9).nothing_to_do
    short = settings_plan(known, margin_mode="isolated", leverage=5, hold_side="short", now=1, max_age_s=9)
    assert short.set_leverage and not short.set_margin_mode
    both = settings_after_set(after_long, margin_mode="isolated", leverage=5, hold_side="short")
    assert both == SymbolSettings("isolated", 5, 5)
    switched = settings_after_set(both, margin_mode="crossed", leverage=3, hold_side="long")
    assert switched == SymbolSettings("crossed", 3, None), "nothing kept across a margin mode switch"


def test_settings_as_the_exchange_reports_them() -> None:
    assert settings_from_exchange("isolated", Decimal("5"), Decimal("7")) == SymbolSettings("isolated", 5, 7)
    assert settings_from_exchange("crossed", Decimal("5"), Decimal("5"), Decimal("10")) == SymbolSettings(
        "crossed", 10, 10)
    assert settings_from_exchange(None, Decimal("5"), Decimal("5")) is None
    assert settings_from_exchange("isolated", Decimal("2.5"), None) == SymbolSettings("isolated", None, None)


def test_reconciliation_rechecks_the_oldest_settings_first() -> None:
    known = {
        "BTCUSDT": Fact(SymbolSettings("isolated", 5, 5), 100.0, "set"),
        "ETHUSDT": Fact(SymbolSettings("isolated", 5, 5), 50.0, "set"),
        "SOLUSDT": Fact(SymbolSettings("isolated", 5, 5), 190.0, "set"),
    }
    assert settings_to_recheck(known, now=200.0, recheck_after_s=60) == ["ETHUSDT"]
    assert settings_to_recheck(known, now=200.0, recheck_after_s=60, limit=5) == ["ETHUSDT", "BTCUSDT"]
    assert settings_to_recheck(known, now=40.0, recheck_after_s=60, limit=5) == ["ETHUSDT", "BTCUSDT", "SOLUSDT"], (
        "from the future: read again")


def test_the_store_keeps_the_newest_observation() -> None:
    store: FactStore[str, str] = FactStore()
    store.put_account("new", 10.0, "guard")
    store.put_account("old", 9.0, "fetched")  # an answer to an older request arriving late
    assert store.account() == Fact("new", 10.0, "guard")
    store.put_price("BTCUSDT", Decimal("0"), 11.0, "price_feed:ws")
    assert store.price("BTCUSDT") is None, "a zero price is never decided on"
    store.put_price("BTCUSDT", Decimal("65000"), 11.0, "price_feed:ws")
    store.put_settings("BTCUSDT", SymbolSettings("isolated", 5, 5), 1.0, "set")
    store.forget_settings("BTCUSDT")
    assert store.settings("BTCUSDT") is None and store.all_settings() == {}
