"""Margin mode and leverage set ahead of signals, on the symbols the bot expects signals for (issue 14).

The first entry on a coin used to set the symbol's margin mode and leverage on its critical path (two round trips
before the order). Those settings do not depend on the signal's prices: they can be in place before the post
arrives. A symbol is *watched* when the bot has reason to expect a signal on it:

- it is listed in ``risk.prepare_settings_symbols``;
- a signal or an update of the channel named it (a refused one too; not chatter) within
  ``risk.prepare_settings_recent_days``, or since the bot started (so the second signal on a coin never pays);
- the account holds a position on it.

The leverage prepared is what the RiskGate would choose for a signal on the symbol asking what the bot's latest
approved entry asked (on that symbol, else on any; ``risk.max_leverage`` when the journal has none), through the
same rule (:func:`trading.risk.choose_leverage`); the margin mode is the configured one. A signal asking another
leverage still sets it on its path (trading/entry_sender.py): preparing is a guess, never a promise.

Gently, off the critical path: each reconciliation pass prepares at most one symbol (a read of its settings when
they are unknown, then set-margin-mode / set-leverage only where they differ), never the same symbol twice within
``settings_recheck_seconds`` (unless the settings were forgotten since: an entry refused on them), never one with
an open position or a working entry (the RiskGate refuses a new entry there anyway, and a changed leverage would
change the live position's margin). Each change is journaled (``SETTINGS_PREPARED``). ``risk.prepare_settings:
false`` turns it off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol

from exchange.bitget.contracts import Contract
from exchange.bitget.errors import BitgetError, PositionModeError, RateLimited
from exchange.bitget.models import Account, MarginMode, Position, PosMode
from trading.facts import (
    Fact,
    FactStore,
    SymbolSettings,
    fact_age,
    settings_after_set,
    settings_from_exchange,
    settings_plan,
    usable,
)
from trading.journal import Journal, OrderState, SignalRow
from trading.risk import RiskLimits, choose_leverage

log = logging.getLogger("following.orders")

HoldSide = Literal["long", "short"]
_SIGNAL_KINDS = frozenset({"entry", "update", "close", "cancel"})  # a signal or an update of one; not chatter
_APPROVED = frozenset({"approved", "traded"})  # an entry the RiskGate approved (sent or being sent)
_IN_FLIGHT = ("parsed", "approved")  # read, not yet decided or sent: not prepared meanwhile (the entry sets its own)
_RATE_LIMIT_PAUSE_S = 5.0  # after a rate-limit answer, no preparation for at least this long
_RESCAN_OVERLAP_S = 60.0  # the journal is read again this far back (a decision may change after the first read)
_WORKING = [OrderState.INTENT, OrderState.SUBMITTED, OrderState.ACCEPTED, OrderState.PARTIAL]


# --- the rules (pure) ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeenReading:
    """One journaled reading naming a symbol, as the watch rules see it."""

    signal_id: int
    symbol: str
    created_at: float
    approved_entry: bool  # an entry the RiskGate approved
    requested_leverage: int | None  # what the signal asked (None: it named none)


def seen_reading(row: SignalRow) -> SeenReading | None:
    """A journal row as a :class:`SeenReading`; None when it names no symbol or is chatter (kind noise)."""
    if not row.symbol or row.parsed.get("kind") not in _SIGNAL_KINDS:
        return None
    requested = row.parsed.get("leverage")
    return SeenReading(
        signal_id=row.id, symbol=row.symbol, created_at=row.created_at,
        approved_entry=row.parsed.get("kind") == "entry" and row.decision in _APPROVED,
        requested_leverage=requested if isinstance(requested, int) and not isinstance(requested, bool) else None,
    )


def watched_symbols(recent: Iterable[SeenReading], configured: Sequence[str],
                    positions: Iterable[str]) -> tuple[str, ...]:
    """The symbols to prepare, each once: the most recently named first, then the configured ones, then those of
    open positions (their settings are read; they are set once the position is gone)."""
    ordered = [reading.symbol for reading in sorted(recent, key=lambda r: r.signal_id, reverse=True)]
    return tuple(dict.fromkeys([*ordered, *configured, *positions]))


@dataclass(frozen=True)
class LeverageGuess:
    """The leverage a next signal on a symbol will probably ask, and why."""

    requested: int | None  # None: the signal names none (the RiskGate then takes risk.default_leverage)
    basis: str


def guess_requested_leverage(recent: Iterable[SeenReading], symbol: str, max_leverage: int) -> LeverageGuess:
    """What the bot's latest approved entry asked: on ``symbol`` if there is one, else on any symbol; else
    ``max_leverage`` (what a signal asking more than the cap gets)."""
    approved = sorted((r for r in recent if r.approved_entry), key=lambda r: r.signal_id, reverse=True)
    for reading in approved:
        if reading.symbol == symbol:
            return LeverageGuess(reading.requested_leverage, f"latest approved entry on {symbol}")
    if approved:
        return LeverageGuess(approved[0].requested_leverage, f"latest approved entry ({approved[0].symbol})")
    return LeverageGuess(max_leverage, "no approved entry yet: risk.max_leverage")


def predicted_leverage(guess: LeverageGuess, limits: RiskLimits, contract: Contract) -> int | None:
    """The leverage the RiskGate would give a signal asking ``guess`` on ``contract`` (None: it would refuse it)."""
    return choose_leverage(guess.requested, limits, contract).leverage


@dataclass(frozen=True)
class SettingsSteps:
    """What to send to bring a symbol's settings to what an entry needs."""

    margin_mode: bool
    leverage_sides: tuple[HoldSide | None, ...]  # None: both sides in one request (one-way, or crossed margin)

    @property
    def nothing_to_do(self) -> bool:
        return not self.margin_mode and not self.leverage_sides


