"""The configuration tree: pydantic v2 models, YAML loading, error messages that name the key.

Unknown keys are errors (a typo in a risk limit must never be silently ignored). Secrets are never part
of the file: the file names the environment variables that hold them, and :func:`load_secrets` reads them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from exchange.bitget.models import MarginMode, PosMode
from parsing.media import TELEGRAM_MEDIA_HOSTS
from parsing.rules.symbols import normalize_symbol

BITGET_REST = "https://api.bitget.com"
_HOST_PATTERN = re.compile(r"[A-Za-z0-9*-]+(\.[A-Za-z0-9*-]+)*(:[0-9]{1,5})?")
BITGET_WS_PUBLIC = "wss://ws.bitget.com/v2/ws/public"
BITGET_WS_PRIVATE = "wss://ws.bitget.com/v2/ws/private"
SHIPPED_DEMO_POSTS = Path(__file__).resolve().parent.parent / "conf" / "demo-posts.yaml"
# File and folder settings: a relative one is relative to the folder of the config file it is loaded from.
PATH_KEYS: tuple[tuple[str, str], ...] = (
    ("storage", "db_path"), ("storage", "media_dir"), ("kill_switch", "file"), ("telegram", "session_path"),
    ("demo", "posts_file"), ("logging", "file"),
)


# Every number in the config is finite (allow_inf_nan=False: ".inf" and ".nan" are errors naming the key) and
# bounded: a duration (a key ending in "seconds") at most about three years, anything else (money, counts, sizes)
# at most 1e12. An absurd value would overflow a timer or a sum rather than mean anything.
MAX_SECONDS = 1e8
MAX_NUMBER = 1e12


def _shown_number(value: Decimal) -> float:
    return float(value)


# Money and percentages: Decimals (the number as written), shown (check-config, model_dump) as plain numbers.
ConfigDecimal = Annotated[Decimal, PlainSerializer(_shown_number, return_type=float)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _bounded_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
            name = info.field_name or ""
            limit = MAX_SECONDS if name.endswith("seconds") else MAX_NUMBER
            number = value if isinstance(value, Decimal) else Decimal(value)  # exact, any int size included
            if not number.is_finite() or abs(number) > limit:
                raise ValueError(f"must be a finite number of at most {limit:g}")
        return value


class ListenerConfig(Section):
    mode: Literal["web_preview", "telegram"] = "web_preview"
    # The spec's form; the channel and the site are derived from it.
    target_url: str = "https://t.me/s/IvanCryptotalk"
    polling_seconds: float = Field(5.0, gt=0)
    jitter_seconds: float = Field(1.0, ge=0)
    timeout_seconds: float = Field(10.0, gt=0)
    max_catch_up_pages: int = Field(10, ge=1, le=200)
    # Past max_catch_up_pages, keep paging this long for posts about open signals (0: stop at the page bound).
    catch_up_extra_seconds: float = Field(30.0, ge=0, le=600)
    backoff_max_seconds: float = Field(300.0, gt=0)
    # Lighter polls: the newest page (whose recent posts show edits) every N polls, only the posts after the last
    # one seen (?after=) in between; 1 reads the newest page every time. An edit is seen within N polls.
    full_page_every_polls: int = Field(4, ge=1, le=100)

    @field_validator("target_url")
    @classmethod
    def _web_preview_url(cls, value: str) -> str:
        parsed = urlparse(value)
        parts = [p for p in parsed.path.split("/") if p]
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError("expected an http(s) URL like https://t.me/s/<channel>")
        if len(parts) != 2 or parts[0] != "s":
            raise ValueError("expected the web preview path /s/<channel>")
        return value

    @property
    def site_url(self) -> str:
        parsed = urlparse(self.target_url)
        return f"{parsed.scheme}://{parsed.netloc}"

    @property
    def channel(self) -> str:
        return [p for p in urlparse(self.target_url).path.split("/") if p][1]


class TelegramConfig(Section):
    api_id_env: str = "TELEGRAM_API_ID"
    api_hash_env: str = "TELEGRAM_API_HASH"
    session_path: str = "var/telegram"
    channel: str | None = None
    # listener.mode telegram: new and edited messages are pushed by Telegram and handed on at once; the poll
    # (listener.polling_seconds) stays as catch-up and watchdog, and posts it finds unpushed are PUSH_MISSED.
    push: bool = True


class VlmConfig(Section):
    enabled: bool = False
    provider: Literal["nim", "kimi"] = "nim"
    model: str = "meta/llama-3.2-90b-vision-instruct"
    api_key_env: str = "NIM_API_KEY"
    base_url: str = "https://integrate.api.nvidia.com/v1"
    timeout_seconds: float = Field(30.0, gt=0)
    max_retries: int = Field(2, ge=0, le=10)
    confidence_threshold: float = Field(0.8, ge=0, le=1)
    below_threshold_action: Literal["notify_only"] = "notify_only"


class MediaConfig(Section):
    download: bool = True
    max_bytes: int = Field(10_000_000, gt=0)
    timeout_seconds: float = Field(15.0, gt=0)
    # Image hosts fetched from ("*" = part of one DNS label, ":port" for a non-default port); the channel site's
    # own host is always added. Anything else in a post is journaled (MEDIA_URL_REFUSED) and never fetched.
    allowed_hosts: tuple[str, ...] = TELEGRAM_MEDIA_HOSTS

    @field_validator("allowed_hosts")
    @classmethod
    def _host_patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            if not _HOST_PATTERN.fullmatch(pattern) or not pattern.strip("*.:"):
                raise ValueError(f"{pattern!r} is not a host pattern like cdn*.telesco.pe or 127.0.0.1:8000")
        return tuple(pattern.lower() for pattern in value)


class StopLossConfig(Section):
    sl_order_type: Literal["trigger", "local_guard"] = "trigger"
    move_sl_to_be: bool = True
    break_even_buffer_pct: ConfigDecimal = Field(Decimal("0.001"), ge=0, lt=Decimal("0.1"))
    # Every open position must have a stop on the exchange within this many seconds.
    stop_deadline_seconds: float = Field(5.0, gt=0)
    # Repairs failing for longer than this lead to a protective close and safe mode.
    repair_timeout_seconds: float = Field(15.0, gt=0)
    # Attach the stop to each entry order (presetStopLossPrice); false: a stop plan is placed on each fill.
    attach_to_entry: bool = True
    # The mark price past a position's stop this long with the position still open: the stop did not fire, the
    # guard closes the position by market (STOP_BREACHED_CLOSE).
    stop_breach_grace_seconds: float = Field(5.0, gt=0)


class RiskConfig(Section):
    max_account_drawdown_pct: ConfigDecimal = Field(Decimal("0.15"), gt=0, lt=1)
    account_risk_per_trade: ConfigDecimal = Field(Decimal("0.003"), gt=0, le=Decimal("0.1"))
    max_leverage: int = Field(10, ge=1, le=125)
    leverage_policy: Literal["CAP", "REJECT"] = "CAP"
    default_leverage: int = Field(1, ge=1, le=125)
    default_stop_loss_pct: ConfigDecimal = Field(Decimal("0.006"), gt=0, lt=Decimal("0.5"))
    # The spec's default stop is applied only when this says so; otherwise a signal without stop is refused.
    use_default_stop_loss: bool = False
    # Must stay true (every position carries a stop); false is refused below rather than honoured.
    hard_stop_loss_required: bool = True
    max_entry_slippage_pct: ConfigDecimal = Field(Decimal("0.003"), ge=0, lt=Decimal("0.5"))
    # Taker fee rate used in sizing (both fills of the loss at the stop); unset: the contract's own.
    taker_fee_rate: ConfigDecimal | None = Field(None, ge=0, lt=Decimal("0.01"))
    max_notional_per_trade: ConfigDecimal = Field(Decimal("200"), gt=0)
    max_open_positions: int = Field(3, ge=1)
    cooldown_seconds: float = Field(300.0, ge=0)
    min_signal_quality: float = Field(0.8, ge=0, le=1)
    margin_mode: MarginMode = "isolated"
    entry_zone_split: int = Field(1, ge=1, le=10)
    # An entry that would fill at once (market, or zone already reached) older than this when decided is
    # notify_only; 0 disables. A limit entry still waiting for its price and every exit have no age limit.
    max_signal_age_seconds: float = Field(60.0, ge=0)
    # Decisions use the account and positions of the guard's polls and the PriceFeed's prices while they are
    # this fresh (and, for account and positions, asked for after the bot's latest entry); older ones are fetched
    # on the critical path. A symbol's margin mode and leverage are set again only when an entry needs others or
    # they were last set/read longer than settings_recheck_seconds ago (reconciliation reads them at half that).
    max_fact_age_seconds: float = Field(6.0, gt=0, le=60)
    max_price_age_seconds: float = Field(3.0, gt=0, le=60)
    settings_recheck_seconds: float = Field(300.0, gt=0, le=86_400)
    # Margin mode and leverage set ahead of signals on watched symbols (listed here, named by the channel within
    # prepare_settings_recent_days or since the start, or holding a position), one symbol per reconciliation pass,
    # journaled SETTINGS_PREPARED; false: they are set only on an entry's path.
    prepare_settings: bool = True
    prepare_settings_symbols: tuple[str, ...] = Field((), max_length=500)
    prepare_settings_recent_days: float = Field(30.0, ge=0, le=365)
    stoploss: StopLossConfig = StopLossConfig()

    @field_validator("prepare_settings_symbols", mode="before")
    @classmethod
    def _usdt_m_symbols(cls, value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            return value
        symbols: list[str] = []
        for raw in value:
            symbol = normalize_symbol(raw)
            if symbol is None:
                raise ValueError(f"{str(raw)[:40]!r} is not a USDT-M contract name (like BTCUSDT or BTC)")
            symbols.append(symbol)
        return tuple(dict.fromkeys(symbols))

    @field_validator("hard_stop_loss_required")
    @classmethod
    def _stop_always_required(cls, value: bool) -> bool:
        if not value:
            raise ValueError("must be true: no position is opened without a stop; to trade signals that name "
                             "no stop, set use_default_stop_loss: true (default_stop_loss_pct is then used)")
        return value

    @model_validator(mode="after")
    def _default_leverage_within_max(self) -> RiskConfig:
        if self.default_leverage > self.max_leverage:
            raise ValueError(
                f"default_leverage {self.default_leverage} must not exceed max_leverage {self.max_leverage}"
            )
        return self


class PollIntervals(Section):
    account_seconds: float = Field(5.0, gt=0)
    positions_seconds: float = Field(3.0, gt=0)
    open_orders_seconds: float = Field(3.0, gt=0)
    fills_seconds: float = Field(5.0, gt=0)  # the exchange's fill history: outcome notices and P&L


class PriceFeedConfig(Section):
    mode: Literal["ws", "rest"] = "ws"
    interval_seconds: float = Field(2.0, gt=0)
    stale_after_seconds: float = Field(10.0, gt=0)
    ws_required_for_local_guard: bool = False
    # What to do when local_guard stops run on the REST fallback.
    local_guard_on_rest: Literal["safe_mode", "alert"] = "safe_mode"
    # How long the WebSocket may be unavailable before local_guard_on_rest applies (reconnect blips don't count).
    rest_grace_seconds: float = Field(10.0, ge=0)
    ping_interval_seconds: float = Field(30.0, gt=0)  # Bitget: text ping every 30 s
    pong_timeout_seconds: float = Field(10.0, gt=0)
    reconnect_backoff_base_seconds: float = Field(1.0, gt=0)
    reconnect_backoff_max_seconds: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _stale_after_spans_a_poll(self) -> PriceFeedConfig:
        # A REST price is at most one interval old when the next poll lands; a shorter limit is always stale.
        if self.stale_after_seconds <= self.interval_seconds:
            raise ValueError(
                f"stale_after_seconds {self.stale_after_seconds} must exceed interval_seconds {self.interval_seconds}"
            )
        if self.reconnect_backoff_max_seconds < self.reconnect_backoff_base_seconds:
            raise ValueError("reconnect_backoff_max_seconds must not be below reconnect_backoff_base_seconds")
        return self


class HealthConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)


class MonitorConfig(Section):
    enabled: bool = True
    poll_intervals: PollIntervals = PollIntervals()
    price_feed: PriceFeedConfig = PriceFeedConfig()
    health: HealthConfig = HealthConfig()
    min_liquidation_distance_pct: ConfigDecimal = Field(Decimal("0.05"), ge=0, lt=1)
    # Share of a position closed (reduce-only) per step while liquidation is nearer than the minimum.
    liquidation_reduce_fraction: ConfigDecimal = Field(Decimal("0.25"), gt=0, le=1)


class BitgetConfig(Section):
    base_url: str = BITGET_REST
    ws_public_url: str = BITGET_WS_PUBLIC
    ws_private_url: str = BITGET_WS_PRIVATE
    api_key_env: str = "BITGET_API_KEY"
    api_secret_env: str = "BITGET_API_SECRET"
    passphrase_env: str = "BITGET_PASSPHRASE"
    demo_trading: bool = False  # Bitget's own demo environment: sends the paptrading header
    product_type: Literal["USDT-FUTURES", "SUSDT-FUTURES"] = "USDT-FUTURES"
    margin_coin: str = "USDT"
    position_mode: PosMode = "one_way_mode"
    timeout_seconds: float = Field(10.0, gt=0)
    plan_orders_probe_on_startup: bool = True
    plan_orders_capability_ttl_seconds: float = Field(300.0, gt=0)
    plan_orders_probe_timeout_seconds: float = Field(6.0, gt=0)
    plan_orders_probe_safe_mode_on_failure: bool = True
    # A probe that failed (timeout, 5xx) is "unknown" and is retried this soon; never cached as unsupported.
    plan_orders_unknown_ttl_seconds: float = Field(30.0, gt=0)
    # This many rate-limit answers (HTTP 429) within the window put the bot in safe mode.
    rate_limit_safe_mode_threshold: int = Field(5, ge=1)
    rate_limit_safe_mode_window_seconds: float = Field(60.0, gt=0)

    @field_validator("base_url", "ws_public_url", "ws_private_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https", "ws", "wss") or not parsed.netloc:
            raise ValueError("expected an absolute URL")
        return value.rstrip("/")


class PaperConfig(Section):
    """The built-in Bitget simulator that stands in for the exchange while dry_run is true."""

    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)
    seed: int = 7
    starting_equity: ConfigDecimal = Field(Decimal("1000.0"), gt=0)
    tick_seconds: float = Field(1.0, gt=0)
    # Trade on Bitget's real contract list at its live public prices (no key) when reachable; otherwise (loud
    # WARNING) the simulator's own 11 contracts and seeded random walk.
    live_prices: bool = True
    live_prices_url: str = BITGET_REST
    # Bound on reading the live market at start (and each tick's price read): a quick fallback, never a long wait.
    live_prices_timeout_seconds: float = Field(3.0, gt=0, le=30)

    @field_validator("live_prices_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError("expected an http(s) URL like https://api.bitget.com")
        return value.rstrip("/")


class KillSwitchConfig(Section):
    file: str = "./KILL_SWITCH"
    env_var: str = "TRADER_KILL_SWITCH"
    poll_seconds: float = Field(1.0, gt=0)


class StorageConfig(Section):
    db_path: str = "var/following.sqlite"
    media_dir: str = "var/media"


class TelegramBotNotify(Section):
    enabled: bool = False
    token_env: str = "FOLLOWING_BOT_TOKEN"
    chat_id: str = ""
    api_url: str = "https://api.telegram.org"  # the Bot API (a loopback stand-in in tests)
    # Chats whose commands (/status /positions /report /pause /panic /resume /help) are obeyed; empty = no commands.
    allowed_chat_ids: list[str | int] = []
    poll_timeout_seconds: int = Field(25, ge=1, le=50)  # getUpdates long-poll timeout

    @property
    def allowed_chats(self) -> frozenset[str]:
        return frozenset(str(chat).strip() for chat in self.allowed_chat_ids if str(chat).strip())


class WebhookNotify(Section):
    enabled: bool = False
    url: str = ""


class NotifyConfig(Section):
    telegram_bot: TelegramBotNotify = TelegramBotNotify()
    webhook: WebhookNotify = WebhookNotify()
    daily_summary_at: str = ""  # "HH:MM" (UTC): a DAILY_SUMMARY of the last 24 hours once a day; "" = none
    # The outbox (journal): a notice not accepted by the chat/webhook before a stop, crash or kill is re-sent at the
    # next start when younger than this (older ones, and all but the newest ``redeliver_max``, are given up and
    # counted in one NOTICES_NOT_RESENT notice); delivered/given-up rows are deleted after ``outbox_keep_days``.
    redeliver_within_hours: float = Field(24.0, ge=0, le=24 * 365)
    redeliver_max: int = Field(100, ge=0, le=100_000)
    outbox_keep_days: float = Field(7.0, gt=0, le=3650)

    @field_validator("daily_summary_at")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        text = value.strip()
        if not text:
            return ""
        hours, _, minutes = text.partition(":")
        if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60 and len(minutes) == 2):
            raise ValueError("must be HH:MM (UTC), e.g. 20:00, or empty")
        return f"{int(hours):02d}:{minutes}"


class SupervisorConfig(Section):
    max_restarts: int = Field(5, ge=0)
    within_seconds: float = Field(60.0, gt=0)
    backoff_base_seconds: float = Field(0.5, gt=0)
    backoff_max_seconds: float = Field(30.0, gt=0)
    heartbeat_interval_seconds: float = Field(5.0, gt=0)
    heartbeat_timeout_seconds: float = Field(3.0, gt=0)


class DemoConfig(Section):
    """The offline demo: a local channel server revealing scripted posts."""

    enabled: bool = False
    posts_file: str = str(SHIPPED_DEMO_POSTS)  # the demo posts shipped in conf/, wherever the bot is started
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"  # json: one JSON object per line (ts, level, logger, message, exc)
    file: str = ""  # also write to this file, rotated at max_bytes keeping backup_count old files ("" = stderr only)
    max_bytes: int = Field(10_000_000, ge=1024)
    backup_count: int = Field(5, ge=0, le=100)


class Config(Section):
    dry_run: bool = True
    listener: ListenerConfig = ListenerConfig()
    telegram: TelegramConfig = TelegramConfig()
    vlm: VlmConfig = VlmConfig()
    media: MediaConfig = MediaConfig()
    risk: RiskConfig = RiskConfig()
    monitor: MonitorConfig = MonitorConfig()
    bitget: BitgetConfig = BitgetConfig()
    paper: PaperConfig = PaperConfig()
    kill_switch: KillSwitchConfig = KillSwitchConfig()
    storage: StorageConfig = StorageConfig()
    notify: NotifyConfig = NotifyConfig()
    supervisor: SupervisorConfig = SupervisorConfig()
    demo: DemoConfig = DemoConfig()
    logging: LoggingConfig = LoggingConfig()


class ConfigError(Exception):
    """A configuration problem; ``problems`` lists (key path, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {msg}" for path, msg in problems))


def _section_model(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The config model that holds the key at ``loc`` (None when ``loc`` leaves the tree of sections)."""
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _all_keys(model: type[BaseModel] = Config, prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += _all_keys(annotation, f"{prefix}{name}.")
    return keys


def unknown_key_hint(loc: tuple[Any, ...]) -> str:
    """ "unknown key", with the nearest known key of the same section (or the section holding that exact key)."""
    import difflib

    key = str(loc[-1]) if loc else ""
    model = _section_model(loc)
    known = list(model.model_fields) if model is not None else []
    near = difflib.get_close_matches(key.lower(), known, n=1, cutoff=0.6)
    if near:
        return f"unknown key; did you mean {near[0]!r}?"
    elsewhere = [path for path in _all_keys() if path.rsplit(".", 1)[-1] == key]
    if elsewhere:
        return f"unknown key here; {key!r} belongs in {' or '.join(repr(p) for p in elsewhere)}"
    return "unknown key" + (f" (known here: {', '.join(known)})" if known and len(known) <= 20 else "")


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (YAML keeps the last silently: a second
    ``risk:`` section would drop every limit of the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    f"while reading the mapping that starts at line {node.start_mark.line + 1}", None,
                    f"key {key!r} given twice (first at line {first.start_mark.line + 1}); the later one would "
                    "silently replace the earlier", key_node.start_mark)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def yaml_error_text(exc: yaml.YAMLError) -> str:
    """Where a YAML file is broken and why: line and column (1-based), the parser's cause and its context."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "an unknown line"
    text = f"invalid YAML at {where}: {problem}"
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context:
        at = f" at line {context_mark.line + 1}, column {context_mark.column + 1}" if context_mark else ""
        text += f" ({context}{at})"
    return text


def _describe(error: Mapping[str, Any]) -> tuple[str, str]:
    path = ".".join(str(p) for p in error["loc"]) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return path, unknown_key_hint(tuple(error["loc"]))
    message = error["msg"].removeprefix("Value error, ")
    if kind == "literal_error":
        message = f"expected {error['ctx']['expected']}"
    value = error.get("input")
    if not isinstance(value, (dict, list)) and value is not None:
        message = f"{message} (got {value!r:.80})"
    return path, message


_MAX_PROBLEMS = 30


def parse_config(data: Any) -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([("(top level)", "expected a mapping of sections")])
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(e) for e in exc.errors()]
        if len(problems) > _MAX_PROBLEMS:
            more = len(problems) - _MAX_PROBLEMS
            problems = [*problems[:_MAX_PROBLEMS], ("...", f"and {more} more problems")]
        raise ConfigError(problems) from None


MAX_CONFIG_BYTES = 1_000_000


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError([("(file)", f"{path} is larger than {MAX_CONFIG_BYTES} bytes: not a config file")])
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([("(file)", f"cannot read {path}: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([("(file)", f"{path} is not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}); "
                                      "save it as UTF-8")]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as exc:
        raise ConfigError([("(file)", yaml_error_text(exc))]) from None
    except RecursionError:
        raise ConfigError([("(file)", "nested too deeply to be a config (a config is a few levels of sections)")]) \
            from None
    except (ValueError, TypeError, OverflowError) as exc:  # a value YAML itself cannot build (a date 2026-13-45)
        raise ConfigError([("(file)", f"a value cannot be read: {str(exc)[:120]}")]) from None
    try:
        config = parse_config(data)
    except ConfigError as error:
        raise ConfigError(with_lines(error.problems, text)) from None
    except RecursionError:
        raise ConfigError([("(file)", "nested too deeply to be a config (a config is a few levels of sections)")]) \
            from None
    return resolve_paths(config, path.absolute().parent)


