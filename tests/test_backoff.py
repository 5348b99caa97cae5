from __future__ import annotations

import pytest

from exchange.backoff import backoff_delay, capped_exponential


def test_delays_double_from_the_base_until_the_cap() -> None:
    assert [capped_exponential(n, base=0.5, cap=3.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert [capped_exponential(n, base=1.0, cap=100.0, factor=3.0) for n in range(1, 4)] == [1.0, 3.0, 9.0]


def test_a_very_long_outage_stays_at_the_cap_without_overflow() -> None:
    assert capped_exponential(10_000, base=0.1, cap=30.0) == 30.0


@pytest.mark.parametrize("unit_random", [0.0, 0.25, 0.999])
def test_jitter_only_shortens_a_delay_within_its_fraction(unit_random: float) -> None:
    delay = backoff_delay(4, base=1.0, cap=5.0, jitter=0.5, unit_random=unit_random)
    assert 2.5 < delay <= 5.0
    assert delay == pytest.approx(5.0 * (1 - 0.5 * unit_random))
