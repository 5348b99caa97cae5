"""RiskGate: decides whether a reading may trade, and how big.

The rules live in :mod:`trading.risk` (pure); this actor gathers the facts they need (account, price,
contract, open positions, mode), journals the decision with its reason, and passes an approved bundle on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from actors.base import SupervisedActor, TradingGate
from actors.messages import ExecuteExit, PlaceBundle, SignalParsed, Tick, WatchSymbol
from actors.ports import ExchangeFacts, Notices, Recipient, RiskGateExchange
from exchange.bitget.errors import BitgetError, ExchangeUnavailable, RateLimited, UnknownSymbol
from exchange.bitget.models import PosMode
from ops.metrics import Metrics
from parsing.signals import Action, Kind, ParsedMessage, UpdateType
from runtime.config import Config
from trading.bundle import plan_bundle
from trading.exits import UNDECIDED, exit_kind
from trading.facts import Fact, FactStore, UsedFact, usable, used
from trading.intents import ExitIntent, entry_intent
from trading.journal import Journal, OrderState, SignalRow
from trading.kill_switch import stricter
from trading.linking import OpenSignal, UpdateLink, UpdateToLink
from trading.linking import link_update as decide_link
from trading.modes import Mode
from trading.refusals import record_refusal
from trading.risk import (
    AccountView,
    MarketView,
    RefusalReason,
    RiskContext,
    RiskLimits,
    evaluate_entry,
)
from trading.signal_age import SIGNAL_TOO_OLD, entry_age_verdict, signal_age_s

log = logging.getLogger("following.risk")
_NOT_SIGNALS = frozenset(kind.value for kind in Kind if kind is not Kind.ENTRY)
_UPDATE_KINDS = (Kind.UPDATE, Kind.CLOSE, Kind.CANCEL)
# An update replying to a post still being read (a picture on the vision model) waits this often, this long apart.
_READ_WAITS = 120
_READ_WAIT_S = 1.0
_CONTRACTS_TICK = "contracts"


def link_update(journal: Journal, signal: SignalParsed) -> UpdateLink:
    """The open signal an update speaks of (rules in :mod:`trading.linking`), from the journal's facts."""
    commentary = False
    if signal.reply_to is not None:
        replied = journal.signal_for_post(signal.channel, signal.reply_to, 0)
        replied_post = journal.post(signal.channel, signal.reply_to)
        commentary = (replied is not None and replied_post is not None and not replied_post.image_urls
                      and replied.parsed.get("kind") in _NOT_SIGNALS)
    update = UpdateToLink(
        channel=signal.channel,
        reply_to=signal.reply_to,
        replied_is_commentary=commentary,
        signal_ref=signal.parsed.signal_ref,
        symbol=signal.parsed.symbol,
    )
    return decide_link(update, linkable_signals(journal))


def open_signals(journal: Journal) -> list[OpenSignal]:
    """The journal's traded, not yet closed signals, as the linking rules see them."""
    return [OpenSignal(row.id, row.channel, row.message_id, row.symbol, row.parsed.get("signal_ref"))
            for row in journal.open_signals() if row.symbol]


def linkable_signals(journal: Journal) -> list[OpenSignal]:
    """Open signals and entries still being decided or placed: an update read right after its signal waits for
    it (the OrderManager executes it after the entry) instead of finding "no open signal"."""
    undecided = [row for decision in UNDECIDED for row in journal.signals_with_decision(decision)
                 if row.parsed.get("kind") == Kind.ENTRY.value]
    return [OpenSignal(row.id, row.channel, row.message_id, row.symbol, row.parsed.get("signal_ref"))
            for row in sorted([*journal.open_signals(), *undecided], key=lambda r: r.id) if row.symbol]


def reply_still_being_read(journal: Journal, signal: SignalParsed) -> bool:
    """The update replies to a post the bot has seen but not read yet (e.g. a picture with the vision model)."""
    if signal.reply_to is None:
        return False
    return (journal.post(signal.channel, signal.reply_to) is not None
            and journal.signal_for_post(signal.channel, signal.reply_to, 0) is None)