def with_lines(problems: list[tuple[str, str]], text: str) -> list[tuple[str, str]]:
    """Each problem whose key path is written in the YAML ``text`` gets the line it is on."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return problems
    located = []
    for key_path, message in problems:
        node, line = root, None
        for part in key_path.split(".") if not key_path.startswith("(") else []:
            if isinstance(node, yaml.MappingNode):
                pair = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part),
                            None)
                if pair is None:
                    break
                line, node = pair[0].start_mark.line + 1, pair[1]
            elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
                node = node.value[int(part)]
                line = node.start_mark.line + 1
            else:
                break
        located.append((key_path, f"{message} (line {line})" if line is not None else message))
    return located


def resolve_paths(config: Config, base: Path) -> Config:
    """``config`` with each relative file or folder setting (written or default) made relative to ``base``, the
    config file's folder: a config file finds the same files from any working directory. ``~`` is expanded."""
    updates: dict[str, dict[str, str]] = {}
    for section, key in PATH_KEYS:
        value = str(getattr(getattr(config, section), key))
        if not value:
            continue
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = base / path
        updates.setdefault(section, {})[key] = os.path.normpath(path)
    for section, values in updates.items():
        config = config.model_copy(update={section: getattr(config, section).model_copy(update=values)})
    return config


@dataclass(frozen=True)
class Secret:
    """A secret value: its repr and str never show it."""

    value: str

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class Secrets:
    bitget_api_key: Secret | None
    bitget_api_secret: Secret | None
    bitget_passphrase: Secret | None
    vlm_api_key: Secret | None
    bot_token: Secret | None
    telegram_api_id: str | None = None  # not secret, and a number: scrubbing it would mangle prices in logs
    telegram_api_hash: Secret | None = None

    def values(self) -> list[str]:
        """Every secret's plain value (for scrubbing output); empty ones left out."""
        return [s.value for s in vars(self).values() if isinstance(s, Secret) and s.value]


