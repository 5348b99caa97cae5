"""The bot's own stop plans as intents: journaled before they are sent, completed from what the exchange shows,
resumed after a restart by client id, never blindly sent twice.

A stop the bot places on its own (a repair of a position no stop covers, a stop moved to break-even, a channel's
stop move) is a sequence of attempts. Attempt ``n`` has a client id deterministic in what the stop protects (the
position, or the exit that moves it) and ``n``; each attempt is a row of the journal's ``orders`` table (leg
``sl_<purpose>``, the plan type as its order type) written in state INTENT before the request, SUBMITTED right
before it goes out. What to do next is a pure decision (``next_stop_step``) from those rows and the exchange's
plan listing:

- no attempt yet, or the last one decided (placed, refused, gone): a new attempt under the next number;
- the last attempt listed on the exchange: it is placed (its row completed from the listing);
- the last attempt journaled and never sent (a crash between the two writes): it is sent now, under its own
  client id, when it still asks for the stop wanted now; otherwise it is decided as superseded;
- the last attempt sent with no answer (timeout, 5xx, a lost connection) and not listed: no second stop while
  ``grace_s`` has not passed since it was sent (the exchange may still be applying it) or the listing cannot be
  read; after that it never arrived, and the next attempt goes.

A refusal is journaled with its reason (a rate limit or an unavailable exchange as ``transient:``) and the next
request is the next attempt; the first refusal the exchange gave after looking at a stop is told to the user.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from exchange.bitget.errors import BitgetError, DuplicateClientOid, ExchangeUnavailable, RateLimited, UnknownOutcome
from exchange.bitget.models import PlanOrder, PositionSide, TpslHoldSide, TpslRequest
from trading.journal import Journal, OrderRow, OrderState, Superseded
from trading.ports import ExecutionExchange, Notices, OrderCounters

log = logging.getLogger("following.orders")

StopPlanType = Literal["pos_loss", "loss_plan"]
StopPurpose = Literal["repair", "move", "exit", "protect"]
StopOutcome = Literal["placed", "pending", "refused"]
STOP_INTENT_LEG = "sl_"  # the leg of a stop intent is "sl_<purpose>" (a stop fill's cause is "stop")
TRANSIENT = "transient:"  # the error of a refusal given without looking (rate limit, unavailable)
REFUSED = "refused:"  # the error of a refusal the exchange gave after looking at the stop
NEVER_ARRIVED = "sent, no answer, and not on the exchange after the grace"
UNKNOWN_STOP_GRACE_S = 5.0  # a stop sent without an answer and not listed this long after is taken as lost


@dataclass(frozen=True)
class StopWanted:
    """The stop the caller wants on one position now."""

    symbol: str
    hold_side: PositionSide  # the position's side
    tpsl_hold: TpslHoldSide  # the holdSide of its TP/SL request
    trigger_price: Decimal
    size: Decimal | None  # None: the whole position (pos_loss), else a stop plan of that size (loss_plan)
    position_size: Decimal  # the position's size when decided (journaled as the size of a whole-position stop)

    @property
    def plan_type(self) -> StopPlanType:
        return "pos_loss" if self.size is None else "loss_plan"


# --- the decision ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NewAttempt:
    attempt: int


@dataclass(frozen=True)
class SendJournaled:
    """Journaled and never sent (INTENT): send it under its own client id."""

    row: OrderRow


@dataclass(frozen=True)
class Supersede:
    """Journaled, never sent, and no longer the stop wanted: decided (REJECTED) without being sent."""

    row: OrderRow


@dataclass(frozen=True)
class Placed:
    row: OrderRow
    order_id: str


@dataclass(frozen=True)
class Undecided:
    row: OrderRow


@dataclass(frozen=True)
class NeverArrived:
    row: OrderRow


StopStep = NewAttempt | SendJournaled | Supersede | Placed | Undecided | NeverArrived


def asks_for(row: OrderRow, wanted: StopWanted) -> bool:
    """The journaled attempt requests exactly the stop wanted now (price, plan type, size)."""
    if row.order_type != wanted.plan_type or row.price != wanted.trigger_price or row.side != wanted.tpsl_hold:
        return False
    return wanted.size is None or row.size == wanted.size


def next_stop_step(attempts: Sequence[OrderRow], wanted: StopWanted, listed: Mapping[str, PlanOrder] | None, *,
                   now: float, grace_s: float) -> StopStep:
    """``attempts``: the rows of this stop's attempts, oldest first (``n`` is ``attempts[n - 1]``); ``listed``: the
    exchange's pending TP/SL plans of the symbol by client id, None when they could not be read."""
    last = attempts[-1] if attempts else None
    if last is None or last.state not in (OrderState.INTENT, OrderState.SUBMITTED):
        return NewAttempt(len(attempts) + 1)
    plan = listed.get(last.client_oid) if listed is not None else None
    if plan is not None:
        return Placed(last, plan.order_id)
    if last.state is OrderState.INTENT:
        return SendJournaled(last) if asks_for(last, wanted) else Supersede(last)
    if listed is None or now - last.updated_at < grace_s:
        return Undecided(last)
    return NeverArrived(last)


