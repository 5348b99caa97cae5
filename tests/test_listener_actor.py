"""The Listener actor stays responsive while a poll waits on the network, and fails (to be restarted) when a
poll is really stuck."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pykka

from actors.listener import Listener, ListenerSettings
from actors.messages import ChildFailed, Heartbeat, PostSeen
from ops.metrics import Metrics
from parsing.posts import Post
from tests.waiting import wait_until
from trading.journal import Journal


class Recorder:
    """Stands in for the Parser's address and the supervisor's ref: anything told is kept."""

    def __init__(self) -> None:
        self.told: list[Any] = []
        self._lock = threading.Lock()

    def tell(self, message: Any) -> bool:
        with self._lock:
            self.told.append(message)
        return True

    def messages(self) -> list[Any]:
        with self._lock:
            return list(self.told)


class GatedSource:
    """A post source whose fetch waits until the test opens the gate (a page at the end of its timeout)."""

    channel = "SigDesk"
    timeout = 1.0

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.posts: list[Post] = []

    def fetch_latest(self) -> list[Post]:
        self.entered.set()
        self.gate.wait(10)
        return list(self.posts)

    def fetch_before(self, message_id: int) -> list[Post]:
        return []


def start_listener(tmp_path: Path, source: GatedSource, parser: Recorder, supervisor: Recorder | None = None,
                   **options: Any) -> tuple[pykka.ActorRef[Any], Journal]:
    journal = Journal(str(tmp_path / "journal.sqlite"))
    journal.set_flag("listener_baseline:SigDesk", "1")  # not the first start: posts are new
    ref = Listener.start(name="listener", supervisor=supervisor, settings=ListenerSettings(interval_s=0.05, **options),
                         client=source, journal=journal, parser=parser, metrics=Metrics())
    return ref, journal


def test_heartbeats_are_answered_while_a_poll_waits_on_the_network(tmp_path: Path) -> None:
    source, parser = GatedSource(), Recorder()
    source.posts = [Post("SigDesk", 1, "BTC LONG")]
    ref, journal = start_listener(tmp_path, source, parser)
    try:
        assert source.entered.wait(5)
        assert ref.ask(Heartbeat(), timeout=2) is True  # answered while the poll stays blocked (gate: 10 s)
        assert parser.messages() == []
        source.gate.set()
        wait_until(parser.messages, timeout=5, what="the post handed on")
        assert [type(m) for m in parser.messages()] == [PostSeen]
    finally:
        source.gate.set()
        ref.stop()
        journal.close()


def test_a_poll_stuck_past_its_deadline_fails_the_actor_for_a_restart(tmp_path: Path) -> None:
    source, parser, supervisor = GatedSource(), Recorder(), Recorder()
    ref, journal = start_listener(tmp_path, source, parser, supervisor, poll_deadline_s=0.3)
    try:
        failure = wait_until(lambda: [m for m in supervisor.messages() if isinstance(m, ChildFailed)], timeout=5,
                             what="the failure report")
        assert failure[0].name == "listener" and "stuck for more than 0.3s" in failure[0].error
        wait_until(lambda: not ref.is_alive(), timeout=5, what="the actor stopped")
    finally:
        source.gate.set()
        journal.close()