def settings_steps(known: Fact[SymbolSettings] | None, *, margin_mode: str, leverage: int, hedged: bool,
                   now: float, max_age_s: float) -> SettingsSteps:
    """Per side (hedge mode with isolated margin: each side has its own leverage, as EntrySender sets it), what
    :func:`trading.facts.settings_plan` says an entry would need first."""
    sides: tuple[HoldSide | None, ...] = ("long", "short") if hedged else (None,)
    plans = [settings_plan(known, margin_mode=margin_mode, leverage=leverage, hold_side=side, now=now,
                           max_age_s=max_age_s) for side in sides]
    return SettingsSteps(any(plan.set_margin_mode for plan in plans),
                         tuple(side for side, plan in zip(sides, plans, strict=True) if plan.set_leverage))


@dataclass(frozen=True)
class Touch:
    """When the preparer last acted on a symbol, and whether that went through."""

    at: float
    ok: bool  # False: unreadable, refused or locked: left alone for the whole interval


def due(touch: Touch | None, known: Fact[SymbolSettings] | None, now: float, interval_s: float) -> bool:
    """The symbol may be acted on: never touched, touched an interval ago (or at an unknown time), or touched
    successfully and its settings forgotten since (an entry refused on them)."""
    if touch is None:
        return True
    age = fact_age(touch.at, now)
    if age is None or age >= interval_s:
        return True
    return touch.ok and known is None


@dataclass(frozen=True)
class Preparation:
    symbol: str
    leverage: int
    read_first: bool  # the settings are unknown: read them, then set only what differs


def next_preparation(watched: Sequence[str], *, known: Mapping[str, Fact[SymbolSettings]],
                     touches: Mapping[str, Touch], busy: Collection[str], leverage_for: Mapping[str, int],
                     margin_mode: str, hedged: bool, now: float, interval_s: float) -> Preparation | None:
    """The first watched symbol with something to do: settings unknown (read), or known and different from what an
    entry would need while nothing is open on it (set). ``leverage_for`` holds the symbols that can be prepared
    (listed contract, a leverage the RiskGate would accept)."""
    for symbol in watched:
        leverage = leverage_for.get(symbol)
        fact = known.get(symbol)
        if leverage is None or not due(touches.get(symbol), fact, now, interval_s):
            continue
        if not usable(fact, now, interval_s):
            return Preparation(symbol, leverage, read_first=True)
        if symbol in busy:
            continue
        steps = settings_steps(fact, margin_mode=margin_mode, leverage=leverage, hedged=hedged, now=now,
                               max_age_s=interval_s)
        if not steps.nothing_to_do:
            return Preparation(symbol, leverage, read_first=False)
    return None