def by_client_oid(plans: Sequence[PlanOrder] | None) -> dict[str, PlanOrder] | None:
    """Pending plans by client id (None stays None: the plans could not be read)."""
    if plans is None:
        return None
    return {plan.client_oid: plan for plan in plans if plan.client_oid}


def refusals(attempts: Sequence[OrderRow]) -> int:
    """How many of the attempts the exchange refused after looking at them (not rate limited, not lost)."""
    return sum(1 for row in attempts if row.state is OrderState.REJECTED and (row.error or "").startswith(REFUSED))


def is_stop_intent(row: OrderRow) -> bool:
    """A row written by ``StopIntents`` (a reconciliation stop keeps its legs ``sl``, ``sl2``, ...)."""
    return row.leg.startswith("sl") and bool(row.payload.get("stop_for")) and bool(row.payload.get("purpose"))


# --- applying it -----------------------------------------------------------------------------------------
class StopIntents:
    """Places one stop through its attempts (``place``), journaling each before it is sent."""

    def __init__(self, *, journal: Journal, client: ExecutionExchange, notifier: Notices, metrics: OrderCounters,
                 grace_s: float = UNKNOWN_STOP_GRACE_S, clock: Callable[[], float] = time.time) -> None:
        self._journal = journal
        self._client = client
        self._notifier = notifier
        self._metrics = metrics
        self._grace_s = grace_s
        self._clock = clock
        self.retry_after: float | None = None  # after a rate-limited attempt: the wait the exchange asked for

    def attempts(self, oid_for: Callable[[int], str]) -> list[OrderRow]:
        rows: list[OrderRow] = []
        while (row := self._journal.order(oid_for(len(rows) + 1))) is not None:
            rows.append(row)
        return rows

    def listed(self, symbol: str) -> dict[str, PlanOrder] | None:
        """The symbol's pending TP/SL plans by client id; None when they cannot be read."""
        try:
            return by_client_oid(self._client.plan_orders_pending("profit_loss", symbol))
        except BitgetError as exc:
            log.info("%s: plans unreadable (%s)", symbol, exc.code)
            return None

    def settle(self, oid_for: Callable[[int], str], listed: Mapping[str, PlanOrder] | None) -> None:
        """The last attempt completed from the listing (the caller needs no stop now): a listed one is placed, one
        never sent is decided without being sent, one sent and unanswered is left to be looked up again."""
        attempts = self.attempts(oid_for)
        last = attempts[-1] if attempts else None
        if last is None or last.state not in (OrderState.INTENT, OrderState.SUBMITTED):
            return
        plan = listed.get(last.client_oid) if listed is not None else None
        if plan is not None:
            self._journal.set_order_state(last.client_oid, OrderState.ACCEPTED, exchange_order_id=plan.order_id)
        elif last.state is OrderState.INTENT:
            self._journal.set_order_state(last.client_oid, OrderState.REJECTED, error="not needed any more: not sent")

    def journal(self, wanted: StopWanted, oid: str, *, signal_id: int | None, purpose: StopPurpose, stop_for: str,
                attempt: int, reason: str, extra: Mapping[str, object] | None = None, leg: str | None = None) -> bool:
        """Journal one attempt (INTENT) without sending it. False when the client id is journaled already.
        ``leg``: the journal's leg (default ``sl_<purpose>``)."""
        leg = leg or f"{STOP_INTENT_LEG}{purpose}"
        return self._journal.record_intent(
            oid, signal_id=signal_id, symbol=wanted.symbol, leg=leg, side=wanted.tpsl_hold, trade_side=None,
            order_type=wanted.plan_type, size=wanted.size if wanted.size is not None else wanted.position_size,
            price=wanted.trigger_price, reduce_only=True,
            payload={"stop_for": stop_for, "purpose": purpose, "attempt": attempt, "reason": reason,
                     "position_side": wanted.hold_side, "whole_position": wanted.size is None, **(extra or {})},
        )

    def place(self, wanted: StopWanted, oid_for: Callable[[int], str], *, purpose: StopPurpose, stop_for: str,
              reason: str, listed: Mapping[str, PlanOrder] | None, signal_id: int | None = None,
              tell_refusal: bool = True, extra: Mapping[str, object] | None = None,
              leg_for: Callable[[int], str] | None = None) -> StopOutcome:
        """The stop wanted, through its attempts: ``placed`` (the exchange shows or accepted it), ``pending`` (an
        attempt's outcome is not known yet: nothing sent again) or ``refused`` (this attempt was refused; told to
        the user once per stop with ``tell_refusal``, else the caller tells)."""
        self.retry_after = None
        while True:
            step = next_stop_step(self.attempts(oid_for), wanted, listed, now=self._clock(), grace_s=self._grace_s)
            if isinstance(step, Placed):
                # The last attempt arrived. The caller may have decided on an older reading that lacked it: the
                # request is done; a need left beside it is the next request's, decided on a reading showing it.
                self._journal.set_order_state(step.row.client_oid, OrderState.ACCEPTED, exchange_order_id=step.order_id)
                return "placed"
            if isinstance(step, Undecided):
                log.warning("%s stop %s: the outcome of %s is not known yet; not sent again", wanted.symbol,
                            wanted.trigger_price, step.row.client_oid)
                return "pending"
            if isinstance(step, NeverArrived):
                self._journal.set_order_state(step.row.client_oid, OrderState.REJECTED, error=NEVER_ARRIVED)
                self._journal.record_event("STOP_NEVER_ARRIVED", {"client_oid": step.row.client_oid,
                                                                  "symbol": wanted.symbol})
                continue
            if isinstance(step, Supersede):
                self._journal.set_order_state(step.row.client_oid, OrderState.REJECTED,
                                              error="superseded before it was sent")
                continue
            if isinstance(step, SendJournaled):
                log.info("%s stop %s journaled before a restart and never sent: sent now (%s)", wanted.symbol,
                         wanted.trigger_price, step.row.client_oid)
                return self._send(step.row, wanted, purpose, stop_for, tell_refusal)
            oid = oid_for(step.attempt)
            if not self.journal(wanted, oid, signal_id=signal_id, purpose=purpose, stop_for=stop_for,
                                attempt=step.attempt, reason=reason, extra=extra,
                                leg=leg_for(step.attempt) if leg_for is not None else None):
                return "pending"  # written meanwhile by another caller: never sent twice
            row = self._journal.order(oid)
            if row is None:
                return "pending"
            return self._send(row, wanted, purpose, stop_for, tell_refusal)

    def _send(self, row: OrderRow, wanted: StopWanted, purpose: StopPurpose, stop_for: str,
              tell_refusal: bool) -> StopOutcome:
        oid = row.client_oid
        self._journal.set_order_state(oid, OrderState.SUBMITTED)
        try:
            placed = self._client.place_tpsl_order(TpslRequest(
                symbol=wanted.symbol, plan_type=wanted.plan_type, trigger_price=wanted.trigger_price,
                hold_side=wanted.tpsl_hold, size=wanted.size, client_oid=oid))
        except Superseded:
            self._journal.set_order_state(oid, OrderState.INTENT)  # nothing went out: the next instance sends it
            raise
        except DuplicateClientOid:
            found = self.listed(wanted.symbol)
            plan = found.get(oid) if found is not None else None
            if plan is None:
                return "pending"  # sent before under this id: looked up again by the next request
            self._journal.set_order_state(oid, OrderState.ACCEPTED, exchange_order_id=plan.order_id)
            return "placed"
        except UnknownOutcome as exc:
            log.warning("%s stop %s (%s): outcome unknown (%s); looked up, not sent again", wanted.symbol,
                        wanted.trigger_price, oid, exc.code)
            self._metrics.order("stop", "unknown")
            return "pending"
        except (RateLimited, ExchangeUnavailable) as exc:
            self.retry_after = (exc.retry_after or 0.2) if isinstance(exc, RateLimited) else None
            self._journal.set_order_state(oid, OrderState.REJECTED, error=f"{TRANSIENT}{exc.code}")
            self._metrics.order("stop", "rejected")
            log.warning("%s stop %s (%s) not taken now: %s", wanted.symbol, wanted.trigger_price, oid, exc.code)
            return "refused"
        except BitgetError as exc:
            why = f"{exc.code} {exc.message}".strip()
            self._journal.set_order_state(oid, OrderState.REJECTED, error=f"{REFUSED} {why}")
            self._metrics.order("stop", "rejected")
            detail: dict[str, Any] = {"client_oid": oid, "symbol": wanted.symbol, "hold_side": wanted.hold_side,
                                      "stop": str(wanted.trigger_price), "purpose": purpose, "error": why}
            self._journal.record_event("STOP_REFUSED", detail)
            log.error("%s stop %s (%s) refused: %s", wanted.symbol, wanted.trigger_price, oid, why)
            if tell_refusal and self._journal.claim_notice(f"stop_refused:{purpose}:{stop_for}", "STOP_REFUSED",
                                                           detail):
                self._notifier.notify("STOP_REFUSED", f"{wanted.symbol} {wanted.hold_side}: stop "
                                      f"{wanted.trigger_price} refused by the exchange ({why}); asked again under a "
                                      "new request")
            return "refused"
        self._journal.set_order_state(oid, OrderState.ACCEPTED, exchange_order_id=placed.order_id)
        self._metrics.order("stop", "accepted")
        return "placed"
