"""End-to-end latency: a post becoming visible on the channel server -> the entry accepted by the simulator.

Starts the whole runtime on loopback (the same ``runtime.wiring.Runtime`` that ``following run`` starts, in dry
run on the built-in simulator, with a loopback ``ChannelServer`` as the channel), then publishes N valid long
signals one at a time and reports two distributions:

* ``visible -> accepted``: from the moment ``add_post`` returned (the post is on the page) to the moment the
  simulator accepted the entry order. Includes the wait for the listener's next poll (up to ``--poll-seconds``).
* ``served -> accepted``: from the moment the channel server first served a page containing the post (the
  poll that picked it up) to the entry's acceptance: the product's own processing time, beyond the poll wait.

Nothing in the product is patched. Two observation points are added from outside, in this module only: the
channel server is subclassed to timestamp each page it serves and the post ids on it, and the simulator
engine's ``place_order`` is wrapped on the instance to timestamp acceptance (the simulator stands in for
Bitget; the order's own ``c_time`` is whole milliseconds, the wrapper gives sub-millisecond times and is
cross-checked against ``c_time``).

With ``--latency-ms L`` the simulator answers every request after ``L`` ms (``FaultPlan.base_latency``, as
``following sim --latency-ms``): a network round trip. The report then also counts the requests the simulator
logged between the page that carried the post being served and the entry order (the critical path as an outside
request log shows it; a background poll landing in that window counts too, and is listed by endpoint).

``--prepare`` lists the symbols the run posts on in ``risk.prepare_settings_symbols`` (and caps the leverage at
the signals' 5x, ``risk.max_leverage: 5``, the leverage then predicted) and waits until their margin mode and
leverage were set ahead (``SETTINGS_PREPARED``) before the first post: a symbol's first signal on a watched symbol.

``--idle-positions 0,1,5`` measures the idle request rate instead: that many positions opened through signals,
then every request the simulator logs over ``--idle-seconds`` counted, per endpoint.

Run: ``.venv/bin/python -m benchmarks.pipeline_latency [--posts N] [--poll-seconds S] [--latency-ms L]
[--idle-positions 0,1,5 --idle-seconds 30]``. Exit 0 when every post was traded within its deadline, 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from exchange.sim.catalogue import DEFAULT_CONTRACTS
from parsing.channel_server import ChannelServer
from runtime.config import Config, load_secrets, parse_config
from runtime.wiring import Runtime
from trading.journal import OrderState

CHANNEL = "bench_signals"
OPEN_STATES = [OrderState.INTENT, OrderState.SUBMITTED, OrderState.ACCEPTED, OrderState.PARTIAL]
_POST_ID = re.compile(rb'data-post="[^"/]+/(\d+)"')


class TimedChannelServer(ChannelServer):
    """The loopback channel, plus the wall-clock time each post id was first served on a 200 page."""

    def __init__(self, channel: str) -> None:
        self._served_lock = threading.Lock()
        self.first_served: dict[int, float] = {}
        self.pages_served = 0
        super().__init__(channel)

    def _page(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = super()._page(query)
        served_at = time.time()  # the page is rendered; it goes on the socket right after this
        if status == 200:
            ids = [int(m) for m in _POST_ID.findall(body)]
            with self._served_lock:
                self.pages_served += 1
                for message_id in ids:
                    self.first_served.setdefault(message_id, served_at)
        return status, headers, body

    def served_at(self, message_id: int) -> float | None:
        with self._served_lock:
            return self.first_served.get(message_id)


@dataclass(frozen=True)
class Accepted:
    symbol: str
    at: float  # wall clock, seconds, taken right after the engine accepted the order
    c_time_ms: int  # the order's own creation time (engine clock: wall-clock milliseconds)


class AcceptanceProbe:
    """Wraps ``engine.place_order`` on the instance: records every accepted entry (opening) order."""

    def __init__(self, engine: Any) -> None:
        self._lock = threading.Condition()
        self._accepted: list[Accepted] = []
        original: Callable[..., Any] = engine.place_order

        def place_order(*args: Any, **kwargs: Any) -> Any:
            order = original(*args, **kwargs)
            at = time.time()
            if not order.reduce_only and order.trade_side != "close" and order.order_source == "normal":
                with self._lock:
                    self._accepted.append(Accepted(order.symbol, at, order.c_time))
                    self._lock.notify_all()
            return order

        engine.place_order = place_order

    def wait_for(self, symbol: str, after_index: int, timeout: float) -> Accepted | None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for item in self._accepted[after_index:]:
                    if item.symbol == symbol:
                        return item
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._lock.wait(remaining)

    def count(self) -> int:
        with self._lock:
            return len(self._accepted)


def bench_config(tmp: Path, channel_url: str, poll_seconds: float, *, fast_monitors: bool = False,
                 price_feed: str = "rest", prepare: Sequence[str] = ()) -> Config:
    """The runtime on loopback with risk limits that allow back-to-back entries.

    By default the monitors (positions, open orders, account, price feed, supervisor heartbeats) keep the
    product's default intervals, as a user runs it; ``fast_monitors`` uses the end-to-end tests' much faster
    polling instead (tests/e2e.py), which competes with the entry path for the exchange rate limits.
    """
    data: dict[str, Any] = {
        "dry_run": True,
        "listener": {"target_url": f"{channel_url}/s/{CHANNEL}", "polling_seconds": poll_seconds,
                     "jitter_seconds": 0, "backoff_max_seconds": 0.2},
        "risk": {"cooldown_seconds": 0, "max_open_positions": 100},
        # the simulator serves no WebSocket in dry run: the price feed polls REST at its default interval
        "monitor": {"price_feed": {"mode": price_feed}, "health": {"port": 0}},
        # prices stand still (and never come from the network): every signal stays valid
        "paper": {"seed": 3, "tick_seconds": 3600, "live_prices": False},
        "kill_switch": {"file": str(tmp / "KILL_SWITCH")},
        "storage": {"db_path": str(tmp / "journal.sqlite"), "media_dir": str(tmp / "media")},
        "logging": {"level": "WARNING"},
    }
    if prepare:  # settings ahead on these symbols, at the leverage the signals ask (long_signal: 5x)
        data["risk"].update({"prepare_settings_symbols": list(prepare), "max_leverage": 5})
    if fast_monitors:
        data["risk"]["stoploss"] = {"repair_timeout_seconds": 2}
        data["monitor"] = {
            "poll_intervals": {"account_seconds": 0.25, "positions_seconds": 0.25, "open_orders_seconds": 0.2},
            "price_feed": {"mode": "rest", "interval_seconds": 0.2},
            "health": {"port": 0},
        }
        data["kill_switch"]["poll_seconds"] = 0.05
        data["supervisor"] = {"heartbeat_interval_seconds": 0.2, "heartbeat_timeout_seconds": 3,
                              "backoff_base_seconds": 0.05, "backoff_max_seconds": 0.2}
    return parse_config(data)


def long_signal(engine: Any, symbol: str) -> str:
    """A valid long signal around the live simulator price (as ``tests.e2e.System.long_signal``)."""
    contract = engine.contract(symbol)

    def price(factor: str) -> Decimal:
        return contract.round_price(engine.price(symbol) * Decimal(factor))

    return (
        f"#{symbol[:-4]}/USDT LONG\n"
        f"Entry Zone: {price('0.9995')} - {price('1.0005')}\n"
        f"Take-Profit Targets:\n1) {price('1.01')}\n2) {price('1.02')}\n"
        f"Stop Targets:\n1) {price('0.99')}\n"
        f"Leverage: Isolated (5X)"
    )


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def summary(name: str, values_ms: Sequence[float]) -> str:
    return (f"{name:<22} median {statistics.median(values_ms):7.1f}  p90 {percentile(values_ms, 90):7.1f}  "
            f"p99 {percentile(values_ms, 99):7.1f}  max {max(values_ms):7.1f}  min {min(values_ms):7.1f}  (ms)")


def wait_ready(runtime: Runtime, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if runtime.readiness()[0]:
            return True
        time.sleep(0.05)
    return False


def wait_prepared(runtime: Runtime, symbols: Sequence[str], timeout: float) -> bool:
    """Every symbol's margin mode and leverage set ahead (or found in place) before the first post."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        settings = [runtime.facts.settings(symbol) for symbol in symbols]
        if all(fact is not None and fact.value.long_leverage == 5 and fact.value.margin_mode == "isolated"
               for fact in settings):
            return True
        time.sleep(0.2)
    return False


