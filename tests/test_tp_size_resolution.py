"""Take-profit sizes: exact sum, step grid, above the minimum, shares honoured as closely as allowed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.bitget.contracts import Contract
from trading.bundle import resolve_tp_sizes

D = Decimal
BTC = Contract("BTCUSDT", "BTC", "USDT", 1, 1, 3, D("0.001"), D("0.001"), D("5"), max_lever=125)
# Size step 10, minimum 30: steps and minimum differ, as on many altcoins.
ALT = Contract("ALTUSDT", "ALT", "USDT", 4, 1, 0, D("10"), D("30"), D("5"), max_lever=50)


@pytest.mark.parametrize(
    ("size", "targets", "expected"),
    [
        ("0.009", 3, ["0.003", "0.003", "0.003"]),
        ("0.010", 3, ["0.004", "0.003", "0.003"]),  # the odd step goes to the nearest target
        ("0.011", 3, ["0.004", "0.004", "0.003"]),
        ("0.002", 3, ["0.001", "0.001"]),  # not enough for three: two targets
        ("0.001", 4, ["0.001"]),
        ("0.100", 1, ["0.100"]),
        ("0.100", [D(50), D(30), D(20)], ["0.050", "0.030", "0.020"]),
        ("0.100", [D("0.5"), D("0.3"), D("0.2")], ["0.050", "0.030", "0.020"]),  # any scale
        ("0.010", [D(25), D(25)], ["0.005", "0.005"]),  # normalised when they do not sum to 100
        ("0.003", [D(50), D(30), D(20)], ["0.001", "0.001", "0.001"]),
    ],
)
def test_btc_cases(size: str, targets: int | list[Decimal], expected: list[str]) -> None:
    assert resolve_tp_sizes(D(size), targets, BTC) == [D(e) for e in expected]


@pytest.mark.parametrize(
    ("size", "targets", "expected"),
    [
        (90, 3, [30, 30, 30]),
        (100, 3, [40, 30, 30]),
        (80, 3, [30, 50]),  # 3 targets of 30 do not fit: the third's share merges into the second
        (50, 2, [50]),  # 2 x 30 > 50: one target takes everything
        (20, 2, []),  # the position itself is below the minimum: the stop covers it
        (100, [D(10), D(90)], [30, 70]),  # the small share is raised to the minimum, the big one gives way
        (200, [D(10), D(10), D(80)], [30, 30, 140]),
    ],
)
def test_step_and_minimum_cases(size: int, targets: int | list[Decimal], expected: list[int]) -> None:
    assert resolve_tp_sizes(D(size), targets, ALT) == [D(e) for e in expected]


def test_min_notional_at_the_target_price() -> None:
    # At 1000 USDT a 0.001 BTC part is 1 USDT: each part needs 0.005 for the 5 USDT minimum.
    assert resolve_tp_sizes(D("0.010"), 3, BTC, min_notional_price=D("1000")) == [D("0.005"), D("0.005")]
    assert resolve_tp_sizes(D("0.004"), 3, BTC, min_notional_price=D("1000")) == []


def test_no_targets_gives_no_sizes() -> None:
    assert resolve_tp_sizes(D("0.010"), 0, BTC) == []
    assert resolve_tp_sizes(D("0.010"), [], BTC) == []


@pytest.mark.parametrize("bad", [[D(0), D(100)], [D(-10), D(110)]])
def test_non_positive_share_is_an_error(bad: list[Decimal]) -> None:
    with pytest.raises(ValueError):
        resolve_tp_sizes(D("0.010"), bad, BTC)


def test_position_off_the_step_grid_is_an_error() -> None:
    with pytest.raises(ValueError):
        resolve_tp_sizes(D("0.0105"), 2, BTC)


@settings(max_examples=500, deadline=None)
@given(
    units=st.integers(min_value=0, max_value=5000),
    step_exp=st.integers(min_value=-4, max_value=1),
    min_steps=st.integers(min_value=1, max_value=20),
    shares=st.one_of(
        st.integers(min_value=0, max_value=8),
        st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=8),
    ),
)
def test_random_splits_keep_every_invariant(
    units: int, step_exp: int, min_steps: int, shares: int | list[int]
) -> None:
    step = D(1).scaleb(step_exp)
    contract = Contract("XUSDT", "X", "USDT", 2, 1, max(0, -step_exp), step, step * min_steps, D("0"), 20)
    position = units * step
    targets: int | list[Decimal] = shares if isinstance(shares, int) else [D(s) for s in shares]
    count = shares if isinstance(shares, int) else len(shares)

    sizes = resolve_tp_sizes(position, targets, contract)

    if count == 0 or units < min_steps:
        assert sizes == []
        return
    assert sum(sizes) == position
    assert all(s % step == 0 for s in sizes)
    assert all(s >= contract.min_trade_num for s in sizes)
    # As many targets as the minimum allows, never more than asked for.
    assert len(sizes) == min(count, units // min_steps)
    equal_shares = isinstance(shares, int) or len(set(shares)) == 1
    if equal_shares and len(sizes) == count:
        # Nothing merged: equal shares differ by at most one step.
        assert max(sizes) - min(sizes) <= step


@settings(max_examples=300, deadline=None)
@given(
    shares=st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=6),
    units=st.integers(min_value=1000, max_value=100000),
)
def test_percentages_honoured_within_a_step_when_nothing_binds(shares: list[int], units: int) -> None:
    # Minimum of one step and a large position: every target fits, each is within a step of its share.
    step = D("0.001")
    contract = Contract("XUSDT", "X", "USDT", 2, 1, 3, step, step, D("0"), 20)
    position = units * step
    sizes = resolve_tp_sizes(position, [D(s) for s in shares], contract)
    total = sum(shares)
    ideal = [position * s / total for s in shares]
    if all(x >= step for x in ideal):
        assert len(sizes) == len(shares)
        assert all(abs(size - x) < step for size, x in zip(sizes, ideal, strict=True))
