"""No actor is "hung" because the exchange is slow: a request in flight (bounded by its timeout, a rate-limit
bucket's wait, a 429 backoff) is busy, not hung; a call past its bound is a hang like any other. A restart never
drops work silently: what waited in the mailbox, or was told while the actor was down, goes to the new instance, or
is journaled and reported when no instance will come. A critical actor past its restart intensity means panic, and
/readyz is red while a critical actor is restarting."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pykka
import pytest
import requests
import responses

from actors.base import ActorDirectory, SupervisedActor
from actors.busy import BUSY, BusyBoard
from actors.messages import ChildFailed, Heartbeat, PriceTick, WatchSymbol
from actors.supervisor import ChildSpec, RestartPolicy, Supervisor, SupervisorContext
from exchange.bitget.client import BitgetClient
from tests.e2e import running_system
from tests.waiting import wait_until
from trading.journal import Journal, OrderState
from trading.modes import Mode

WAIT_S = 10.0
FAST = RestartPolicy(max_restarts=3, within_s=60.0, backoff_base_s=0.001, backoff_max_s=0.005, jitter=0.0)


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all()


@pytest.fixture
def journal() -> Iterator[Journal]:
    with Journal(":memory:") as db:
        yield db


@dataclass(frozen=True)
class Call:
    """Block in a bounded call of ``bound_s`` until released (a request waiting on the exchange)."""

    bound_s: float


@dataclass(frozen=True)
class Crash:
    pass


@dataclass
class Script:
    release: threading.Event = field(default_factory=threading.Event)
    handled: list[tuple[int, Any]] = field(default_factory=list)  # (instance number, message)
    instances: int = 0
    block_on_start_s: float | None = None  # every start blocks in a bounded call of this bound until released
    hang_on_start: bool = False  # every start blocks outside any bounded call (a real hang)


class Child(SupervisedActor):
    def __init__(self, name: str, supervisor: Any, *, mode: Mode, script: Script) -> None:
        super().__init__(name, supervisor, mode=mode)
        self.script = script
        script.instances += 1
        self.number = script.instances

    def on_started(self) -> None:
        if self.script.hang_on_start:
            self.script.release.wait(WAIT_S)
        elif self.script.block_on_start_s is not None:
            with BUSY.bounded(self.script.block_on_start_s, "start-up reconciliation"):
                self.script.release.wait(WAIT_S)

    def handle(self, message: Any) -> Any:
        if isinstance(message, Crash):
            raise RuntimeError("crash")
        if isinstance(message, Call):
            with BUSY.bounded(message.bound_s, "place-order"):
                self.script.release.wait(WAIT_S)
        self.script.handled.append((self.number, message))
        return None


def spec(name: str, script: Script, *, critical: bool = True) -> ChildSpec:
    def factory(context: SupervisorContext) -> pykka.ActorRef[Any]:
        return Child.start(context.name, context.supervisor, mode=context.mode, script=script)

    return ChildSpec(name=name, factory=factory, critical=critical)


def start(journal: Journal, *specs: ChildSpec, **options: Any) -> pykka.ActorRef[Supervisor]:
    options.setdefault("policy", FAST)
    options.setdefault("heartbeat_interval_s", 0.01)
    options.setdefault("heartbeat_timeout_s", 0.05)
    return Supervisor.start(list(specs), journal=journal, **options)


def events(journal: Journal, kind: str) -> list[dict[str, Any]]:
    return [row.detail for row in journal.events(kind)]


# --- busy, not hung ---------------------------------------------------------------------------------------
def test_an_actor_inside_a_bounded_call_is_not_restarted_and_answers_once_the_call_returns(
    journal: Journal, caplog: pytest.LogCaptureFixture,
) -> None:
    script = Script()
    sup = start(journal, spec("order_manager", script))
    proxy = sup.proxy()
    ref = proxy.child_ref("order_manager").get(timeout=WAIT_S)
    caplog.set_level(logging.INFO, logger="actors.supervisor")
    ref.tell(Call(bound_s=30.0))
    # Heartbeats go unanswered far past the 0.05 s timeout: each check finds the call within its bound.
    wait_until(lambda: sum("in a bounded call (place-order)" in r.getMessage() for r in caplog.records) >= 5,
               timeout=WAIT_S, what="several heartbeat checks excusing the call")
    assert proxy.restart_counts().get(timeout=WAIT_S) == {"order_manager": 0}
    script.release.set()
    assert ref.ask(Heartbeat(), timeout=WAIT_S) is True  # the same instance, answering again
    assert proxy.child_ref("order_manager").get(timeout=WAIT_S) is ref
    assert events(journal, "ACTOR_FAILED") == []


def test_a_call_past_its_own_bound_is_a_hang(journal: Journal) -> None:
    script = Script()
    sup = start(journal, spec("order_manager", script))
    proxy = sup.proxy()
    ref = proxy.child_ref("order_manager").get(timeout=WAIT_S)
    try:
        ref.tell(Call(bound_s=0.05))
        wait_until(lambda: proxy.restart_counts().get(timeout=WAIT_S) == {"order_manager": 1}, timeout=WAIT_S,
                   what="the hang detected")
        assert events(journal, "ACTOR_FAILED")[0]["hung"] is True
    finally:
        script.release.set()


def test_the_busy_board_excuses_a_call_within_its_bound_and_a_short_gap_between_calls() -> None:
    now = [100.0]
    board = BusyBoard(clock=lambda: now[0])
    result: dict[str, Any] = {}

    def actor_thread() -> None:
        board.attach("urn:a")
        with board.bounded(10.0, "ticker"):
            now[0] = 105.0
            result["inside"] = board.excuse("urn:a", grace_s=3.0)
            now[0] = 112.0
            result["within grace"] = board.excuse("urn:a", grace_s=3.0)
            now[0] = 113.5
            result["past bound"] = board.excuse("urn:a", grace_s=3.0)
        now[0] = 115.0
        result["just after"] = board.excuse("urn:a", grace_s=3.0)
        now[0] = 119.0
        result["long after"] = board.excuse("urn:a", grace_s=3.0)

    thread = threading.Thread(target=actor_thread)
    thread.start()
    thread.join()
    assert result["inside"] is not None and "ticker" in result["inside"]
    assert result["within grace"] is not None
    assert result["past bound"] is None
    assert result["just after"] == "between bounded calls"
    assert result["long after"] is None
    with board.bounded(5.0, "not an actor thread"):  # announces nothing
        assert board.excuse("urn:other", grace_s=3.0) is None


@responses.activate
def test_the_client_announces_each_wait_with_its_bound() -> None:
    announced: list[tuple[float, str]] = []

    class Recorder:
        def __init__(self, seconds: float, what: str) -> None:
            announced.append((seconds, what))

        def __enter__(self) -> None:
            return None

        def __exit__(self, *exc: object) -> None:
            return None

    slept: list[float] = []
    client = BitgetClient(session=requests.Session(), timeout=10.0, sleep=slept.append, on_blocking=Recorder)
    url = "https://api.bitget.com/api/v2/mix/market/ticker"
    ticker = {"code": "00000", "msg": "success", "requestTime": 1, "data": [{
        "symbol": "BTCUSDT", "lastPr": "65000", "askPr": "65000.1", "bidPr": "64999.9", "markPrice": "65000",
        "indexPrice": "65000", "ts": "1"}]}  # fmt: skip
    responses.get(url, status=429, json={"code": "429", "msg": "Too Many Requests"}, headers={"Retry-After": "7"})
    responses.get(url, json=ticker)
    assert client.ticker("BTCUSDT").last == Decimal("65000")
    request_bound = 2 * 10.0 + 1.0
    assert announced == [(request_bound, "/api/v2/mix/market/ticker"), (7.0, "rate limit backoff"),
                         (request_bound, "/api/v2/mix/market/ticker")]
    assert slept == [7.0]


# --- work in a mailbox ----------------------------------------------------------------------------------
def test_work_queued_behind_a_hang_goes_to_the_new_instance_and_never_to_the_old(journal: Journal) -> None:
    script = Script()
    sup = start(journal, spec("order_manager", script))
    proxy = sup.proxy()
    ref = proxy.child_ref("order_manager").get(timeout=WAIT_S)
    try:
        ref.tell(Call(bound_s=0.01))  # stuck past its bound: a hang
        ref.tell(WatchSymbol("BTCUSDT"))
        ref.tell(WatchSymbol("ETHUSDT"))
        wait_until(lambda: [m for n, m in script.handled if n == 2] == [WatchSymbol("BTCUSDT"), WatchSymbol("ETHUSDT")],
                   timeout=WAIT_S, what="the queued work handled by the new instance, in order")
        (failed,) = events(journal, "ACTOR_FAILED")
        assert failed["mailbox"] == ["WatchSymbol symbol=BTCUSDT", "WatchSymbol symbol=ETHUSDT"]
        assert events(journal, "ACTOR_WORK_RESUMED") == [{"name": "order_manager", "messages": 2}]
    finally:
        script.release.set()
    wait_until(lambda: ref.actor_stopped.is_set(), what="the old instance stopped")
    assert [m for n, m in script.handled if n == 1 and isinstance(m, WatchSymbol)] == []


def test_work_left_by_a_crash_and_work_told_while_down_reach_the_new_instance(journal: Journal) -> None:
    script = Script()
    directory = ActorDirectory()
    slow = RestartPolicy(max_restarts=3, within_s=60.0, backoff_base_s=0.3, backoff_max_s=0.3, jitter=0.0)
    sup = start(journal, spec("order_manager", script), directory=directory, policy=slow)
    proxy = sup.proxy()
    ref = proxy.child_ref("order_manager").get(timeout=WAIT_S)
    ref.tell(Crash())
    ref.tell(WatchSymbol("BTCUSDT"))  # behind the crash in the mailbox
    wait_until(lambda: proxy.children_states().get(timeout=WAIT_S) == {"order_manager": "restart_pending"},
               timeout=WAIT_S, what="the restart pending")
    assert directory.tell("order_manager", WatchSymbol("ETHUSDT")) is True  # held while down
    tick = PriceTick("ETHUSDT", Decimal("3000"), Decimal("3000"), 1, "rest")
    assert directory.tell("order_manager", tick) is False  # a price is never held: it would arrive stale
    wait_until(lambda: [m for n, m in script.handled if n == 2] == [WatchSymbol("BTCUSDT"), WatchSymbol("ETHUSDT")],
               timeout=WAIT_S, what="both handed to the new instance, in order")


def test_work_for_an_actor_left_stopped_is_journaled_and_reported(journal: Journal) -> None:
    script = Script()
    directory = ActorDirectory()
    dropped: list[tuple[str, list[str], str]] = []
    never = RestartPolicy(max_restarts=0, within_s=60.0, backoff_base_s=0.001, backoff_max_s=0.005, jitter=0.0)
    sup = start(journal, spec("parser", script, critical=False), directory=directory, policy=never,
                on_work_dropped=lambda *report: dropped.append(report))
    ref = sup.proxy().child_ref("parser").get(timeout=WAIT_S)
    ref.tell(Crash())
    ref.tell(WatchSymbol("SOLUSDT"))
    wait_until(lambda: dropped, timeout=WAIT_S, what="the dropped work reported")
    assert dropped == [("parser", ["WatchSymbol symbol=SOLUSDT"], "left stopped past its restart intensity")]
    (event,) = events(journal, "ACTOR_WORK_DROPPED")
    assert event["count"] == 1 and event["messages"] == ["WatchSymbol symbol=SOLUSDT"]
    assert directory.tell("parser", WatchSymbol("XRPUSDT")) is False  # nobody will take it: the sender is told


# --- escalation and readiness -----------------------------------------------------------------------------
def test_a_critical_actor_hanging_past_its_restart_intensity_puts_the_system_in_panic(journal: Journal) -> None:
    script = Script(hang_on_start=True)
    sup = start(journal, spec("position_guard", script))
    proxy = sup.proxy()
    try:
        wait_until(lambda: proxy.get_mode().get(timeout=WAIT_S) is Mode.PANIC, timeout=WAIT_S, what="panic")
        changed = events(journal, "MODE_CHANGED")[-1]
        assert changed["source"] == "escalation" and "position_guard" in changed["reason"]
        assert all(f["hung"] for f in events(journal, "ACTOR_FAILED"))
    finally:
        script.release.set()


def test_a_restarted_critical_actor_is_not_running_until_it_has_finished_starting(journal: Journal) -> None:
    script = Script()
    sup = start(journal, spec("price_feed", script))
    board = sup.proxy().board.get(timeout=WAIT_S)
    assert board.not_running(["price_feed"]) == {}
    script.block_on_start_s = 30.0  # the next start waits on the exchange (bounded)
    sup.proxy().child_ref("price_feed").get(timeout=WAIT_S).tell(Crash())
    wait_until(lambda: board.not_running(["price_feed"]) == {"price_feed": "starting"}, timeout=WAIT_S,
               what="restarted, still starting")
    script.release.set()
    wait_until(lambda: board.not_running(["price_feed"]) == {}, timeout=WAIT_S, what="running again")


@pytest.mark.slow
def test_readyz_names_a_critical_actor_while_it_restarts(tmp_path: Path) -> None:
    supervisor = {"heartbeat_interval_seconds": 0.1, "heartbeat_timeout_seconds": 3,
                  "backoff_base_seconds": 1.5, "backoff_max_seconds": 1.5}
    with running_system(tmp_path, supervisor=supervisor) as system:
        runtime = system.runtime
        wait_until(lambda: runtime.readiness()[0], what="ready")
        ref = runtime.directory.get("price_feed")
        ref.stop()  # gone without a failure report: noticed by the next heartbeat check
        detail = wait_until(lambda: runtime.readiness()[1]["detail"].get("actors_alive"), what="red")
        assert "price_feed" in detail
        wait_until(lambda: runtime.readiness()[0], what="ready again after the restart")
        assert runtime.directory.get("price_feed") is not ref


# --- the whole runtime against a slow exchange --------------------------------------------------------------
@pytest.mark.slow
def test_no_actor_is_restarted_while_an_entry_waits_10s_for_the_exchange(tmp_path: Path) -> None:
    supervisor = {"heartbeat_interval_seconds": 0.2, "heartbeat_timeout_seconds": 1}
    with running_system(tmp_path, supervisor=supervisor, bitget={"timeout_seconds": 15}) as system:
        runtime = system.runtime
        journal = runtime.journal
        assert journal is not None
        manager = runtime.directory.get("order_manager")
        system.engine.faults.latency("place-order", 10.0)
        system.channel.add_post(system.long_signal("BTCUSDT"))
        wait_until(lambda: [r for r in journal.orders() if r.leg.startswith("entry")
                            and r.state not in (OrderState.INTENT, OrderState.SUBMITTED)],
                   timeout=30, what="the entry answered after 10 s")
        assert system.events("ACTOR_FAILED") == []
        assert runtime.directory.get("order_manager") is manager
        assert manager.ask(Heartbeat(), timeout=5) is True
        wait_until(lambda: runtime.readiness()[0], what="ready")


def test_work_reported_after_the_heartbeat_noticed_the_failure_still_reaches_the_new_instance(
    journal: Journal,
) -> None:
    script = Script()
    slow = RestartPolicy(max_restarts=3, within_s=60.0, backoff_base_s=0.3, backoff_max_s=0.3, jitter=0.0)
    sup = start(journal, spec("order_manager", script), policy=slow)
    proxy = sup.proxy()
    proxy.child_ref("order_manager").get(timeout=WAIT_S).stop()  # dead: the heartbeat check notices first
    wait_until(lambda: proxy.children_states().get(timeout=WAIT_S) == {"order_manager": "restart_pending"},
               timeout=WAIT_S, what="the restart pending")
    sup.tell(ChildFailed(name="order_manager", error="late report", pending=(WatchSymbol("BTCUSDT"),)))
    wait_until(lambda: [m for n, m in script.handled if n == 2] == [WatchSymbol("BTCUSDT")], timeout=WAIT_S,
               what="the late report's work handed to the new instance")


@pytest.mark.slow
def test_no_actor_is_restarted_while_reads_back_off_from_429s(tmp_path: Path) -> None:
    supervisor = {"heartbeat_interval_seconds": 0.1, "heartbeat_timeout_seconds": 0.5}
    with running_system(tmp_path, supervisor=supervisor) as system:
        runtime = system.runtime
        guard = runtime.directory.get("position_guard")
        # The guard's and the OrderManager's position reads back off 0.5, 1, 2, 4 s (jittered): far past the
        # heartbeat timeout, each wait within its own bound.
        system.engine.faults.fail_next("all-position", http_status=429, times=4)
        wait_until(lambda: len(system.events("RATE_LIMITED")) >= 4, timeout=30, what="the 429s")
        wait_until(lambda: len([r for r in system.engine.requests_to("all-position") if r.status == 200]) >= 3
                   and len(system.events("RATE_LIMITED")) >= 4, timeout=30, what="reads succeeding again")
        assert system.events("ACTOR_FAILED") == []
        assert runtime.directory.get("position_guard") is guard