def requests_between(engine: Any, start: float, end: float) -> list[str]:
    """Endpoints of the requests the simulator answered in (start, end) (its log's reply-ready times)."""
    return [r.endpoint for r in list(engine.request_log) if start < r.at < end]


def _counts(endpoints: Sequence[str]) -> str:
    tally: dict[str, int] = {}
    for endpoint in endpoints:
        tally[endpoint] = tally.get(endpoint, 0) + 1
    return ", ".join(f"{name} {n}" for name, n in sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))) or "none"


def open_positions(runtime: Runtime, channel: TimedChannelServer, probe: AcceptanceProbe, count: int,
                   deadline_s: float) -> int:
    """Open ``count`` positions through signals (market-crossing limit entries fill at once on the simulator)."""
    assert runtime.paper is not None
    engine = runtime.paper.engine
    opened = 0
    for symbol in sorted(engine.contracts)[:count]:
        before = probe.count()
        channel.add_post(long_signal(engine, symbol))
        if probe.wait_for(symbol, before, deadline_s) is not None:
            opened += 1
    return opened


def run_idle(counts: Sequence[int], idle_s: float, deadline_s: float, latency_ms: float,
             price_feed: str = "rest") -> int:
    """Idle requests per second with 0, 1, 5 ... open positions (product default monitor intervals)."""
    print(f"idle request rate ({time.strftime('%Y-%m-%d %H:%M')}), window {idle_s:g} s, "
          f"simulator latency {latency_ms:g} ms, monitors at the product defaults, price feed {price_feed}")
    failed = 0
    for count in counts:
        with tempfile.TemporaryDirectory(prefix="idle-rate-") as tmp_name:
            tmp = Path(tmp_name)
            channel = TimedChannelServer(CHANNEL)
            url = channel.start()
            config = bench_config(tmp, url, 1.0, price_feed=price_feed)
            runtime = Runtime(config, load_secrets(config, {}), env={})
            try:
                runtime.start()
                assert runtime.paper is not None
                engine = runtime.paper.engine
                engine.faults.base_latency(latency_ms / 1000)
                probe = AcceptanceProbe(engine)
                if not wait_ready(runtime, 20):
                    print(f"runtime not ready after 20 s: {runtime.readiness()[1]}", file=sys.stderr)
                    return 1
                opened = open_positions(runtime, channel, probe, count, deadline_s)
                time.sleep(5.0)  # the entries' follow-up (stops, take-profits, first passes) settles
                positions = sum(1 for p in engine.positions() if p.size > 0)
                start = time.time()
                time.sleep(idle_s)
                seen = requests_between(engine, start, time.time())
            finally:
                runtime.stop()
                channel.stop()
        failed += opened != count
        print(f"  {count} open positions (opened {opened}, on the exchange {positions}): "
              f"{len(seen) / idle_s:.2f} requests/s ({_counts(seen)})")
    return 1 if failed else 0


