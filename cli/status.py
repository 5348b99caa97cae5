"""`following status` and `following report`: what the bot is doing and what following each channel earned.

Both read the journal (SQLite in WAL mode: a second reader never blocks the running bot, and the bot never
blocks them beyond SQLite's busy timeout). ``status`` also asks:

- the running bot's health server (``/readyz`` for the readiness checks, ``/positions`` for the live positions
  as the bot's own exchange client sees them: the only way to see the built-in paper exchange);
- when the bot does not answer and the config trades a real account, the exchange itself with the credentials
  from the environment (read-only calls).

``report`` needs only the journal: its figures come from the exchange's fills the bot stored
(``trading/outcomes.py`` derives them), so they reconcile with the exchange's own fill history.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests

from actors.outcomes import sized_risk
from actors.ports import PositionsAndPlans
from exchange.bitget.errors import BitgetError
from exchange.bitget.models import PlanOrder, Position, PosMode
from exchange.bitget.semantics import tpsl_hold_side
from runtime.config import Config
from trading import outcomes as rules
from trading.guard import stop_plans_for
from trading.journal import Journal, OrderState, SignalRow

OPEN_ORDER_STATES = (OrderState.INTENT, OrderState.SUBMITTED, OrderState.ACCEPTED, OrderState.PARTIAL)
TARGET_PLAN_TYPES = ("profit_plan", "pos_profit")
HEALTH_TIMEOUT_S = 2.0
LAST_SIGNALS = 10


# --- positions as the exchange shows them --------------------------------------------------------------------
def position_views(
    positions: Iterable[Position], plans: Sequence[PlanOrder], pos_mode: PosMode
) -> list[dict[str, Any]]:
    """Each open position with its stop(s) and the take-profits still waiting (JSON-ready: decimals as text)."""
    views: list[dict[str, Any]] = []
    for position in positions:
        if position.total <= 0:
            continue
        stops = sorted({p.trigger_price for p in stop_plans_for(position, plans, pos_mode)})
        if not stops and position.stop_loss:
            stops = [position.stop_loss]
        sides = {position.hold_side, tpsl_hold_side(position.hold_side, pos_mode), None, "", "net"}
        targets = sorted((p.trigger_price for p in plans
                          if p.symbol == position.symbol and p.plan_type in TARGET_PLAN_TYPES and p.pos_side in sides),
                         reverse=position.hold_side == "short")
        views.append({
            "symbol": position.symbol, "side": position.hold_side, "size": str(position.total),
            "entry": str(position.average_open_price),
            "mark": None if position.mark_price is None else str(position.mark_price),
            "unrealized_pnl": str(position.unrealized_pnl), "stop": [str(s) for s in stops],
            "targets_left": [str(t) for t in targets],
            "liquidation": None if position.liquidation_price is None else str(position.liquidation_price),
        })
    return views


def exchange_positions(client: PositionsAndPlans, pos_mode: PosMode) -> list[dict[str, Any]]:
    """Read-only: positions and pending TP/SL plans from an exchange client."""
    positions = [p for p in client.positions() if p.total > 0]
    plans = list(client.plan_orders_pending("profit_loss")) if positions else []
    return position_views(positions, plans, pos_mode)


# --- status --------------------------------------------------------------------------------------------------
@dataclass
class Status:
    mode: str
    mode_reason: str
    kill_switch: str | None
    bot_running: bool
    ready: bool | None
    checks: dict[str, bool]
    positions_source: str  # "bot" | "exchange" | "none: ..."
    positions: list[dict[str, Any]]
    working_entries: list[dict[str, Any]]
    open_trades: list[dict[str, Any]]
    last_signals: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "mode_reason": self.mode_reason, "kill_switch": self.kill_switch,
            "bot_running": self.bot_running, "ready": self.ready, "checks": self.checks,
            "positions_source": self.positions_source, "positions": self.positions,
            "working_entries": self.working_entries, "open_trades": self.open_trades,
            "last_signals": self.last_signals, "notes": self.notes,
        }


def _health_base(config: Config) -> str:
    health = config.monitor.health
    host = "127.0.0.1" if health.host in ("0.0.0.0", "::", "") else health.host
    return f"http://{host}:{health.port}"


def ask_bot(base_url: str, path: str, timeout: float = HEALTH_TIMEOUT_S) -> tuple[int, Any] | None:
    """(HTTP status, JSON body) from the running bot's health server; None when nothing answers."""
    try:
        response = requests.get(f"{base_url}{path}", timeout=timeout)
    except requests.RequestException:
        return None
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, None


