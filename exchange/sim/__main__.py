"""Run the Bitget simulator until interrupted: ``python -m exchange.sim`` (the CLI's ``following sim``)."""

from __future__ import annotations

import argparse
import math
import threading
from decimal import Decimal

from exchange.sim.engine import SimExchange
from exchange.sim.live_prices import BITGET_PUBLIC_REST, LivePriceSource
from exchange.sim.server import SimServer
from exchange.sim.ws_server import SimWsServer

DEFAULT_API_KEY = "sim-key"
DEFAULT_API_SECRET = "sim-secret"
DEFAULT_PASSPHRASE = "sim-pass"


def run_sim(
    host: str = "127.0.0.1",
    port: int = 0,
    seed: int = 0,
    api_key: str = DEFAULT_API_KEY,
    api_secret: str = DEFAULT_API_SECRET,
    passphrase: str = DEFAULT_PASSPHRASE,
    *,
    ws_port: int = 0,
    equity: Decimal = Decimal("10000"),
    tick_interval_s: float = 1.0,
    live_prices_url: str | None = None,
    stop_event: threading.Event | None = None,
    volatility: float = 0.001,
    admin: bool = False,
    latency_ms: float = 0.0,
) -> None:
    """Serve REST + public WebSocket until Ctrl-C (or ``stop_event``).

    Prices follow a seeded random walk, or with ``live_prices_url`` Bitget's public tickers whenever they can
    be read (the walk otherwise). ``admin`` serves the unauthenticated ``/_sim/`` endpoints (state, request log,
    faults, prices) for test harnesses running the simulator as a process of its own.
    """
    engine = SimExchange(seed=seed, equity=equity, volatility=volatility)
    engine.faults.base_latency(latency_ms / 1000)
    server = SimServer(engine, host=host, port=port, api_key=api_key, api_secret=api_secret, passphrase=passphrase,
                       admin=admin)
    ws_server = SimWsServer(engine, host=host, port=ws_port)
    base_url = server.start()
    ws_url = ws_server.start()
    live: LivePriceSource | None = None
    if live_prices_url:
        live = LivePriceSource(engine, base_url=live_prices_url, interval_s=tick_interval_s or 2.0)
        live.start()
    elif tick_interval_s > 0:
        engine.start_ticker(tick_interval_s)
    print(f"Bitget simulator REST at {base_url}", flush=True)
    if live is not None:
        print(f"prices from {live_prices_url} when reachable, else the simulator's own path", flush=True)
    print(f"Bitget simulator WebSocket at {ws_url}", flush=True)
    if latency_ms > 0:
        print(f"every request is answered after {latency_ms:g} ms (--latency-ms)", flush=True)
    if admin:
        print(f"admin endpoints (unauthenticated) at {base_url}/_sim/", flush=True)
    if (api_key, api_secret, passphrase) == (DEFAULT_API_KEY, DEFAULT_API_SECRET, DEFAULT_PASSPHRASE):
        # Only the well-known demo defaults are echoed; real-looking credentials are never printed.
        print(f"credentials (defaults): key={api_key} secret={api_secret} passphrase={passphrase}", flush=True)
    else:
        shown = "the default" if api_key == DEFAULT_API_KEY else "as given (not shown)"
        print(f"credentials: key {shown}; secret and passphrase as given (not shown)", flush=True)
    stop = stop_event or threading.Event()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if live is not None:
            live.stop()
        engine.stop_ticker()
        ws_server.stop()
        server.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="following sim",
        description="Run the offline Bitget V2 simulator (REST and public WebSocket) until Ctrl-C, for paper "
                    "trading or any Bitget client.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8900, help="REST port, 0 for any free one (default: 8900)")
    parser.add_argument("--ws-port", type=int, default=8901,
                        help="public WebSocket port, 0 for any free one (default: 8901)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the price walk and order ids (default: 0)")
    parser.add_argument("--equity", type=Decimal, default=Decimal("10000"),
                        help="starting USDT equity of the account (default: 10000)")
    parser.add_argument("--tick-interval", type=float, default=1.0,
                        help="seconds between price steps, 0 for frozen prices (default: 1.0)")
    parser.add_argument("--volatility", type=float, default=0.001,
                        help="standard deviation of one price step, 0 for a price that stays put while tickers "
                             "still go out (default: 0.001)")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="answer every REST request after this many milliseconds, like a network round trip "
                             "(default: 0)")
    parser.add_argument("--admin", action="store_true",
                        help="serve unauthenticated /_sim/ endpoints (state, request log, faults, prices) for "
                             "test harnesses; loopback test runs only (default: off)")
    parser.add_argument(
        "--live-prices",
        nargs="?",
        const=BITGET_PUBLIC_REST,
        default=None,
        metavar="URL",
        help=f"follow live public tickers (URL default {BITGET_PUBLIC_REST}) when reachable, else the own walk "
             "(default: off)",
    )
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help=f"API key to accept (default: {DEFAULT_API_KEY})")
    parser.add_argument("--api-secret", default=DEFAULT_API_SECRET,
                        help=f"API secret to verify signatures with (default: {DEFAULT_API_SECRET})")
    parser.add_argument("--passphrase", default=DEFAULT_PASSPHRASE,
                        help=f"API passphrase to accept (default: {DEFAULT_PASSPHRASE})")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not math.isfinite(args.latency_ms) or not 0 <= args.latency_ms <= 60_000:
        parser.error("--latency-ms must be a number of milliseconds from 0 to 60000")
    run_sim(
        args.host,
        args.port,
        args.seed,
        args.api_key,
        args.api_secret,
        args.passphrase,
        ws_port=args.ws_port,
        equity=args.equity,
        tick_interval_s=args.tick_interval,
        live_prices_url=args.live_prices,
        volatility=args.volatility,
        admin=args.admin,
        latency_ms=args.latency_ms,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
