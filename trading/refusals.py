"""One way to record a signal refused: the ``SIGNAL_REFUSED`` event in the journal and the refusal counter.

The RiskGate (its rules and the checks around them) and the OrderManager (what it finds right before sending)
both refuse signals; each refusal goes through ``record_refusal`` so the event carries the same fields and the
counter one spelling per reason (``Metrics.refusal`` bounds and lower-cases the label: ``SYMBOL_UNKNOWN`` and
``symbol_unknown`` are one series).
"""

from __future__ import annotations

from typing import Protocol

from trading.journal import Journal

EVENT = "SIGNAL_REFUSED"


class RefusalCounter(Protocol):
    def refusal(self, reason: str) -> None: ...


def record_refusal(journal: Journal, counter: RefusalCounter, *, signal_id: int, reason: str, detail: str,
                   message_id: int | None = None, **extra: object) -> None:
    """Journal and count one refusal (the signal's decision is the caller's compare-and-set, made before)."""
    event: dict[str, object] = {"signal_id": signal_id}
    if message_id is not None:
        event["message_id"] = message_id
    event.update(reason=reason, detail=detail, **extra)
    journal.record_event(EVENT, event)
    counter.refusal(reason)
