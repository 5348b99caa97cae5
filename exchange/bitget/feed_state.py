"""Price feed rules, pure: which source is active (ws | rest | stale), what REST must poll, reconnect delays.

Nothing here touches a socket or a clock: every method takes ``now`` (monotonic seconds), so the rules are
unit-tested without threads. The PriceFeed actor feeds it events (socket up/down, a price from the socket or
from REST, a symbol watched) and asks it what to do.

The rules:
- A symbol is *ws-fresh* when the socket is up and delivered that symbol since it (re)connected, within
  ``stale_after_s``. A new connection must prove itself with a push before REST polling stops.
- The state is ``ws`` when the socket is up and every watched symbol is ws-fresh; otherwise ``rest``, and
  REST polls exactly the symbols that are not ws-fresh (all of them while the socket is down).
- The state is ``stale`` when some watched symbol has had no price from either source for
  ``stale_after_s`` (a newly watched symbol counts from the moment it was watched).
- The feed is *on a REST fallback* when WebSocket is the preferred source and the state has not been ``ws``
  for ``fallback_grace_s`` (the grace keeps a reconnect blip, or the start-up connect, from counting).
  ``fallback_started`` is true on exactly one evaluation per fallback episode.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from exchange.backoff import backoff_delay

FeedState = Literal["ws", "rest", "stale"]


@dataclass(frozen=True)
class FeedView:
    state: FeedState
    poll_symbols: tuple[str, ...]  # what REST should poll now (sorted)
    on_fallback: bool  # preferred WebSocket unavailable for longer than the grace
    fallback_started: bool  # true once per fallback episode, on the evaluation that entered it


class FeedStateMachine:
    def __init__(self, *, prefer_ws: bool, stale_after_s: float, fallback_grace_s: float, now: float) -> None:
        if stale_after_s <= 0 or fallback_grace_s < 0:
            raise ValueError("stale_after_s must be positive and fallback_grace_s not negative")
        self.prefer_ws = prefer_ws
        self.stale_after_s = stale_after_s
        self.fallback_grace_s = fallback_grace_s
        self._connected_at: float | None = None
        self._watched_at: dict[str, float] = {}
        self._last_ws: dict[str, float] = {}
        self._last_any: dict[str, float] = {}
        self._not_ws_since: float | None = now  # the feed starts without a socket
        self._fallback_reported = False

    # --- events ------------------------------------------------------------------------------------
    def watch(self, symbol: str, now: float) -> None:
        self._watched_at.setdefault(symbol, now)

    def socket_up(self, now: float) -> None:
        self._connected_at = now

    def socket_down(self, now: float) -> None:
        self._connected_at = None

    def ws_price(self, symbol: str, now: float) -> None:
        if self._connected_at is not None:
            self._last_ws[symbol] = now
        self._last_any[symbol] = now

    def rest_price(self, symbol: str, now: float) -> None:
        self._last_any[symbol] = now

    # --- decisions ---------------------------------------------------------------------------------
    @property
    def watched(self) -> tuple[str, ...]:
        return tuple(sorted(self._watched_at))

    def ws_fresh(self, symbol: str, now: float) -> bool:
        connected_at = self._connected_at
        last = self._last_ws.get(symbol)
        return (
            connected_at is not None
            and last is not None
            and last >= connected_at
            and now - last <= self.stale_after_s
        )

    def _has_data(self, symbol: str, now: float) -> bool:
        last = max(self._last_any.get(symbol, self._watched_at[symbol]), self._watched_at[symbol])
        return now - last <= self.stale_after_s

    def evaluate(self, now: float) -> FeedView:
        watched = self.watched
        if self.prefer_ws and self._connected_at is not None:
            poll = tuple(s for s in watched if not self.ws_fresh(s, now))
        else:
            poll = watched
        state: FeedState
        if any(not self._has_data(s, now) for s in watched):
            state = "stale"
        elif self.prefer_ws and self._connected_at is not None and not poll:
            state = "ws"
        else:
            state = "rest"
        if state == "ws":
            self._not_ws_since = None
            self._fallback_reported = False
        elif self._not_ws_since is None:
            self._not_ws_since = now
        on_fallback = (
            self.prefer_ws
            and self._not_ws_since is not None
            and now - self._not_ws_since >= self.fallback_grace_s
        )
        started = on_fallback and not self._fallback_reported
        if started:
            self._fallback_reported = True
        return FeedView(state, poll, on_fallback, started)


def feed_readiness(state: FeedState, *, local_guard: bool, ws_required_for_local_guard: bool) -> tuple[bool, str]:
    """The /readyz verdict for the price feed and its detail."""
    if state == "stale":
        return False, "price feed stale: no price from WebSocket or REST"
    if state == "rest" and local_guard and ws_required_for_local_guard:
        return False, "price feed on REST while local_guard stops need WebSocket (ws_required_for_local_guard)"
    return True, state


class ReconnectBackoff:
    """Capped, jittered exponential delays: the n-th consecutive failure waits
    ``min(cap, base * 2**(n-1))`` scaled by a factor in ``[1 - jitter, 1]`` (never above the cap).
    ``reset()`` after a healthy connection. Pass a seeded ``random.Random`` for deterministic delays.
    """

    def __init__(
        self, *, base_s: float = 1.0, cap_s: float = 30.0, jitter: float = 0.5, rng: random.Random | None = None
    ) -> None:
        if base_s <= 0 or cap_s < base_s or not 0 <= jitter <= 1:
            raise ValueError("invalid backoff parameters")
        self.base_s = base_s
        self.cap_s = cap_s
        self.jitter = jitter
        self._rng = rng or random.Random()
        self.attempts = 0

    def next_delay(self) -> float:
        self.attempts += 1
        return backoff_delay(
            self.attempts, base=self.base_s, cap=self.cap_s, jitter=self.jitter, unit_random=self._rng.random()
        )

    def reset(self) -> None:
        self.attempts = 0