def _mode(journal: Journal) -> tuple[str, str]:
    mode = journal.get_flag("mode") or "normal"
    changes = journal.events("MODE_CHANGED", limit=1_000_000)
    reason = str(changes[-1].detail.get("reason", "")) if changes else ""
    return mode, reason or ("no mode change recorded" if mode == "normal" else "")


def signal_line(signal: SignalRow) -> dict[str, Any]:
    parsed = signal.parsed
    return {
        "signal_id": signal.id, "channel": signal.channel, "message_id": signal.message_id,
        "symbol": signal.symbol, "side": parsed.get("side"), "kind": parsed.get("kind"),
        "decision": signal.decision, "reason": signal.reason, "closed": signal.closed,
        "at": _iso(signal.created_at),
    }


def open_trades(journal: Journal, signals: Sequence[SignalRow]) -> list[dict[str, Any]]:
    """Traded signals whose fills leave size open (the journal's view; the exchange's is ``positions``)."""
    trades = []
    for signal in signals:
        if signal.decision != "traded":
            continue
        fills = journal.fills(signal_id=signal.id)
        outcome = rules.summarize(signal.id, fills, None)
        if outcome is None or outcome.closed:
            continue
        trades.append({
            "signal_id": signal.id, "channel": signal.channel, "message_id": signal.message_id,
            "symbol": outcome.symbol, "side": outcome.hold_side, "open_size": str(outcome.open_size),
            "avg_entry": _dec_text(outcome.avg_entry), "realized_pnl": str(outcome.realized_pnl),
            "fees": str(outcome.fees), "opened": _iso_ms(outcome.opened_ms),
        })
    return trades


def collect_status(config: Config, journal: Journal, *, bot: Callable[[str], tuple[int, Any] | None] | None = None,
                   exchange: Callable[[], list[dict[str, Any]]] | None = None,
                   kill_switch: Callable[[], str | None] | None = None) -> Status:
    """Everything ``following status`` shows. ``bot(path)`` asks the running bot; ``exchange()`` reads positions
    directly (used when the bot does not answer)."""
    mode, reason = _mode(journal)
    notes: list[str] = []
    readyz = bot("/readyz") if bot is not None else None
    running = readyz is not None
    ready: bool | None = None
    checks: dict[str, bool] = {}
    if readyz is not None:
        status_code, body = readyz
        ready = status_code == 200
        if isinstance(body, dict) and isinstance(body.get("checks"), dict):
            checks = {str(k): bool(v) for k, v in body["checks"].items()}
    else:
        notes.append("the bot is not running (its health server does not answer); readiness unknown")
    positions: list[dict[str, Any]] = []
    source = "none"
    answer = bot("/positions") if running and bot is not None else None
    if answer is not None and answer[0] == 200 and isinstance(answer[1], dict):
        positions = list(answer[1].get("positions") or [])
        source = "bot"
    elif exchange is not None:
        try:
            positions = exchange()
            source = "exchange"
        except BitgetError as exc:
            notes.append(f"exchange unreadable: {exc.code}")
    else:
        notes.append("positions unknown: the paper exchange lives inside the bot, which does not answer"
                     if config.dry_run else "positions unknown: the exchange was not asked")
    signals = journal.signals()
    working = [
        {"client_oid": row.client_oid, "signal_id": row.signal_id, "symbol": row.symbol, "leg": row.leg,
         "side": row.side, "size": str(row.size), "price": _dec_text(row.price), "state": row.state.value,
         "filled": _dec_text(row.filled_size)}
        for row in journal.orders(states=OPEN_ORDER_STATES) if row.leg.startswith("entry")
    ]
    return Status(
        mode=mode, mode_reason=reason, kill_switch=kill_switch() if kill_switch is not None else None,
        bot_running=running, ready=ready, checks=checks, positions_source=source, positions=positions,
        working_entries=working, open_trades=open_trades(journal, signals),
        last_signals=[signal_line(s) for s in signals[-LAST_SIGNALS:]], notes=notes,
    )  # fmt: skip


