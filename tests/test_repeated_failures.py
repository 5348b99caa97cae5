"""An outage is said once, then counted, then its end is said: no warning per second while a poll keeps failing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ops.repeats import RepeatedFailures
from tests.e2e import running_system
from tests.waiting import wait_until

log = logging.getLogger("test.repeats")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _messages(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "test.repeats"]


def test_said_once_then_counted_once_a_window_then_recovered(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="test.repeats")
    clock = Clock()
    repeats = RepeatedFailures(log, window_s=60, clock=clock)
    for _ in range(58):  # one failure a second
        repeats.failed("price of BTCUSDT", "price of BTCUSDT unavailable: 503")
        clock.now += 1
    assert _messages(caplog) == [(logging.WARNING, "price of BTCUSDT unavailable: 503")]
    for _ in range(5):
        repeats.failed("price of BTCUSDT", "price of BTCUSDT unavailable: 503")
        clock.now += 1
    assert _messages(caplog)[1:] == [
        (logging.WARNING, "price of BTCUSDT unavailable: 503 (repeated 60 times in 60 s)")]
    repeats.succeeded("price of BTCUSDT")
    assert _messages(caplog)[2:] == [(logging.INFO, "price of BTCUSDT: recovered after 63 failures in 63 s")]
    repeats.succeeded("price of BTCUSDT")  # working on: nothing to say
    assert len(_messages(caplog)) == 3


def test_a_new_cause_is_said_at_once_and_keys_are_apart(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="test.repeats")
    clock = Clock()
    repeats = RepeatedFailures(log, clock=clock)
    repeats.failed("poll", "poll failed: HTTP 503")
    repeats.failed("poll", "poll failed: HTTP 503")
    repeats.failed("poll", "poll failed: timeout")
    repeats.failed("account", "account unreadable: 503", level=logging.ERROR)
    assert _messages(caplog) == [(logging.WARNING, "poll failed: HTTP 503"), (logging.WARNING, "poll failed: timeout"),
                                 (logging.ERROR, "account unreadable: 503")]
    assert repeats.failing("poll") and repeats.failing("account")
    repeats.succeeded("poll")
    assert _messages(caplog)[-1] == (logging.INFO, "poll: recovered after 3 failures in 0 s")
    assert not repeats.failing("poll") and repeats.failing("account")


def test_a_channel_outage_is_one_warning_and_one_recovery_line(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="following.listener")
    with running_system(tmp_path) as system:
        registry = system.runtime.metrics.registry

        def errors() -> float:
            return registry.get_sample_value("following_poll_errors_total", {"source": "listener"}) or 0

        system.channel.fail_next(503, times=6)
        recovered = wait_until(lambda: [r for r in caplog.records if "recovered after" in r.getMessage()],
                               what="the recovery line")
        assert errors() == 6
    failures = [r for r in caplog.records if r.name == "following.listener" and "poll failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].levelno == logging.WARNING
    assert recovered[0].getMessage() == "e2e_signals: channel poll: recovered after 6 failures in " + \
        recovered[0].getMessage().rsplit(" in ", 1)[1]
