"""Client cost per request: our ``BitgetClient`` vs ccxt's ``bitget``, doing the same requests.

The simulator runs in a **separate process** (rate limits off, prices frozen), so the CPU time measured in this
process (``time.process_time``) is the client's own cost per request: building the request, signing it, sending
it and reading the reply over loopback, and parsing it into the client's result objects. Wall-clock latency
per request is reported too (it includes the simulator's time and is the same server for both).

Operations (each against the same running simulator, after a warm-up):

* ``ticker``: ``ticker("BTCUSDT")`` vs ``fetch_ticker("BTC/USDT:USDT")`` (public GET)
* ``positions``: ``positions()`` vs ``fetch_positions()`` (signed GET, one open position)
* ``place+cancel``: a limit buy far below the market, then its cancel (two signed POSTs)

Both clients run without their own throttles (ours with buckets far above any limit, so the bookkeeping
still runs; ccxt with ``enableRateLimit: False``): the benchmark measures request cost, not waiting.

Run: ``.venv/bin/python -m benchmarks.client_cost [--requests 300] [--rounds 3]``. Exit 0 when our client's
median cost is at most ``--target`` (0.5) of ccxt's on every operation, 1 otherwise.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import requests

from exchange.bitget.client import BitgetClient, Credentials
from exchange.bitget.models import OrderRequest
from exchange.bitget.ratelimit import RateLimiter

KEY, SECRET, PASSPHRASE = "bench-key", "bench-secret", "bench-pass"
SYMBOL, CCXT_SYMBOL = "BTCUSDT", "BTC/USDT:USDT"
CLIENT_OIDS = itertools.count()


def serve(port: int) -> None:
    """The simulator process: REST only, no rate limits, frozen prices, until killed."""
    import threading

    from exchange.sim.engine import SimExchange
    from exchange.sim.server import SimServer

    engine = SimExchange(seed=1, equity=Decimal("1000000"))
    engine.set_price(SYMBOL, 65000)
    SimServer(engine, port=port, api_key=KEY, api_secret=SECRET, passphrase=PASSPHRASE, rate_limits=False).start()
    threading.Event().wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_simulator() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.client_cost", "--serve", str(port)])
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            requests.get(base_url + "/api/v2/public/time", timeout=1)
            return process, base_url
        except requests.RequestException:
            time.sleep(0.05)  # the benchmark's own start-up wait, not a test
    process.kill()
    raise RuntimeError("the simulator did not start")


@dataclass
class Sample:
    cpu_per_request_us: float
    wall_per_request_us: float


def measure(operation: Callable[[], Any], requests_per_call: int, calls: int) -> Sample:
    for _ in range(max(10, calls // 10)):  # warm-up: connection pool, caches, first-call imports
        operation()
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    for _ in range(calls):
        operation()
    cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
    total = calls * requests_per_call
    return Sample(cpu / total * 1e6, wall / total * 1e6)


def our_client(base_url: str) -> BitgetClient:
    client = BitgetClient(
        base_url, Credentials(KEY, SECRET, PASSPHRASE), max_read_retries=0,
        rate_limiter=RateLimiter({}, default_rate=1_000_000),
    )  # fmt: skip
    client.contracts()
    return client


def ccxt_client(base_url: str) -> Any:
    import ccxt

    exchange = ccxt.bitget(
        {
            "apiKey": KEY, "secret": SECRET, "password": PASSPHRASE, "enableRateLimit": False,
            "options": {"defaultType": "swap", "fetchMarkets": {"types": ["swap"]}, "uta": False},
        }
    )  # fmt: skip
    exchange.urls["api"] = {name: base_url for name in exchange.urls["api"]}
    exchange.load_markets()
    return exchange


def operations(ours: BitgetClient, theirs: Any) -> dict[str, tuple[Callable[[], Any], Callable[[], Any], int]]:
    def our_place_cancel() -> None:
        request = OrderRequest(
            symbol=SYMBOL, side="buy", size=Decimal("0.001"), order_type="limit", price=Decimal("30000"),
            client_oid=f"bench-{next(CLIENT_OIDS)}", margin_mode="crossed",
        )  # fmt: skip
        placed = ours.place_order(request)
        ours.cancel_order(SYMBOL, order_id=placed.order_id)

    def ccxt_place_cancel() -> None:
        order = theirs.create_order(CCXT_SYMBOL, "limit", "buy", 0.001, 30000)
        theirs.cancel_order(order["id"], CCXT_SYMBOL)

    return {
        "ticker": (lambda: ours.ticker(SYMBOL), lambda: theirs.fetch_ticker(CCXT_SYMBOL), 1),
        "positions": (ours.positions, theirs.fetch_positions, 1),
        "place+cancel": (our_place_cancel, ccxt_place_cancel, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="calls per operation, client and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--target", type=float, default=0.5)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0

    process, base_url = start_simulator()
    try:
        ours, theirs = our_client(base_url), ccxt_client(base_url)
        # One open position, so "positions" parses a real row.
        ours.place_order(OrderRequest(symbol=SYMBOL, side="buy", size=Decimal("0.01"), order_type="market",
                                      margin_mode="crossed"))  # fmt: skip
        results: dict[str, dict[str, list[Sample]]] = {}
        for _ in range(args.rounds):
            for name, (our_op, ccxt_op, per_call) in operations(ours, theirs).items():
                # Alternate which client goes first, so drift (thermal, cache) does not favour one.
                for label, op in (("ours", our_op), ("ccxt", ccxt_op)):
                    results.setdefault(name, {}).setdefault(label, []).append(measure(op, per_call, args.requests))
    finally:
        process.kill()
        process.wait(timeout=10)

    import ccxt

    print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, ccxt {ccxt.__version__}")  # fmt: skip
    print(f"{args.requests} calls x {args.rounds} rounds per operation and client; medians over rounds (µs/request)")
    print(f"{'operation':<14}{'ours cpu':>10}{'ccxt cpu':>10}{'ratio':>8}{'ours wall':>11}{'ccxt wall':>11}")
    met = True
    for name, by_client in results.items():
        our_cpu = statistics.median(s.cpu_per_request_us for s in by_client["ours"])
        ccxt_cpu = statistics.median(s.cpu_per_request_us for s in by_client["ccxt"])
        our_wall = statistics.median(s.wall_per_request_us for s in by_client["ours"])
        ccxt_wall = statistics.median(s.wall_per_request_us for s in by_client["ccxt"])
        ratio = our_cpu / ccxt_cpu
        met = met and ratio <= args.target
        print(f"{name:<14}{our_cpu:>10.0f}{ccxt_cpu:>10.0f}{ratio:>8.2f}{our_wall:>11.0f}{ccxt_wall:>11.0f}")
    print(f"target: ours <= {args.target:g} x ccxt on every operation: {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
