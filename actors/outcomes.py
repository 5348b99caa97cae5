"""Telling the user what happened: fills, stop moves and closes, from the exchange's own records.

``OutcomeRecorder`` (a plain object) does one pass: it reads Bitget's fill history of every symbol a trade of ours
may still move on, stores each new fill once (the trade id is unique in the journal) with the signal and leg it
belongs to, marks the take-profit and stop rows the exchange executed or dropped, and sends each outcome notice
once (``Journal.claim_notice`` keys survive restarts): ENTRY_FILLED, TAKE_PROFIT_FILLED, STOP_MOVED,
STOP_FILLED, CLOSE_FILLED (any other exit: the channel's close, protective, panic, by hand), POSITION_CLOSED.
The rules (attribution, P&L, R multiple, cause) are in ``trading/outcomes.py``.

``OutcomeTracker`` is the thin actor that runs a pass every ``monitor.poll_intervals.fills_seconds``. It is not
critical and sends no orders: a slow or failing fill history never holds up trading.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Protocol

from actors.base import SupervisedActor
from actors.messages import Tick
from actors.ports import Recipient
from exchange.bitget.errors import BitgetError
from exchange.bitget.models import Fill, Order, PosMode
from ops.metrics import Metrics
from trading import outcomes as rules
from trading.journal import FillRow, Journal, OrderRow, OrderState, SignalRow
from trading.modes import Mode

log = logging.getLogger("following.outcomes")

_RECENT_S = 7 * 24 * 3600.0  # a closed signal's symbol is still read this long for fills of its last exits
_QUIET_AFTER_CLOSE_S = 3600.0  # a signal closed this long ago with nothing open is not read again
_PLAN_ORDER_TYPES = ("profit_plan", "loss_plan", "pos_profit", "pos_loss", "moving_plan")
STOP_EVENT_FLAG = "outcomes_stop_moved_event_id"
NoticeFields = dict[str, str | int | float | bool | None]


class FillSource(Protocol):
    def fills(self, symbol: str, order_id: str | None = None, *, start_time_ms: int | None = None) -> list[Fill]: ...

    def order_detail(self, symbol: str, *, order_id: str | None = None, client_oid: str | None = None) -> Order: ...


class NoticeSink(Protocol):
    def notify(self, kind: str, text: str, fields: Mapping[str, Any] | None = None) -> None: ...


def tme_post_link(channel: str, message_id: int) -> str:
    return f"https://t.me/{channel}/{message_id}"


def _exact(value: Decimal | None) -> str | None:
    """A figure for the webhook as its exact decimal text (a JSON number would go through a binary float)."""
    return None if value is None else f"{value:f}"


_money = rules.money_text  # one rounding for reading, shared with the report


def _text(value: Decimal | None) -> str:
    if value is None:
        return "?"
    return f"{value.normalize():f}" if value == value.to_integral() else f"{value:f}".rstrip("0").rstrip(".")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


@dataclass(frozen=True)
class _Attributed:
    signal_id: int | None
    leg: str
    cause: str | None
    hold_side: str
    opening: bool
    client_oid: str | None


class OutcomeRecorder:
    def __init__(self, *, journal: Journal, client: FillSource, notifier: NoticeSink, metrics: Metrics | None = None,
                 pos_mode: PosMode = "one_way_mode", post_link: Callable[[str, int], str] = tme_post_link,
                 clock: Callable[[], float] = time.time) -> None:
        self._journal = journal
        self._client = client
        self._notifier = notifier
        self._metrics = metrics
        self._pos_mode = pos_mode
        self._post_link = post_link
        self._clock = clock
        self._totals_stale = True  # publish the journal's totals on the first pass
        self._pending: list[tuple[float, int, int, tuple[Any, ...], dict[str, Any]]] = []

    # --- one pass ------------------------------------------------------------------------------------
    def poll(self) -> int:
        """Read, store and announce; returns the number of new fills. Raises BitgetError when a read fails
        (what was stored stays; the next pass continues)."""
        new = 0
        failure: BitgetError | None = None
        watched = self.symbols_to_watch()
        for symbol, since in watched.items():
            try:
                listed = self._client.fills(symbol, start_time_ms=int(since * 1000))
            except BitgetError as exc:  # the other symbols and the notices still go ahead
                failure = exc
                continue
            fills = sorted(listed, key=lambda f: (f.ts, _trade_key(f.trade_id)))
            details: dict[str, Order | None] = {}
            for fill in fills:
                if self._journal.has_fill(fill.trade_id):
                    continue
                row = self._attribute(fill, details)
                if self._journal.record_fill(row):
                    new += 1
                    self._count_fill(row)
        self.announce()
        if self._totals_stale:
            self.publish_totals()
        if failure is not None:
            raise failure
        return new

    def symbols_to_watch(self) -> dict[str, float]:
        """Symbols of traded signals that are open, or closed recently and not yet announced as closed, each with
        the time to read its fills from (its oldest such signal, a minute early; never beyond the week)."""
        now = self._clock()
        symbols: dict[str, float] = {}
        for signal in self._journal.signals(since=now - _RECENT_S):
            if signal.decision != "traded" or not signal.symbol:
                continue
            if self._journal.notice_claimed(f"closed:{signal.id}"):
                continue
            if signal.closed and signal.closed_at is not None and now - signal.closed_at > _QUIET_AFTER_CLOSE_S:
                fills = self._journal.fills(signal_id=signal.id)
                if not fills or rules.open_size(fills) <= 0:
                    continue
            since = max(now - _RECENT_S + 60, signal.created_at - 60)
            symbols[signal.symbol] = min(symbols.get(signal.symbol, since), since)
        return dict(sorted(symbols.items()))

    # --- attribution ---------------------------------------------------------------------------------
    def _attribute(self, fill: Fill, details: dict[str, Order | None]) -> FillRow:
        found = self._which(fill, details)
        signal_id = found.signal_id
        if signal_id is None and not found.opening:
            # Our close orders, triggered plans and hand-made closes reduce the oldest signal still open there.
            signal_id = self._open_signal_for(fill.symbol, found.hold_side)
        leg, cause = found.leg, found.cause
        if signal_id is not None and not found.opening:
            if leg == "take_profit":
                leg = self._take_profit_leg(signal_id)
            elif leg == rules.STOP_FILL_LEG:
                self._mark_plans(signal_id, ("sl",), OrderState.FILLED, first_only=True)
            if cause is None:
                cause = rules.close_cause(leg, break_even=self._stop_at_break_even(fill.symbol, signal_id, fill.ts))
            elif cause == "stop" and self._stop_at_break_even(fill.symbol, signal_id, fill.ts):
                cause = "break_even_stop"
        elif not found.opening and cause is None:
            cause = "manual" if leg == rules.MANUAL_LEG else "external"
        return FillRow(
            trade_id=fill.trade_id, order_id=fill.order_id, symbol=fill.symbol, side=fill.side,
            trade_side=fill.trade_side, hold_side=found.hold_side, opening=found.opening, price=fill.price,
            size=fill.size, fee=fill.fee, profit=fill.profit, ts=fill.ts, signal_id=signal_id, leg=leg,
            cause=None if found.opening else cause, client_oid=found.client_oid,
        )  # fmt: skip

    def _which(self, fill: Fill, details: dict[str, Order | None]) -> _Attributed:
        pos_mode = fill.pos_mode or self._pos_mode
        row = self._journal.order_by_exchange_id(fill.order_id)
        order: Order | None = None
        if row is None:
            order = self._detail(fill, details)
            if order is not None and order.client_oid:
                row = self._journal.order(order.client_oid)
        if row is not None:
            position_side = str(row.payload.get("position_side") or "") or None
            opening = rules.fill_opens(fill.trade_side, fill.side, reduce_only=row.reduce_only,
                                       position_side=position_side)
            hold = rules.fill_hold_side(fill.side, opening, pos_mode)
            cause = None
            if not opening and row.leg.startswith("close"):
                cause = rules.close_cause(row.leg, payload_cause=_opt_str(row.payload.get("cause")),
                                          payload_reason=_opt_str(row.payload.get("reason")))
            return _Attributed(row.signal_id, row.leg, cause, hold, opening, row.client_oid)
        reduce_only = order.reduce_only if order is not None else None
        # No tradeSide and no order to ask: a fill against the side of a trade of ours still open there closes it.
        position_side = self._open_side(fill.symbol) if not fill.trade_side and reduce_only is None else None
        opening = rules.fill_opens(fill.trade_side, fill.side, reduce_only=reduce_only, position_side=position_side)
        hold = rules.fill_hold_side(fill.side, opening, pos_mode)
        if not opening and position_side is not None:
            hold = position_side  # inferred from the trade it reduces, whatever the mode's side convention
        if opening:
            return _Attributed(None, rules.MANUAL_LEG, None, hold, True, order.client_oid if order else None)
        source = order.order_source if order is not None else None
        kind = rules.exit_kind_of_source(source) if source else self._guess_exit(fill, hold)
        leg = {"stop": rules.STOP_FILL_LEG, "take_profit": "take_profit", "liquidation": rules.LIQUIDATION_LEG}.get(
            kind, rules.MANUAL_LEG)
        cause = "external" if kind == "liquidation" else ("manual" if kind == "manual" else None)
        return _Attributed(None, leg, cause, hold, False, None)

    def _open_side(self, symbol: str) -> str | None:
        for side in ("long", "short"):
            if self._open_signal_for(symbol, side) is not None:
                return side
        return None

    def _guess_exit(self, fill: Fill, hold_side: str) -> rules.ExitKind:
        """The exchange did not say what made this exit: compare its price with the signal's stop and targets."""
        signal_id = self._open_signal_for(fill.symbol, hold_side)
        signal = self._journal.signal(signal_id) if signal_id is not None else None
        if signal is None:
            return "manual"
        rows = self._journal.orders(signal_id=signal.id)
        targets = [r.price for r in rows if r.leg.startswith("tp") and r.price is not None]
        if not targets:
            targets = [Decimal(str(p)) for p in signal.parsed.get("take_profits") or []]
        stop = _dec(self._current_stop(fill.symbol, signal, fill.ts / 1000))
        return rules.guess_exit_kind(fill.price, hold_side, stop, targets)

    def _current_stop(self, symbol: str, signal: SignalRow, at: float) -> str | None:
        """The stop in force at ``at``: the last move journaled for the symbol since the signal, else its own."""
        stop = None
        for event in self._journal.events("STOP_MOVED", limit=100000):
            if event.detail.get("symbol") == symbol and signal.created_at <= event.ts <= at + 1:
                stop = _opt_str(event.detail.get("stop"))
        if stop is None:
            entry = next((r for r in self._journal.orders(signal_id=signal.id) if r.leg.startswith("entry")), None)
            stop = _opt_str(entry.payload.get("stop_loss")) if entry is not None else None
        return stop or _opt_str(signal.parsed.get("stop_loss"))

    def _detail(self, fill: Fill, details: dict[str, Order | None]) -> Order | None:
        if fill.order_id not in details:
            try:
                details[fill.order_id] = self._client.order_detail(fill.symbol, order_id=fill.order_id)
            except BitgetError as exc:
                log.info("order %s of a fill unreadable: %s", fill.order_id, exc.code)
                details[fill.order_id] = None
        return details[fill.order_id]

    def _open_signal_for(self, symbol: str, hold_side: str) -> int | None:
        """The oldest traded signal on this position with size still open by its stored fills."""
        remaining: list[tuple[int, Decimal]] = []
        for signal in self._journal.signals(since=self._clock() - _RECENT_S):
            if signal.decision != "traded" or signal.symbol != symbol:
                continue
            fills = self._journal.fills(signal_id=signal.id)
            if fills and (fills[0].hold_side or hold_side) == hold_side:
                remaining.append((signal.id, rules.open_size(fills)))
        return rules.pick_remaining(remaining)

    def _take_profit_leg(self, signal_id: int) -> str:
        """The first take-profit of the signal still working is the one that filled (targets fill in order)."""
        marked = self._mark_plans(signal_id, ("tp",), OrderState.FILLED, first_only=True)
        if marked:
            return marked[0].leg
        taken = {f.leg for f in self._journal.fills(signal_id=signal_id) if f.leg.startswith("tp")}
        return f"tp{len(taken) + 1}"

    def _mark_plans(self, signal_id: int, prefixes: tuple[str, ...], state: OrderState, *,
                    first_only: bool = False) -> list[OrderRow]:
        rows = [r for r in self._journal.orders(states=[OrderState.SUBMITTED, OrderState.ACCEPTED,
                                                        OrderState.PARTIAL], signal_id=signal_id)
                if r.order_type in _PLAN_ORDER_TYPES and r.leg.startswith(prefixes)]
        rows.sort(key=lambda r: (rules.target_number(r.leg) or 0, r.created_at))
        if first_only:
            rows = rows[:1]
        for row in rows:
            self._journal.set_order_state(row.client_oid, state)
            self._journal.record_event("ORDER_OUTCOME", {"client_oid": row.client_oid, "leg": row.leg,
                                                         "signal_id": signal_id, "state": state.value})
        return rows

    def _stop_at_break_even(self, symbol: str, signal_id: int, ts_ms: int) -> bool:
        """The last stop move of this symbol made while the signal was open (before the fill) went to break-even."""
        signal = self._journal.signal(signal_id)
        if signal is None:
            return False
        last: dict[str, Any] | None = None
        for event in self._journal.events("STOP_MOVED", limit=100000):
            if event.detail.get("symbol") == symbol and signal.created_at <= event.ts <= ts_ms / 1000 + 1:
                last = event.detail
        return last is not None and _is_break_even(last)

    # --- notices -------------------------------------------------------------------------------------
    def announce(self) -> None:
        """Send every outcome notice not sent yet (each once), in the order things happened (fill times from the
        exchange, stop moves from the journal)."""
        self._pending = []
        for signal in self._journal.signals(since=self._clock() - _RECENT_S):
            if signal.decision != "traded" or self._journal.notice_claimed(f"closed:{signal.id}"):
                continue
            fills = self._journal.fills(signal_id=signal.id)
            if fills:
                self._announce_signal(signal, fills)
        self._announce_stop_moves()
        for _, _, _, args, facts in sorted(self._pending, key=lambda item: item[:3]):
            self._send(*args, **facts)
        self._pending = []

    _RANK: ClassVar[dict[str, int]] = {
        "ENTRY_FILLED": 0, "TAKE_PROFIT_FILLED": 1, "STOP_MOVED": 2, "STOP_FILLED": 3, "CLOSE_FILLED": 3,
        "POSITION_CLOSED": 4}

    def _queue(self, at: float, key: str, kind: str, signal: SignalRow, text: str, **facts: Any) -> None:
        self._pending.append((at, self._RANK.get(kind, 5), len(self._pending), (key, kind, signal, text), facts))

    def _announce_signal(self, signal: SignalRow, fills: list[FillRow]) -> None:
        by_order: dict[str, list[FillRow]] = {}
        for fill in fills:
            by_order.setdefault(fill.order_id, []).append(fill)
        risk = sized_risk(self._journal, signal, fills)
        opens = [f for f in fills if f.opening]
        if opens:
            # One notice for what filled so far (all legs of a zone filling at once are one notice); a later fill
            # of another leg is a new total and a new notice.
            size = sum((f.size for f in opens), Decimal(0))
            price = sum((f.price * f.size for f in opens), Decimal(0)) / size
            fee = -sum((f.fee for f in opens), Decimal(0))
            risk_text = _money(risk) if risk is not None else "?"
            self._queue(opens[-1].ts / 1000, f"entry:{signal.id}:{size}", "ENTRY_FILLED", signal,
                       f"entry filled {size} at {_text(price)} average (risk {risk_text} USDT)",
                       price=price, size=size, fees=fee, risk=risk, hold_side=opens[0].hold_side)
        for order_id, group in sorted(by_order.items(), key=lambda item: (item[1][0].ts, item[0])):
            size = sum((f.size for f in group), Decimal(0))
            price = sum((f.price * f.size for f in group), Decimal(0)) / size
            fee = -sum((f.fee for f in group), Decimal(0))
            first = group[0]
            if first.opening:
                continue
            if first.leg.startswith("tp"):
                number = rules.target_number(first.leg)
                self._queue(group[-1].ts / 1000, f"tp:{signal.id}:{order_id}:{size}", "TAKE_PROFIT_FILLED", signal,
                           f"target {number if number is not None else '?'} filled {size} at {_text(price)}",
                           price=price, size=size, fees=fee, target=number, hold_side=first.hold_side,
                           cause="take_profit")
            elif first.cause in ("stop", "break_even_stop"):
                what = "break-even stop" if first.cause == "break_even_stop" else "stop"
                self._queue(group[-1].ts / 1000, f"stop:{signal.id}:{order_id}:{size}", "STOP_FILLED", signal,
                           f"{what} filled {size} at {_text(price)}", price=price, size=size, fees=fee,
                           hold_side=first.hold_side, cause=first.cause)
            else:
                # The channel's close, a protective/panic/liquidation-distance close, a hand-made or exchange close.
                why = (first.cause or "close").replace("_", " ")
                self._queue(group[-1].ts / 1000, f"close:{signal.id}:{order_id}:{size}", "CLOSE_FILLED", signal,
                            f"{why}: closed {size} at {_text(price)}", price=price, size=size, fees=fee,
                            hold_side=first.hold_side, cause=first.cause)
        outcome = rules.summarize(signal.id, fills, risk)
        if outcome is not None and outcome.closed:
            r_text = f"{outcome.r_multiple:.2f}R" if outcome.r_multiple is not None else "R unknown"
            self._queue(
                (outcome.closed_ms or 0) / 1000, f"closed:{signal.id}", "POSITION_CLOSED", signal,
                f"position closed ({outcome.cause or 'unknown'}): realized {_money(outcome.realized_pnl)} USDT after "
                f"fees {_money(outcome.fees)} USDT, {r_text}, held {_duration(outcome.holding_seconds)}",
                price=outcome.avg_exit, size=outcome.exit_size, fees=outcome.fees,
                realized_pnl=outcome.realized_pnl, r_multiple=outcome.r_multiple, cause=outcome.cause,
                hold_side=outcome.hold_side, entry_price=outcome.avg_entry,
                holding_seconds=outcome.holding_seconds, risk=risk,
            )
            self._mark_plans(signal.id, ("tp", "sl"), OrderState.CANCELED)
            if not signal.closed:
                self._journal.set_signal_closed(signal.id)
            if self._metrics is not None:
                self._metrics.trade_closed(signal.channel, outcome.cause or "unknown")
            self._totals_stale = True

    def _announce_stop_moves(self) -> None:
        since = int(self._journal.get_flag(STOP_EVENT_FLAG) or 0)
        events = self._journal.events("STOP_MOVED", since_id=since, limit=1000)
        for event in events:
            detail = event.detail
            symbol = str(detail.get("symbol") or "")
            signal = self._signal_open_at(symbol, event.ts)
            new = _opt_str(detail.get("stop"))
            old = _opt_str(detail.get("previous")) or self._previous_stop(symbol, event.id, signal)
            reason = str(detail.get("reason") or "")
            if _is_break_even(detail) and "break-even" not in reason:
                reason = f"break-even: {reason}"
            if signal is not None and new is not None:
                self._queue(event.ts, f"stop_moved:{event.id}", "STOP_MOVED", signal,
                           f"stop moved {_text(_dec(old))} -> {_text(_dec(new))} ({reason})",
                           old_stop=_dec(old), new_stop=_dec(new), reason=reason, break_even=_is_break_even(detail))
        if events:
            self._journal.set_flag(STOP_EVENT_FLAG, str(events[-1].id))

    def _signal_open_at(self, symbol: str, ts: float) -> SignalRow | None:
        candidates = [s for s in self._journal.signals(since=ts - _RECENT_S)
                      if s.decision == "traded" and s.symbol == symbol and s.created_at <= ts
                      and (s.closed_at is None or s.closed_at >= ts - 1)]
        return candidates[-1] if candidates else None

    def _previous_stop(self, symbol: str, event_id: int, signal: SignalRow | None) -> str | None:
        previous = None
        for event in self._journal.events("STOP_MOVED", limit=100000):
            if event.id >= event_id:
                break
            if event.detail.get("symbol") == symbol and (signal is None or event.ts >= signal.created_at):
                previous = _opt_str(event.detail.get("stop"))
        if previous is None and signal is not None:
            previous = _opt_str(signal.parsed.get("stop_loss"))
            entry = next((r for r in self._journal.orders(signal_id=signal.id) if r.leg.startswith("entry")), None)
            if entry is not None and entry.payload.get("stop_loss"):
                previous = str(entry.payload["stop_loss"])
        return previous

    def _send(self, key: str, kind: str, signal: SignalRow, text: str, **facts: Any) -> None:
        fields: NoticeFields = {
            "channel": signal.channel, "message_id": signal.message_id, "signal_id": signal.id,
            "symbol": signal.symbol, "side": str(facts.pop("hold_side", None) or signal.parsed.get("side") or ""),
            "link": self._post_link(signal.channel, signal.message_id),
        }
        for name, value in facts.items():
            if isinstance(value, Decimal):
                fields[name] = _exact(value)
            elif value is None or isinstance(value, (str, int, float, bool)):
                fields[name] = value
            else:
                fields[name] = str(value)
        if not self._journal.claim_notice(key, kind, dict(fields)):
            return
        head = f"{signal.symbol} {fields['side']} (post {signal.message_id})"
        self._notifier.notify(kind, f"{head}: {text}", fields)

    def daily_summary(self, at: str) -> bool:
        """Send the DAILY_SUMMARY when ``at`` (HH:MM UTC) has just passed; once per day (journal-claimed)."""
        day = rules.daily_summary_due(self._clock(), at)
        if day is None:
            return False
        since = self._clock() - 24 * 3600
        closed: list[rules.TradeOutcome] = []
        open_count = 0
        for signal in self._journal.signals(since=self._clock() - _RECENT_S):
            if signal.decision != "traded":
                continue
            fills = self._journal.fills(signal_id=signal.id)
            outcome = rules.summarize(signal.id, fills, sized_risk(self._journal, signal, fills)) if fills else None
            if outcome is None:
                continue
            if not outcome.closed:
                open_count += 1
            elif (outcome.closed_ms or 0) / 1000 >= since:
                closed.append(outcome)
        pnl = sum((o.realized_pnl for o in closed), Decimal(0))
        fees = sum((o.fees for o in closed), Decimal(0))
        wins = sum(1 for o in closed if o.realized_pnl > 0)
        fields: NoticeFields = {"date": day, "closed_trades": len(closed), "wins": wins,
                                "losses": len(closed) - wins, "realized_pnl": _exact(pnl), "fees": _exact(fees),
                                "open_trades": open_count}
        if not self._journal.claim_notice(f"daily:{day}", "DAILY_SUMMARY", dict(fields)):
            return False
        self._notifier.notify("DAILY_SUMMARY", f"{day}: {len(closed)} trade(s) closed in 24 h ({wins} won), realized "
                              f"{_money(pnl)} USDT after fees {_money(fees)} USDT; {open_count} trade(s) open", fields)
        return True

    def publish_totals(self) -> None:
        """Realized P&L and fees of every closed trade in the journal, per channel, into the metrics."""
        if self._metrics is None:
            return
        totals: dict[str, tuple[Decimal, Decimal]] = {}
        for signal in self._journal.signals():
            if signal.decision != "traded":
                continue
            fills = self._journal.fills(signal_id=signal.id)
            outcome = rules.summarize(signal.id, fills, None) if fills else None
            if outcome is None or not outcome.closed:
                continue
            pnl, fees = totals.get(signal.channel, (Decimal(0), Decimal(0)))
            totals[signal.channel] = (pnl + outcome.realized_pnl, fees + outcome.fees)
        for channel, (pnl, fees) in totals.items():
            self._metrics.set_outcome_totals(channel, pnl, fees)
        self._totals_stale = False

    def _count_fill(self, row: FillRow) -> None:
        if self._metrics is None:
            return
        leg = "entry" if row.opening else row.leg
        signal = self._journal.signal(row.signal_id) if row.signal_id is not None else None
        self._metrics.fill(signal.channel if signal else "none", leg)


