"""One reading of the exchange's listings for two actors, and when the second may use it (pure rule).

The PositionGuard reads all positions, the open orders and the pending plans on its interval; the OrderManager's
reconciliation needs the same three listings on its own. Read twice, they were most of the bot's idle requests.
The guard now publishes each complete reading here (:class:`SharedListings`), with the time its first request
was sent and the bot's exchange writes as they stood then (:class:`WriteMark`); a pass decides on it only when
:func:`listing_verdict` says so:

- the reading is complete (positions, then open orders, then plans: the order reconciliation itself reads them
  in, so a fill between the reads shows as more stop than position, never as a gap);
- it is no older than ``risk.max_fact_age_seconds`` (the bound the RiskGate holds the guard's positions to), and
  not older than the last view a pass decided on (decisions never go back in time);
- no write of the bot's (an order sent or cancelled, a plan placed, modified or cancelled, a close, a setting)
  was under way while it was read, and none started or ended since: a reading from before a write may lack what
  the write did (an order sent after it would look missing, a stop placed after it would be placed twice).

And what a pass decides on a shared reading is only ever "nothing to do": as soon as that reading shows anything
to act on, the pass reads the exchange again itself and decides on that (``ReconciliationApplier.gather``), so
no order, plan or close is ever sent on the strength of another actor's reading. Safety over speed.

Writes are counted, not timed (``WriteLog``, fed by the OrderManager's fenced client): a wall clock stepping
back cannot make a reading from before a write look newer than it. Ages use the monotonic clock.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from exchange.bitget.models import Order, PlanOrder, Position


@dataclass(frozen=True)
class WriteMark:
    """The bot's exchange writes so far: how many were started and how many are over (answered or failed)."""

    started: int = 0
    finished: int = 0

    @property
    def in_flight(self) -> int:
        return self.started - self.finished


class WriteLog:
    """Counts the bot's exchange writes (thread-safe); ``writing()`` wraps one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = 0
        self._finished = 0

    def mark(self) -> WriteMark:
        with self._lock:
            return WriteMark(self._started, self._finished)

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._lock:
            self._started += 1
        try:
            yield
        finally:
            with self._lock:
                self._finished += 1


@dataclass(frozen=True)
class Listings:
    """One complete reading: positions (open ones), then open orders, then pending plans (every plan type
    reconciliation lists; empty when the exchange takes no plan orders)."""

    positions: tuple[Position, ...]
    pending: tuple[Order, ...]
    plans: tuple[PlanOrder, ...]
    observed_at: float  # time.monotonic() when the first request (positions) was sent
    writes: WriteMark  # the bot's writes when the first request was sent
    source: str


@dataclass(frozen=True)
class ListingVerdict:
    usable: bool
    reason: str


def listing_verdict(
    listing: Listings | None,
    *,
    now: float,
    max_age_s: float,
    writes: WriteMark,
    not_older_than: float | None = None,
) -> ListingVerdict:
    """May a reconciliation pass decide on ``listing`` instead of reading the exchange itself?

    ``now`` is ``time.monotonic()``; ``writes`` the bot's writes now; ``not_older_than`` the observation time of
    the last view a pass decided on (a reading older than it would take decisions back in time)."""
    if listing is None:
        return ListingVerdict(False, "no shared reading")
    age = now - listing.observed_at
    if age < 0:
        return ListingVerdict(False, "reading stamped in the future")
    if age > max_age_s:
        return ListingVerdict(False, f"reading {age:.2f}s old, more than {max_age_s:g}s")
    if not_older_than is not None and listing.observed_at < not_older_than:
        return ListingVerdict(False, "older than the last view decided on")
    if listing.writes.in_flight > 0:
        return ListingVerdict(False, "read while a write of the bot was under way")
    if writes != listing.writes:
        return ListingVerdict(False, "the bot wrote to the exchange since it was read")
    return ListingVerdict(True, "fresh, and no write since")


class SharedListings:
    """The latest complete reading and the bot's write log, shared by the PositionGuard (which publishes) and the
    OrderManager (whose fenced client counts its writes here, and whose passes may decide on the reading).
    Thread-safe; holds and counts, decides nothing."""

    def __init__(self) -> None:
        self.writes = WriteLog()
        self._lock = threading.Lock()
        self._latest: Listings | None = None
        self._counts: Counter[str] = Counter()  # published, used, read_again: for tests and the benchmark

    def publish(self, listing: Listings) -> None:
        with self._lock:
            if self._latest is None or listing.observed_at >= self._latest.observed_at:
                self._latest = listing
            self._counts["published"] += 1

    def latest(self) -> Listings | None:
        with self._lock:
            return self._latest

    def count(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