# --- the preparer (imperative shell over the OrderManager's fenced client) ----------------------------------
class PrepareExchange(Protocol):
    def account(self, symbol: str | None = None) -> Account: ...

    def cached_contract(self, symbol: str) -> Contract | None: ...

    def set_leverage(self, symbol: str, leverage: int | Decimal, hold_side: str | None = None) -> dict[str, Any]: ...

    def set_margin_mode(self, symbol: str, mode: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class PrepareSettings:
    """``risk.prepare_settings*`` and what the preparer needs to predict and set like an entry would."""

    enabled: bool
    symbols: tuple[str, ...]
    recent_days: float
    interval_s: float  # risk.settings_recheck_seconds
    margin_mode: MarginMode
    pos_mode: PosMode
    limits: RiskLimits
    channel: str | None  # the journal's channel name of the followed channel (None: every channel)


class SettingsPreparer:
    """Prepares at most one watched symbol per call (:meth:`prepare_one`, once per reconciliation pass)."""

    def __init__(self, *, journal: Journal, client: PrepareExchange, facts: FactStore[Account, Position],
                 settings: PrepareSettings, entries_allowed: Callable[[], bool],
                 clock: Callable[[], float] = time.time) -> None:
        self._journal = journal
        self._client = client
        self._facts = facts
        self._settings = settings
        self._entries_allowed = entries_allowed
        self._clock = clock
        self._started_at = clock()
        self._seen: dict[int, SeenReading] = {}
        self._scanned_to: float | None = None
        self._touches: dict[str, Touch] = {}
        self._paused_until = 0.0
        self._hedged = settings.pos_mode == "hedge_mode" and settings.margin_mode == "isolated"

    # --- what is watched ------------------------------------------------------------------------------
    def _recent(self, now: float) -> list[SeenReading]:
        """The readings within the window, the journal read again only from a minute before the last read."""
        days = self._settings.recent_days
        horizon = now - days * 86_400 if days > 0 else self._started_at
        since = horizon if self._scanned_to is None else max(horizon, self._scanned_to - _RESCAN_OVERLAP_S)
        for row in self._journal.signals(channel=self._settings.channel, since=since):
            reading = seen_reading(row)
            if reading is not None:
                self._seen[reading.signal_id] = reading
        self._scanned_to = now
        for signal_id in [sid for sid, reading in self._seen.items() if reading.created_at < horizon]:
            del self._seen[signal_id]
        return list(self._seen.values())

    def _busy(self, positions: Fact[tuple[Position, ...]] | None) -> set[str] | None:
        """Symbols with an open position, a working entry, an open signal or a reading still being decided or sent
        (its entry sets what it needs itself) (None: positions never observed)."""
        if positions is None:
            return None
        busy = {p.symbol for p in positions.value if p.total > 0}
        busy |= {row.symbol for row in self._journal.orders(states=_WORKING) if row.leg.startswith("entry")}
        rows = [*self._journal.open_signals(), *(row for decision in _IN_FLIGHT
                                                for row in self._journal.signals_with_decision(decision))]
        busy |= {row.symbol for row in rows if row.symbol}
        return busy

    def watched(self) -> tuple[str, ...]:
        """The watched symbols now (for status and tests)."""
        positions = self._facts.positions()
        return watched_symbols(self._recent(self._clock()), self._settings.symbols,
                               [p.symbol for p in positions.value if p.total > 0] if positions else [])

    # --- one step -------------------------------------------------------------------------------------
    def prepare_one(self) -> None:
        """Prepare at most one symbol. Exchange failures are logged and backed off, never raised."""
        settings = self._settings
        now = self._clock()
        if not settings.enabled or now < self._paused_until or not self._entries_allowed():
            return
        recent = self._recent(now)
        positions = self._facts.positions()
        busy = self._busy(positions)
        watched = watched_symbols(recent, settings.symbols,
                                  [p.symbol for p in positions.value if p.total > 0] if positions else [])
        leverage_for: dict[str, int] = {}
        guesses: dict[str, LeverageGuess] = {}
        for symbol in watched:
            contract = self._client.cached_contract(symbol)
            if contract is None or contract.status != "normal":
                continue  # not a tradable contract (or the list not read yet): skipped
            guess = guess_requested_leverage(recent, symbol, settings.limits.max_leverage)
            leverage = predicted_leverage(guess, settings.limits, contract)
            if leverage is not None:
                leverage_for[symbol], guesses[symbol] = leverage, guess
        prep = next_preparation(watched, known=self._facts.all_settings(), touches=self._touches,
                                busy=busy if busy is not None else set(watched), leverage_for=leverage_for,
                                margin_mode=settings.margin_mode, hedged=self._hedged, now=now,
                                interval_s=settings.interval_s)
        if prep is None:
            return
        try:
            self._prepare(prep, guesses[prep.symbol], busy)
        except RateLimited as exc:
            # Nothing more this pass, nor for a few seconds: the entries' own requests come first. The symbol is
            # tried again after the pause (it was refused unprocessed, not found wanting).
            self._touches.pop(prep.symbol, None)
            self._paused_until = self._clock() + max(exc.retry_after or 0.0, _RATE_LIMIT_PAUSE_S)
            log.info("settings ahead of %s: rate limited; paused", prep.symbol)

    def _prepare(self, prep: Preparation, guess: LeverageGuess, busy: set[str] | None) -> None:
        symbol, settings = prep.symbol, self._settings
        known = self._facts.settings(symbol)
        if prep.read_first:
            known = self._read(symbol)  # kept fresh from now on by reconciliation's recheck: read once
            if known is None:
                return
        if busy is None or symbol in busy:
            return  # read only: a position or entry is open on it (or positions are not known yet)
        steps = settings_steps(known, margin_mode=settings.margin_mode, leverage=prep.leverage, hedged=self._hedged,
                               now=self._clock(), max_age_s=settings.interval_s)
        if steps.nothing_to_do:
            return
        self._touches[symbol] = Touch(self._clock(), True)
        self._set(symbol, prep.leverage, steps, known, guess)

    def _read(self, symbol: str) -> Fact[SymbolSettings] | None:
        sent = self._clock()
        try:
            account = self._client.account(symbol)
        except RateLimited:
            raise
        except BitgetError as exc:
            self._touches[symbol] = Touch(sent, False)
            log.info("settings ahead: %s settings unreadable (%s); left for %.0f s", symbol, exc.code,
                     self._settings.interval_s)
            return None
        read = settings_from_exchange(account.margin_mode, account.isolated_long_lever, account.isolated_short_lever,
                                      account.crossed_lever)
        if read is None:
            self._touches[symbol] = Touch(sent, False)
            log.info("settings ahead: %s margin mode not reported; left for %.0f s", symbol, self._settings.interval_s)
            return None
        self._facts.put_settings(symbol, read, sent, "read_ahead")
        return Fact(read, sent, "read_ahead")

    def _set(self, symbol: str, leverage: int, steps: SettingsSteps, known: Fact[SymbolSettings] | None,
             guess: LeverageGuess) -> None:
        mode = self._settings.margin_mode
        before = known.value if known is not None else None
        sent: list[str] = []
        self._facts.forget_settings(symbol)  # whatever happens below, the old knowledge is not trusted
        error: BitgetError | None = None
        try:
            if steps.margin_mode:
                self._client.set_margin_mode(symbol, mode)
                sent.append(f"set-margin-mode {mode}")
            for side in steps.leverage_sides:
                self._client.set_leverage(symbol, leverage, hold_side=side)
                sent.append(f"set-leverage {leverage}" + (f" {side}" if side else ""))
        except BitgetError as exc:
            error = exc
        if error is None:
            after = before if before is not None and not steps.margin_mode else None
            for side in steps.leverage_sides:
                after = settings_after_set(after, margin_mode=mode, leverage=leverage, hold_side=side)
            if after is not None:
                self._facts.put_settings(symbol, after, self._clock(), "prepared")
            log.info("settings ahead: %s %s margin, leverage %dx set before any signal (%s)", symbol, mode, leverage,
                     guess.basis)
        else:
            self._touches[symbol] = Touch(self._clock(), False)
            if known is not None and not sent and isinstance(error, (PositionModeError, RateLimited)):
                # refused unprocessed: nothing changed, what was read still holds
                self._facts.put_settings(symbol, known.value, known.observed_at, known.source)
            if isinstance(error, PositionModeError):
                log.info("settings ahead: %s: %s refused (%s: an open position or order in another mode?); "
                         "not forced, left for %.0f s", symbol, mode, error.code, self._settings.interval_s)
            else:
                log.info("settings ahead: %s not set (%s); left for %.0f s", symbol, error.code,
                         self._settings.interval_s)
        if sent:
            self._journal.record_event("SETTINGS_PREPARED", {
                "symbol": symbol, "margin_mode": mode, "leverage": leverage, "sent": sent, "basis": guess.basis,
                "before": None if before is None else {"margin_mode": before.margin_mode,
                                                       "long_leverage": before.long_leverage,
                                                       "short_leverage": before.short_leverage},
                **({"error": error.code} if error is not None else {}),
            })
        if isinstance(error, RateLimited):
            raise error
