"""Sending an approved entry: the symbol's margin mode and leverage set when they need to be, the signal marked
traded, its legs journaled and sent; and what is found right before sending (the mode, a refused setting, a
bundle that died with an earlier instance) refused and told.

Plain object, no actor: the OrderManager builds it with its fenced client and schedules the retry it returns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from exchange.bitget.errors import BitgetError, RateLimited
from exchange.bitget.models import Account, Position, PosMode
from trading.execution import margin_mode_in_place
from trading.facts import FactStore, settings_after_set, settings_from_exchange, settings_plan, settings_to_recheck
from trading.intents import EntryIntent, entry_payload
from trading.journal import Journal, OrderState
from trading.order_sender import OrderSender
from trading.ports import Notices
from trading.refusals import RefusalCounter, record_refusal

log = logging.getLogger("following.orders")

LEVERAGE_RETRIES = 3  # a signal whose leverage call was rate limited is tried again at most this often


class EntryExchange(Protocol):
    def account(self, symbol: str | None = None) -> Account: ...

    def set_leverage(self, symbol: str, leverage: int | Decimal, hold_side: str | None = None) -> dict[str, Any]: ...

    def set_margin_mode(self, symbol: str, mode: str) -> dict[str, Any]: ...


class PlaceBundle(Protocol):
    @property
    def intent(self) -> EntryIntent: ...

    @property
    def signal_id(self) -> int: ...


class EntrySender:
    def __init__(self, *, journal: Journal, client: EntryExchange, notifier: Notices, metrics: RefusalCounter,
                 facts: FactStore[Account, Position], sender: OrderSender, entries_allowed: Callable[[], bool],
                 fence_check: Callable[[], None], pos_mode: PosMode, preset_stop: bool, settings_recheck_s: float,
                 created_at: float) -> None:
        self._journal = journal
        self._client = client
        self._notifier = notifier
        self._metrics = metrics
        self._facts = facts
        self._sender = sender
        self._entries_allowed = entries_allowed
        self._fence_check = fence_check  # raises Superseded once this instance was replaced
        self._pos_mode = pos_mode
        self._preset_stop = preset_stop  # the stop rides on each entry (recorded with the entry)
        self._settings_recheck_s = settings_recheck_s
        # Signals approved before this instance existed can only have died in a former instance's mailbox.
        self._created_at = created_at
        self._leverage_tries: dict[int, int] = {}

    def refuse_interrupted(self) -> None:
        """Approved signals whose bundle died in a mailbox (no order journaled) are refused and reported, not sent
        late: the price and the account they were sized for are gone. So is a signal marked traded ("sending the
        entries") by an instance that died before it journaled the first leg: else it stayed an open trade
        that never was, and the user was never told."""
        for row in [*self._journal.signals_with_decision("approved"), *self._journal.open_signals()]:
            if row.updated_at >= self._created_at or self._journal.orders(signal_id=row.id):
                continue
            detail = "the bot stopped before sending this signal's orders; not traded"
            if not self._journal.transition_signal(row.id, [row.decision], "refused", f"INTERRUPTED: {detail}"):
                continue
            self._refused_before_send(row.id, "INTERRUPTED", detail)
            self._notifier.notify("SIGNAL_REFUSED", f"post {row.message_id} {row.symbol or ''}: INTERRUPTED ({detail})")

    def place(self, message: PlaceBundle) -> float | None:
        """Send one approved entry; the delay after which to send it again when its leverage call was rate
        limited (several signals within a second), else None."""
        intent = message.intent
        current = self._journal.signal(message.signal_id)
        if current is not None and current.decision != "approved":
            # Decided meanwhile (refused as interrupted when this actor started): never sent twice or late.
            log.info("signal %s is %s; its bundle is not sent", message.signal_id, current.decision)
            return None
        if not self._entries_allowed():
            if self._journal.transition_signal(message.signal_id, ["approved"], "refused",
                                               "MODE_NOT_NORMAL: checked before send"):
                self._refused_before_send(message.signal_id, "mode_not_normal", "checked before send")
                self._notifier.notify("SIGNAL_REFUSED", f"{intent.symbol}: not traded: trading is stopped "
                                                        "(safe or panic mode) before its entry was sent")
            return None
        symbol = intent.symbol
        hold = intent.side if self._pos_mode == "hedge_mode" and intent.margin_mode == "isolated" else None
        known = self._facts.settings(symbol)
        plan = settings_plan(known, margin_mode=intent.margin_mode, leverage=intent.leverage, hold_side=hold,
                             now=time.time(), max_age_s=self._settings_recheck_s)
        if not plan.nothing_to_do:
            self._facts.forget_settings(symbol)  # whatever happens below, the old knowledge is not trusted
        if plan.set_margin_mode:
            try:
                self._client.set_margin_mode(symbol, intent.margin_mode)
            except BitgetError as exc:
                if not self._margin_mode_already(message.signal_id, symbol, intent.margin_mode, exc):
                    return None
        if plan.set_leverage:
            try:
                self._client.set_leverage(symbol, intent.leverage, hold_side=hold)
            except BitgetError as exc:
                tries = self._leverage_tries.get(message.signal_id, 0) + 1
                if isinstance(exc, RateLimited) and tries <= LEVERAGE_RETRIES:
                    # Refused unprocessed (several signals within a second): the same bundle again in a moment.
                    self._leverage_tries[message.signal_id] = tries
                    return exc.retry_after or 0.5
                self._leverage_tries.pop(message.signal_id, None)
                if not self._journal.transition_signal(message.signal_id, ["approved"], "refused",
                                                       f"leverage not set: {exc.code}"):
                    return None
                self._refused_before_send(message.signal_id, "leverage_not_set",
                                          f"leverage {intent.leverage}: {exc.code}")
                self._notifier.notify("SIGNAL_REFUSED",
                                      f"{symbol}: leverage {intent.leverage} not accepted ({exc.code})")
                return None
        if not plan.nothing_to_do:
            before = known.value if known is not None and not plan.set_margin_mode else None
            self._facts.put_settings(symbol, settings_after_set(before, margin_mode=intent.margin_mode,
                                                                leverage=intent.leverage, hold_side=hold),
                                     time.time(), "set")
        self._leverage_tries.pop(message.signal_id, None)
        payload = entry_payload(intent, attached_stop=self._preset_stop)
        # Open before the first send: a fill reported in the reply is protected at once, as this signal's. Only
        # from "approved": a signal another instance refused (reported "not traded") is never traded.
        self._fence_check()
        if not self._journal.transition_signal(message.signal_id, ["approved"], "traded", "sending the entries"):
            log.info("signal %s was decided meanwhile; its bundle is not sent", message.signal_id)
            return None
        submitted = 0
        for number, leg in enumerate(intent.legs):
            if not self._entries_allowed():  # a kill switch may have fired between two legs
                break
            self._sender.submit(leg, message.signal_id, payload=payload)
            submitted += 1
            if number == 0:
                self._observe_entry_latency(message.signal_id, leg.client_oid)
        legs = self._journal.orders(signal_id=message.signal_id)
        if any(row.state is not OrderState.REJECTED for row in legs):
            self._journal.set_signal_decision(message.signal_id, "traded", f"size {intent.size} lev {intent.leverage}")
        elif submitted == 0:  # the kill switch fired after the checks, before the first leg: nothing was sent
            self._journal.set_signal_decision(message.signal_id, "refused", "MODE_NOT_NORMAL: before the first leg")
            self._refused_before_send(message.signal_id, "mode_not_normal", "before the first leg")
            self._notifier.notify("SIGNAL_REFUSED", f"{symbol}: not traded: trading is stopped "
                                                    "(safe or panic mode) before its entry was sent")
        else:
            self._journal.set_signal_decision(message.signal_id, "refused", "every entry leg was rejected")
            self._facts.forget_settings(symbol)  # maybe refused for them: read or set again next time
        return None

    def _observe_entry_latency(self, signal_id: int, client_oid: str) -> None:
        """Post seen -> first entry accepted, for the latency histogram (nothing when the entry was refused)."""
        row = self._journal.order(client_oid)
        signal = self._journal.signal(signal_id)
        if row is None or signal is None or row.state not in (OrderState.ACCEPTED, OrderState.PARTIAL,
                                                               OrderState.FILLED):
            return
        seen = self._journal.post_seen_at(signal.channel, signal.message_id)
        if seen is not None and hasattr(self._metrics, "entry_accepted"):
            self._metrics.entry_accepted(signal.channel, time.time() - seen)

    def _margin_mode_already(self, signal_id: int, symbol: str, wanted: str, error: BitgetError) -> bool:
        """A refused set-margin-mode is harmless only if the symbol is in that mode already; else no entry."""
        try:
            reported = self._client.account(symbol).margin_mode
        except BitgetError as exc:
            reported, detail = None, f"{error.code}; mode unreadable: {exc.code}"
        else:
            detail = f"{error.code}; the symbol is in {reported or 'an unknown'} margin"
        if margin_mode_in_place(wanted, reported):
            log.info("set margin mode %s on %s: %s; already in place", wanted, symbol, error.code)
            return True
        if not self._journal.transition_signal(signal_id, ["approved"], "refused",
                                               f"margin mode {wanted} not set: {detail}"):
            return False
        self._refused_before_send(signal_id, "margin_mode_not_set", f"{wanted}: {detail}")
        self._notifier.notify("SIGNAL_REFUSED", f"{symbol}: {wanted} margin not set ({detail}); entry not sent")
        return False

    def recheck_settings(self) -> None:
        """Read again the margin mode and leverage of the symbol whose known settings are the oldest, once they
        are half as old as trusted: someone may have changed them by hand; a difference is set at the next entry
        on that symbol. One request per pass at most."""
        for symbol in settings_to_recheck(self._facts.all_settings(), time.time(), self._settings_recheck_s / 2):
            sent = time.time()
            try:
                account = self._client.account(symbol)
            except BitgetError as exc:
                log.info("settings of %s unreadable (%s); set again at the next entry", symbol, exc.code)
                self._facts.forget_settings(symbol)
                continue
            read = settings_from_exchange(account.margin_mode, account.isolated_long_lever,
                                          account.isolated_short_lever, account.crossed_lever)
            if read is None:
                self._facts.forget_settings(symbol)
            else:
                self._facts.put_settings(symbol, read, sent, "reconcile")

    # --- exits: the channel's updates, journaled as intents by the RiskGate --------------------------------
    # --- refusals found right before sending: journaled and counted like the RiskGate's ----------------
    def _refused_before_send(self, signal_id: int, reason: str, detail: str) -> None:
        record_refusal(self._journal, self._metrics, signal_id=signal_id, reason=reason, detail=detail)