def load_secrets(config: Config, env: Mapping[str, str] | None = None) -> Secrets:
    env = os.environ if env is None else env

    def read(name: str) -> Secret | None:
        value = env.get(name, "")
        return Secret(value) if value else None

    return Secrets(
        bitget_api_key=read(config.bitget.api_key_env),
        bitget_api_secret=read(config.bitget.api_secret_env),
        bitget_passphrase=read(config.bitget.passphrase_env),
        vlm_api_key=read(config.vlm.api_key_env),
        bot_token=read(config.notify.telegram_bot.token_env),
        telegram_api_id=env.get(config.telegram.api_id_env) or None,
        telegram_api_hash=read(config.telegram.api_hash_env),
    )


def check_live_requirements(config: Config, secrets: Secrets) -> list[tuple[str, str]]:
    """Problems that only matter when the bot would really run (credentials present, etc.)."""
    problems: list[tuple[str, str]] = []
    if not config.dry_run:
        for key, env_name, secret in (
            ("bitget.api_key_env", config.bitget.api_key_env, secrets.bitget_api_key),
            ("bitget.api_secret_env", config.bitget.api_secret_env, secrets.bitget_api_secret),
            ("bitget.passphrase_env", config.bitget.passphrase_env, secrets.bitget_passphrase),
        ):
            if secret is None:
                problems.append((key, f"environment variable {env_name} is not set (dry_run is false)"))
    if config.vlm.enabled and secrets.vlm_api_key is None:
        problems.append(("vlm.api_key_env", f"environment variable {config.vlm.api_key_env} is not set"))
    if config.listener.mode == "telegram" and not config.demo.enabled:
        problems += telegram_listener_problems(config, secrets)
    if config.demo.enabled and not Path(config.demo.posts_file).is_file():
        problems.append(("demo.posts_file", f"cannot read {config.demo.posts_file} (a relative path is relative to "
                                            "the config file's folder)"))
    if config.notify.telegram_bot.enabled and secrets.bot_token is None:
        name = config.notify.telegram_bot.token_env
        problems.append(("notify.telegram_bot.token_env", f"environment variable {name} is not set"))
    return problems