def _decimal(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def reading_from_row(journal: Journal, row: SignalRow) -> SignalParsed:
    """An update's reading as the Parser sent it, rebuilt from the journal (after a restart)."""
    data = row.parsed
    update_type = data.get("update_type")
    parsed = ParsedMessage(
        kind=Kind(data.get("kind", Kind.UPDATE.value)), action=Action(data.get("action", Action.TRADE.value)),
        symbol=data.get("symbol"), update_type=UpdateType(update_type) if update_type else None,
        update_price=_decimal(data.get("update_price")), update_percent=_decimal(data.get("update_percent")),
        tp_index=data.get("tp_index"), signal_ref=data.get("signal_ref"),
    )
    post = journal.post(row.channel, row.message_id)
    return SignalParsed(row.id, row.channel, row.message_id, post.reply_to if post else None, parsed, index=row.index,
                        posted_at=post.date if post else None)


@dataclass(frozen=True)
class RiskGateSettings:
    """How the RiskGate plans entries and how old a signal or a known fact may be when it decides."""

    pos_mode: PosMode
    zone_split: int = 1
    busy_retries: int = 3
    busy_retry_delay_s: float = 1.0
    max_signal_age_s: float = 60.0
    max_fact_age_s: float = 6.0
    max_price_age_s: float = 3.0
    contracts_refresh_s: float = 1800.0

    @classmethod
    def from_config(cls, config: Config) -> RiskGateSettings:
        risk = config.risk
        return cls(pos_mode=config.bitget.position_mode, zone_split=risk.entry_zone_split,
                   max_signal_age_s=risk.max_signal_age_seconds, max_fact_age_s=risk.max_fact_age_seconds,
                   max_price_age_s=risk.max_price_age_seconds)


class RiskGate(SupervisedActor):
    def __init__(
        self,
        *,
        name: str,
        supervisor: Recipient | None,
        mode: Mode = Mode.NORMAL,
        journal: Journal,
        client: RiskGateExchange,
        order_manager: Recipient,
        price_feed: Recipient,
        notifier: Notices,
        metrics: Metrics,
        limits: RiskLimits,
        settings: RiskGateSettings,
        gate: TradingGate | None = None,
        facts: ExchangeFacts | None = None,
    ) -> None:
        super().__init__(name, supervisor, mode=mode)
        self._journal = journal
        self._client = client
        self._order_manager = order_manager
        self._price_feed = price_feed
        self._notifier = notifier
        self._metrics = metrics
        self._limits = limits
        self._pos_mode = settings.pos_mode
        self._zone_split = settings.zone_split
        self._gate = gate
        # A rate-limited or briefly unavailable exchange is asked again a little later before an entry is refused
        # (each refusal loses the signal for good). The slippage check still judges the price at that moment.
        self._busy_retries = settings.busy_retries
        self._busy_retry_delay_s = settings.busy_retry_delay_s
        self._busy_attempts: dict[int, int] = {}
        self._max_signal_age_s = settings.max_signal_age_s
        self._read_waits: dict[int, int] = {}
        # Facts observed off the critical path (prices by the PriceFeed, account and positions by the guard's
        # polls): decided on while fresh (trading.facts), fetched again otherwise.
        self._facts: ExchangeFacts = facts if facts is not None else FactStore()
        self._max_fact_age_s = settings.max_fact_age_s
        self._max_price_age_s = settings.max_price_age_s
        self._contracts_refresh_s = settings.contracts_refresh_s
        self._used: list[UsedFact] = []
        # Signals handed on before this instance existed can only have died in a former instance's mailbox.
        self._created_at = time.time()

    def on_started(self) -> None:
        # The contract list is read now and refreshed periodically, so no decision waits for it.
        self.schedule_every(self._contracts_refresh_s, Tick(_CONTRACTS_TICK))
        self.schedule_once(0, Tick(_CONTRACTS_TICK))
        # A signal the Parser handed on but no RiskGate decided (the process or this actor died with it in the
        # mailbox) is refused and the user told: deciding it now, maybe much later, could trade a stale signal.
        for row in self._journal.signals_with_decision("parsed"):
            if row.updated_at >= self._created_at:
                continue
            if row.parsed.get("kind") in {kind.value for kind in _UPDATE_KINDS}:
                # An exit has no age: a close posted or left undecided meanwhile is decided and executed now.
                self._update(reading_from_row(self._journal, row))
                continue
            self._refuse_row(row.id, row.message_id, row.symbol, "INTERRUPTED",
                             "the bot stopped before deciding this signal; not traded")

    def handle(self, message: Any) -> Any:
        if isinstance(message, Tick) and message.what == _CONTRACTS_TICK:
            self._refresh_contracts()
            return None
        if isinstance(message, SignalParsed):
            current = self._journal.signal(message.signal_id)
            if current is not None and current.decision != "parsed":
                # Already decided (e.g. refused as interrupted when this actor started): never decide twice.
                log.info("signal %s already %s; not decided again", message.signal_id, current.decision)
                return None
            if message.parsed.kind is Kind.ENTRY:
                self._entry(message)
            elif message.parsed.kind in _UPDATE_KINDS:
                self._update(message)
        return None

    # --- entries ---------------------------------------------------------------------------------
    def _entry(self, signal: SignalParsed, *, refetch: bool = False) -> None:
        parsed = signal.parsed
        try:
            facts = self._gather(parsed.symbol or "", refetch=refetch)
        except (RateLimited, ExchangeUnavailable) as exc:
            attempts = self._busy_attempts.get(signal.signal_id, 0) + 1
            if attempts <= self._busy_retries:
                self._busy_attempts[signal.signal_id] = attempts
                log.info("signal %s: exchange busy (%s); asking again in %.1fs", signal.signal_id, exc.code,
                         self._busy_retry_delay_s)
                self.schedule_once(self._busy_retry_delay_s, signal)
                return
            self._busy_attempts.pop(signal.signal_id, None)
            self._refuse(signal, "EXCHANGE_UNAVAILABLE", f"cannot read account or market: {exc.code}")
            return
        except BitgetError as exc:
            self._refuse(signal, "EXCHANGE_UNAVAILABLE", f"cannot read account or market: {exc.code}")
            return
        self._busy_attempts.pop(signal.signal_id, None)
        if facts is None:
            self._refuse(signal, RefusalReason.SYMBOL_UNKNOWN.value,
                         f"{parsed.symbol} is not a Bitget USDT-M contract")
            return
        account, market = facts
        if self._too_old(signal, market.price):
            return
        mode = self.mode
        if self._gate is not None and not self._gate.entries_allowed():
            mode = stricter(mode, self._gate.mode) or mode
        ctx = RiskContext(mode=mode, now=time.time(), last_entry_at=self._journal.last_entry_times())
        decision = evaluate_entry(parsed, self._limits, account, market, ctx)
        if (not decision.approved or decision.plan is None) and not refetch and self._used_known_facts():
            # Known facts may approve; a refusal on them is decided again on facts read now (a position closed or
            # margin freed since the last poll must not cost the signal).
            self._entry(signal, refetch=True)
            return
        if not decision.approved or decision.plan is None or market.contract is None:  # approval implies a contract
            reason = decision.reason.value if decision.reason is not None else "REFUSED"
            self._refuse(signal, reason, decision.detail)
            return
        bundle = plan_bundle(
            decision.plan,
            channel=signal.channel,
            message_id=signal.message_id,
            signal_index=signal.index,
            pos_mode=self._pos_mode,
            zone_split=self._zone_split,
            contract=market.contract,
        )
        intent = entry_intent(signal.signal_id, bundle, decision.plan, channel=signal.channel,
                              message_id=signal.message_id, signal_index=signal.index)
        if not self._journal.approve_entry(intent, decision.detail):
            # Decided meanwhile by another instance (refused as interrupted): never approved after that.
            log.info("signal %s was decided meanwhile; not approved", signal.signal_id)
            return
        if decision.plan.default_stop:
            self._journal.record_event(
                "DEFAULT_STOP_LOSS_USED",
                {"signal_id": signal.signal_id, "message_id": signal.message_id, "symbol": decision.plan.symbol,
                 "stop_loss": str(decision.plan.stop_loss), "pct": str(self._limits.default_stop_loss_pct)},
            )
        self._metrics.signal("approved")
        log.info(
            "approved %s %s size %s stop %s (risk %s USDT)",
            decision.plan.symbol, decision.plan.side.value, decision.plan.size,
            decision.plan.stop_loss, decision.plan.risk_usdt,
        )
        self._order_manager.tell(PlaceBundle(intent))
        self._price_feed.tell(WatchSymbol(decision.plan.symbol))
        # Which facts the approval used and how old they were (after the bundle is on its way: not on its path).
        self._journal.record_event("DECISION_FACTS", {
            "signal_id": signal.signal_id, "symbol": decision.plan.symbol,
            "facts": {fact.name: fact.as_event() for fact in self._used},
        })

    def _too_old(self, signal: SignalParsed, live: Decimal) -> bool:
        """An entry older than max_signal_age_seconds that would fill at once is notify_only, with its age."""
        parsed = signal.parsed
        row = self._journal.signal(signal.signal_id)
        age = signal_age_s(signal.posted_at, time.time(), seen_at=row.created_at if row is not None else None)
        verdict = entry_age_verdict(
            age_s=age, max_age_s=self._max_signal_age_s, market_entry=parsed.market_entry or not parsed.entries,
            is_long=parsed.side is not None and parsed.side.value == "long", entries=parsed.entries, live=live,
        )
        if not verdict.too_old:
            return False
        why = f"{SIGNAL_TOO_OLD}: {verdict.detail}"
        self._journal.set_signal_decision(signal.signal_id, "notify_only", why)
        record_refusal(self._journal, self._metrics, signal_id=signal.signal_id, message_id=signal.message_id,
                       reason=SIGNAL_TOO_OLD, detail=verdict.detail, age_s=round(verdict.age_s or 0.0, 1))
        self._metrics.notify_only_signal()
        self._notifier.notify(
            "NOTIFY_ONLY", f"post {signal.message_id} {parsed.symbol or ''}: not traded, too old ({verdict.detail})"
        )
        return True

    def _gather(self, symbol: str, *, refetch: bool = False) -> tuple[AccountView, MarketView] | None:
        """The facts of a decision: the known ones while fresh (trading.facts), the rest fetched now (all of them
        with ``refetch``)."""
        self._used = []
        try:
            contract = self._client.contract(symbol)  # the client's list, refreshed off the critical path
        except UnknownSymbol:
            return None
        age = self._client.contracts_age() if hasattr(self._client, "contracts_age") else None
        self._used.append(UsedFact("contract", "contracts", age if age is not None else 0.0))
        now = time.time()
        known_price = None if refetch else self._facts.price(symbol)
        if usable(known_price, now, self._max_price_age_s) and known_price is not None:
            price = known_price
        else:
            sent = time.time()
            ticker = self._client.ticker(symbol)
            price = Fact(ticker.mark or ticker.last, sent, "fetched")
            self._facts.put_price(symbol, price.value, sent, "fetched")
        # The bot's own entries change the account and the positions: a view asked for before the latest change of
        # one (journaled, accepted, filled) is stale, whatever its age. (A close or stop since only makes the view
        # too cautious: a refusal on it is decided again on facts read now.)
        last_order = None if refetch else self._journal.last_entry_change()
        known_account = None if refetch else self._facts.account()
        if usable(known_account, now, self._max_fact_age_s, not_before=last_order) and known_account is not None:
            account = known_account
        else:
            sent = time.time()
            account = Fact(self._client.account(), sent, "fetched")
            self._facts.put_account(account.value, sent, "fetched")
        known_positions = None if refetch else self._facts.positions()
        if usable(known_positions, now, self._max_fact_age_s, not_before=last_order) and known_positions is not None:
            positions = known_positions
        else:
            sent = time.time()
            positions = Fact(tuple(self._client.positions()), sent, "fetched")
            self._facts.put_positions(positions.value, sent, "fetched")
        now = time.time()
        self._used += [used("price", price, now), used("account", account, now), used("positions", positions, now)]
        peak = self._journal.get_flag("peak_equity")
        equity = account.value.equity
        account_view = AccountView(
            equity=equity,
            available=account.value.available,
            # A working entry counts as exposure: a second signal must not open beside an unfilled first.
            open_position_symbols=frozenset(p.symbol for p in positions.value if p.total > 0)
            | self._working_entries(),
            peak_equity=max(Decimal(peak), equity) if peak else equity,
        )
        return account_view, MarketView(price=price.value, contract=contract)

    def _used_known_facts(self) -> bool:
        return any(fact.source != "fetched" for fact in self._used if fact.name != "contract")

    def _refresh_contracts(self) -> None:
        if not hasattr(self._client, "contracts"):
            return
        try:
            self._client.contracts(refresh=True)
        except BitgetError as exc:  # the cached list stays; a missing symbol is looked up when a signal needs it
            log.info("contract list refresh failed: %s", exc.code)

    def _working_entries(self) -> frozenset[str]:
        working = (OrderState.INTENT, OrderState.SUBMITTED, OrderState.ACCEPTED, OrderState.PARTIAL)
        return frozenset(row.symbol for row in self._journal.orders(states=list(working))
                         if row.leg.startswith("entry"))

    def _refuse(self, signal: SignalParsed, reason: str, detail: str) -> None:
        self._refuse_row(signal.signal_id, signal.message_id, signal.parsed.symbol, reason, detail)

    def _refuse_row(self, signal_id: int, message_id: int, symbol: str | None, reason: str, detail: str) -> None:
        """The one way a signal is refused: journaled, counted (refusal and signal outcome), user told."""
        if not self._journal.transition_signal(signal_id, ["parsed"], "refused", f"{reason}: {detail}"):
            return  # decided meanwhile: reported once, by whoever decided it
        record_refusal(self._journal, self._metrics, signal_id=signal_id, message_id=message_id,
                       reason=reason, detail=detail)
        self._metrics.signal("refused")
        self._notifier.notify("SIGNAL_REFUSED", f"post {message_id} {symbol or ''}: {reason} ({detail})")

    # --- updates ---------------------------------------------------------------------------------
    def _update(self, signal: SignalParsed) -> None:
        being_read = reply_still_being_read(self._journal, signal)  # before linking: its reading may land between
        link = link_update(self._journal, signal)
        if link.signal is None and being_read:
            waits = self._read_waits.get(signal.signal_id, 0) + 1
            if waits <= _READ_WAITS:
                self._read_waits[signal.signal_id] = waits
                self.schedule_once(_READ_WAIT_S, signal)
                return
        self._read_waits.pop(signal.signal_id, None)
        if link.signal is None:
            why = f"update not linked to a signal: {link.reason}"
            self._journal.set_signal_decision(signal.signal_id, "notify_only", why)
            self._journal.record_event("NOTIFY_ONLY", {"message_id": signal.message_id, "why": why})
            self._metrics.notify_only_signal()
            self._notifier.notify("NOTIFY_ONLY", f"post {signal.message_id}: {why}")
            return
        linked = link.signal
        reason = f"update of signal {linked.signal_id}: {link.reason}"
        kind = exit_kind(signal.parsed)
        if kind is None:
            self._journal.set_signal_decision(signal.signal_id, "applied", f"{reason}; no order needed")
            return
        target = self._journal.signal(linked.signal_id)
        hold_side = target.parsed.get("side") if target is not None else None
        if hold_side not in ("long", "short"):
            why = f"signal {linked.signal_id} has no known side"
            self._journal.set_signal_decision(signal.signal_id, "notify_only", why)
            self._journal.record_event("NOTIFY_ONLY", {"message_id": signal.message_id, "why": why})
            self._notifier.notify("NOTIFY_ONLY", f"post {signal.message_id}: {why}")
            return
        intent = ExitIntent(
            update_signal_id=signal.signal_id, target_signal_id=linked.signal_id, channel=signal.channel,
            message_id=signal.message_id, index=signal.index, symbol=linked.symbol, hold_side=hold_side, kind=kind,
            percent=signal.parsed.update_percent if kind == "close_partial" else None,
            stop_price=signal.parsed.update_price if kind == "set_stop" else None,
        )
        # Journaled before the OrderManager hears of it: a crash from here on resumes it, never loses it.
        self._journal.record_exit_intent(intent, f"{reason}; {kind} pending")
        self._journal.record_event("EXIT_INTENT", {"key": intent.key, "kind": kind, "signal_id": signal.signal_id,
                                                   "target_signal_id": linked.signal_id, "symbol": linked.symbol})
        self._order_manager.tell(ExecuteExit(intent))