def sized_risk(journal: Journal, signal: SignalRow, fills: list[FillRow]) -> Decimal | None:
    """The risk the entry was sized with (journaled with the entry), else the loss at its stop (fees left out)."""
    entries = [r for r in journal.orders(signal_id=signal.id) if r.leg.startswith("entry")]
    for row in entries:
        if row.payload.get("risk_usdt"):
            return Decimal(str(row.payload["risk_usdt"]))
    stop = next((Decimal(str(r.payload["stop_loss"])) for r in entries if r.payload.get("stop_loss")), None)
    opens = [f for f in fills if f.opening]
    size = sum((f.size for f in opens), Decimal(0))
    avg = sum((f.price * f.size for f in opens), Decimal(0)) / size if size > 0 else None
    return rules.stop_risk(avg, stop, size)


def _is_break_even(detail: Mapping[str, Any]) -> bool:
    return bool(detail.get("break_even")) or "break-even" in str(detail.get("reason", ""))


def _dec(text: str | None) -> Decimal | None:
    try:
        return None if text is None else Decimal(text)
    except ArithmeticError:
        return None


def _opt_str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _trade_key(trade_id: str) -> tuple[int, str]:
    return (int(trade_id), "") if trade_id.isdigit() else (0, trade_id)


class OutcomeTracker(SupervisedActor):
    """Runs an ``OutcomeRecorder`` pass every ``interval_s``; never sends an order."""

    def __init__(self, *, name: str, supervisor: Recipient | None, mode: Mode = Mode.NORMAL,
                 journal: Journal, client: FillSource, notifier: NoticeSink, metrics: Metrics | None = None,
                 pos_mode: PosMode = "one_way_mode", interval_s: float = 5.0,
                 post_link: Callable[[str, int], str] = tme_post_link, daily_summary_at: str = "") -> None:
        super().__init__(name, supervisor, mode=mode)
        self._daily_summary_at = daily_summary_at
        self._recorder = OutcomeRecorder(journal=journal, client=client, notifier=notifier, metrics=metrics,
                                         pos_mode=pos_mode, post_link=post_link)
        self._interval_s = interval_s
        self._metrics = metrics

    def _poll_error(self) -> None:
        if self._metrics is not None:
            self._metrics.poll_error("fills")

    def on_started(self) -> None:
        self.schedule_every(self._interval_s, Tick("outcomes"))

    def handle(self, message: Any) -> Any:
        if isinstance(message, Tick) and message.what == "outcomes":
            started = time.monotonic()
            try:
                self._recorder.poll()
                if self._daily_summary_at:
                    self._recorder.daily_summary(self._daily_summary_at)
            except BitgetError as exc:
                self._poll_error()
                log.info("fill history unreadable: %s; the next pass continues", exc.code)
            except Exception:
                # Reporting must never cost trading: no restart storm (and no safe mode) over an outcome notice.
                # Everything it needs is in the journal, so the next pass simply tries again.
                self._poll_error()
                log.exception("outcome pass failed; the next pass tries again")
            finally:
                if self._metrics is not None:
                    self._metrics.observe_poll("fills", time.monotonic() - started)
        return None
