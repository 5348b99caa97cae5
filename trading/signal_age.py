"""How old a signal is when it is decided, and whether an entry is too old to trade. Pure.

An entry is judged against ``risk.max_signal_age_seconds`` measured from the post's publication time (the
``date`` the channel gives it) to the moment the RiskGate decides it. The limit applies to every entry that
would be filled at once: a market entry, or a limit entry whose zone the live price has already reached or
passed. A limit entry whose every price is still ahead of the market (a long's entries all below the live
price, a short's all above it) only rests on the book until the price comes to it, so it may wait: no age
limit applies to it. Exits (closes, cancels, stop moves) have no age limit at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

SIGNAL_TOO_OLD = "SIGNAL_TOO_OLD"


def posted_epoch(posted_at: str | None) -> float | None:
    """The post's ISO 8601 date as epoch seconds; None when missing or unreadable (a date without a zone is UTC)."""
    if not posted_at:
        return None
    text = posted_at.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def signal_age_s(posted_at: str | None, now: float, *, seen_at: float | None = None) -> float | None:
    """Seconds since the post was published, never negative (clock skew). Without a readable date, the time the
    bot first read it (``seen_at``) gives a lower bound; None when neither is known."""
    published = posted_epoch(posted_at)
    if published is None:
        published = seen_at
    if published is None:
        return None
    return max(0.0, now - published)


def limit_entry_waiting(is_long: bool, entries: Sequence[Decimal], live: Decimal) -> bool:
    """True when every limit price is still ahead of the market: the order would rest, not fill at once."""
    if not entries or live <= 0:
        return False
    return live > max(entries) if is_long else live < min(entries)


@dataclass(frozen=True)
class AgeVerdict:
    too_old: bool
    age_s: float | None
    detail: str = ""


def entry_age_verdict(
    *,
    age_s: float | None,
    max_age_s: float,
    market_entry: bool,
    is_long: bool,
    entries: Sequence[Decimal],
    live: Decimal,
) -> AgeVerdict:
    """Too old to trade? ``max_age_s`` 0 disables the limit. An unknown age is not refused here (the slippage
    rule still judges the price)."""
    if max_age_s <= 0 or age_s is None or age_s <= max_age_s:
        return AgeVerdict(False, age_s)
    if not market_entry and limit_entry_waiting(is_long, entries, live):
        return AgeVerdict(False, age_s)
    what = "a market entry" if market_entry or not entries else "an entry whose zone the price has reached"
    return AgeVerdict(True, age_s, f"posted {age_s:.0f}s ago (max {max_age_s:g}s for {what})")
