"""Wiring: config -> journal -> exchange (real, or the built-in simulator in dry run) -> actors -> health.

`Runtime` is what `following run` starts and what the end-to-end tests start, so the tests exercise the
same wiring a user runs.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import secrets as token_source
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pykka
import yaml

from actors.base import ActorDirectory, ProgressWatch, TradingGate
from actors.busy import BUSY
from actors.directory import Address
from actors.listener import CHANNEL_POLLED, Listener, ListenerSettings
from actors.messages import ModeChanged, RequestMode
from actors.order_manager import OrderManager, OrderManagerSettings
from actors.outcomes import OutcomeTracker
from actors.parser import Parser
from actors.ports import ExchangeFacts
from actors.position_guard import PEAK_FLAG, PositionGuard, PositionGuardSettings
from actors.price_feed import PriceFeed, PriceFeedSettings
from actors.risk_gate import RiskGate, RiskGateSettings
from actors.supervisor import (
    ChildBoard,
    ChildSpec,
    ResetMode,
    RestartPolicy,
    Supervisor,
    SupervisorContext,
    install_signal_handlers,
)
from exchange.bitget.capability import (
    Capability,
    PlanOrderCapability,
    ProbeResult,
    StopMode,
    safe_mode_reason_on_reprobe,
)
from exchange.bitget.client import BitgetClient, Credentials
from exchange.bitget.errors import BitgetError
from exchange.bitget.ratelimit import RepeatedLimitDetector
from exchange.bitget.ws import DEMO_PUBLIC_URL
from exchange.redact import RedactingFilter, register_secret
from ops.health import HealthServer, PortUnavailable
from ops.metrics import Metrics
from ops.notify import Notifier
from ops.status import RuntimeStatus
from parsing.channel_server import ChannelServer
from parsing.posts import Post
from runtime.config import BITGET_WS_PUBLIC, Config, Secrets, account_description, account_kind
from runtime.plan_capability import CapabilityWatch, decide_and_record, plan_order_capability, probe_client
from runtime.rate_limits import RateLimitReporter
from runtime.sources import build_media_store, build_post_source, journal_channel
from runtime.vision import build_vision
from trading.facts import FactStore
from trading.journal import Journal, JournalOpenError
from trading.kill_switch import KillSwitchReading, read_kill_switch, reset_allowed
from trading.modes import Mode
from trading.risk import RiskLimits
from trading.settings_ahead import PrepareSettings
from trading.shared_listings import SharedListings

if TYPE_CHECKING:
    from exchange.sim.engine import SimExchange
    from exchange.sim.live_prices import LiveMarket, LivePriceSource
    from exchange.sim.server import SimServer
    from exchange.sim.ws_server import SimWsServer

log = logging.getLogger("following")

RESET_FLAG = "mode_reset_requested"
CRITICAL = ("price_feed", "order_manager", "position_guard")
READY_CHECKS = ("exchange", "orders_reconciled", "positions_protected", "actors_alive", "price_feed", CHANNEL_POLLED)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC ISO 8601), level, logger, message, and exc (the traceback) when any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, secret_values: list[str], *, fmt: str = "text", file: str = "",
                      max_bytes: int = 10_000_000, backup_count: int = 5) -> None:
    """Log to stderr (and to a rotating ``file`` when given) as text or JSON lines; every handler scrubs secrets."""
    root = logging.getLogger()
    formatter: logging.Formatter = (JsonLogFormatter() if fmt == "json"
                                    else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    if not any(getattr(h, "_following", False) for h in root.handlers):
        stream = logging.StreamHandler()
        stream._following = True  # type: ignore[attr-defined]
        root.addHandler(stream)
    if file and not any(getattr(h, "_following_file", None) == file for h in root.handlers):
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        rotating = logging.handlers.RotatingFileHandler(file, maxBytes=max_bytes, backupCount=backup_count,
                                                        encoding="utf-8")
        rotating._following_file = file  # type: ignore[attr-defined]
        root.addHandler(rotating)
    for handler in root.handlers:
        if getattr(handler, "_following", False) or getattr(handler, "_following_file", None):
            handler.setFormatter(formatter)
    register_secret(*secret_values)
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    root.setLevel(level)


def risk_limits(config: Config) -> RiskLimits:
    risk = config.risk
    return RiskLimits(
        account_risk_per_trade=risk.account_risk_per_trade,
        max_leverage=risk.max_leverage,
        leverage_policy=risk.leverage_policy,
        default_stop_loss_pct=risk.default_stop_loss_pct,
        use_default_stop_loss=risk.use_default_stop_loss,
        hard_stop_loss_required=risk.hard_stop_loss_required,
        max_entry_slippage_pct=risk.max_entry_slippage_pct,
        max_notional_per_trade=risk.max_notional_per_trade,
        max_open_positions=risk.max_open_positions,
        cooldown_seconds=risk.cooldown_seconds,
        min_signal_quality=risk.min_signal_quality,
        max_account_drawdown_pct=risk.max_account_drawdown_pct,
        default_leverage=risk.default_leverage,
        margin_mode=risk.margin_mode,
        taker_fee_rate=risk.taker_fee_rate,
    )


def prepare_settings(config: Config) -> PrepareSettings:
    """Margin mode and leverage set ahead on watched symbols (trading/settings_ahead.py), as configured."""
    risk = config.risk
    return PrepareSettings(
        enabled=risk.prepare_settings, symbols=risk.prepare_settings_symbols,
        recent_days=risk.prepare_settings_recent_days, interval_s=risk.settings_recheck_seconds,
        margin_mode=risk.margin_mode, pos_mode=config.bitget.position_mode, limits=risk_limits(config),
        channel=journal_channel(config),
    )


@dataclass
class PaperExchange:
    """The built-in simulator standing in for Bitget while dry_run is true."""

    engine: SimExchange
    server: SimServer
    base_url: str
    credentials: Credentials
    ws_server: SimWsServer | None = None  # the simulator's public WebSocket, when the price feed uses one
    live_prices: LivePriceSource | None = None  # paper.live_prices: real public prices, own path without them


def paper_market(config: Config) -> LiveMarket | None:
    """The live market (``LiveMarket``) a paper run trades on, or None for the simulator's own contracts and walk,
    saying so loudly when live prices were wanted but cannot be read."""
    from exchange.sim.catalogue import DEFAULT_CONTRACTS
    from exchange.sim.live_prices import LiveMarketUnavailable, fetch_live_market

    paper = config.paper
    if not paper.live_prices:
        log.info("paper prices: the simulator's own seeded walk over its %d built-in contracts "
                 "(paper.live_prices: false)", len(DEFAULT_CONTRACTS))
        return None
    try:
        market = fetch_live_market(paper.live_prices_url, product_type=config.bitget.product_type,
                                   timeout_s=paper.live_prices_timeout_seconds)
    except LiveMarketUnavailable as exc:
        log.warning(
            "PAPER PRICES ARE SIMULATED: Bitget's public market at %s cannot be read (%s). The simulator walks its "
            "own prices over its %d built-in contracts, so signals from a real channel will mostly be refused "
            "(their prices are not these). Check the network or paper.live_prices_url; live prices are retried "
            "every tick.", paper.live_prices_url, exc.reason, len(DEFAULT_CONTRACTS),
        )  # fmt: skip
        return None
    log.info("paper trading on Bitget's real market: %d contracts at live prices from %s",
             len(market.contracts), market.source)
    return market


def start_paper_exchange(config: Config) -> PaperExchange:
    from exchange.sim.engine import SimExchange
    from exchange.sim.server import SimServer

    # Fresh random credentials per run: the simulator verifies signatures like Bitget does.
    credentials = Credentials(token_source.token_hex(8), token_source.token_hex(16), token_source.token_hex(8))
    market = paper_market(config)
    seed, equity, pos_mode = config.paper.seed, config.paper.starting_equity, config.bitget.position_mode
    engine = (SimExchange(seed=seed, equity=equity, pos_mode=pos_mode) if market is None
              else SimExchange(seed=seed, equity=equity, pos_mode=pos_mode, contracts=market.contracts,
                               prices=market.prices))
    if market is not None:
        for symbol, quote in market.quotes.items():
            engine.set_mark_price(symbol, quote.mark)
    server = SimServer(
        engine,
        host=config.paper.host,
        port=config.paper.port,
        api_key=credentials.api_key,
        api_secret=credentials.api_secret,
        passphrase=credentials.passphrase,
    )
    base_url = server.start()
    ws_server = None
    if config.monitor.price_feed.mode == "ws":
        from exchange.sim.ws_server import SimWsServer

        ws_server = SimWsServer(engine, host=config.paper.host)
        ws_server.start()
    live_prices = None
    if config.paper.live_prices:
        from exchange.sim.live_prices import LivePriceSource

        live_prices = LivePriceSource(engine, base_url=config.paper.live_prices_url,
                                      interval_s=config.paper.tick_seconds,
                                      timeout_s=config.paper.live_prices_timeout_seconds)
        if market is not None:
            live_prices.source = "live"  # the start prices are live already: only a later loss is news
        live_prices.start()
    else:
        engine.start_ticker(config.paper.tick_seconds)
    return PaperExchange(engine, server, base_url, credentials, ws_server, live_prices)


def price_feed_ws_url(config: Config, paper_ws_url: str | None) -> str | None:
    """None in price feed mode rest; the simulator's socket in dry run; else bitget.ws_public_url (Bitget's
    demo host when demo_trading is on and the URL was left at its default)."""
    if config.monitor.price_feed.mode != "ws":
        return None
    if paper_ws_url:
        return paper_ws_url
    url = config.bitget.ws_public_url
    return DEMO_PUBLIC_URL if config.bitget.demo_trading and url == BITGET_WS_PUBLIC else url


_PRICE_SLOT = re.compile(r"\{([A-Z0-9]+)(?:\*([0-9.]+))?\}")
_PRICE_SLOT_SYMBOLS = re.compile(r"\{([A-Z0-9]+)(?=[*}])")


def render_demo_text(text: str, price_of: Callable[[str], Decimal], round_price: Callable[[str, Decimal], Decimal]
                     ) -> str:
    """Fill {SYMBOL} / {SYMBOL*factor} slots with live simulator prices."""

    def fill(match: re.Match[str]) -> str:
        symbol, factor = match.group(1), Decimal(match.group(2) or "1")
        return str(round_price(symbol, price_of(symbol) * factor))

    return _PRICE_SLOT.sub(fill, text)


class DemoChannel:
    """The offline demo's channel: a local t.me-format server revealing scripted posts over time."""

    def __init__(self, config: Config, paper: PaperExchange | None, journal: Journal | None = None) -> None:
        self._items = yaml.safe_load(Path(config.demo.posts_file).read_text(encoding="utf-8")) or []
        self._paper = paper
        self._db_path = config.storage.db_path
        # Posts of an earlier demo run left in the journal: every post is handled once, so they are not read again.
        self._handled_before = (journal.last_message_id(config.listener.channel) if journal is not None else None) or 0
        self.server = ChannelServer(config.listener.channel, host=config.demo.host, port=config.demo.port)
        self.base_url = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        self.base_url = self.server.start()
        if self._handled_before:
            log.warning(
                "demo: the journal %s already holds demo posts 1-%d from an earlier run; every post is handled once, "
                "so they will be revealed but not traded again. To see the demo afresh: stop it (Ctrl-C), delete %s "
                "(with its -wal and -shm files) and start again.", self._db_path, self._handled_before, self._db_path,
            )  # fmt: skip
        self._thread = threading.Thread(target=self._reveal, name="demo-channel", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        self._stop.set()
        self.server.stop()

    def _round_price(self, symbol: str, price: Decimal) -> Decimal:
        assert self._paper is not None
        return self._paper.engine.contract(symbol).round_price(price)

    def _reveal(self) -> None:
        started = time.monotonic()
        ids: dict[str, int] = {}
        prices: dict[str, dict[str, Decimal]] = {}  # demo post id -> the prices its slots were filled with
        for item in self._items:
            wait = float(item.get("after_seconds", 0)) - (time.monotonic() - started)
            if wait > 0 and self._stop.wait(wait):
                return
            text = str(item.get("text", ""))
            if self._paper is not None:
                engine = self._paper.engine
                move = item.get("move_price")
                if isinstance(move, dict) and str(move.get("of")) in prices:
                    # Make the market do what the post reports (e.g. reach the first target).
                    symbol = str(move["symbol"])
                    target = prices[str(move["of"])][symbol] * Decimal(str(move["to"]))
                    engine.set_price(symbol, self._round_price(symbol, target))
                prices[str(item.get("id"))] = {s: engine.price(s) for s in _PRICE_SLOT_SYMBOLS.findall(text)}
                text = render_demo_text(text, engine.price, self._round_price)
            reply_to = ids.get(str(item.get("reply_to"))) if item.get("reply_to") else None
            message_id = self.server.add_post(text, reply_to=reply_to)
            ids[str(item.get("id", message_id))] = message_id
            if message_id <= self._handled_before:
                log.info("demo channel: post %d revealed (already handled in an earlier run: not read again)",
                         message_id)
            else:
                log.info("demo channel: post %d revealed", message_id)


class Runtime:
    """The whole system, started and stopped as one."""

    def __init__(self, config: Config, secrets: Secrets, *, env: Mapping[str, str] | None = None,
                 load_images: Callable[[Post], list[bytes]] | None = None) -> None:
        self.config = config
        self.load_images = load_images  # a post's image bytes for the vision model (default: the journal's)
        self.secrets = secrets
        self.env = os.environ if env is None else env
        self.metrics = Metrics()
        self.status = RuntimeStatus()
        self.gate = TradingGate()
        # Facts observed off the critical path (prices, account, positions, symbol settings): trading/facts.py.
        self.facts: ExchangeFacts = FactStore()
        # The guard's reading of positions, open orders and plans, which reconciliation decides on while it is fresh
        # and newer than every write of the OrderManager (trading.shared_listings): one reading instead of two.
        self.listings = SharedListings()
        self.directory = ActorDirectory()
        self.progress = ProgressWatch()
        self.children = ChildBoard()  # the Supervisor's view of each actor, for /readyz
        # /healthz fails when the supervisor loop has made no progress for this long.
        self.max_silence_s = max(5.0, config.supervisor.heartbeat_interval_seconds * 3)
        self.journal: Journal | None = None
        self.paper: PaperExchange | None = None
        self.demo: DemoChannel | None = None
        self.client: BitgetClient | None = None
        self.supervisor: pykka.ActorRef[Any] | None = None
        self.health: HealthServer | None = None
        self.health_address: tuple[str, int] | None = None
        self.stopped = threading.Event()
        # Plan-order capability: the effective stop mode the actors get, and a start-up SAFE request.
        self.stop_mode: StopMode = config.risk.stoploss.sl_order_type
        self.plan_orders_supported = True  # False only on the probe's clear "unsupported"
        self.plan_orders: PlanOrderCapability | None = None
        self.capability_watch: CapabilityWatch | None = None
        self.start_safe_reason: str | None = None

    # --- start / stop ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Start everything. Raises ``StartupError`` (a message for the operator, exit 2) when the health port
        cannot be had or the journal cannot be opened; ``stop`` then stops what had started."""
        config = self.config
        # The health port first: a port already in use is found before any actor or order exists.
        self.health = HealthServer(
            self.metrics, host=config.monitor.health.host, port=config.monitor.health.port,
            liveness=self.liveness, readiness=self.readiness, positions=self.positions_view,
        )
        try:
            self.health.bind()
        except PortUnavailable as exc:
            raise StartupError(str(exc)) from None
        try:
            Path(config.storage.db_path).parent.mkdir(parents=True, exist_ok=True)
            self.journal = Journal(config.storage.db_path)
        except JournalOpenError as exc:
            raise StartupError(str(exc)) from None
        except OSError as exc:
            raise StartupError(f"the journal's folder {Path(config.storage.db_path).parent} cannot be made "
                               f"({exc.strerror or type(exc).__name__}); make it writable or set storage.db_path "
                               "elsewhere") from None
        self.vision = build_vision(config, self.secrets, self.metrics, self.journal, self.load_images)
        if config.dry_run:
            log.info("%s", account_description(config))  # the first line says which account is traded
            self._rebase_paper_peak()
            self.paper = start_paper_exchange(config)
            base_url, credentials = self.paper.base_url, self.paper.credentials
            log.info("paper exchange (the built-in simulator) at %s", base_url)
        else:
            base_url = config.bitget.base_url
            s = self.secrets
            assert s.bitget_api_key and s.bitget_api_secret and s.bitget_passphrase  # checked by the CLI
            credentials = Credentials(s.bitget_api_key.value, s.bitget_api_secret.value, s.bitget_passphrase.value)
            # a Bitget demo account risks no money: INFO; real money is always a WARNING
            level = logging.WARNING if account_kind(config) == "live" else logging.INFO
            log.log(level, "%s", account_description(config))
        self.rate_limits = RateLimitReporter(
            metrics=self.metrics, journal=self.journal,
            detector=RepeatedLimitDetector(config.bitget.rate_limit_safe_mode_threshold,
                                           config.bitget.rate_limit_safe_mode_window_seconds),
        )  # fmt: skip
        self.client = BitgetClient(
            base_url, credentials, product_type=config.bitget.product_type, margin_coin=config.bitget.margin_coin,
            demo=config.bitget.demo_trading, timeout=config.bitget.timeout_seconds,
            on_request=self.metrics.exchange_request, rate_limit_observer=self.rate_limits,
            on_blocking=BUSY.bounded,  # an actor waiting on the exchange is busy, not hung
        )
        self._check_exchange()
        if config.bitget.plan_orders_probe_on_startup:
            self._probe_plan_orders(credentials)
        site_url = config.listener.site_url
        if config.demo.enabled:
            self.demo = DemoChannel(config, self.paper, self.journal)
            site_url = self.demo.start()
            log.info("demo channel at %s/s/%s", site_url, config.listener.channel)
        # the web preview, or the Telegram user client when listener.mode is telegram
        self.preview = build_post_source(config, self.secrets, site_url)
        self.media = build_media_store(config, self.journal, self.preview, site_url)
        self.notifier = Notifier(config.notify, self.secrets.bot_token, bot_api_url=config.notify.telegram_bot.api_url)
        # from here on every notice is in the journal's outbox until delivered; an earlier run's leftovers are re-sent
        self.notifier.use_journal(self.journal)
        self.metrics.before_render(lambda: self.metrics.set_notices_undelivered(self.notifier.undelivered()))
        if self.start_safe_reason:
            self.notifier.notify("SAFE_MODE", f"starting in safe mode: {self.start_safe_reason}")
        self.supervisor = Supervisor.start(**self._supervisor_args())
        self.journal.on_write_failure(self._journal_unwritable)
        self.rate_limits.connect(self._request_safe_for_rate_limits)
        self.commands = self._start_commands()
        if self.plan_orders is not None:
            self.capability_watch = CapabilityWatch(self.plan_orders, self._on_capability_reprobe)
            self.capability_watch.start()
        self.metrics.before_render(self._publish_readiness)
        self.health_address = self.health.start()
        log.info("health on http://%s:%d (/healthz /readyz /metrics)", *self.health_address)

    def _journal_unwritable(self, message: str) -> None:
        """The journal cannot be written (disk full...): an alert, and SAFE (no new entry may go out without its
        intent journaled); protective closes still go out and are journaled once the disk allows."""
        notifier = getattr(self, "notifier", None)
        if notifier is not None:
            notifier.notify("JOURNAL_UNWRITABLE", f"{message}; safe mode: no new entries. Protective closes "
                                 "still go out. Free disk space, then reset the mode")
        if self.supervisor is not None:
            self.supervisor.tell(RequestMode(mode=Mode.SAFE, reason=message, source="journal"))

    def stop(self, timeout: float = 8.0) -> None:
        commands = getattr(self, "commands", None)
        if commands is not None:
            commands.stop()
        if self.capability_watch is not None:
            self.capability_watch.stop()
        if self.supervisor is not None:
            try:
                self.supervisor.stop(block=True, timeout=timeout)
            except pykka.Timeout:
                log.error("supervisor did not stop within %.0fs", timeout)
            except pykka.ActorDeadError:
                pass
        for part in (self.health, self.demo):
            if part is not None:
                part.stop()
        close_source = getattr(getattr(self, "preview", None), "close", None)
        if close_source is not None:
            close_source()  # the Telegram user client's connection and loop thread
        notifier = getattr(self, "notifier", None)
        if notifier is not None:
            notifier.close(timeout=2.0)  # deliver the notices raised while stopping, within the stop budget
        if self.paper is not None:
            if self.paper.live_prices is not None:
                self.paper.live_prices.stop()
            self.paper.engine.stop_ticker()
            if self.paper.ws_server is not None:
                self.paper.ws_server.stop()
            self.paper.server.stop()
        if self.journal is not None:
            self.journal.close()
        self.stopped.set()

    def _rebase_paper_peak(self) -> None:
        """Each dry run trades a new simulated account from paper.starting_equity: the peak equity an earlier run
        left in the journal is not this account's, and measured against it the drawdown breaker would trip."""
        assert self.journal is not None
        previous = self.journal.get_flag(PEAK_FLAG)
        if previous is None:
            return
        self.journal.set_flag(PEAK_FLAG, None)
        starting = self.config.paper.starting_equity
        self.journal.record_event("PEAK_EQUITY_REBASED", {
            "previous_peak": previous, "reason": f"new paper account starting at {starting} USDT"})
        log.info("new paper account at %s USDT: the drawdown breaker measures from it (the peak %s of an earlier "
                 "run is set aside)", starting, previous)

    # --- plan-order capability -----------------------------------------------------------------------------
    def _probe_plan_orders(self, credentials: Credentials) -> None:
        """Probe once before any actor starts: the actors get the effective stop mode from the start."""
        assert self.client is not None and self.journal is not None
        bitget = self.config.bitget
        self.plan_orders = plan_order_capability(
            probe_client(self.client, credentials, bitget.plan_orders_probe_timeout_seconds,
                         self.metrics.exchange_request),
            ttl_s=bitget.plan_orders_capability_ttl_seconds, unknown_ttl_s=bitget.plan_orders_unknown_ttl_seconds,
            journal=self.journal,
        )  # fmt: skip
        result = self.plan_orders.result()
        decision = decide_and_record(
            self.config.risk.stoploss.sl_order_type, result,
            safe_mode_on_failure=bitget.plan_orders_probe_safe_mode_on_failure, journal=self.journal,
        )  # fmt: skip
        self.stop_mode = decision.stop_mode
        self.plan_orders_supported = result.capability is not Capability.UNSUPPORTED
        if decision.safe_mode:
            # Handed to the Supervisor as its starting mode, so no actor ever runs in NORMAL meanwhile.
            self.start_safe_reason = f"plan-order probe failed: {result.reason}"  # notified once the notifier exists

    def _request_safe_for_rate_limits(self, reason: str) -> None:
        if self.supervisor is not None:
            self.supervisor.tell(RequestMode(mode=Mode.SAFE, reason=reason, source="rate_limit"))

    def _on_capability_reprobe(self, result: ProbeResult) -> None:
        reason = safe_mode_reason_on_reprobe(
            self.stop_mode, result, safe_mode_on_failure=self.config.bitget.plan_orders_probe_safe_mode_on_failure
        )
        if reason is not None and self.supervisor is not None:
            self.supervisor.tell(RequestMode(mode=Mode.SAFE, reason=reason, source="plan_order_probe"))

    # --- health ------------------------------------------------------------------------------------------
    def _check_exchange(self) -> bool:
        assert self.client is not None
        try:
            self.client.server_time()
        except BitgetError as exc:
            self.status.set("exchange", False, f"exchange not answering: {exc.code}")
            return False
        self.status.set("exchange", True)
        return True

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        ok = self.progress.is_alive(self.max_silence_s)
        silence = round(self.progress.seconds_since_progress(), 3)
        return ok, {"supervisor_progress": ok, "seconds_since_progress": silence}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        down = self._critical_down()
        self.status.set("actors_alive", not down, ", ".join(f"{name} {state}" for name, state in down.items()))
        failing = self.status.failing(list(READY_CHECKS))
        checks = {name: name not in failing for name in READY_CHECKS}
        return not failing, {"checks": checks, "detail": failing}

    # --- Telegram commands -------------------------------------------------------------------------------
    def _start_commands(self) -> Any:
        """The command bot when notify.telegram_bot is enabled with a token and allowed chats; else None."""
        from ops.telegram_commands import BotApi, CommandBot, CommandHandlers

        bot = self.config.notify.telegram_bot
        token = self.secrets.bot_token
        if not (bot.enabled and token is not None and bot.allowed_chats):
            return None
        handlers = CommandHandlers(
            status=self._command_status, positions=self._command_positions, report=self._command_report,
            pause=lambda by: self._command_mode(Mode.SAFE, by), panic=lambda by: self._command_mode(Mode.PANIC, by),
            resume=self._command_resume, journal_event=self._journal_event,
        )  # fmt: skip
        commands = CommandBot(BotApi(token.value, base_url=bot.api_url), handlers, bot.allowed_chats,
                              poll_timeout_s=bot.poll_timeout_seconds)
        commands.start()
        log.info("telegram commands on for %d chat(s)", len(bot.allowed_chats))
        return commands

    def _journal_event(self, kind: str, detail: dict[str, Any]) -> None:
        if self.journal is not None:
            self.journal.record_event(kind, detail)

    _positions_cache: tuple[float, list[dict[str, Any]]] | None = None
    _POSITIONS_CACHE_S = 5.0  # a command flood reads the exchange at most this often

    def _cached_positions(self) -> list[dict[str, Any]]:
        from cli.status import exchange_positions

        cached = self._positions_cache
        if cached is not None and time.monotonic() - cached[0] < self._POSITIONS_CACHE_S:
            return cached[1]
        assert self.client is not None
        positions = exchange_positions(self.client, self.config.bitget.position_mode)
        self._positions_cache = (time.monotonic(), positions)
        return positions

    def _bot_view(self, path: str) -> tuple[int, Any] | None:
        """The answers `following status` would get from the health server, without HTTP."""
        if path == "/readyz":
            ready, detail = self.readiness()
            return (200 if ready else 503), detail
        if path == "/positions":
            try:
                return 200, {"positions": self._cached_positions()}
            except BitgetError as exc:
                return 503, {"error": exc.code}
        return None

    def _command_status(self) -> str:
        from cli.status import collect_status, render_status

        assert self.journal is not None
        return render_status(collect_status(self.config, self.journal, bot=self._bot_view))

    def _command_positions(self) -> str:
        from cli.status import render_positions

        answer = self._bot_view("/positions")
        if answer is None or answer[0] != 200:
            return "positions unreadable right now"
        return render_positions(answer[1]["positions"])

    def _command_report(self) -> str:
        from cli.status import collect_report, render_report

        assert self.journal is not None
        return render_report(collect_report(self.journal), trades=False)

    def _command_mode(self, mode: Mode, by: str) -> str:
        if self.supervisor is None:
            return "the bot is not running"
        self.supervisor.tell(RequestMode(mode=mode, reason=f"{by}: /{'pause' if mode is Mode.SAFE else 'panic'}",
                                         source="telegram"))
        if mode is Mode.PANIC:
            return "PANIC requested: working entries are cancelled and every position is closed; stops stay."
        return "Safe mode requested: no new entries; stops, repairs and closes keep working. /resume to undo."

    def _command_resume(self, by: str) -> str:
        assert self.journal is not None
        kill = self.config.kill_switch
        reading = read_kill_switch(Path(kill.file), self.env, self.journal.get_flag("kill_switch"),
                                   env_var=kill.env_var)
        if not reset_allowed(reading):
            return (f"Resume refused: the kill switch is still set ({reading.source}: {reading.detail}). "
                    "Remove it first.")
        if self.supervisor is None:
            return "the bot is not running"
        self.supervisor.tell(ResetMode(reason=f"{by}: /resume", source="telegram"))
        return "Resume requested: back to normal unless a kill switch is set."

    def _publish_readiness(self) -> None:
        ready, detail = self.readiness()
        self.metrics.set_readiness(ready, dict(detail.get("checks") or {}))

    def positions_view(self) -> tuple[bool, dict[str, Any]]:
        """Open positions with their stops and targets left, as this bot's exchange client reads them."""
        from cli.status import exchange_positions

        assert self.client is not None
        try:
            return True, {"positions": exchange_positions(self.client, self.config.bitget.position_mode)}
        except BitgetError as exc:
            return False, {"error": f"exchange unreadable: {exc.code}"}

    def _critical_down(self) -> dict[str, str]:
        """Each critical actor that is not up (registered, alive and, after a restart, done starting): its state."""
        down = self.children.not_running(CRITICAL)
        for name in CRITICAL:
            ref = self.directory.get(name)
            if name not in down and (ref is None or not ref.is_alive()):
                down[name] = "down"
        return down

    # --- actors ------------------------------------------------------------------------------------------
    def _supervisor_args(self) -> dict[str, Any]:
        config = self.config
        sup = config.supervisor
        return {
            "specs": self._child_specs(),
            "journal": self.journal,
            "kill_switch": self._kill_switch_reading,
            "directory": self.directory,
            "policy": RestartPolicy(
                max_restarts=sup.max_restarts, within_s=sup.within_seconds,
                backoff_base_s=sup.backoff_base_seconds, backoff_max_s=sup.backoff_max_seconds,
            ),
            "heartbeat_interval_s": sup.heartbeat_interval_seconds,
            "heartbeat_timeout_s": sup.heartbeat_timeout_seconds,
            "kill_switch_poll_s": config.kill_switch.poll_seconds,
            "metrics": self.metrics,
            "gate": self.gate,
            "progress": self.progress,
            "on_mode_change": [self._on_mode_change],
            "board": self.children,
            "on_work_dropped": self._on_work_dropped,
            "initial_mode": Mode.SAFE if self.start_safe_reason else Mode.NORMAL,
        }

    def _on_work_dropped(self, name: str, work: list[str], why: str) -> None:
        shown = "; ".join(work[:10]) + (f" and {len(work) - 10} more" if len(work) > 10 else "")
        self.notifier.notify("WORK_DROPPED", f"{name} is {why}: {len(work)} pending message(s) not handled: {shown}")

    def _on_mode_change(self, changed: ModeChanged) -> None:
        self.notifier.notify("MODE_CHANGED", f"trading mode is now {changed.mode.value}: {changed.reason}")

    def _kill_switch_reading(self) -> KillSwitchReading:
        """Polled by the Supervisor. Also picks up an operator reset written by `following reset-mode`."""
        assert self.journal is not None
        kill = self.config.kill_switch
        reading = read_kill_switch(Path(kill.file), self.env, self.journal.get_flag("kill_switch"),
                                   env_var=kill.env_var)
        if self.journal.get_flag(RESET_FLAG) is not None and self.supervisor is not None:
            self.journal.set_flag(RESET_FLAG, None)
            self.supervisor.tell(ResetMode(reason="operator reset (following reset-mode)"))
        return reading

    def _price_feed_settings(self) -> PriceFeedSettings:
        """The price feed's polling, its WebSocket and what to do when it falls back to REST."""
        paper_ws = self.paper.ws_server if self.paper is not None else None
        return PriceFeedSettings.from_config(
            self.config.monitor.price_feed,
            ws_url=price_feed_ws_url(self.config, paper_ws.url if paper_ws is not None else None),
            inst_type=self.config.bitget.product_type,
            local_guard=self.stop_mode == "local_guard",  # also after a probe fallback
            jitter_seed=self.config.paper.seed if self.config.dry_run else None,
        )

    def _child_specs(self) -> list[ChildSpec]:
        config = self.config
        d = self.directory
        journal, client, metrics, status = self.journal, self.client, self.metrics, self.status
        intervals = config.monitor.poll_intervals

        def spec(name: str, actor: type[pykka.ThreadingActor], critical: bool, **deps: Any) -> ChildSpec:
            def factory(ctx: SupervisorContext) -> pykka.ActorRef[Any]:
                return actor.start(name=name, supervisor=ctx.supervisor, mode=ctx.mode, **deps)

            return ChildSpec(name=name, factory=factory, critical=critical)

        return [
            spec("price_feed", PriceFeed, True, settings=self._price_feed_settings(), client=client,
                 metrics=metrics, status=status, subscribers=[Address(d, "position_guard")], journal=journal,
                 notifier=self.notifier, facts=self.facts),
            spec("order_manager", OrderManager, True, journal=journal, client=client, notifier=self.notifier,
                 metrics=metrics, status=status, gate=self.gate,
                 settings=OrderManagerSettings.from_config(config, local_guard=self.stop_mode == "local_guard",
                                                           plan_orders_supported=self.plan_orders_supported),
                 facts=self.facts, settings_recheck_s=config.risk.settings_recheck_seconds, listings=self.listings,
                 prepare=prepare_settings(config)),
            spec("position_guard", PositionGuard, True, journal=journal, client=client,
                 order_manager=Address(d, "order_manager"), price_feed=Address(d, "price_feed"),
                 notifier=self.notifier, metrics=metrics, status=status,
                 settings=PositionGuardSettings.from_config(config, local_guard=self.stop_mode == "local_guard",
                                                            plan_orders_supported=self.plan_orders_supported),
                 facts=self.facts, listings=self.listings),
            spec("risk_gate", RiskGate, False, journal=journal, client=client,
                 order_manager=Address(d, "order_manager"), price_feed=Address(d, "price_feed"),
                 notifier=self.notifier, metrics=metrics, limits=risk_limits(config),
                 settings=RiskGateSettings.from_config(config), gate=self.gate, facts=self.facts),
            spec("parser", Parser, False, journal=journal, risk_gate=Address(d, "risk_gate"),
                 notifier=self.notifier, metrics=metrics, vision=self.vision,
                 use_default_stop_loss=config.risk.use_default_stop_loss),
            spec("outcomes", OutcomeTracker, False, journal=journal, client=client, notifier=self.notifier,
                 metrics=metrics, pos_mode=config.bitget.position_mode, interval_s=intervals.fills_seconds,
                 daily_summary_at=config.notify.daily_summary_at),
            spec("listener", Listener, False,
                 settings=ListenerSettings.from_config(config.listener,
                                                       skip_history_on_first_start=not config.demo.enabled,
                                                       push=config.telegram.push),
                 client=self.preview, journal=journal, parser=Address(d, "parser"), metrics=metrics,
                 media=self.media, status=status, notifier=self.notifier),
        ]


class StartupError(RuntimeError):
    """The runtime cannot start for a reason the operator can fix (health port taken, journal unusable); the
    message says what and how. `following run` logs it and exits 2, without a traceback."""


def run_forever(config: Config, secrets: Secrets) -> int:
    """`following run`: start, serve until SIGTERM/SIGINT, stop gracefully; exit code 0."""
    logs = config.logging
    configure_logging(logs.level, secrets.values(), fmt=logs.format, file=logs.file, max_bytes=logs.max_bytes,
                      backup_count=logs.backup_count)
    runtime = Runtime(config, secrets)
    stop_requested = threading.Event()
    # Before anything starts: /healthz answers before start() returns, and a signal meeting the OS default then
    # (SIGUSR1/SIGUSR2/SIGTERM end the process at once) would be no safe mode and no graceful stop.
    handlers = install_signal_handlers(None, stop_requested.set, gate=runtime.gate)
    try:
        try:
            runtime.start()
        except StartupError as exc:
            runtime.stop()
            log.error("cannot start: %s", exc)
            return 2
        except BaseException:
            runtime.stop()  # never leave actors running (and restarting) behind a failed start
            raise
        assert runtime.supervisor is not None
        handlers.attach(runtime.supervisor)
        try:
            while not stop_requested.wait(0.5):
                pass
        finally:
            log.info("stopping")
            runtime.stop()
    finally:
        handlers.restore()
    return 0


def reset_mode(config: Config) -> tuple[bool, str]:
    """Operator reset to NORMAL: refused while a kill-switch trigger is still present."""
    journal = Journal(config.storage.db_path)
    try:
        reading = read_kill_switch(Path(config.kill_switch.file), os.environ, journal.get_flag("kill_switch"),
                                   env_var=config.kill_switch.env_var)
        if not reset_allowed(reading):
            return False, f"refused: the kill switch is still set ({reading.source}: {reading.detail})"
        journal.set_flag(RESET_FLAG, str(time.time()))
        journal.record_event("MODE_RESET_REQUESTED", {"by": "operator"})
        return True, "reset requested: the running bot (or the next start) returns to normal"
    finally:
        journal.close()
