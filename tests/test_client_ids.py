"""Client order ids: deterministic, Bitget-safe, distinct per leg, signal and epoch."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.bundle import client_oid, signal_oid_prefix

SAFE = re.compile(r"^[A-Za-z0-9_]{1,32}$")


def test_same_inputs_same_id() -> None:
    assert client_oid("IvanCryptotalk", 4321, "entry") == client_oid("IvanCryptotalk", 4321, "entry")


def test_channel_case_does_not_matter() -> None:
    # t.me names are case-insensitive; a config spelled differently must not re-place orders after a restart.
    assert client_oid("IvanCryptotalk", 1, "sl") == client_oid("ivancryptotalk", 1, "sl")


@pytest.mark.parametrize(
    "other",
    [
        {"channel": "OtherChannel"},
        {"message_id": 4322},
        {"leg": "sl"},
        {"leg": "entry2"},
        {"signal_index": 1},
        {"epoch": 1},
    ],
)
def test_any_input_change_changes_the_id(other: dict[str, object]) -> None:
    base: dict[str, object] = {
        "channel": "IvanCryptotalk",
        "message_id": 4321,
        "leg": "entry",
        "signal_index": 0,
        "epoch": 0,
    }
    assert client_oid(**base) != client_oid(**{**base, **other})  # type: ignore[arg-type]


def test_all_legs_of_a_signal_share_its_prefix() -> None:
    prefix = signal_oid_prefix("IvanCryptotalk", 4321)
    for leg in ("entry", "entry2", "sl", "tp1", "tp2"):
        oid = client_oid("IvanCryptotalk", 4321, leg)
        assert oid.startswith(prefix) and oid.endswith(leg)
    assert not client_oid("IvanCryptotalk", 4321, "sl", epoch=1).startswith(prefix)


@pytest.mark.parametrize("leg", ["", "TP1", "tp-1", "tp_1", "entry1234", "sl "])
def test_leg_tags_are_checked(leg: str) -> None:
    with pytest.raises(ValueError):
        client_oid("c", 1, leg)


def test_empty_channel_is_refused() -> None:
    with pytest.raises(ValueError):
        client_oid("", 1, "entry")


@given(
    channel=st.text(min_size=1, max_size=64),
    message_id=st.integers(min_value=0, max_value=2**63),
    leg=st.from_regex(r"^[a-z0-9]{1,8}$", fullmatch=True),
    signal_index=st.integers(min_value=0, max_value=50),
    epoch=st.integers(min_value=0, max_value=10_000),
)
def test_ids_are_always_bitget_safe(
    channel: str, message_id: int, leg: str, signal_index: int, epoch: int
) -> None:
    oid = client_oid(channel, message_id, leg, signal_index=signal_index, epoch=epoch)
    assert SAFE.match(oid), oid
    assert oid.startswith("fl_")


def test_ids_do_not_collide_across_many_signals() -> None:
    ids = {
        client_oid("chan", message_id, leg, signal_index=index)
        for message_id in range(500)
        for index in range(3)
        for leg in ("entry", "sl", "tp1", "tp2")
    }
    assert len(ids) == 500 * 3 * 4
