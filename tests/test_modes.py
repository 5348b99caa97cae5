"""The mode transition table: automatic triggers only tighten, only an operator loosens."""

from __future__ import annotations

import pytest

from trading.modes import Mode, allows_new_entries, next_mode


@pytest.mark.parametrize(
    ("current", "requested", "expected"),
    [
        (Mode.NORMAL, Mode.SAFE, Mode.SAFE),
        (Mode.NORMAL, Mode.PANIC, Mode.PANIC),
        (Mode.SAFE, Mode.PANIC, Mode.PANIC),
        (Mode.SAFE, Mode.NORMAL, None),
        (Mode.PANIC, Mode.SAFE, None),
        (Mode.PANIC, Mode.NORMAL, None),
        (Mode.SAFE, Mode.SAFE, None),
    ],
)
def test_automatic_requests_only_tighten(current: Mode, requested: Mode, expected: Mode | None) -> None:
    assert next_mode(current, requested) is expected


@pytest.mark.parametrize(
    ("current", "requested"),
    [(Mode.SAFE, Mode.NORMAL), (Mode.PANIC, Mode.SAFE), (Mode.PANIC, Mode.NORMAL)],
)
def test_operator_may_loosen(current: Mode, requested: Mode) -> None:
    assert next_mode(current, requested, by_operator=True) is requested


def test_only_normal_allows_new_entries() -> None:
    assert allows_new_entries(Mode.NORMAL)
    assert not allows_new_entries(Mode.SAFE)
    assert not allows_new_entries(Mode.PANIC)
