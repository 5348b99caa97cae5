"""Rule parse speed: ``parsing.rules.parse_text`` per message, over the dev sets and the project's own fixtures.

Messages: ``shared/fixtures/signals-dev.jsonl`` and ``signals-dev-2.jsonl`` (when present) and
``tests/fixtures/signals/excerpt.jsonl``. Each message is parsed ``--repeat`` times after one warm-up call, each call
timed on its own; the report gives the median and p99 over all calls (every message weighs the same) and the slowest
message's median. Then one 100 KB message (dev-set messages and chatter repeated) is read ``--big-repeat`` times.
Targets: median <= 1 ms, p99 <= 5 ms, the 100 KB message <= 100 ms (exit 1 when one is missed). Each call's wall time
and its thread CPU time are both reported: on a loaded shared machine the wall p99 is mostly other processes' turns.
Run: ``.venv/bin/python -m benchmarks.rule_parse [--repeat N] [--big-repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.devset_report import shared_fixture
from parsing.rules import parse_text

REPO = Path(__file__).resolve().parents[1]
SOURCES = (
    shared_fixture("signals-dev.jsonl"),
    shared_fixture("signals-dev-2.jsonl"),
    REPO / "tests" / "fixtures" / "signals" / "excerpt.jsonl",
)
MEDIAN_MS, P99_MS, BIG_MS = 1.0, 5.0, 100.0
BIG_CHARS = 100_000


def messages() -> list[tuple[str, str]]:
    """(source file name, text) of every message found."""
    found: list[tuple[str, str]] = []
    for path in SOURCES:
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    found.append((path.name, json.loads(line)["text"]))
    return found


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--big-repeat", type=int, default=5)
    args = parser.parse_args(argv)
    texts = messages()
    if not texts:
        print("no message fixtures found", file=sys.stderr)
        return 1
    calls_ms: list[float] = []
    cpu_ms: list[float] = []
    slowest = (0.0, "")
    for _source, text in texts:
        parse_text(text)
        own: list[float] = []
        for _ in range(args.repeat):
            start, start_cpu = time.perf_counter(), time.thread_time()
            parse_text(text)
            cpu_ms.append((time.thread_time() - start_cpu) * 1000)
            own.append((time.perf_counter() - start) * 1000)
        calls_ms.extend(own)
        median = statistics.median(own)
        if median > slowest[0]:
            slowest = (median, text.split("\n", 1)[0][:40])
    by_source = {name: sum(1 for source, _ in texts if source == name) for name, _ in texts}
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()} ({platform.python_implementation()}), "
          f"{platform.system()} {platform.machine()}; repeat {args.repeat}")
    print(f"messages: {len(texts)} ({', '.join(f'{n} {name}' for name, n in by_source.items())})")
    median, p99 = statistics.median(calls_ms), percentile(calls_ms, 0.99)
    cpu_median, cpu_p99 = statistics.median(cpu_ms), percentile(cpu_ms, 0.99)
    print(f"per message (wall): median {median:.3f} ms, p99 {p99:.3f} ms; "
          f"slowest message median {slowest[0]:.3f} ms ({slowest[1]!r})")
    print(f"per message (CPU of the reading thread): median {cpu_median:.3f} ms, p99 {cpu_p99:.3f} ms; "
          f"load average {os.getloadavg()[0]:.1f}")
    filler = "\n\n".join(text for _, text in texts) + "\nlorem ipsum dolor sit amet 123.45 " * 50
    big = (filler * (BIG_CHARS // len(filler) + 1))[:BIG_CHARS]
    parse_text(big)
    big_ms: list[float] = []
    for _ in range(args.big_repeat):
        start = time.perf_counter()
        parse_text(big)
        big_ms.append((time.perf_counter() - start) * 1000)
    big_median = statistics.median(big_ms)
    print(f"one {len(big):,}-character message: median {big_median:.1f} ms, max {max(big_ms):.1f} ms "
          f"({args.big_repeat} reads)")
    # wall time on a shared machine includes other processes' turns: a target counts as missed when both the wall
    # and the CPU figure miss it (the CPU figure alone is the reader's own cost)
    missed = [name for name, value, cpu, limit in (("median", median, cpu_median, MEDIAN_MS),
                                                   ("p99", p99, cpu_p99, P99_MS),
                                                   ("100 KB", big_median, big_median, BIG_MS))
              if min(value, cpu) > limit]
    print("targets (median <= 1 ms, p99 <= 5 ms, 100 KB <= 100 ms): " + (f"MISSED {missed}" if missed else "met"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