def run(posts: int, poll_seconds: float, deadline_s: float, settle_s: float, seed: int, *,
        fast_monitors: bool = False, verbose: bool = False, latency_ms: float = 0.0, symbol_count: int = 0,
        prepare: bool = False) -> int:
    rng = random.Random(seed)
    own: list[int] = []
    fetched_names: list[str] = []
    settings_sets = 0
    prepared_sets = 0
    repeat_ms: list[float] = []  # served -> accepted of posts on a symbol traded before (steady state)
    repeat_windows: list[list[str]] = []
    first_ms: list[float] = []  # ... of the first post on each symbol (first use)
    first_windows: list[list[str]] = []
    window_requests: list[list[str]] = []
    raw_ms: list[float] = []
    processing_ms: list[float] = []
    clock_skew_ms: list[float] = []
    failures: list[str] = []
    open_rows: dict[str, int] = {}
    detail_requests = 0
    mode: Any = None
    symbols: list[str] = []
    with tempfile.TemporaryDirectory(prefix="pipeline-latency-") as tmp_name:
        tmp = Path(tmp_name)
        channel = TimedChannelServer(CHANNEL)
        url = channel.start()
        catalogue = sorted(c.symbol for c in DEFAULT_CONTRACTS)
        symbols = catalogue[:symbol_count] if symbol_count > 0 else catalogue
        config = bench_config(tmp, url, poll_seconds, fast_monitors=fast_monitors,
                              prepare=symbols if prepare else ())
        runtime = Runtime(config, load_secrets(config, {}), env={})
        try:
            runtime.start()
            assert runtime.paper is not None
            engine = runtime.paper.engine
            probe = AcceptanceProbe(engine)
            engine.faults.base_latency(latency_ms / 1000)
            if not wait_ready(runtime, 20):
                print(f"runtime not ready after 20 s: {runtime.readiness()[1]}", file=sys.stderr)
                return 1
            assert sorted(engine.contracts) == catalogue
            if prepare and not wait_prepared(runtime, symbols, 120):
                print("settings ahead not done within 120 s", file=sys.stderr)
                return 1
            prepared_sets = len(engine.requests_to("set-margin-mode")) + len(engine.requests_to("set-leverage"))
            for i in range(posts):
                symbol = symbols[i % len(symbols)]
                if any(p.symbol == symbol and p.size > 0 for p in engine.positions()):
                    engine.close_positions(symbol)
                    time.sleep(settle_s)  # let the product see the position gone before reusing the symbol
                # land the post at a random phase of the poll cycle
                time.sleep(rng.uniform(0, poll_seconds))
                text = long_signal(engine, symbol)
                before = probe.count()
                message_id = channel.add_post(text)
                t_visible = time.time()
                accepted = probe.wait_for(symbol, before, deadline_s)
                if accepted is None:
                    failures.append(f"post {message_id} ({symbol}): no entry within {deadline_s:g} s")
                    continue
                served = channel.served_at(message_id)
                raw_ms.append((accepted.at - t_visible) * 1000)
                clock_skew_ms.append(accepted.at * 1000 - accepted.c_time_ms)
                if served is not None:
                    processing_ms.append((accepted.at - served) * 1000)
                    window_requests.append(requests_between(engine, served, accepted.at))
                    if i >= len(symbols):
                        repeat_ms.append(processing_ms[-1])
                        repeat_windows.append(window_requests[-1])
                    else:
                        first_ms.append(processing_ms[-1])
                        first_windows.append(window_requests[-1])
                # let the rest of the bundle (stop plan, journal, monitors) settle before the next post
                time.sleep(settle_s)
            mode = runtime.gate.mode
            assert runtime.journal is not None
            for row in runtime.journal.orders(states=OPEN_STATES):
                leg = row.leg.rstrip("0123456789")
                open_rows[leg] = open_rows.get(leg, 0) + 1
            detail_requests = len(engine.requests_to("detail"))
            # The decisions' own requests (trading/facts.py journals which facts each approval used and from where):
            # a fact "fetched" was a request on the critical path; plus the settings set and the order itself.
            own = [sum(1 for fact in event.detail.get("facts", {}).values() if fact.get("source") == "fetched")
                   for event in runtime.journal.events("DECISION_FACTS")]
            fetched_names = [name for event in runtime.journal.events("DECISION_FACTS")
                             for name, fact in event.detail.get("facts", {}).items() if fact.get("source") == "fetched"]
            settings_sets = len(engine.requests_to("set-margin-mode")) + len(engine.requests_to("set-leverage"))
        finally:
            runtime.stop()
            channel.stop()
    print(f"pipeline latency: post visible -> entry accepted by the simulator ({time.strftime('%Y-%m-%d %H:%M')})")
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()} ({platform.python_implementation()}), "
          f"{platform.system()} {platform.machine()}")
    print(f"posts {posts}, traded {len(raw_ms)}, listener poll every {poll_seconds:g} s, "
          f"per-post deadline {deadline_s:g} s, monitors {'fast (e2e)' if fast_monitors else 'default'}, "
          f"simulator latency {latency_ms:g} ms per request, "
          f"final mode {getattr(mode, 'value', mode)}")
    if raw_ms:
        print(summary("visible -> accepted", raw_ms))
    if processing_ms:
        print(summary("served -> accepted", processing_ms))
    for label, timings, windows in (("all posts", processing_ms, window_requests),
                                    ("first post on a symbol (first use)", first_ms, first_windows),
                                    ("symbol traded before (steady state)", repeat_ms, repeat_windows)):
        if not windows:
            continue
        sizes = [len(w) + 1 for w in windows]  # + the place-order itself
        print(f"{label}: {len(windows)} posts; served -> accepted median {statistics.median(timings):.1f} ms, "
              f"p90 {percentile(timings, 90):.1f} ms; requests served -> entry (place-order included): median "
              f"{statistics.median(sizes):g}, min {min(sizes)}, max {max(sizes)}; all windows: "
              f"{_counts([e for w in windows for e in w])}")
        if latency_ms > 0:
            print(f"  = {statistics.median(timings) / latency_ms:.2f} round trips of {latency_ms:g} ms at the median "
                  f"(target <= 1.2 round trips + 50 ms = {1.2 * latency_ms + 50:.0f} ms)")
    if clock_skew_ms:
        print(f"probe vs order c_time: {min(clock_skew_ms):.2f} .. {max(clock_skew_ms):.2f} ms "
              f"(c_time is whole ms, taken inside the engine)")
    if own:
        steady = own[len(symbols):] if len(own) > len(symbols) else []
        print(f"the decisions' own requests (facts fetched, from DECISION_FACTS): per entry {own}; steady state "
              f"(symbol traded before) {steady}; fetched: {_counts(fetched_names)}; set-margin-mode + set-leverage "
              f"requests in the run: {settings_sets} (for {len(symbols)} symbols"
              f"{f', {prepared_sets} of them ahead, before the first post' if prepare else ''}); + 1 place-order each")
    print(f"journal orders still in an open state at the end, by leg: {open_rows or 'none'}; "
          f"order-detail requests seen by the simulator: {detail_requests}")
    if verbose:
        for n, (raw, proc) in enumerate(zip(raw_ms, processing_ms, strict=False), start=1):
            print(f"  post {n:3d}: visible->accepted {raw:8.1f} ms  served->accepted {proc:8.1f} ms")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 0 if not failures and len(raw_ms) == posts else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline_latency", description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=30, help="number of signals to publish (default 30)")
    parser.add_argument("--poll-seconds", type=float, default=0.05,
                        help="listener polling interval in seconds (default 0.05)")
    parser.add_argument("--deadline", type=float, default=10.0, help="per-post deadline in seconds (default 10)")
    parser.add_argument("--settle", type=float, default=0.3,
                        help="pause after each entry before the next post, seconds (default 0.3)")
    parser.add_argument("--fast-monitors", action="store_true",
                        help="poll positions/orders/account/prices as fast as the end-to-end tests do")
    parser.add_argument("--verbose", action="store_true", help="print every post's figures")
    parser.add_argument("--seed", type=int, default=1, help="seed for the post timing jitter")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="the simulator answers every request after this many ms (default 0)")
    parser.add_argument("--symbols", type=int, default=0,
                        help="round-robin over the first N simulator symbols (default: all 11)")
    parser.add_argument("--prepare", action="store_true",
                        help="watch the run's symbols (risk.prepare_settings_symbols, max_leverage 5): settings ahead")
    parser.add_argument("--idle-positions", default=None,
                        help="measure the idle request rate with these numbers of open positions, e.g. 0,1,5")
    parser.add_argument("--price-feed", choices=["rest", "ws"], default="rest",
                        help="idle run: the price feed's mode (ws: the simulator's WebSocket, the product default)")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="idle window per count (default 30)")
    args = parser.parse_args(argv)
    if args.posts < 1 or args.poll_seconds <= 0 or args.deadline <= 0 or args.settle < 0:
        parser.error("--posts must be >= 1; --poll-seconds and --deadline > 0; --settle >= 0")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    if args.latency_ms < 0:
        parser.error("--latency-ms must be >= 0")
    if args.idle_positions is not None:
        counts = [int(part) for part in args.idle_positions.split(",") if part.strip()]
        return run_idle(counts, args.idle_seconds, args.deadline, args.latency_ms, args.price_feed)
    return run(args.posts, args.poll_seconds, args.deadline, args.settle, args.seed,
               fast_monitors=args.fast_monitors, verbose=args.verbose, latency_ms=args.latency_ms,
               symbol_count=args.symbols, prepare=args.prepare)


if __name__ == "__main__":
    sys.exit(main())
