"""Capped exponential backoff with jitter, as one pure function.

Shared by every retry loop (the Bitget rate-limit backoff, the ticker socket's reconnects, the VLM client,
the listener's poll plan, the supervisor's restarts), so the delays follow one rule. Stdlib only: ``parsing/``
may import it without depending on the Bitget client.
"""

from __future__ import annotations

# 2**64 seconds is beyond any cap; bounding the exponent keeps a long outage from overflowing a float.
_MAX_EXPONENT = 64


def capped_exponential(attempt: int, *, base: float, cap: float, factor: float = 2.0) -> float:
    """The ``attempt``-th delay (1-based) of ``base, base*factor, base*factor**2, ...``, never above ``cap``."""
    exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
    return min(cap, base * factor**exponent)


def backoff_delay(
    attempt: int, *, base: float, cap: float, factor: float = 2.0, jitter: float = 0.0, unit_random: float = 0.0
) -> float:
    """``capped_exponential`` scaled by ``1 - jitter * unit_random`` (``unit_random`` in ``[0, 1)``): a factor in
    ``[1 - jitter, 1]``, so the delay spreads retries out yet never exceeds ``cap``."""
    return capped_exponential(attempt, base=base, cap=cap, factor=factor) * (1.0 - jitter * unit_random)
