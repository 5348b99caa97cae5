"""Telegram mode: delivery delay from a message published on the channel to the Parser, with push and poll-only.

The real ``Listener`` actor and ``TelegramSource`` over the fake Telethon client of the tests
(``tests/fake_telethon.py``:
it pushes each new message to the subscribed handlers on the source's event loop, as Telethon does), a journal in a
temporary directory, and a stand-in Parser that timestamps every ``PostSeen``. Per mode, N messages one at a time;
the delay is from ``post()`` (the message exists, and with push Telegram sends it) to the Parser receiving it.
Poll-only uses ``listener.polling_seconds`` (default 5 s, the product default); push keeps the same poll as catch-up.

Run: ``.venv/bin/python -m benchmarks.telegram_push [--messages 30] [--poll-seconds 5]``
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from actors.listener import Listener, ListenerSettings
from actors.messages import PostSeen
from benchmarks.pipeline_latency import percentile
from ops.metrics import Metrics
from parsing.telegram_source import TelegramSource
from tests.fake_telethon import FakeTelegramClient, fake_event_builders
from trading.journal import Journal

CHANNEL = "BenchPush"


class TimedParser:
    """Stands in for the Parser's address: the monotonic time each post id first arrived."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.arrived: dict[int, float] = {}

    def tell(self, message: Any) -> bool:
        if isinstance(message, PostSeen):
            with self._lock:
                self.arrived.setdefault(message.post.message_id, time.monotonic())
                self._lock.notify_all()
        return True

    def wait_for(self, message_id: int, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while message_id not in self.arrived:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._lock.wait(remaining)
            return self.arrived[message_id]


def run_mode(push: bool, messages: int, poll_s: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    delays: list[float] = []
    with tempfile.TemporaryDirectory(prefix="telegram-push-") as tmp:
        journal = Journal(str(Path(tmp) / "journal.sqlite"))
        journal.set_flag(f"listener_baseline:{CHANNEL}", "1")
        fake = FakeTelegramClient(CHANNEL)
        fake.post("on the channel before the start")
        source = TelegramSource(CHANNEL, lambda: fake, page_size=20, event_builders=fake_event_builders)
        parser = TimedParser()
        ref = Listener.start(name="listener", supervisor=None, settings=ListenerSettings(interval_s=poll_s, push=push),
                             client=source, journal=journal, parser=parser, metrics=Metrics())
        try:
            if parser.wait_for(1, 30) is None or (push and not _wait(lambda: bool(fake.handlers), 30)):
                raise SystemExit("the listener did not start")
            for n in range(messages):
                time.sleep(rng.uniform(0, 0.2))  # a random phase of the poll cycle
                started = time.monotonic()
                message_id = fake.post(f"#BTC/USDT LONG {n}")
                arrived = parser.wait_for(message_id, poll_s * 3 + 10)
                if arrived is not None:
                    delays.append((arrived - started) * 1000)
        finally:
            ref.stop()
            source.close()
            journal.close()
    return delays


def _wait(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.telegram_push", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=30)
    parser.add_argument("--poll-seconds", type=float, default=5.0, help="listener.polling_seconds (default 5)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    print(f"telegram delivery delay: message published -> Parser ({time.strftime('%Y-%m-%d %H:%M')}); "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}; poll every {args.poll_seconds:g} s")
    failed = False
    for push in (True, False):
        delays = run_mode(push, args.messages, args.poll_seconds, args.seed)
        failed |= len(delays) != args.messages
        if delays:
            print(f"  {'push + poll' if push else 'poll only  '}: {len(delays)}/{args.messages} delivered; median "
                  f"{statistics.median(delays):.1f} ms, p90 {percentile(delays, 90):.1f} ms, "
                  f"max {max(delays):.1f} ms")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
