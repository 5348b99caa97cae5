"""Rule parse speed: ``parsing.rules.parse_text`` per message, over the dev set and the project's own fixtures.

Messages: ``../shared/fixtures/signals-dev.jsonl`` (when present) and ``tests/fixtures/signals/excerpt.jsonl``.
Each message is parsed ``--repeat`` times after one warm-up call, each call timed on its own; the report gives the
median and p99 over all calls (every message weighs the same) and the slowest message's median.
Run: ``.venv/bin/python -m benchmarks.rule_parse [--repeat N]``.
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

from parsing.rules import parse_text

REPO = Path(__file__).resolve().parents[1]
SOURCES = (
    REPO.parent / "shared" / "fixtures" / "signals-dev.jsonl",
    REPO / "tests" / "fixtures" / "signals" / "excerpt.jsonl",
)


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
    args = parser.parse_args(argv)
    texts = messages()
    if not texts:
        print("no message fixtures found", file=sys.stderr)
        return 1
    calls_ms: list[float] = []
    slowest = (0.0, "")
    for _source, text in texts:
        parse_text(text)
        own: list[float] = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            parse_text(text)
            own.append((time.perf_counter() - start) * 1000)
        calls_ms.extend(own)
        median = statistics.median(own)
        if median > slowest[0]:
            slowest = (median, text.split("\n", 1)[0][:40])
    by_source = {name: sum(1 for source, _ in texts if source == name) for name, _ in texts}
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()} ({platform.python_implementation()}), "
          f"{platform.system()} {platform.machine()}; repeat {args.repeat}")
    print(f"messages: {len(texts)} ({', '.join(f'{n} {name}' for name, n in by_source.items())})")
    print(f"per message: median {statistics.median(calls_ms):.3f} ms, p99 {percentile(calls_ms, 0.99):.3f} ms; "
          f"slowest message median {slowest[0]:.3f} ms ({slowest[1]!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