def render_positions(positions: Sequence[Mapping[str, Any]]) -> str:
    if not positions:
        return "no open position"
    return "\n".join(
        f"{p['symbol']} {p['side']} {p['size']} entry {p['entry']} mark {p.get('mark') or '?'} "
        f"uPnL {p.get('unrealized_pnl')} stop {', '.join(p.get('stop') or []) or 'NONE'} "
        f"targets left {', '.join(p.get('targets_left') or []) or 'none'}" for p in positions)


def render_status(status: Status) -> str:
    lines = [f"mode: {status.mode}" + (f" ({status.mode_reason})" if status.mode_reason else "")]
    if status.kill_switch:
        lines.append(f"kill switch: {status.kill_switch}")
    if status.bot_running:
        failing = [name for name, ok in status.checks.items() if not ok]
        lines.append(f"ready: {'yes' if status.ready else 'no'}" + (f" (failing: {', '.join(failing)})"
                                                                    if failing else ""))
        lines.extend(f"  {name}: {'ok' if ok else 'FAILING'}" for name, ok in status.checks.items())
    lines.append(f"open positions ({status.positions_source}): {len(status.positions) or 'none'}")
    for p in status.positions:
        lines.append(
            f"  {p['symbol']} {p['side']} {p['size']} entry {p['entry']} mark {p.get('mark') or '?'} "
            f"uPnL {p.get('unrealized_pnl')} stop {', '.join(p.get('stop') or []) or 'NONE'} "
            f"targets left {', '.join(p.get('targets_left') or []) or 'none'}")
    lines.append(f"working entries: {len(status.working_entries) or 'none'}")
    for w in status.working_entries:
        lines.append(f"  {w['symbol']} {w['leg']} {w['side']} {w['size']} @ {w['price'] or 'market'} ({w['state']})")
    if status.open_trades:
        lines.append("open trades (journal):")
        for t in status.open_trades:
            lines.append(f"  signal {t['signal_id']} {t['symbol']} {t['side']} open {t['open_size']} "
                         f"avg entry {t['avg_entry']} realized {t['realized_pnl']}")
    lines.append("last signals:")
    for s in reversed(status.last_signals):
        lines.append(f"  #{s['signal_id']} {s['channel']}/{s['message_id']} {s['symbol'] or '-'} {s['side'] or ''} "
                     f"{s['kind'] or ''}: {s['decision']} {s['reason']}".rstrip())
    lines.extend(f"note: {n}" for n in status.notes)
    return "\n".join(lines)


# --- report --------------------------------------------------------------------------------------------------
def trade_line(signal: SignalRow, outcome: rules.TradeOutcome) -> dict[str, Any]:
    return {
        "signal_id": signal.id, "channel": signal.channel, "message_id": signal.message_id,
        "symbol": outcome.symbol, "side": outcome.hold_side, "size": str(outcome.entry_size),
        "entry": _dec_text(outcome.avg_entry), "exit": _dec_text(outcome.avg_exit),
        "realized_pnl": str(outcome.realized_pnl), "fees": str(outcome.fees),
        "r_multiple": _dec_text(outcome.r_multiple), "cause": outcome.cause,
        "opened": _iso_ms(outcome.opened_ms), "closed": _iso_ms(outcome.closed_ms),
        "holding_seconds": outcome.holding_seconds,
    }


