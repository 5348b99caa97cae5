"""Facts the RiskGate decides on, kept current off the critical path, and when they can be trusted (pure rules).

Between a post read and its entry order the bot used to ask the exchange for the contract, the price, the
account, the positions and then set the margin mode and the leverage: six round trips before the one that
matters. Those facts are known before the post arrives: the PriceFeed's ticks carry prices, the PositionGuard's
polls carry the account and the positions, the client caches the contract list, and a symbol's margin mode and
leverage stay what the bot last set until someone changes them. A :class:`FactStore` holds each with the time it
was observed; the rules below say when one may be used instead of asking again:

- a fact is used only while its age is known and within its bound (``risk.max_fact_age_seconds``, prices
  ``risk.max_price_age_seconds``); a fact stamped in the future (the clock stepped back) is not trusted;
- the account and the positions must also have been observed after the bot's own latest entry order: that order
  changed both, so a view from before it is stale whatever its age;
- margin mode and leverage are set only when the known setting differs from what the signal needs, is unknown,
  or is older than ``risk.settings_recheck_seconds`` (reconciliation reads it again before then).

Whatever is not usable is fetched again: safety over speed.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, Literal, TypeVar

T = TypeVar("T")
FactName = Literal["contract", "price", "account", "positions", "settings"]


@dataclass(frozen=True)
class Fact(Generic[T]):
    value: T
    observed_at: float  # wall clock (time.time()) when the exchange's answer arrived
    source: str  # who observed it: "price_feed", "guard", "fetched", "set", "reconcile", "contracts"


def fact_age(observed_at: float, now: float) -> float | None:
    """Seconds since the fact was observed; None when it claims to come from the future (untrusted)."""
    age = now - observed_at
    return None if age < 0 else age


def usable(fact: Fact[T] | None, now: float, max_age_s: float, *, not_before: float | None = None) -> bool:
    """A fact may be decided on: it exists, its age is known and within ``max_age_s``, and (``not_before``) it
    was observed after the event that made older observations stale (the bot's own latest entry)."""
    if fact is None:
        return False
    age = fact_age(fact.observed_at, now)
    if age is None or age > max_age_s:
        return False
    return not_before is None or fact.observed_at > not_before


@dataclass(frozen=True)
class UsedFact:
    """What a decision used: which fact, where it came from and how old it was (journaled with the decision)."""

    name: str
    source: str
    age_s: float

    def as_event(self) -> dict[str, object]:
        return {"source": self.source, "age_s": round(self.age_s, 3)}


def used(name: str, fact: Fact[T], now: float) -> UsedFact:
    return UsedFact(name, fact.source, fact_age(fact.observed_at, now) or 0.0)


# --- margin mode and leverage ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SymbolSettings:
    """A symbol's margin mode and leverage on the exchange (a leverage None: not known)."""

    margin_mode: str
    long_leverage: int | None
    short_leverage: int | None

    def leverage_for(self, hold_side: str | None) -> int | None:
        """The leverage an entry on ``hold_side`` gets (None: both sides, known only when they agree)."""
        if hold_side == "long":
            return self.long_leverage
        if hold_side == "short":
            return self.short_leverage
        return self.long_leverage if self.long_leverage == self.short_leverage else None


@dataclass(frozen=True)
class SettingsPlan:
    set_margin_mode: bool
    set_leverage: bool
    reason: str

    @property
    def nothing_to_do(self) -> bool:
        return not (self.set_margin_mode or self.set_leverage)


def settings_plan(
    known: Fact[SymbolSettings] | None,
    *,
    margin_mode: str,
    leverage: int,
    hold_side: str | None,
    now: float,
    max_age_s: float,
) -> SettingsPlan:
    """Which of set-margin-mode / set-leverage an entry needs first, given what is known of the symbol.

    Unknown, too old or from the future: both are set (the safe default, as before the cache existed). A margin
    mode that differs: both (a mode switch may carry another leverage). Only the leverage differs: the leverage.
    """
    if not usable(known, now, max_age_s):
        return SettingsPlan(True, True, "settings unknown or too old")
    assert known is not None
    settings = known.value
    if settings.margin_mode != margin_mode:
        return SettingsPlan(True, True, f"margin mode is {settings.margin_mode}, the entry needs {margin_mode}")
    have = settings.leverage_for(hold_side)
    if have != leverage:
        return SettingsPlan(False, True, f"leverage is {have or 'unknown'}, the entry needs {leverage}")
    return SettingsPlan(False, False, f"{margin_mode} {leverage}x already set")


def settings_after_set(
    before: SymbolSettings | None, *, margin_mode: str, leverage: int, hold_side: str | None
) -> SymbolSettings:
    """What the symbol's settings are once the bot set ``margin_mode`` and ``leverage`` for ``hold_side``."""
    keep = before if before is not None and before.margin_mode == margin_mode else None
    long_lev = leverage if hold_side in (None, "long") else (keep.long_leverage if keep else None)
    short_lev = leverage if hold_side in (None, "short") else (keep.short_leverage if keep else None)
    return SymbolSettings(margin_mode, long_lev, short_lev)


def settings_from_exchange(
    margin_mode: str | None, long_leverage: Decimal | None, short_leverage: Decimal | None,
    crossed_leverage: Decimal | None = None,
) -> SymbolSettings | None:
    """Settings as the single-account endpoint reports them; None when the margin mode is not reported."""
    if margin_mode not in ("isolated", "crossed"):
        return None

    def whole(value: Decimal | None) -> int | None:
        return int(value) if value is not None and value == value.to_integral_value() and value >= 1 else None

    if margin_mode == "crossed":
        cross = whole(crossed_leverage) if crossed_leverage is not None else whole(long_leverage)
        return SymbolSettings(margin_mode, cross, cross)
    return SymbolSettings(margin_mode, whole(long_leverage), whole(short_leverage))


def settings_to_recheck(
    known: Mapping[str, Fact[SymbolSettings]], now: float, recheck_after_s: float, limit: int = 1,
) -> list[str]:
    """Symbols whose known settings reconciliation should read again (the oldest first, at most ``limit``)."""
    due = [(fact.observed_at, symbol) for symbol, fact in known.items()
           if (age := fact_age(fact.observed_at, now)) is None or age >= recheck_after_s]
    return [symbol for _, symbol in sorted(due)[:limit]]


# --- the store ---------------------------------------------------------------------------------------------------
A = TypeVar("A")
P = TypeVar("P")


class FactStore(Generic[A, P]):
    """The latest observation of each fact, shared by the actors that observe them and the RiskGate and
    OrderManager that decide on them. Thread-safe; holds values and their times, decides nothing.

    ``A`` is the account's type, ``P`` a position's (the exchange client's models)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._account: Fact[A] | None = None
        self._positions: Fact[tuple[P, ...]] | None = None
        self._prices: dict[str, Fact[Decimal]] = {}
        self._settings: dict[str, Fact[SymbolSettings]] = {}

    # observations ------------------------------------------------------------------------------------------
    def put_account(self, account: A, observed_at: float, source: str) -> None:
        with self._lock:
            if self._account is None or observed_at >= self._account.observed_at:
                self._account = Fact(account, observed_at, source)

    def put_positions(self, positions: tuple[P, ...], observed_at: float, source: str) -> None:
        with self._lock:
            if self._positions is None or observed_at >= self._positions.observed_at:
                self._positions = Fact(tuple(positions), observed_at, source)

    def put_price(self, symbol: str, price: Decimal, observed_at: float, source: str) -> None:
        if price <= 0:
            return  # never a price to decide on
        with self._lock:
            known = self._prices.get(symbol)
            if known is None or observed_at >= known.observed_at:
                self._prices[symbol] = Fact(price, observed_at, source)

    def put_settings(self, symbol: str, settings: SymbolSettings, observed_at: float, source: str) -> None:
        with self._lock:
            self._settings[symbol] = Fact(settings, observed_at, source)

    def forget_settings(self, symbol: str) -> None:
        """The symbol's settings can no longer be trusted (a refused set, an order refused on them)."""
        with self._lock:
            self._settings.pop(symbol, None)

    # reads -------------------------------------------------------------------------------------------------
    def account(self) -> Fact[A] | None:
        with self._lock:
            return self._account

    def positions(self) -> Fact[tuple[P, ...]] | None:
        with self._lock:
            return self._positions

    def price(self, symbol: str) -> Fact[Decimal] | None:
        with self._lock:
            return self._prices.get(symbol)

    def settings(self, symbol: str) -> Fact[SymbolSettings] | None:
        with self._lock:
            return self._settings.get(symbol)

    def all_settings(self) -> dict[str, Fact[SymbolSettings]]:
        with self._lock:
            return dict(self._settings)
