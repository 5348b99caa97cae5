"""The journal: the one SQLite database that survives restarts.

It holds what the executor must not forget: posts already seen (dedupe, edits), downloaded media, the
decision taken for every signal, every order *intent* (written before the HTTP call, so a restart never
re-sends an order blindly), an append-only event log and a few operator flags (the kill switch).

API (all methods are thread-safe; one connection guarded by an RLock):

- ``Journal(path, *, clock=time.time)``; ``Journal(":memory:")`` for tests; ``close()``; context manager.
- ``schema_version`` -> int. The schema is created/migrated on open; a newer schema than this code knows
  raises ``JournalSchemaError``.
- Posts: ``record_post(post) -> PostRecordResult`` (status new/edited/duplicate, ``previous_text`` on edit),
  ``post(channel, message_id) -> Post | None``, ``last_message_id(channel) -> int | None``,
  ``unread_posts(channel=None, limit=1000) -> list[Post]`` (recorded, no signal row yet).
- Media: ``record_media(url, sha256, path, size, content_type) -> bool``, ``media_by_sha256(sha)``,
  ``media_by_url(url)`` -> ``MediaRow | None``.
- Signals: ``record_signal(channel, message_id, parsed_json, decision, reason, *, index=0, symbol=None)``
  -> id, ``record_signals(channel, message_id, readings)`` -> ids (all readings of a post in one transaction),
  ``set_signal_decision(signal_id, decision, reason)``, ``signal(signal_id)``,
  ``signal_for_post(channel, message_id, index=0)``, ``open_signals(symbol=None)``, ``set_signal_closed(id)``.
- Orders: ``record_intent(client_oid, *, ...) -> bool`` (False: the client_oid exists, do NOT send again),
  ``set_order_state(client_oid, state, *, exchange_order_id=None, filled_size=None, avg_price=None,
  error=None)``, ``order(client_oid)``, ``order_by_exchange_id(exchange_order_id)``,
  ``orders(states=None, symbol=None, signal_id=None)``, ``last_entry_times() -> dict[symbol, ts]``.
- Intents: ``approve_entry(intent, reason) -> bool`` (``parsed`` -> ``approved`` with its ``EntryIntent``),
  ``entry_intents(signal_ids) -> dict[id, EntryIntent]``, ``record_exit_intent(intent, reason) -> bool`` (with
  the update's reading ``exit_pending``),
  ``exits(states=None, target_signal_id=None) -> list[ExitRow]``, ``exit(key)``,
  ``finish_exit(intent, ok, outcome)`` (the reading ``applied`` or ``exit_failed``); bodies through
  ``trading.intents.encode``/``decode``. ``transition_signal(id, expected, decision, reason) -> bool`` (only from
  an expected decision). Fencing: ``claim_generation(name) -> int``, ``generation(name) -> int``.
- Events: ``record_event(kind, detail) -> id``, ``events(kind=None, since_id=0, limit=1000)``.
- Fills: ``record_fill(FillRow) -> bool`` (False: that trade id is stored already), ``has_fill(trade_id)``,
  ``fills(signal_id=None, symbol=None) -> list[FillRow]`` (exchange time order).
- Notices: ``claim_notice(key, kind, detail) -> bool`` (True once per key, ever: a notice is sent once),
  ``notice_claimed(key)``, ``notices(kind=None)``.
- Outbox (notices on their way to the chat/webhook, ``ops/notify.py``): ``outbox_add(kind, text, fields) -> id``
  (before queueing), ``outbox_update(id, delivered_to=, attempts=, delivered=, gave_up=, error=)``,
  ``outbox_pending(after_id=, up_to_id=, limit=)``, ``outbox_notice(id)``, ``outbox_last_id()``,
  ``outbox_pending_count()``, ``outbox_expire(max_age_s=, keep=, up_to_id=) -> OutboxExpiry`` (given up at a
  restart: too old, or beyond the newest ``keep``), ``outbox_prune(older_than_s) -> int``.
- Reading: ``signals(channel=None, since=None)``, ``post_counts(since=None)``.
- Flags: ``set_flag(name, value | None)``, ``get_flag(name)``; ``KILL_SWITCH_FLAG`` = "kill_switch".

Durability: the database runs in WAL mode with ``synchronous=FULL``. NORMAL would be safe against
application crashes but may lose the last commits on power loss / OS crash; a lost order intent (or a
lost "post seen" mark) could make a restarted executor send an order twice. Our write rate is a handful
of commits per post or order, so the extra fsync per commit costs nothing that matters.

Sizes and prices are stored as TEXT decimals and returned as ``Decimal``; floats are refused because they
cannot represent prices exactly. Timestamps are float epoch seconds from the injected clock.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from decimal import Decimal
from enum import Enum
from typing import Any

from exchange.redact import SECRETS, scrub
from parsing.posts import Post
from trading.intents import EntryIntent, ExitIntent, IntentCodecError, decode_entry, decode_exit, encode

_WRITE_ALERT_INTERVAL_S = 60.0
_MAX_PENDING_EVENTS = 10_000
SCHEMA_VERSION = 4
KILL_SWITCH_FLAG = "kill_switch"


class Superseded(RuntimeError):
    """This instance has been replaced by a newer one (its journal generation moved on): it must not act any more.
    Raised by ``actors.fencing.Fence`` right before an exchange write."""


class JournalError(RuntimeError):
    """Base class for journal errors."""


class JournalSchemaError(JournalError):
    """The database was written by a newer (or unknown) version of the code."""


class JournalWriteError(JournalError):
    """A write the journal could not make (disk full, file turned read-only, I/O error). Nothing of that write
    was kept. Callers that protect money (reduce-only closes) go on without the journal; the rest fail."""

    def __init__(self, message: str, cause: BaseException) -> None:
        super().__init__(message)
        self.cause = cause


class JournalOpenError(JournalError):
    """The journal cannot be opened (damaged, not writable, disk full, ...): the message names the file, the
    cause and what to do."""


def _open_problem(path: str, error: BaseException) -> str:
    text = str(error).lower()
    if isinstance(error, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text
                                                     or "corrupt" in text):
        return (f"the journal {path} is damaged ({error}). Move it aside (keep it: it records the orders sent) and "
                "start again to begin a new one; check the exchange for open positions and orders first")
    if "full" in text or getattr(error, "errno", None) == 28:
        return f"the disk holding the journal {path} is full ({error}); free some space and start again"
    if "readonly" in text or "read-only" in text or "unable to open" in text or isinstance(error, PermissionError):
        return (f"the journal {path} cannot be opened for writing ({error}): make the file and its folder "
                "writable by this user, or set storage.db_path to a writable place")
    return f"the journal {path} cannot be opened ({type(error).__name__}: {error})"


class PostStatus(str, Enum):
    NEW = "new"  # first time seen: inserted
    EDITED = "edited"  # seen before with a different text: stored text updated
    DUPLICATE = "duplicate"  # seen before with the same text


class OrderState(str, Enum):
    INTENT = "INTENT"  # journaled, not (yet) sent
    SUBMITTED = "SUBMITTED"  # sent; outcome unknown until the venue says otherwise
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    PARTIAL = "PARTIAL"
    FILLED = "FILLED"
    CANCELED = "CANCELED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_ORDER_STATES


_TERMINAL_ORDER_STATES = frozenset({OrderState.REJECTED, OrderState.FILLED, OrderState.CANCELED})


@dataclass(frozen=True)
class PostRecordResult:
    status: PostStatus
    previous_text: str | None = None  # only for EDITED


@dataclass(frozen=True)
class MediaRow:
    sha256: str
    path: str
    size: int
    content_type: str | None
    created_at: float


@dataclass(frozen=True)
class SignalRow:
    id: int
    channel: str
    message_id: int
    index: int
    symbol: str | None
    parsed: dict[str, Any]
    decision: str
    reason: str
    closed: bool
    created_at: float
    updated_at: float
    closed_at: float | None


@dataclass(frozen=True)
class OrderRow:
    client_oid: str
    signal_id: int | None
    symbol: str
    leg: str
    side: str
    trade_side: str | None
    order_type: str
    size: Decimal
    price: Decimal | None
    reduce_only: bool
    payload: dict[str, Any]
    state: OrderState
    exchange_order_id: str | None
    filled_size: Decimal | None
    avg_price: Decimal | None
    error: str | None
    created_at: float
    updated_at: float


class IntentState(str, Enum):
    PENDING = "PENDING"  # journaled; not known to be done
    DONE = "DONE"  # done, as the exchange showed
    FAILED = "FAILED"  # could not be done; the reason is its outcome (reported)


@dataclass(frozen=True)
class ExitRow:
    intent: ExitIntent
    state: IntentState
    outcome: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class FillRow:
    """One fill of ours as the exchange reports it (Bitget ``/api/v2/mix/order/fills``), with what it belongs to.

    ``fee`` keeps Bitget's sign (negative = paid); ``profit`` is the exchange's realized profit of a closing fill
    before fees. ``leg`` is the order leg (entry*, tp<n>, sl*, close, or stop/tp/liquidation/manual for an order
    the exchange made from a plan or someone made by hand); ``cause`` why a closing fill closed.
    """

    trade_id: str
    order_id: str
    symbol: str
    side: str
    trade_side: str | None
    hold_side: str | None
    opening: bool
    price: Decimal
    size: Decimal
    fee: Decimal
    profit: Decimal | None
    ts: int  # exchange time, epoch milliseconds
    signal_id: int | None
    leg: str
    cause: str | None = None
    client_oid: str | None = None
    recorded_at: float = 0.0


@dataclass(frozen=True)
class OutboxRow:
    """A notice in the outbox (see ``Journal.outbox_add``)."""

    id: int
    kind: str
    text: str
    fields: dict[str, Any]
    created_at: float
    delivered_at: float | None
    delivered_to: tuple[str, ...]
    attempts: int
    gave_up: bool
    last_error: str | None


@dataclass(frozen=True)
class OutboxExpiry:
    """Pending notices given up in one go (too old, or past the re-send cap): how many, their span and kinds."""

    count: int
    first_at: float | None
    last_at: float | None
    kinds: dict[str, int]


@dataclass(frozen=True)
class EventRow:
    id: int
    ts: float
    kind: str
    detail: dict[str, Any]


# version -> statements bringing the schema from version-1 to version.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE posts (
            channel TEXT NOT NULL,
            message_id INTEGER NOT NULL,
            text TEXT NOT NULL,
            post_json TEXT NOT NULL,
            edit_count INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (channel, message_id)
        )""",
        """CREATE TABLE media (
            sha256 TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            size INTEGER NOT NULL,
            content_type TEXT,
            created_at REAL NOT NULL
        )""",
        """CREATE TABLE media_urls (
            url TEXT PRIMARY KEY,
            sha256 TEXT NOT NULL REFERENCES media(sha256),
            created_at REAL NOT NULL
        )""",
        """CREATE TABLE signals (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            channel TEXT NOT NULL,
            message_id INTEGER NOT NULL,
            idx INTEGER NOT NULL,
            symbol TEXT,
            parsed_json TEXT NOT NULL,
            decision TEXT NOT NULL,
            reason TEXT NOT NULL,
            closed INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            closed_at REAL,
            UNIQUE (channel, message_id, idx)
        )""",
        "CREATE INDEX signals_open ON signals (decision, closed, symbol)",
        """CREATE TABLE orders (
            client_oid TEXT PRIMARY KEY,
            signal_id INTEGER REFERENCES signals(id),
            symbol TEXT NOT NULL,
            leg TEXT NOT NULL,
            side TEXT NOT NULL,
            trade_side TEXT,
            order_type TEXT NOT NULL,
            size TEXT NOT NULL,
            price TEXT,
            reduce_only INTEGER NOT NULL,
            payload_json TEXT NOT NULL,
            state TEXT NOT NULL,
            exchange_order_id TEXT,
            filled_size TEXT,
            avg_price TEXT,
            error TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        "CREATE INDEX orders_state ON orders (state, symbol)",
        "CREATE INDEX orders_signal ON orders (signal_id)",
        "CREATE INDEX orders_exchange_id ON orders (exchange_order_id)",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL,
            kind TEXT NOT NULL,
            detail_json TEXT NOT NULL
        )""",
        "CREATE INDEX events_kind ON events (kind, id)",
        """CREATE TABLE flags (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at REAL NOT NULL
        )""",
    ),
    # 2: the exchange's own fills of our orders (one row per trade id) and the outcome notices already sent.
    2: (
        """CREATE TABLE fills (
            trade_id TEXT PRIMARY KEY,
            order_id TEXT NOT NULL,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL,
            trade_side TEXT,
            hold_side TEXT,
            opening INTEGER NOT NULL,
            price TEXT NOT NULL,
            size TEXT NOT NULL,
            fee TEXT NOT NULL,
            profit TEXT,
            ts INTEGER NOT NULL,
            signal_id INTEGER REFERENCES signals(id),
            leg TEXT NOT NULL,
            cause TEXT,
            client_oid TEXT,
            recorded_at REAL NOT NULL
        )""",
        "CREATE INDEX fills_signal ON fills (signal_id, ts)",
        "CREATE INDEX fills_symbol ON fills (symbol, ts)",
        """CREATE TABLE notices (
            key TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            detail_json TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
    ),
    3: (
        # Typed intents above single orders (an exit of a channel's update), stored through trading.intents.
        """CREATE TABLE intents (
            key TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            signal_id INTEGER REFERENCES signals(id),
            target_signal_id INTEGER,
            state TEXT NOT NULL,
            body TEXT NOT NULL,
            outcome TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        "CREATE INDEX intents_state ON intents (state, created_at)",
    ),
    4: (
        # The notice outbox: every notice meant for the chat/webhook, written before it is queued and marked when
        # delivered, so a crash or kill never loses one (re-sent at the next start). ``text`` and ``fields_json``
        # are scrubbed; ``delivered_to`` lists the targets ("webhook", "telegram bot") that accepted it already.
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            text TEXT NOT NULL,
            fields_json TEXT NOT NULL,
            created_at REAL NOT NULL,
            delivered_at REAL,
            delivered_to TEXT NOT NULL DEFAULT '',
            attempts INTEGER NOT NULL DEFAULT 0,
            gave_up INTEGER NOT NULL DEFAULT 0,
            last_error TEXT
        )""",
        "CREATE INDEX outbox_pending ON outbox (gave_up, delivered_at, id)",
    ),
}
assert max(_MIGRATIONS) == SCHEMA_VERSION


def _decimal_text(value: Decimal | int | str, what: str) -> str:
    """A decimal as TEXT; floats are refused (binary floats cannot hold prices exactly)."""
    if isinstance(value, (float, bool)) or not isinstance(value, (Decimal, int, str)):
        raise TypeError(f"{what} must be a Decimal, int or str, not {type(value).__name__}")
    number = Decimal(value) if not isinstance(value, Decimal) else value
    if not number.is_finite():
        raise ValueError(f"{what} must be finite")
    return str(number)


def _optional_decimal_text(value: Decimal | int | str | None, what: str) -> str | None:
    return None if value is None else _decimal_text(value, what)


def _to_decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _dumps(data: dict[str, Any], *, scrubbed: bool = False) -> str:
    # default=str so Decimals/enums inside parsed messages are stored as their text, not refused. ``scrubbed``:
    # every text passes the process's one secret scrubber (event details, which quote errors and replies; the
    # channel's posts and the order intents are kept as they are, prices and all).
    if scrubbed:
        return scrub(json.dumps(SECRETS.scrub_data(data), sort_keys=True, default=str, ensure_ascii=False))
    return json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)


def _where(*conditions: tuple[str, object]) -> tuple[str, list[object]]:
    """A WHERE clause of the conditions whose value is given (``("symbol = ?", symbol)``; None: no filter), and
    its parameters."""
    given = [(sql, value) for sql, value in conditions if value is not None]
    return (f" WHERE {' AND '.join(sql for sql, _ in given)}" if given else ""), [value for _, value in given]


def _scrubbed(text: str | None) -> str | None:
    return scrub(text) if text else text


_POST_FIELDS = frozenset(f.name for f in fields(Post))


def _post_from_json(data: dict[str, Any]) -> Post:
    known = {key: value for key, value in data.items() if key in _POST_FIELDS}  # tolerate older/newer JSON
    known["image_urls"] = tuple(known.get("image_urls") or ())
    known["album_ids"] = tuple(known.get("album_ids") or ())
    return Post(**known)


class Journal:
    """The executor's durable memory. See the module docstring for the API."""

    def __init__(self, path: str, *, clock: Callable[[], float] = time.time) -> None:
        self._path = str(path)
        self._clock = clock
        self._lock = threading.RLock()
        self._write_hooks: list[Callable[[str], None]] = []
        self._last_write_alert = -_WRITE_ALERT_INTERVAL_S
        self._pending_events: list[tuple[float, str, str]] = []  # events not written yet (the disk was full)
        self.writable = True  # False from a failed write until the next one succeeds
        # isolation_level=None: we issue BEGIN IMMEDIATE/COMMIT ourselves, so each method is one transaction.
        try:
            self._conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None, timeout=10.0)
        except (sqlite3.Error, OSError) as exc:
            raise JournalOpenError(_open_problem(self._path, exc)) from None
        try:
            self._conn.execute("PRAGMA busy_timeout = 10000")  # another process (the CLI) may hold the lock
            self._journal_mode = str(self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._schema_version = self._migrate()
        except (sqlite3.Error, OSError) as exc:
            self._conn.close()
            raise JournalOpenError(_open_problem(self._path, exc)) from None
        except JournalWriteError as exc:
            self._conn.close()
            raise JournalOpenError(_open_problem(self._path, exc.cause)) from None
        except BaseException:
            self._conn.close()
            raise

    # --- lifecycle ---------------------------------------------------------------------------------
    @property
    def path(self) -> str:
        return self._path

    @property
    def schema_version(self) -> int:
        return self._schema_version

    @property
    def journal_mode(self) -> str:
        """The SQLite journal mode: "wal" for a file database ("memory" for ":memory:")."""
        return self._journal_mode

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal(path={self._path!r}, schema_version={self._schema_version})"

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. A storage failure (disk full, read-only, I/O or corruption; not a constraint
        of ours) is a ``JournalWriteError``, and the ``on_write_failure`` hooks hear of it (an alert, safe mode)."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._write_failed(exc) from None
            try:
                yield self._conn
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)):
                    raise
                raise self._write_failed(exc) from None
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise self._write_failed(exc) from None
            self.writable = True

    def on_write_failure(self, hook: Callable[[str], None]) -> None:
        """``hook(message)`` is called (at most once a minute) when a write fails: the runtime alerts and goes
        to safe mode. It must not write to the journal."""
        self._write_hooks.append(hook)

    def _write_failed(self, exc: sqlite3.Error) -> JournalWriteError:
        self.writable = False
        message = f"the journal {self._path} cannot be written ({exc})"
        now = time.monotonic()
        if now - self._last_write_alert >= _WRITE_ALERT_INTERVAL_S:
            self._last_write_alert = now
            for hook in list(self._write_hooks):
                try:
                    hook(message)
                except Exception:  # an alert path must never turn one failure into two
                    logging.getLogger(__name__).exception("journal write-failure hook failed")
        return JournalWriteError(message, exc)

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    def _migrate(self) -> int:
        with self._transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise JournalSchemaError(
                    f"journal {self._path!r} has schema version {current}, newer than this code knows "
                    f"({SCHEMA_VERSION}); upgrade the code instead of opening it with an old version"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version]:
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )
        return SCHEMA_VERSION

    # --- posts -------------------------------------------------------------------------------------
    def record_post(self, post: Post) -> PostRecordResult:
        """Remember a post; tells whether it is new, an edit of a known post, or a repeat."""
        now = self._clock()
        post_json = _dumps(post.to_json())
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT text FROM posts WHERE channel = ? AND message_id = ?", (post.channel, post.message_id)
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO posts (channel, message_id, text, post_json, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (post.channel, post.message_id, post.text, post_json, now, now),
                )
                return PostRecordResult(PostStatus.NEW)
            previous_text: str = row[0]
            if previous_text == post.text:
                return PostRecordResult(PostStatus.DUPLICATE)
            conn.execute(
                "UPDATE posts SET text = ?, post_json = ?, edit_count = edit_count + 1, updated_at = ? "
                "WHERE channel = ? AND message_id = ?",
                (post.text, post_json, now, post.channel, post.message_id),
            )
            return PostRecordResult(PostStatus.EDITED, previous_text=previous_text)

    def post(self, channel: str, message_id: int) -> Post | None:
        rows = self._query(
            "SELECT post_json FROM posts WHERE channel = ? AND message_id = ?", (channel, message_id)
        )
        return _post_from_json(json.loads(rows[0][0])) if rows else None

    def post_seen_at(self, channel: str, message_id: int) -> float | None:
        """When the post was first recorded (the listener saw it)."""
        rows = self._query("SELECT created_at FROM posts WHERE channel = ? AND message_id = ?", (channel, message_id))
        return float(rows[0][0]) if rows else None

    def last_message_id(self, channel: str) -> int | None:
        rows = self._query("SELECT MAX(message_id) FROM posts WHERE channel = ?", (channel,))
        return None if rows[0][0] is None else int(rows[0][0])

    def unread_posts(self, channel: str | None = None, limit: int = 1000) -> list[Post]:
        """Posts recorded but never read: no signal row exists for them (a crash between listen and parse).

        Every reading of a post, even "ignored" noise, records a signal row, so "no row" means "not read".
        """
        sql = (
            "SELECT p.post_json FROM posts p WHERE NOT EXISTS ("
            "SELECT 1 FROM signals s WHERE s.channel = p.channel AND s.message_id = p.message_id)"
        )
        params: list[Any] = []
        if channel is not None:
            sql += " AND p.channel = ?"
            params.append(channel)
        params.append(max(0, int(limit)))
        rows = self._query(sql + " ORDER BY p.channel, p.message_id LIMIT ?", params)
        return [_post_from_json(json.loads(row[0])) for row in rows]

    # --- media -------------------------------------------------------------------------------------
    def record_media(self, url: str, sha256: str, path: str, size: int, content_type: str | None) -> bool:
        """Store a downloaded file; False when that content (sha256) is already stored. The url is kept."""
        now = self._clock()
        with self._transaction() as conn:
            inserted = conn.execute(
                "INSERT INTO media (sha256, path, size, content_type, created_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(sha256) DO NOTHING",
                (sha256, path, int(size), content_type, now),
            ).rowcount
            conn.execute(
                "INSERT INTO media_urls (url, sha256, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT(url) DO UPDATE SET sha256 = excluded.sha256",
                (url, sha256, now),
            )
            return inserted == 1

    _MEDIA_COLUMNS = "m.sha256, m.path, m.size, m.content_type, m.created_at"

    def media_by_sha256(self, sha256: str) -> MediaRow | None:
        rows = self._query(f"SELECT {self._MEDIA_COLUMNS} FROM media m WHERE m.sha256 = ?", (sha256,))
        return MediaRow(*rows[0]) if rows else None

    def media_by_url(self, url: str) -> MediaRow | None:
        rows = self._query(
            f"SELECT {self._MEDIA_COLUMNS} FROM media_urls u JOIN media m ON m.sha256 = u.sha256 "
            "WHERE u.url = ?",
            (url,),
        )
        return MediaRow(*rows[0]) if rows else None

    # --- signals -----------------------------------------------------------------------------------
    _SIGNAL_COLUMNS = (
        "id, channel, message_id, idx, symbol, parsed_json, decision, reason, closed, created_at, "
        "updated_at, closed_at"
    )

    @staticmethod
    def _signal_row(row: tuple[Any, ...]) -> SignalRow:
        (sid, channel, message_id, idx, symbol, parsed_json, decision, reason, closed, created, updated,
         closed_at) = row  # fmt: skip
        return SignalRow(
            id=int(sid),
            channel=channel,
            message_id=int(message_id),
            index=int(idx),
            symbol=symbol,
            parsed=json.loads(parsed_json),
            decision=decision,
            reason=reason,
            closed=bool(closed),
            created_at=created,
            updated_at=updated,
            closed_at=closed_at,
        )

    def record_signal(
        self,
        channel: str,
        message_id: int,
        parsed_json: dict[str, Any],
        decision: str,
        reason: str,
        *,
        index: int = 0,
        symbol: str | None = None,
    ) -> int:
        """The id of the signal (channel, message_id, index); an existing one is returned unchanged."""
        return self.record_signals(channel, message_id, [(parsed_json, decision, reason, symbol)], first_index=index)[0]

    def record_signals(self, channel: str, message_id: int,
                       readings: Sequence[tuple[dict[str, Any], str, str, str | None]], *,
                       first_index: int = 0) -> list[int]:
        """Every reading of one post, (parsed_json, decision, reason, symbol) as indexes ``first_index``, ... in
        one transaction: a crash leaves all of them or none (a post with some of its readings journaled counts as
        read, so the rest would never be). Existing rows are returned unchanged."""
        now = self._clock()
        ids: list[int] = []
        with self._transaction() as conn:
            for index, (parsed_json, decision, reason, symbol) in enumerate(readings, start=first_index):
                row = conn.execute(
                    "SELECT id FROM signals WHERE channel = ? AND message_id = ? AND idx = ?",
                    (channel, message_id, index),
                ).fetchone()
                if row is not None:
                    ids.append(int(row[0]))
                    continue
                cursor = conn.execute(
                    "INSERT INTO signals (channel, message_id, idx, symbol, parsed_json, decision, reason, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (channel, message_id, index, symbol, _dumps(parsed_json), decision, _scrubbed(reason), now, now),
                )
                ids.append(int(cursor.lastrowid or 0))
        return ids

    def set_signal_decision(self, signal_id: int, decision: str, reason: str) -> None:
        with self._transaction() as conn:
            updated = conn.execute(
                "UPDATE signals SET decision = ?, reason = ?, updated_at = ? WHERE id = ?",
                (decision, _scrubbed(reason), self._clock(), signal_id),
            ).rowcount
            if updated != 1:
                raise KeyError(f"unknown signal id {signal_id}")

    def transition_signal(self, signal_id: int, expected: Iterable[str], decision: str, reason: str) -> bool:
        """Set the decision only if the current one is among ``expected`` (one decision per signal, whatever
        instance asks); False when it was something else (decided meanwhile by another instance)."""
        allowed = list(expected)
        with self._transaction() as conn:
            updated = conn.execute(
                f"UPDATE signals SET decision = ?, reason = ?, updated_at = ? WHERE id = ? "
                f"AND decision IN ({', '.join('?' for _ in allowed)})",
                (decision, reason, self._clock(), signal_id, *allowed),
            ).rowcount
            return updated == 1

    def set_signal_closed(self, signal_id: int) -> None:
        """Mark a signal closed (its position is gone); closing twice keeps the first close time."""
        now = self._clock()
        with self._transaction() as conn:
            updated = conn.execute(
                "UPDATE signals SET closed = 1, closed_at = COALESCE(closed_at, ?), updated_at = ? "
                "WHERE id = ?",
                (now, now, signal_id),
            ).rowcount
            if updated != 1:
                raise KeyError(f"unknown signal id {signal_id}")

    def signal(self, signal_id: int) -> SignalRow | None:
        rows = self._query(f"SELECT {self._SIGNAL_COLUMNS} FROM signals WHERE id = ?", (signal_id,))
        return self._signal_row(rows[0]) if rows else None

    def signal_for_post(self, channel: str, message_id: int, index: int = 0) -> SignalRow | None:
        rows = self._query(
            f"SELECT {self._SIGNAL_COLUMNS} FROM signals WHERE channel = ? AND message_id = ? AND idx = ?",
            (channel, message_id, index),
        )
        return self._signal_row(rows[0]) if rows else None

    def signals_with_decision(self, decision: str) -> list[SignalRow]:
        """Signals whose current decision is ``decision`` (oldest first)."""
        rows = self._query(f"SELECT {self._SIGNAL_COLUMNS} FROM signals WHERE decision = ? ORDER BY id", (decision,))
        return [self._signal_row(row) for row in rows]

    def open_signals(self, symbol: str | None = None) -> list[SignalRow]:
        """Signals that were traded and are not closed yet (oldest first)."""
        sql = f"SELECT {self._SIGNAL_COLUMNS} FROM signals WHERE decision = 'traded' AND closed = 0"
        params: list[Any] = []
        if symbol is not None:
            sql += " AND symbol = ?"
            params.append(symbol)
        return [self._signal_row(row) for row in self._query(sql + " ORDER BY id", params)]

    # --- orders ------------------------------------------------------------------------------------
    _ORDER_COLUMNS = (
        "client_oid, signal_id, symbol, leg, side, trade_side, order_type, size, price, reduce_only, "
        "payload_json, state, exchange_order_id, filled_size, avg_price, error, created_at, updated_at"
    )

    @staticmethod
    def _order_row(row: tuple[Any, ...]) -> OrderRow:
        (client_oid, signal_id, symbol, leg, side, trade_side, order_type, size, price, reduce_only,
         payload_json, state, exchange_order_id, filled_size, avg_price, error, created,
         updated) = row  # fmt: skip
        return OrderRow(
            client_oid=client_oid,
            signal_id=None if signal_id is None else int(signal_id),
            symbol=symbol,
            leg=leg,
            side=side,
            trade_side=trade_side,
            order_type=order_type,
            size=Decimal(size),
            price=_to_decimal(price),
            reduce_only=bool(reduce_only),
            payload=json.loads(payload_json),
            state=OrderState(state),
            exchange_order_id=exchange_order_id,
            filled_size=_to_decimal(filled_size),
            avg_price=_to_decimal(avg_price),
            error=error,
            created_at=created,
            updated_at=updated,
        )

    def record_intent(
        self,
        client_oid: str,
        *,
        signal_id: int | None,
        symbol: str,
        leg: str,
        side: str,
        trade_side: str | None,
        order_type: str,
        size: Decimal,
        price: Decimal | None,
        reduce_only: bool,
        payload: dict[str, Any],
    ) -> bool:
        """Journal an order before sending it. False when the client_oid exists: do NOT send again."""
        size_text = _decimal_text(size, "size")
        price_text = _optional_decimal_text(price, "price")
        now = self._clock()
        with self._transaction() as conn:
            inserted = conn.execute(
                f"INSERT INTO orders ({self._ORDER_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, ?, ?) "
                "ON CONFLICT(client_oid) DO NOTHING",
                (client_oid, signal_id, symbol, leg, side, trade_side, order_type, size_text, price_text,
                 int(bool(reduce_only)), _dumps(payload), OrderState.INTENT.value, now, now),
            ).rowcount  # fmt: skip
            return inserted == 1

    def set_order_state(
        self,
        client_oid: str,
        state: OrderState | str,
        *,
        exchange_order_id: str | None = None,
        filled_size: Decimal | None = None,
        avg_price: Decimal | None = None,
        error: str | None = None,
    ) -> None:
        """Move an order to ``state``; None for any other field keeps the stored value.

        No transition rules here: the order manager owns them (venue evidence may correct any state).
        Raises KeyError for an unknown client_oid.
        """
        new_state = OrderState(state)
        filled_text = _optional_decimal_text(filled_size, "filled_size")
        avg_text = _optional_decimal_text(avg_price, "avg_price")
        with self._transaction() as conn:
            updated = conn.execute(
                "UPDATE orders SET state = ?, exchange_order_id = COALESCE(?, exchange_order_id), "
                "filled_size = COALESCE(?, filled_size), avg_price = COALESCE(?, avg_price), "
                "error = COALESCE(?, error), updated_at = ? WHERE client_oid = ?",
                (new_state.value, exchange_order_id, filled_text, avg_text, _scrubbed(error), self._clock(),
                 client_oid),
            ).rowcount
            if updated != 1:
                raise KeyError(f"unknown client_oid {client_oid!r}")

    def order(self, client_oid: str) -> OrderRow | None:
        rows = self._query(f"SELECT {self._ORDER_COLUMNS} FROM orders WHERE client_oid = ?", (client_oid,))
        return self._order_row(rows[0]) if rows else None

    def order_by_exchange_id(self, exchange_order_id: str) -> OrderRow | None:
        rows = self._query(
            f"SELECT {self._ORDER_COLUMNS} FROM orders WHERE exchange_order_id = ?", (exchange_order_id,)
        )
        return self._order_row(rows[0]) if rows else None

    def orders(
        self,
        states: Iterable[OrderState | str] | None = None,
        symbol: str | None = None,
        signal_id: int | None = None,
    ) -> list[OrderRow]:
        """Orders matching every given filter, oldest first."""
        clauses: list[str] = []
        params: list[Any] = []
        if states is not None:
            state_values = [OrderState(state).value for state in states]
            if not state_values:
                return []
            clauses.append(f"state IN ({', '.join('?' for _ in state_values)})")
            params.extend(state_values)
        if symbol is not None:
            clauses.append("symbol = ?")
            params.append(symbol)
        if signal_id is not None:
            clauses.append("signal_id = ?")
            params.append(signal_id)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(
            f"SELECT {self._ORDER_COLUMNS} FROM orders{where} ORDER BY created_at, rowid", params
        )
        return [self._order_row(row) for row in rows]

    def last_entry_times(self) -> dict[str, float]:
        """symbol -> time of the latest order that could add exposure (any non-reduce-only intent).

        Every state counts, rejected and unknown included: for a cooldown, erring strict is the safe side.
        """
        rows = self._query("SELECT symbol, MAX(created_at) FROM orders WHERE reduce_only = 0 GROUP BY symbol")
        return {symbol: float(created) for symbol, created in rows}

    def last_entry_change(self) -> float | None:
        """When an order that adds exposure (not reduce-only: an entry) was last journaled or changed state (sent,
        accepted, filled): an account or positions view asked for before this may not show it (trading/facts.py).
        Reduce-only orders (closes, stops, take-profits) only ever make a view too cautious, which the RiskGate
        corrects by deciding a refusal again on facts read now."""
        rows = self._query("SELECT MAX(updated_at) FROM orders WHERE reduce_only = 0")
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    # --- fills -------------------------------------------------------------------------------------
    _FILL_COLUMNS = (
        "trade_id, order_id, symbol, side, trade_side, hold_side, opening, price, size, fee, profit, ts, signal_id, "
        "leg, cause, client_oid, recorded_at"
    )

    def record_fill(self, fill: FillRow) -> bool:
        """Store a fill once: False when its trade id is stored already (the stored row is kept)."""
        values = (
            fill.trade_id, fill.order_id, fill.symbol, fill.side, fill.trade_side, fill.hold_side,
            int(bool(fill.opening)), _decimal_text(fill.price, "price"), _decimal_text(fill.size, "size"),
            _decimal_text(fill.fee, "fee"), _optional_decimal_text(fill.profit, "profit"), int(fill.ts),
            fill.signal_id, fill.leg, fill.cause, fill.client_oid, self._clock(),
        )  # fmt: skip
        with self._transaction() as conn:
            inserted = conn.execute(
                f"INSERT INTO fills ({self._FILL_COLUMNS}) VALUES ({', '.join('?' for _ in values)}) "
                "ON CONFLICT(trade_id) DO NOTHING",
                values,
            ).rowcount
            return inserted == 1

    @staticmethod
    def _fill_row(row: tuple[Any, ...]) -> FillRow:
        (trade_id, order_id, symbol, side, trade_side, hold_side, opening, price, size, fee, profit, ts, signal_id,
         leg, cause, client_oid, recorded_at) = row  # fmt: skip
        return FillRow(
            trade_id=trade_id, order_id=order_id, symbol=symbol, side=side, trade_side=trade_side,
            hold_side=hold_side, opening=bool(opening), price=Decimal(price), size=Decimal(size), fee=Decimal(fee),
            profit=_to_decimal(profit), ts=int(ts), signal_id=None if signal_id is None else int(signal_id), leg=leg,
            cause=cause, client_oid=client_oid, recorded_at=float(recorded_at),
        )  # fmt: skip

    def has_fill(self, trade_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM fills WHERE trade_id = ?", (trade_id,)))

    def fills(self, *, signal_id: int | None = None, symbol: str | None = None) -> list[FillRow]:
        """Stored fills matching the filters, in exchange time order (trade id breaks ties)."""
        where, params = _where(("signal_id = ?", signal_id), ("symbol = ?", symbol))
        rows = self._query(f"SELECT {self._FILL_COLUMNS} FROM fills{where} ORDER BY ts, trade_id", params)
        return [self._fill_row(row) for row in rows]

    # --- notices -----------------------------------------------------------------------------------
    def claim_notice(self, key: str, kind: str, detail: dict[str, Any]) -> bool:
        """True the first time ``key`` is claimed (send the notice), False ever after, also after a restart."""
        with self._transaction() as conn:
            inserted = conn.execute(
                "INSERT INTO notices (key, kind, detail_json, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(key) DO NOTHING",
                (key, kind, _dumps(detail), self._clock()),
            ).rowcount
            return inserted == 1

    def notice_claimed(self, key: str) -> bool:
        return bool(self._query("SELECT 1 FROM notices WHERE key = ?", (key,)))

    def notices(self, kind: str | None = None) -> list[tuple[str, str, dict[str, Any], float]]:
        """(key, kind, detail, created_at) of the notices sent, oldest first."""
        sql = "SELECT key, kind, detail_json, created_at FROM notices"
        params: list[Any] = []
        if kind is not None:
            sql += " WHERE kind = ?"
            params.append(kind)
        rows = self._query(sql + " ORDER BY created_at, rowid", params)
        return [(key, k, json.loads(detail), float(created)) for key, k, detail, created in rows]

    # --- the notice outbox ---------------------------------------------------------------------------
    _OUTBOX_COLUMNS = ("id, kind, text, fields_json, created_at, delivered_at, delivered_to, attempts, gave_up, "
                       "last_error")
    _OUTBOX_PENDING = "gave_up = 0 AND delivered_at IS NULL"

    def outbox_add(self, kind: str, text: str, fields: dict[str, Any]) -> int:
        """Write a notice before it is queued for the chat/webhook; its id. Text and fields are scrubbed."""
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO outbox (kind, text, fields_json, created_at) VALUES (?, ?, ?, ?)",
                (kind, scrub(text), _dumps(fields, scrubbed=True), self._clock()),
            )
            return int(cursor.lastrowid or 0)

    def outbox_update(self, notice_id: int, *, delivered_to: Iterable[str], attempts: int, delivered: bool,
                      gave_up: bool = False, error: str | None = None) -> None:
        """After a delivery round: the targets that accepted the notice so far, the attempts made, ``delivered``
        (every target accepted it), ``gave_up`` (a target refused it for good) and the last error (scrubbed)."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE outbox SET delivered_to = ?, attempts = attempts + ?, "
                "delivered_at = COALESCE(delivered_at, ?), gave_up = MAX(gave_up, ?), "
                "last_error = COALESCE(?, last_error) WHERE id = ?",
                (",".join(sorted(set(delivered_to))), int(attempts), self._clock() if delivered else None,
                 int(gave_up), _scrubbed(error), notice_id),
            )

    def outbox_pending(self, *, after_id: int = 0, up_to_id: int | None = None, limit: int = 100) -> list[OutboxRow]:
        """Notices neither delivered nor given up, ``after_id < id <= up_to_id``, oldest first, at most ``limit``."""
        rows = self._query(
            f"SELECT {self._OUTBOX_COLUMNS} FROM outbox WHERE {self._OUTBOX_PENDING} AND id > ? AND id <= ? "
            "ORDER BY id LIMIT ?",
            (after_id, up_to_id if up_to_id is not None else 2**62, max(0, int(limit))),
        )
        return [self._outbox_row(row) for row in rows]

    def outbox_notice(self, notice_id: int) -> OutboxRow | None:
        rows = self._query(f"SELECT {self._OUTBOX_COLUMNS} FROM outbox WHERE id = ?", (notice_id,))
        return self._outbox_row(rows[0]) if rows else None

    def outbox_last_id(self) -> int:
        rows = self._query("SELECT MAX(id) FROM outbox")
        return int(rows[0][0] or 0)

    def outbox_pending_count(self) -> int:
        return int(self._query(f"SELECT COUNT(*) FROM outbox WHERE {self._OUTBOX_PENDING}")[0][0])

    def outbox_expire(self, *, max_age_s: float, keep: int, up_to_id: int | None = None,
                      reason: str | None = None) -> OutboxExpiry:
        """Give up the pending notices (id <= ``up_to_id``) older than ``max_age_s`` and, of the younger ones, all
        but the ``keep`` newest (``reason`` their error, else one naming the rule); what was given up, for one
        summary notice."""
        cutoff = self._clock() - max_age_s
        bound = up_to_id if up_to_id is not None else 2**62
        with self._transaction() as conn:
            row = conn.execute(
                f"SELECT id FROM outbox WHERE {self._OUTBOX_PENDING} AND id <= ? AND created_at >= ? "
                "ORDER BY id DESC LIMIT 1 OFFSET ?", (bound, cutoff, max(0, int(keep))),
            ).fetchone()
            crowded = int(row[0]) if row else 0  # this one and older ones beyond the ``keep`` newest
            where = f"{self._OUTBOX_PENDING} AND id <= ? AND (created_at < ? OR id <= ?)"
            params = (bound, cutoff, crowded)
            counted = conn.execute(
                f"SELECT kind, COUNT(*), MIN(created_at), MAX(created_at) FROM outbox WHERE {where} GROUP BY kind",
                params,
            ).fetchall()
            conn.execute(
                f"UPDATE outbox SET gave_up = 1, last_error = CASE WHEN created_at < ? THEN ? ELSE ? END WHERE {where}",
                (cutoff, reason or f"not re-sent: older than {max_age_s / 3600:g} h at a restart",
                 reason or f"not re-sent: more than {keep} notices were waiting at a restart", *params),
            )
        kinds = {str(kind): int(count) for kind, count, _, _ in counted}
        firsts = [float(first) for _, _, first, _ in counted]
        lasts = [float(last) for _, _, _, last in counted]
        return OutboxExpiry(sum(kinds.values()), min(firsts, default=None), max(lasts, default=None), kinds)

    def outbox_prune(self, older_than_s: float) -> int:
        """Delete the delivered and given-up notices raised more than ``older_than_s`` ago; how many."""
        with self._transaction() as conn:
            return int(conn.execute(
                "DELETE FROM outbox WHERE (delivered_at IS NOT NULL OR gave_up = 1) AND created_at < ?",
                (self._clock() - older_than_s,),
            ).rowcount)

    @staticmethod
    def _outbox_row(row: Sequence[Any]) -> OutboxRow:
        (notice_id, kind, text, fields_json, created, delivered_at, delivered_to, attempts, gave_up, error) = row
        try:
            loaded = json.loads(fields_json)
        except ValueError:
            loaded = {}
        return OutboxRow(
            int(notice_id), str(kind), str(text), loaded if isinstance(loaded, dict) else {}, float(created),
            None if delivered_at is None else float(delivered_at),
            tuple(target for target in str(delivered_to or "").split(",") if target), int(attempts), bool(gave_up),
            error,
        )

    # --- reading for status and reports ---------------------------------------------------------
    def signals(self, *, channel: str | None = None, since: float | None = None) -> list[SignalRow]:
        """Every signal row (any decision), oldest first, optionally of one channel / created since ``since``."""
        where, params = _where(("channel = ?", channel), ("created_at >= ?", since))
        rows = self._query(f"SELECT {self._SIGNAL_COLUMNS} FROM signals{where} ORDER BY id", params)
        return [self._signal_row(row) for row in rows]

    def post_counts(self, *, since: float | None = None) -> dict[str, int]:
        """channel -> number of posts seen (created since ``since``)."""
        where, params = _where(("created_at >= ?", since))
        rows = self._query(f"SELECT channel, COUNT(*) FROM posts{where} GROUP BY channel", params)
        return {channel: int(count) for channel, count in rows}

    # --- intents -----------------------------------------------------------------------------------
    def record_exit_intent(self, intent: ExitIntent, reason: str) -> bool:
        """Journal an exit and mark its update's reading ``exit_pending``, in one transaction. False when the
        exit is journaled already (the same reading decided twice): it is not added again."""
        now = self._clock()
        with self._transaction() as conn:
            inserted = conn.execute(
                "INSERT INTO intents (key, type, signal_id, target_signal_id, state, body, outcome, created_at, "
                "updated_at) VALUES (?, 'exit', ?, ?, ?, ?, NULL, ?, ?) ON CONFLICT(key) DO NOTHING",
                (intent.key, intent.update_signal_id, intent.target_signal_id, IntentState.PENDING.value,
                 encode(intent), now, now),
            ).rowcount
            if inserted == 1 and intent.from_channel:
                conn.execute("UPDATE signals SET decision = 'exit_pending', reason = ?, updated_at = ? WHERE id = ?",
                             (reason, now, intent.update_signal_id))
            return inserted == 1

    def approve_entry(self, intent: EntryIntent, reason: str) -> bool:
        """Approve a signal still ``parsed`` and journal its entry intent, in one transaction. False when the signal
        was decided meanwhile (refused as interrupted by another instance): it is not approved."""
        now = self._clock()
        with self._transaction() as conn:
            updated = conn.execute(
                "UPDATE signals SET decision = 'approved', reason = ?, updated_at = ? WHERE id = ? AND decision = ?",
                (reason, now, intent.signal_id, "parsed"),
            ).rowcount
            if updated == 1:
                conn.execute(
                    "INSERT INTO intents (key, type, signal_id, target_signal_id, state, body, outcome, created_at, "
                    "updated_at) VALUES (?, 'entry', ?, NULL, ?, ?, NULL, ?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                    (intent.key, intent.signal_id, IntentState.PENDING.value, encode(intent), now, now),
                )
            return updated == 1

    def entry_intents(self, signal_ids: Iterable[int]) -> dict[int, EntryIntent]:
        """signal id -> its journaled entry intent (signals approved before intents were journaled have none)."""
        ids = list(signal_ids)
        if not ids:
            return {}
        rows = self._query(
            "SELECT signal_id, body FROM intents WHERE type = 'entry' "
            f"AND signal_id IN ({', '.join('?' for _ in ids)})", ids)
        found: dict[int, EntryIntent] = {}
        for signal_id, body in rows:
            try:
                found[int(signal_id)] = decode_entry(body)
            except (IntentCodecError, ValueError):
                continue  # the entry orders' own summary still protects the position
        return found

    def exits(self, states: Iterable[IntentState] | None = None, target_signal_id: int | None = None) -> list[ExitRow]:
        """Exit intents, oldest first (the order the channel posted them)."""
        clauses: list[str] = ["type = 'exit'"]
        params: list[Any] = []
        if states is not None:
            values = [IntentState(state).value for state in states]
            if not values:
                return []
            clauses.append(f"state IN ({', '.join('?' for _ in values)})")
            params.extend(values)
        if target_signal_id is not None:
            clauses.append("target_signal_id = ?")
            params.append(target_signal_id)
        rows = self._query(
            f"SELECT key, body, state, outcome, created_at, updated_at FROM intents WHERE {' AND '.join(clauses)} "
            "ORDER BY created_at, rowid", params)
        found: list[ExitRow] = []
        for key, body, state, outcome, created, updated in rows:
            try:
                found.append(ExitRow(decode_exit(body), IntentState(state), outcome, created, updated))
            except (IntentCodecError, ValueError) as exc:
                self._unreadable_intent(key, exc)  # failed and reported once; never stops the others
        return found

    def exit(self, key: str) -> ExitRow | None:
        rows = self._query("SELECT body, state, outcome, created_at, updated_at FROM intents WHERE key = ?", (key,))
        if not rows:
            return None
        try:
            return ExitRow(decode_exit(rows[0][0]), IntentState(rows[0][1]), *rows[0][2:])
        except (IntentCodecError, ValueError) as exc:
            self._unreadable_intent(key, exc)
            return None

    def unreadable_intents(self) -> list[EventRow]:
        """Intents the codec could not read back (a damaged journal): each failed and recorded once."""
        return self.events("INTENT_UNREADABLE", limit=100000)

    def _unreadable_intent(self, key: str, error: Exception) -> None:
        now = self._clock()
        reason = f"unreadable intent: {str(error)[:200]}"
        with self._transaction() as conn:
            row = conn.execute("SELECT signal_id, state FROM intents WHERE key = ?", (key,)).fetchone()
            if row is None or row[1] == IntentState.FAILED.value:
                return
            conn.execute("UPDATE intents SET state = ?, outcome = ?, updated_at = ? WHERE key = ?",
                         (IntentState.FAILED.value, reason, now, key))
            if row[0] is not None:
                conn.execute("UPDATE signals SET decision = 'exit_failed', reason = ?, updated_at = ? "
                             "WHERE id = ? AND decision = 'exit_pending'", (reason, now, row[0]))
        self.record_event("INTENT_UNREADABLE", {"key": key, "signal_id": row[0], "reason": reason})

    def finish_exit(self, intent: ExitIntent, ok: bool, outcome: str, *, close_target: bool = False) -> bool:
        """A pending exit is done (its update ``applied``) or failed (``exit_failed``), and with ``close_target``
        its signal closed, in one transaction. False when it was finished already."""
        now = self._clock()
        state = IntentState.DONE if ok else IntentState.FAILED
        with self._transaction() as conn:
            updated = conn.execute(
                "UPDATE intents SET state = ?, outcome = ?, updated_at = ? WHERE key = ? AND state = ?",
                (state.value, outcome, now, intent.key, IntentState.PENDING.value),
            ).rowcount
            if updated == 1 and intent.from_channel:
                conn.execute("UPDATE signals SET decision = ?, reason = ?, updated_at = ? WHERE id = ?",
                             ("applied" if ok else "exit_failed", outcome, now, intent.update_signal_id))
                if close_target:
                    conn.execute("UPDATE signals SET closed = 1, closed_at = COALESCE(closed_at, ?), updated_at = ? "
                                 "WHERE id = ?", (now, now, intent.target_signal_id))
            return updated == 1

    # --- fencing -----------------------------------------------------------------------------------
    def claim_generation(self, name: str) -> int:
        """A new generation of ``name`` (one more than any before): the instance holding it is the only one
        allowed to act; an older one finds ``generation(name)`` moved on and stops."""
        flag = f"generation:{name}"
        with self._transaction() as conn:
            row = conn.execute("SELECT value FROM flags WHERE name = ?", (flag,)).fetchone()
            value = (int(row[0]) if row else 0) + 1
            conn.execute(
                "INSERT INTO flags (name, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (flag, str(value), self._clock()),
            )
            return value

    def generation(self, name: str) -> int:
        value = self.get_flag(f"generation:{name}")
        return int(value) if value else 0

    # --- events ------------------------------------------------------------------------------------
    def record_event(self, kind: str, detail: dict[str, Any]) -> int:
        """Append an event; its id. When the journal cannot be written the event is held in memory (a bounded
        number of them) and written, in order, with the next event that can be: an event never stops its caller
        (0 is returned then)."""
        row = (self._clock(), kind, _dumps(detail, scrubbed=True))
        try:
            with self._transaction() as conn:
                with self._lock:
                    pending, self._pending_events = self._pending_events, []
                try:
                    if pending:
                        conn.executemany("INSERT INTO events (ts, kind, detail_json) VALUES (?, ?, ?)", pending)
                    cursor = conn.execute("INSERT INTO events (ts, kind, detail_json) VALUES (?, ?, ?)", row)
                except BaseException:
                    with self._lock:
                        self._pending_events[:0] = pending
                    raise
                return int(cursor.lastrowid or 0)
        except JournalWriteError:
            with self._lock:
                if len(self._pending_events) < _MAX_PENDING_EVENTS:
                    self._pending_events.append(row)
            logging.getLogger(__name__).error("event %s held in memory: the journal cannot be written", kind)
            return 0

    def events(self, kind: str | None = None, since_id: int = 0, limit: int = 1000) -> list[EventRow]:
        """Events with id > since_id, oldest first, at most ``limit``."""
        sql = "SELECT id, ts, kind, detail_json FROM events WHERE id > ?"
        params: list[Any] = [since_id]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        params.append(max(0, int(limit)))
        rows = self._query(sql + " ORDER BY id LIMIT ?", params)
        return [
            EventRow(int(eid), ts, event_kind, json.loads(detail)) for eid, ts, event_kind, detail in rows
        ]

    # --- flags -------------------------------------------------------------------------------------
    def set_flag(self, name: str, value: str | None) -> None:
        """Set an operator flag; None deletes it."""
        with self._transaction() as conn:
            if value is None:
                conn.execute("DELETE FROM flags WHERE name = ?", (name,))
            else:
                conn.execute(
                    "INSERT INTO flags (name, value, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = excluded.value, "
                    "updated_at = excluded.updated_at",
                    (name, value, self._clock()),
                )

    def get_flag(self, name: str) -> str | None:
        rows = self._query("SELECT value FROM flags WHERE name = ?", (name,))
        return rows[0][0] if rows else None
