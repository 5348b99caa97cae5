"""``sl_order_type: local_guard`` end to end on the real runtime: the stop lives in the journal, never on the
exchange, and a price from the WebSocket across it closes the position reduce-only by market, once. The same
protection after the start-up probe found an exchange without plan orders (a trigger config falls back), where
no plan order of any kind is ever sent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from exchange.sim.engine import SimExchange
from exchange.sim.testing import SimCredentials, running_sim
from parsing.channel_server import ChannelServer
from runtime.config import load_secrets
from runtime.wiring import Runtime
from tests.e2e import CHANNEL, fast_config, running_system, wait_listening
from tests.test_move_sl_to_be import signal
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

D = Decimal
SYMBOL = "BTCUSDT"
STOP_TYPES = ("loss_plan", "pos_loss")
PLAN_WRITES = ("place-tpsl-order", "place-pos-tpsl", "place-plan-order", "modify-tpsl-order", "cancel-plan-order")
# A socket silent this long is backed up by REST polls: long enough that a test's jump arrives on the socket.
PRICE_FEED = {"mode": "ws", "interval_seconds": 0.2, "stale_after_seconds": 5.0}
LOCAL_GUARD = {"cooldown_seconds": 0, "stoploss": {"sl_order_type": "local_guard", "repair_timeout_seconds": 2}}


def events(runtime: Runtime, kind: str) -> list[dict[str, Any]]:
    assert runtime.journal is not None
    return [e.detail for e in runtime.journal.events(kind)]


def open_size(engine: SimExchange) -> Decimal:
    return sum((p.size for p in engine.positions(SYMBOL) if p.size > 0), D(0))


def closes(engine: SimExchange) -> list[Any]:
    """Closing orders the bot sent (not ones a plan on the exchange triggered)."""
    return [o for o in engine.orders(SYMBOL) if o.is_closing and o.order_source == "normal"]


def price_at(engine: SimExchange, factor: str) -> Decimal:
    return engine.contract(SYMBOL).round_price(engine.price(SYMBOL) * D(factor))


def open_locally_guarded(runtime: Runtime, engine: SimExchange, channel: ChannelServer, side: str) -> tuple[int, D]:
    """A signal with its stop 1% away opens a position; its local stop is journaled. (post id, stop)"""
    post = channel.add_post(signal_text(engine, side))
    wait_until(lambda: open_size(engine) > 0, what="the position")
    (stop_set,) = wait_until(lambda: events(runtime, "LOCAL_STOP_SET"), what="the local stop journaled")
    wait_until(lambda: runtime.readiness()[0], what="/readyz green: a known local stop and a fresh price")
    if runtime.config.monitor.price_feed.mode == "ws":
        wait_socket_price(runtime)
    return post, D(stop_set["stop"])


def wait_socket_price(runtime: Runtime) -> None:
    """The latest price of the symbol the feed handed on came from the WebSocket: the subscription is live, so a
    crossing the test makes next is pushed on it (before, it may go by a REST poll or in the subscribe snapshot).
    The feed's state alone does not say so: it reads "ws" while nothing is watched, until the feed's next
    evaluation after a watch."""
    wait_until(lambda: getattr(runtime.facts.price(SYMBOL), "source", None) == "price_feed:ws",
               what=f"a price of {SYMBOL} from the WebSocket")


def signal_text(engine: SimExchange, side: str) -> str:
    class Prices:  # what tests.test_move_sl_to_be.signal reads
        @staticmethod
        def price(symbol: str, factor: str) -> Decimal:
            return price_at(engine, factor)

    return signal(Prices, side)  # type: ignore[arg-type]


def cross(engine: SimExchange, stop: Decimal, side: str, beyond: str = "0.002") -> None:
    sign = -1 if side == "long" else 1
    engine.set_price(SYMBOL, engine.contract(SYMBOL).round_price(stop * (1 + sign * D(beyond))))


def assert_closed_once_by_the_local_guard(runtime: Runtime, engine: SimExchange, stop: Decimal,
                                          sources: tuple[str, ...] = ("ws",)) -> None:
    # Bounds a hang only (how fast is a benchmark's business): that a tick past the stop closed it, not some
    # slower path, is what the LOCAL_STOP_TRIGGERED event with the tick's source below says.
    wait_until(lambda: open_size(engine) == 0, timeout=30, what="the position closed by the local guard")
    (close,) = closes(engine)
    assert close.order_type == "market"
    (triggered,) = events(runtime, "LOCAL_STOP_TRIGGERED")
    assert D(triggered["stop"]) == stop and triggered["source"] in sources
    # Not twice: later ticks (the price stays past the stop) and polls send nothing more.
    settle = time.monotonic() + 1.0
    wait_until(lambda: time.monotonic() > settle, what="a second of further ticks")
    assert len(closes(engine)) == 1 and len(events(runtime, "LOCAL_STOP_TRIGGERED")) == 1


@pytest.mark.parametrize("side", ["long", "short"])
def test_a_price_across_the_local_stop_closes_the_position_once(tmp_path: Path, side: str) -> None:
    with running_system(tmp_path, risk=LOCAL_GUARD, monitor={"price_feed": PRICE_FEED}) as system:
        runtime, engine = system.runtime, system.engine
        _, stop = open_locally_guarded(runtime, engine, system.channel, side)
        assert stop < engine.price(SYMBOL) if side == "long" else stop > engine.price(SYMBOL)
        assert not [p for p in engine.plan_orders(SYMBOL) if p.plan_type in STOP_TYPES], "no exchange stop"
        assert all(not r.params.get("presetStopLossPrice") for r in engine.requests_to("place-order"))

        cross(engine, stop, side)
        assert_closed_once_by_the_local_guard(runtime, engine, stop)


def test_hedge_mode_short_is_closed_reduce_only_on_its_own_side(tmp_path: Path) -> None:
    with running_system(tmp_path, risk=LOCAL_GUARD, monitor={"price_feed": PRICE_FEED},
                        bitget={"position_mode": "hedge_mode"}) as system:
        runtime, engine = system.runtime, system.engine
        _, stop = open_locally_guarded(runtime, engine, system.channel, "short")
        cross(engine, stop, "short")
        assert_closed_once_by_the_local_guard(runtime, engine, stop)
        (close,) = closes(engine)
        assert close.trade_side == "close" and close.side == "sell"  # Bitget hedge mode: the short's own side


def test_a_set_stop_update_moves_the_local_stop_and_a_guard_restart_keeps_it(tmp_path: Path) -> None:
    with running_system(tmp_path, risk=LOCAL_GUARD, monitor={"price_feed": PRICE_FEED}) as system:
        runtime, engine = system.runtime, system.engine
        post, first_stop = open_locally_guarded(runtime, engine, system.channel, "long")
        moved = price_at(engine, "0.995")
        system.channel.add_post(f"Move stop to {moved}", reply_to=post)
        wait_until(lambda: len(events(runtime, "LOCAL_STOP_SET")) == 2, what="the moved stop journaled")
        assert D(events(runtime, "LOCAL_STOP_SET")[-1]["stop"]) == moved
        assert not [p for p in engine.plan_orders(SYMBOL) if p.plan_type in STOP_TYPES]

        old = wait_until(lambda: (r := runtime.directory.get("position_guard")) is not None and r, what="guard")
        old.stop()  # the Supervisor starts a new instance: it knows nothing but the journal
        wait_until(lambda: (r := runtime.directory.get("position_guard")) is not None and r is not old
                   and r.is_alive(), what="the PositionGuard restarted")
        wait_until(lambda: runtime.readiness()[0], what="/readyz green again after the restart")
        assert len(events(runtime, "LOCAL_STOP_SET")) == 2, "the stop was read back, not set anew"

        # Between the two stops: only the moved one is crossed.
        engine.set_price(SYMBOL, engine.contract(SYMBOL).round_price((moved + first_stop) / 2))
        # The new guard's first price came by REST (the socket had been quiet): either may bring the jump.
        assert_closed_once_by_the_local_guard(runtime, engine, moved, sources=("ws", "rest"))


CREDS = SimCredentials(api_key="lg-key", api_secret="lg-secret", passphrase="lg-pass")
ENV = {"BITGET_API_KEY": CREDS.api_key, "BITGET_API_SECRET": CREDS.api_secret, "BITGET_PASSPHRASE": CREDS.passphrase}


@contextmanager
def runtime_on_an_exchange_without_plan_orders(tmp_path: Path) -> Iterator[tuple[Runtime, SimExchange,
                                                                                    ChannelServer]]:
    with running_sim(seed=41, credentials=CREDS, ws=True) as sim, ChannelServer(CHANNEL) as channel:
        sim.engine.faults.unsupported("orders-plan-pending")
        for endpoint in PLAN_WRITES:
            sim.engine.faults.unsupported(endpoint)
        config = fast_config(
            tmp_path, channel.start(), dry_run=False,
            bitget={"base_url": sim.base_url, "ws_public_url": sim.ws_url},
            risk={"cooldown_seconds": 0, "stoploss": {"repair_timeout_seconds": 2}},  # trigger, as configured
            monitor={"price_feed": PRICE_FEED},
        )  # fmt: skip
        runtime = Runtime(config, load_secrets(config, ENV), env=ENV)
        runtime.start()
        try:
            wait_listening(runtime)
            yield runtime, sim.engine, channel
        finally:
            runtime.stop()


def test_after_a_probe_fallback_the_local_guard_protects_and_no_plan_order_is_ever_sent(tmp_path: Path) -> None:
    with runtime_on_an_exchange_without_plan_orders(tmp_path) as (runtime, engine, channel):
        assert runtime.stop_mode == "local_guard"
        _, stop = open_locally_guarded(runtime, engine, channel, "long")
        cross(engine, stop, "long")
        assert_closed_once_by_the_local_guard(runtime, engine, stop)

        for endpoint in PLAN_WRITES:
            assert engine.requests_to(endpoint) == [], f"{endpoint} was sent"
        assert all(not r.params.get("presetStopLossPrice") and not r.params.get("presetStopSurplusPrice")
                   for r in engine.requests_to("place-order"))
        # Plans were listed once, by the probe; nothing after it asked again (it would fail every time).
        assert len(engine.requests_to("orders-plan-pending")) == 1
        assert runtime.journal is not None and runtime.gate.mode.value == "normal"


def test_a_refused_local_stop_close_is_sent_again_until_the_position_is_flat(tmp_path: Path) -> None:
    with running_system(tmp_path, risk=LOCAL_GUARD, monitor={"price_feed": PRICE_FEED}) as system:
        runtime, engine = system.runtime, system.engine
        _, stop = open_locally_guarded(runtime, engine, system.channel, "long")
        engine.faults.reject_next("place-order", "40762", "The order amount exceeds the balance", times=1)
        cross(engine, stop, "long")

        wait_until(lambda: open_size(engine) == 0, timeout=10, what="closed on the retry")
        refused = [r for r in engine.requests_to("place-order") if r.code == "40762"]
        assert len(refused) == 1 and len(closes(engine)) == 1
        assert len(events(runtime, "LOCAL_STOP_TRIGGERED")) == 1
        assert events(runtime, "LOCAL_STOP_CLOSE_RETRY"), "the retry is journaled"


def test_a_position_opened_outside_the_bot_gets_the_default_local_stop_and_is_guarded(tmp_path: Path) -> None:
    risk = {**LOCAL_GUARD, "default_stop_loss_pct": 0.01}
    with running_system(tmp_path, risk=risk, monitor={"price_feed": PRICE_FEED}) as system:
        runtime, engine = system.runtime, system.engine
        engine.set_margin_mode(SYMBOL, "isolated")
        engine.set_leverage(SYMBOL, 2)  # far from liquidation: only the stop may close it
        engine.place_order(SYMBOL, side="sell", size=D("0.010"), margin_mode="isolated")  # by hand, no stop
        (stop_set,) = wait_until(lambda: events(runtime, "LOCAL_STOP_SET"), what="a local stop journaled")
        (position,) = [p for p in engine.positions(SYMBOL) if p.size > 0]
        expected = engine.contract(SYMBOL).round_price(position.average_price * D("1.01"), rounding="ROUND_UP")
        assert D(stop_set["stop"]) == expected and stop_set["source"] == "default for an adopted position"
        wait_until(lambda: runtime.readiness()[0], what="/readyz green")
        # The guard asked the feed to watch the adopted symbol: its first prices may come from REST until the
        # socket pushes it, and this test is about the WebSocket path.
        wait_socket_price(runtime)
        wait_until(lambda: runtime.metrics.registry.get_sample_value("following_price_feed_state",
                                                                     {"state": "ws"}) == 1.0,
                   what="the feed on the WebSocket for the adopted symbol")

        cross(engine, expected, "short")
        assert_closed_once_by_the_local_guard(runtime, engine, expected)
        assert not [p for p in engine.plan_orders(SYMBOL) if p.plan_type in STOP_TYPES]


def test_a_guard_restarted_after_a_refused_local_stop_close_closes_again_without_a_second_trigger(
    tmp_path: Path,
) -> None:
    with running_system(tmp_path, risk=LOCAL_GUARD, monitor={"price_feed": PRICE_FEED}) as system:
        runtime, engine = system.runtime, system.engine
        _, stop = open_locally_guarded(runtime, engine, system.channel, "long")
        engine.faults.reject_next("place-order", "40762", "The order amount exceeds the balance", times=1)
        cross(engine, stop, "long")
        wait_until(lambda: [r for r in engine.requests_to("place-order") if r.code == "40762"],
                   what="the first close refused")
        old = runtime.directory.get("position_guard")
        assert old is not None and open_size(engine) > 0
        old.stop()

        wait_until(lambda: open_size(engine) == 0, timeout=10, what="closed by the restarted guard")
        assert len(events(runtime, "LOCAL_STOP_TRIGGERED")) == 1, "one crossing, one trigger"
        assert len(closes(engine)) == 1


def test_without_a_fresh_price_a_local_stop_neither_fires_nor_counts_as_protection(tmp_path: Path) -> None:
    rest_feed = {"mode": "rest", "interval_seconds": 0.2, "stale_after_seconds": 1.0}
    with running_system(tmp_path, risk=LOCAL_GUARD, monitor={"price_feed": rest_feed}) as system:
        runtime, engine = system.runtime, system.engine
        _, stop = open_locally_guarded(runtime, engine, system.channel, "long")

        def protected() -> bool:
            return bool(runtime.readiness()[1]["checks"]["positions_protected"])

        engine.faults.unsupported("ticker")  # no price reaches the bot any more
        wait_until(lambda: not protected(), what="positions_protected red on a stale price")
        cross(engine, stop, "long")
        settle = time.monotonic() + 1.0
        wait_until(lambda: time.monotonic() > settle, what="a second without prices")
        assert open_size(engine) > 0 and events(runtime, "LOCAL_STOP_TRIGGERED") == []

        engine.faults.unsupported("ticker", enabled=False)  # the next price is past the stop
        assert_closed_once_by_the_local_guard(runtime, engine, stop, sources=("rest",))