def collect_report(journal: Journal, *, since: float | None = None, channel: str | None = None
                   ) -> list[tuple[rules.ChannelReport, list[dict[str, Any]]]]:
    """Per channel (sorted by name): its figures and its closed trades."""
    signals = [s for s in journal.signals(channel=channel, since=since) if s.parsed.get("kind") != "noise"
               and s.decision != "ignored"]
    posts = journal.post_counts(since=since)
    channels = sorted({s.channel for s in signals} | ({channel} if channel else set(posts)))
    result = []
    for name in channels:
        own = [s for s in signals if s.channel == name]
        outcomes: list[rules.TradeOutcome] = []
        by_id: dict[int, SignalRow] = {}
        for signal in own:
            if signal.decision != "traded":
                continue
            fills = journal.fills(signal_id=signal.id)
            outcome = rules.summarize(signal.id, fills, sized_risk(journal, signal, fills))
            if outcome is not None:
                outcomes.append(outcome)
                by_id[signal.id] = signal
        report = rules.channel_report(name, posts.get(name, 0), own, outcomes)
        result.append((report, [trade_line(by_id[o.signal_id], o) for o in report.trades]))
    return result


def report_json(rows: Sequence[tuple[rules.ChannelReport, list[dict[str, Any]]]], *, trades: bool) -> dict[str, Any]:
    channels = []
    for report, trade_lines in rows:
        item: dict[str, Any] = {
            "channel": report.channel, "posts": report.posts, "signals": report.signals, "updates": report.updates,
            "traded": report.traded,
            "notify_only": dict(report.notify_only), "closed_trades": report.closed_trades, "wins": report.wins,
            "losses": report.losses, "win_rate": _dec_text(report.win_rate),
            "realized_pnl": str(report.realized_pnl), "fees": str(report.fees),
            "average_r": _dec_text(report.average_r), "expectancy": _dec_text(report.expectancy),
            "max_drawdown": str(report.max_drawdown),
        }
        if trades:
            item["trades"] = trade_lines
        channels.append(item)
    return {"channels": channels}


def render_report(rows: Sequence[tuple[rules.ChannelReport, list[dict[str, Any]]]], *, trades: bool) -> str:
    if not rows:
        return "no channel in the journal yet"
    lines: list[str] = []
    for report, trade_lines in rows:
        win_rate = f"{report.win_rate * 100:.1f}%" if report.win_rate is not None else "-"
        lines += [
            f"channel {report.channel}",
            f"  posts {report.posts}, entry signals {report.signals} (traded {report.traded}), updates "
            f"{report.updates}",
            "  notify_only/refused: " + (", ".join(f"{k} {v}" for k, v in report.notify_only.items()) or "none"),
            f"  closed trades {report.closed_trades}: {report.wins} won, {report.losses} lost, win rate {win_rate}",
            f"  realized P&L {_money(report.realized_pnl)} USDT after fees {_money(report.fees)} USDT",
            f"  average R {_fixed(report.average_r)}, expectancy {_money_opt(report.expectancy)} USDT/trade, "
            f"max drawdown {_money(report.max_drawdown)} USDT",
        ]
        if trades:
            for t in trade_lines:
                lines.append(f"    #{t['signal_id']} post {t['message_id']} {t['symbol']} {t['side']} {t['size']} "
                             f"{_short(t['entry'])} -> {_short(t['exit'])} {t['cause']}: "
                             f"{_short(t['realized_pnl'])} USDT (fees {_short(t['fees'])}, R "
                             f"{_fixed(Decimal(t['r_multiple'])) if t['r_multiple'] else '-'}) closed {t['closed']}")
    return "\n".join(lines)


def parse_since(text: str) -> float:
    """``YYYY-MM-DD`` (UTC midnight) or an ISO 8601 time -> epoch seconds; ValueError otherwise."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.timestamp()


# --- small formatting helpers ----------------------------------------------------------------------------------
def _dec_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _short(text: str | None, places: int = 8) -> str:
    """A decimal text rounded for reading (the JSON keeps every digit)."""
    if text is None:
        return "-"
    value = Decimal(text).quantize(Decimal(1).scaleb(-places))
    return f"{value.normalize():f}" if value else "0"


_money = rules.money_text  # one rounding for reading, shared with the notices


def _money_opt(value: Decimal | None) -> str:
    return "-" if value is None else _money(value)


def _fixed(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).isoformat(timespec="seconds")


def _iso_ms(ms: int | None) -> str | None:
    return None if ms is None else _iso(ms / 1000)


def dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, default=str)


def now() -> float:
    return time.time()