def telegram_listener_problems(config: Config, secrets: Secrets) -> list[tuple[str, str]]:
    """What keeps ``listener.mode: telegram`` from starting: credentials, and Telethon (an optional extra)."""
    import importlib.util

    problems: list[tuple[str, str]] = []
    api_id = secrets.telegram_api_id
    if api_id is None:
        problems.append(("telegram.api_id_env", f"environment variable {config.telegram.api_id_env} is not set "
                                                "(listener.mode is telegram)"))
    elif not api_id.strip().isdigit():
        problems.append(("telegram.api_id_env", f"environment variable {config.telegram.api_id_env} is not a number"))
    if secrets.telegram_api_hash is None:
        problems.append(("telegram.api_hash_env", f"environment variable {config.telegram.api_hash_env} is not set "
                                                  "(listener.mode is telegram)"))
    if importlib.util.find_spec("telethon") is None:
        problems.append(("listener.mode", "telegram needs Telethon: pip install -e '.[telegram]'"))
    return problems


AccountKind = Literal["paper", "bitget_demo", "live"]


def account_kind(config: Config) -> AccountKind:
    """Which account the bot trades on: the built-in simulator, Bitget's demo account, or real money."""
    if config.dry_run:
        return "paper"
    return "bitget_demo" if config.bitget.demo_trading else "live"


