"""Crash safety around the one dangerous moment: the entry was sent and its reply never arrived.

The simulator's timeout-after-accept fault applies the order and then drops the reply (or holds it past the
client's timeout). Whatever happens next (a lookup, a restart of the OrderManager, a restart of the whole
runtime), the entry exists exactly once on the exchange.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange.sim.engine import SimExchange
from exchange.sim.testing import SimCredentials, running_sim
from parsing.channel_server import ChannelServer
from parsing.signals import Side
from runtime.config import load_secrets
from runtime.wiring import Runtime
from tests.e2e import CHANNEL, System, fast_config, wait_listening
from tests.order_side import order_side
from tests.waiting import wait_until
from trading.journal import OrderState


class _OnServer(System):
    """The end-to-end helpers, on an external Bitget-compatible server instead of the paper exchange."""

    def __init__(self, runtime: Runtime, channel: ChannelServer, engine: SimExchange) -> None:
        super().__init__(runtime, channel)
        self._engine = engine

    @property
    def engine(self) -> SimExchange:
        return self._engine


MODES = pytest.mark.parametrize("pos_mode", ["one_way_mode", "hedge_mode"])
SIDES = pytest.mark.parametrize("side", [Side.LONG, Side.SHORT])


@pytest.mark.parametrize("reply_delay_s", [None, 1.0], ids=["reply_dropped", "reply_too_late"])
@SIDES
def test_timeout_after_accept_is_resolved_by_lookup_and_the_order_is_created_once(
    tmp_path: Path, reply_delay_s: float | None, side: Side
) -> None:
    with order_side(tmp_path, client_timeout_s=0.3) as om:
        om.engine.faults.timeout_after_accept("place-order", delay_s=reply_delay_s)
        bundle = om.entry(side, size="0.020")
        om.send(bundle)
        wait_until(lambda: om.entry_row(bundle).state is OrderState.FILLED if om.journal.order(
            bundle.intent.legs[0].client_oid) else False, what="the lookup to find the filled entry")
        assert len(om.engine.requests_to("place-order")) == 1
        assert len(om.entry_orders()) == 1
        assert om.entry_row(bundle).filled_size == om.entry_orders()[0].filled == om.position_size(side.value)
        assert om.engine.requests_to("detail")  # it was looked up by client id, not re-sent


@MODES
@SIDES
def test_order_manager_restart_between_send_and_ack_never_sends_a_second_entry(
    tmp_path: Path, pos_mode: str, side: Side
) -> None:
    # A long pass interval: the first instance never gets to look the order up before it "crashes".
    with order_side(tmp_path, pos_mode=pos_mode, check_interval_s=3600, client_timeout_s=0.3) as om:
        om.engine.faults.timeout_after_accept("place-order", delay_s=None)
        bundle = om.entry(side, size="0.020")
        om.send(bundle)
        wait_until(lambda: om.journal.order(bundle.intent.legs[0].client_oid) is not None
                   and om.entry_row(bundle).state is OrderState.SUBMITTED and om.entry_orders(),
                   what="an entry on the exchange whose outcome the journal does not know")

        om.restart_manager()
        om.send(bundle)  # the same signal delivered again after the restart
        wait_until(lambda: om.status.get("orders_reconciled"), what="start-up reconciliation")
        assert om.entry_row(bundle).state is OrderState.FILLED
        wait_until(lambda: om.stop_cover(side.value) is None or om.stop_cover(side.value) == om.position_size(
            side.value), what="the position protected")
        assert len(om.engine.requests_to("place-order")) == 1
        assert len(om.entry_orders()) == 1
        assert om.position_size(side.value) == bundle.intent.size


def test_an_entry_that_never_reached_the_exchange_is_rejected_after_the_deadline_and_never_resent(
    tmp_path: Path,
) -> None:
    with order_side(tmp_path, unknown_outcome_deadline_s=0.5) as om:
        om.engine.faults.fail_next("place-order", http_status=503)  # nothing applied; outcome unknown
        bundle = om.entry(Side.LONG, size="0.020")
        om.send(bundle)
        wait_until(lambda: om.journal.order(bundle.intent.legs[0].client_oid) is not None
                   and om.entry_row(bundle).state is OrderState.REJECTED, what="the unknown entry decided")
        assert len(om.engine.requests_to("place-order")) == 1
        assert om.entry_orders() == []
        wait_until(lambda: om.journal.events("RECONCILE_NEVER_SENT"), what="the decision journaled")


def test_readiness_stays_red_until_start_up_reconciliation_succeeded(tmp_path: Path) -> None:
    # The regular pass is an hour away: a failed start-up reconciliation must be retried on its own.
    with order_side(tmp_path, start=False, check_interval_s=3600) as om:
        om.engine.faults.fail_next("all-position", http_status=503, times=3)
        om.start_manager()
        wait_until(lambda: len([r for r in om.engine.requests_to("all-position") if r.status == 503]) >= 1,
                   what="the first reconciliation attempt")
        assert not om.status.get("orders_reconciled")
        wait_until(lambda: om.status.get("orders_reconciled"), what="a later pass to succeed")
        assert len(om.journal.events("RECONCILED")) == 1


@MODES
def test_runtime_restart_between_send_and_ack_never_produces_a_second_entry(tmp_path: Path, pos_mode: str) -> None:
    creds = SimCredentials()
    env = {"BITGET_API_KEY": creds.api_key, "BITGET_API_SECRET": creds.api_secret,
           "BITGET_PASSPHRASE": creds.passphrase}
    engine = SimExchange(seed=4, pos_mode=pos_mode)
    with running_sim(engine=engine, credentials=creds) as sim, ChannelServer(CHANNEL) as channel:
        config = fast_config(tmp_path, channel.start(), dry_run=False,
                             bitget={"base_url": sim.base_url, "position_mode": pos_mode, "timeout_seconds": 0.3},
                             monitor={"poll_intervals": {"open_orders_seconds": 3600, "positions_seconds": 0.25,
                                                         "account_seconds": 0.25},
                                      "price_feed": {"mode": "rest", "interval_seconds": 0.2}, "health": {"port": 0}})
        sim.engine.faults.timeout_after_accept("place-order", delay_s=None)
        first = Runtime(config, load_secrets(config, env), env=env)
        first.start()
        try:
            wait_listening(first)
            system = _OnServer(first, channel, sim.engine)
            channel.add_post(system.long_signal("BTCUSDT"))
            wait_until(lambda: system.entry_orders("BTCUSDT"), what="the entry on the exchange")
            assert first.journal is not None
            wait_until(lambda: [r for r in first.journal.orders() if r.leg == "entry"
                                and r.state is OrderState.SUBMITTED], what="the journal not knowing the outcome")
        finally:
            first.stop()

        second = Runtime(config, load_secrets(config, env), env=env)
        second.start()
        try:
            assert second.journal is not None
            journal = second.journal
            wait_until(lambda: second.status.get("orders_reconciled"), what="start-up reconciliation")
            (entry,) = [r for r in journal.orders() if r.leg == "entry"]
            assert entry.state is OrderState.FILLED
            hits = channel.hits
            wait_until(lambda: channel.hits >= hits + 10, what="ten polls of the channel after the restart")
            assert len(system.entry_orders("BTCUSDT")) == 1
            assert len(sim.engine.requests_to("place-order")) == 1
        finally:
            second.stop()
