"""The EntrySender alone (no actor): an approved entry's settings, decision and legs against the simulator."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from ops.metrics import Metrics
from parsing.signals import Side
from tests.order_side import OrderSide, order_side
from trading.entry_sender import EntrySender
from trading.facts import FactStore
from trading.journal import OrderState
from trading.order_sender import OrderSender

D = Decimal


@dataclass
class _Told:
    notices: list[str] = field(default_factory=list)

    def notify(self, kind: str, text: str) -> None:
        self.notices.append(kind)

    def resolve(self, client_oid: str, symbol: str) -> None:
        pass  # the reply's state is enough here


@contextmanager
def _sender(tmp_path: Path, entries_allowed: Callable[[], bool] = lambda: True,
            ) -> Iterator[tuple[OrderSide, _Told, Metrics, EntrySender]]:
    with order_side(tmp_path, start=False) as om:
        told, metrics = _Told(), Metrics()
        orders = OrderSender(journal=om.journal, client=om.client, notifier=told, metrics=metrics, follow_up=told,
                             entries_allowed=lambda: True, margin_mode="isolated", preset_stop=True)
        entries = EntrySender(journal=om.journal, client=om.client, notifier=told, metrics=metrics,
                              facts=FactStore(), sender=orders, entries_allowed=entries_allowed,
                              fence_check=lambda: None,
                              pos_mode="one_way_mode", preset_stop=True, settings_recheck_s=300.0,
                              created_at=time.time())
        yield om, told, metrics, entries


def test_an_approved_entry_is_traded_with_its_stop_attached(tmp_path: Path) -> None:
    with _sender(tmp_path) as (om, told, _metrics, entries):
        bundle = om.entry(Side.LONG, size="0.010", market=True)
        assert entries.place(bundle) is None
        signal = om.journal.signal(bundle.signal_id)
        assert signal is not None and signal.decision == "traded"
        row = om.journal.order(bundle.intent.legs[0].client_oid)
        assert row is not None and row.state is not OrderState.REJECTED
        assert om.position_size("long") == D("0.010") and om.stops("long"), "the stop rode on the entry"
        assert entries.place(bundle) is None and om.position_size("long") == D("0.010"), "decided once"
        assert told.notices == []


def test_a_refused_leverage_refuses_the_signal_and_tells(tmp_path: Path) -> None:
    with _sender(tmp_path) as (om, told, metrics, entries):
        om.engine.faults.reject_next("set-leverage", "40797", "leverage too high")
        bundle = om.entry(Side.SHORT, size="0.010", market=True)
        assert entries.place(bundle) is None
        signal = om.journal.signal(bundle.signal_id)
        assert signal is not None and signal.decision == "refused"
        assert told.notices == ["SIGNAL_REFUSED"] and om.engine.orders("BTCUSDT") == []
        assert metrics.registry.get_sample_value("following_refusals_total", {"reason": "leverage_not_set"}) == 1


def test_a_rate_limited_leverage_asks_to_be_sent_again(tmp_path: Path) -> None:
    with _sender(tmp_path) as (om, _told, _metrics, entries):
        om.engine.faults.fail_next("set-leverage", http_status=429)
        bundle = om.entry(Side.LONG, size="0.010", market=True)
        delay = entries.place(bundle)
        assert delay is not None and delay > 0
        signal = om.journal.signal(bundle.signal_id)
        assert signal is not None and signal.decision == "approved"
        assert entries.place(bundle) is None and om.position_size("long") == D("0.010")


@pytest.mark.parametrize("allowed_checks", [0, 1], ids=["before the checks", "after the checks, before the first leg"])
def test_a_kill_switch_before_the_first_leg_refuses_the_signal_and_tells(tmp_path: Path, allowed_checks: int) -> None:
    answers = iter([True] * allowed_checks)
    with _sender(tmp_path, entries_allowed=lambda: next(answers, False)) as (om, told, metrics, entries):
        bundle = om.entry(Side.LONG, size="0.010", market=True)
        assert entries.place(bundle) is None
        signal = om.journal.signal(bundle.signal_id)
        assert signal is not None and signal.decision == "refused" and "MODE_NOT_NORMAL" in (signal.reason or "")
        assert om.engine.orders("BTCUSDT") == [] and om.position_size("long") == 0
        assert told.notices == ["SIGNAL_REFUSED"], "the user is told this signal was not traded"
        assert metrics.registry.get_sample_value("following_refusals_total", {"reason": "mode_not_normal"}) == 1
