"""Web preview polls: the newest page every time vs newer posts only (``?after=<last id>``), bytes and CPU per poll.

A loopback ``ChannelServer`` holds a channel of N realistic posts (signals and updates with line breaks, replies);
the real ``WebPreviewClient`` polls it. Per mode, the bot-side CPU time (``time.process_time`` of this process,
minus the channel server's own rendering, which runs in a thread of the same process and is timed separately) and
the bytes of each page body, over M polls when nothing new was posted (the steady state of a listener):

* ``latest``: ``fetch_latest()`` (the newest page, ~20 posts), what the listener does today;
* ``after``: ``fetch_after(last_id)`` (posts after the last one seen: none).

Edits are the catch: an edit changes an old post, and only a page showing that post reveals it, so an ``after``
poller must still read the newest page every K polls; the figures give the cost per poll for a mix.

Run: ``.venv/bin/python -m benchmarks.preview_polls [--posts 40] [--polls 300]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Sequence

from parsing.channel_server import ChannelServer
from parsing.web_preview import WebPreviewClient

CHANNEL = "bench_preview"
TEXTS = [
    "#BTC/USDT LONG\nEntry Zone: 64950 - 65050\nTake-Profit Targets:\n1) 65600\n2) 66300\n3) 67000\n"
    "Stop Targets:\n1) 64300\nLeverage: Isolated (5X)",
    "TP1 hit ✅ Move stop to break-even",
    "#ETH/USDT SHORT 🔻\nEntry: 3200\nTargets: 3150 / 3100 / 3050\nSL: 3260\nLeverage: Cross 10x",
    "Weekly results: +42% on 12 signals. Thanks for trusting us! 🚀🚀🚀",
    "#SOL close 50% now, move SL to entry",
]


class TimedServer(ChannelServer):
    def __init__(self, channel: str) -> None:
        super().__init__(channel)
        self.render_cpu = 0.0
        self._cpu_lock = threading.Lock()

    def _page(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        started = time.thread_time()
        result = super()._page(query)
        with self._cpu_lock:
            self.render_cpu += time.thread_time() - started
        return result


def measure(mode: str, polls: int, posts: int) -> tuple[float, float, float]:
    """(median wall ms per poll, client CPU ms per poll, median bytes per page)."""
    server = TimedServer(CHANNEL)
    url = server.start()
    try:
        for n in range(posts):
            server.add_post(TEXTS[n % len(TEXTS)], reply_to=n if n % len(TEXTS) == 1 and n > 0 else None)
        client = WebPreviewClient(url, CHANNEL, timeout=10)
        last = max(p.message_id for p in client.fetch_latest())
        walls: list[float] = []
        sizes: list[int] = []
        server.render_cpu = 0.0
        cpu_start = time.process_time()
        for _ in range(polls):
            started = time.perf_counter()
            if mode == "latest":
                client.fetch_latest()
            else:
                client.fetch_after(last)
            walls.append((time.perf_counter() - started) * 1000)
            sizes.append(len(client.last_html.encode("utf-8")))
        cpu = time.process_time() - cpu_start - server.render_cpu
        return statistics.median(walls), cpu * 1000 / polls, statistics.median(sizes)
    finally:
        server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.preview_polls", description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=40)
    parser.add_argument("--polls", type=int, default=300)
    args = parser.parse_args(argv)
    print(f"web preview polls with nothing new, {args.posts} posts on the channel, {args.polls} polls per mode "
          f"({time.strftime('%Y-%m-%d %H:%M')})")
    results = {}
    for mode in ("latest", "after", "latest", "after"):  # alternated twice, the second pair reported
        results[mode] = measure(mode, args.polls, args.posts)
    for mode, (wall, cpu, size) in results.items():
        print(f"  {mode:<6}: wall median {wall:.2f} ms, client CPU {cpu:.2f} ms/poll, page {size / 1024:.1f} KiB")
    latest, after = results["latest"], results["after"]
    for every in (5, 10, 20):
        cpu = (latest[1] + (every - 1) * after[1]) / every
        size = (latest[2] + (every - 1) * after[2]) / every
        print(f"  after, full page every {every:>2} polls: client CPU {cpu:.2f} ms/poll "
              f"({cpu / latest[1]:.0%} of latest), {size / 1024:.1f} KiB/poll ({size / latest[2]:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
