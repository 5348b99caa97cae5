"""Fencing: an actor instance that has been replaced can never write to the exchange again.

Each new instance of a writing actor claims the next generation of its name in the journal
(``Journal.claim_generation``). Its client is wrapped in a ``FencedClient`` that, right before every request
that changes something on the exchange, checks that the journal's generation is still the instance's own; an
older instance (one the Supervisor gave up on while it was stuck in a slow request, say) gets ``Superseded``
instead of sending, so a signal is decided and sent by one instance only, whatever restarts happen.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar, cast

from trading.journal import Journal, Superseded
from trading.shared_listings import WriteLog

log = logging.getLogger("following.fencing")
_Client = TypeVar("_Client")

# Client methods that change something on the exchange; reads pass through unchecked.
WRITES = frozenset({
    "place_order", "cancel_order", "place_tpsl_order", "place_pos_tpsl", "place_plan_order", "modify_tpsl_order",
    "cancel_plan_order", "set_leverage", "set_margin_mode", "set_position_mode",
})


__all__ = ["WRITES", "Fence", "FencedClient", "Superseded", "fenced"]


class Fence:
    """One instance's claim on a name; ``check()`` raises ``Superseded`` once a newer instance claimed it."""

    def __init__(self, journal: Journal, name: str) -> None:
        self._journal = journal
        self._name = name
        self.generation = journal.claim_generation(name)

    def current(self) -> bool:
        return self._journal.generation(self._name) == self.generation

    def check(self) -> None:
        if not self.current():
            raise Superseded(f"{self._name} generation {self.generation} was replaced by "
                             f"{self._journal.generation(self._name)}")


class FencedClient:
    """The exchange client of one instance: every write checks the fence first, and is counted in ``writes``
    (when given): a listing read before or during a write is not decided on (trading.shared_listings)."""

    def __init__(self, client: Any, fence: Fence, writes: WriteLog | None = None) -> None:
        self._client = client
        self._fence = fence
        self._writes = writes

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in WRITES:
            return attribute
        fence, writes = self._fence, self._writes

        def fenced(*args: Any, **kwargs: Any) -> Any:
            fence.check()
            if writes is None:
                return attribute(*args, **kwargs)
            with writes.writing():
                return attribute(*args, **kwargs)

        return fenced


def fenced(client: _Client, fence: Fence, writes: WriteLog | None = None) -> _Client:
    """``client`` behind ``fence``, with the client's own type: the proxy answers every attribute the client has
    (reads as they are, writes checked first and counted in ``writes``), so it is used as the client it wraps."""
    return cast(_Client, FencedClient(client, fence, writes))