def account_description(config: Config) -> str:
    """One line naming the account kind, for the start line and check-config."""
    kind = account_kind(config)
    if kind == "paper":
        note = " (bitget.demo_trading applies only with dry_run: false)" if config.bitget.demo_trading else ""
        return f"PAPER trading on the built-in simulator, no real money (dry_run: true){note}"
    if kind == "bitget_demo":
        return (f"Bitget DEMO trading on {config.bitget.base_url}: Bitget's demo account, no real money "
                "(bitget.demo_trading: true, demo API key)")
    return f"LIVE trading with REAL MONEY on {config.bitget.base_url} (dry_run: false, bitget.demo_trading: false)"


# An environment variable's name as a config names it: upper case, digits, underscores. Anything else in a
# ``*_env`` field is most likely the key itself, pasted where its variable's name belongs.
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")


def _env_fields(data: Any, path: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if str(key).endswith("_env") and isinstance(value, str):
                found.append((where, value))
            else:
                found.extend(_env_fields(value, where))
    return found


def misplaced_secrets(config: Config) -> list[tuple[str, str]]:
    """(key path, value) of every ``*_env`` field whose value does not look like a variable name."""
    return [(path, value) for path, value in _env_fields(config.model_dump(mode="json"))
            if value and not _ENV_NAME.fullmatch(value)]


def config_secret_texts(config: Config) -> list[str]:
    """Texts of the config file itself that are secrets: the webhook address (it authorizes posting) and any
    value pasted into a ``*_env`` field that looks like a key."""
    texts = [value for _, value in misplaced_secrets(config)]
    if config.notify.webhook.url:
        texts.append(config.notify.webhook.url)
    return texts


def config_warnings(config: Config) -> list[tuple[str, str]]:
    return [(path, "looks like a key, not the name of an environment variable: put the key in the environment "
                   "and name that variable here (its value is not shown)") for path, _ in misplaced_secrets(config)]


def effective_config_text(config: Config, secrets: Secrets) -> str:
    """The effective configuration as YAML, with whether each secret is set (never its value); the webhook
    address and any key pasted into a ``*_env`` field are masked."""
    data = config.model_dump(mode="json")
    if data["notify"]["webhook"]["url"]:
        data["notify"]["webhook"]["url"] = "*** (set, not shown)"
    for path, _ in misplaced_secrets(config):
        section = data
        *parents, leaf = path.split(".")
        for part in parents:
            section = section[part]
        section[leaf] = "*** (not shown)"
    data["_secrets"] = {
        name: ("set" if value is not None else "not set") for name, value in vars(secrets).items()
    }
    account = f"# account: {account_description(config)}\n"
    return account + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
