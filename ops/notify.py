"""Telling the user: notify_only signals, refusals, mode changes, protective actions.

Every notice goes to the log at once; optionally also to a Telegram bot chat (Bot API ``sendMessage``) and/or
a webhook (a JSON POST of ``{"kind", "text"}`` plus, for outcome notices, structured fields: ``channel``,
``message_id``, ``signal_id``, ``symbol``, ``side``, ``price``, ``size``, ``realized_pnl``, ``fees``, ``r_multiple``,
``cause``, ``link`` ... as JSON numbers and strings). Remote delivery runs on a worker thread of its own, so a slow
or dead endpoint never holds up the actor that raised the notice (a stop repair must not wait for a chat
message). Delivery failures are logged and swallowed, and nothing that is logged contains the bot token or the
webhook address: ``requests`` puts the URL (and with it ``/bot<token>/``) into its exception messages, so
every such text is scrubbed.

At least once, across restarts (``use_journal``): once the journal is open, every notice meant for a chat/webhook
is written to the journal's ``outbox`` table before it is queued, and marked delivered once every target accepted
it (HTTP 2xx). A notice the targets did not take (endpoint down, 5xx, 429, the queue full) is tried again in this
run after a growing pause, and whatever is still undelivered when the process stops, crashes or is killed is re-sent
at the next start, oldest first, marked "(re-sent after a restart; first raised <UTC time>)", when younger than
``notify.redeliver_within_hours`` (at most the newest ``notify.redeliver_max``); the others are given up and counted
in one ``NOTICES_NOT_RESENT`` notice. A refusal for good (a 4xx other than 429) is given up with its error recorded.
A crash between a send and its mark means the notice comes twice: never lost is worth more than never twice.
Notices raised before the journal exists, or when it cannot be written, are delivered from memory only. With no
chat and no webhook configured nothing is written (the log has every notice).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Literal

import requests

from exchange.redact import RedactingFilter, register_secret, scrub, scrub_cut
from runtime.config import NotifyConfig, Secret
from trading.journal import Journal, OutboxRow

log = logging.getLogger("following.notify")

# Bot API sendMessage accepts 1-4096 characters; Telegram counts UTF-16 code units.
TELEGRAM_TEXT_LIMIT = 4096
_CUT_MARK = " […]"
_QUEUE_SIZE = 1000
_ATTEMPTS = 2
_RETRY_PAUSE_MAX_S = 5.0
_RETRY_LATER_MAX_S = 600.0  # a notice that failed waits at most this long before its next round in this run
_RETRY_LATER_LIMIT = 1000  # notices waiting for another round in memory; more stay in the outbox for the next start
_REDELIVER_PAGE = 50  # outbox rows read at a time when re-sending after a restart
_WAKE_UP_S = 60.0  # the worker looks at its timers at least this often
NOT_RESENT_KIND = "NOTICES_NOT_RESENT"
WEBHOOK, TELEGRAM_BOT = "webhook", "telegram bot"


NoticeValue = str | int | float | bool | None


@dataclass(frozen=True)
class Notice:
    kind: str  # NOTIFY_ONLY, SIGNAL_REFUSED, MODE_CHANGED, PROTECTIVE_CLOSE, ENTRY_FILLED, POSITION_CLOSED, ...
    text: str
    fields: tuple[tuple[str, NoticeValue], ...] = ()  # structured facts for the webhook (never secrets)


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def cut_for_telegram(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> str:
    """``text`` unchanged when it fits, else its head with a visible cut mark, within ``limit`` UTF-16 units."""
    if _utf16_length(text) <= limit:
        return text
    budget = limit - _utf16_length(_CUT_MARK)
    kept: list[str] = []
    used = 0
    for char in text:
        size = 2 if ord(char) > 0xFFFF else 1
        if used + size > budget:
            break
        kept.append(char)
        used += size
    return "".join(kept) + _CUT_MARK


_HTTP_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "requests")


@dataclass(frozen=True)
class _Delivery:
    target: str  # WEBHOOK | TELEGRAM_BOT: what the log names, never the address
    url: str
    payload: dict[str, NoticeValue]


@dataclass(frozen=True)
class _Job:
    """One notice on its way: its outbox row (None: in memory only), when it was first raised, why it is sent again
    ("" first time, "restart" from an earlier run's outbox, "retry" after failed rounds in this run), the targets
    that took it already and the rounds made in this run."""

    notice: Notice
    row_id: int | None
    raised_at: float
    resent: Literal["", "restart", "retry"] = ""
    done: frozenset[str] = frozenset()
    rounds: int = 0


Outcome = Literal["ok", "refused", "failed"]


@dataclass(frozen=True)
class _Attempt:
    outcome: Literal["ok", "refused", "retry"]
    pause: float = 0.0
    error: str = ""


def utc_text(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _marker(job: _Job) -> str:
    if job.resent == "restart":
        return f"(re-sent after a restart; first raised {utc_text(job.raised_at)})"
    if job.resent == "retry":
        return f"(delayed: the first attempts failed; first raised {utc_text(job.raised_at)})"
    return ""


def _field_value(value: object) -> NoticeValue:
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


class Notifier:
    def __init__(
        self,
        config: NotifyConfig,
        bot_token: Secret | None = None,
        *,
        session: requests.Session | None = None,
        timeout: float = 5.0,
        bot_api_url: str = "https://api.telegram.org",
        retry_pause_s: float = 1.0,
        retry_later_s: float = 30.0,
        redeliver_pause_s: float = 1.0,
    ) -> None:
        self._config = config
        self._bot_token = bot_token
        self._session = session or requests.Session()
        self._timeout = timeout
        self._bot_api_url = bot_api_url.rstrip("/")
        self._retry_pause_s = retry_pause_s
        self._retry_later_s = retry_later_s  # the first pause before another round of a notice that failed
        self._redeliver_pause_s = redeliver_pause_s  # between notices re-sent after a restart (chat rate limits)
        self.listeners: list[Callable[[Notice], None]] = []
        # the scrubber masks each in every form it can take (URL-quoted, JSON-escaped, a URL's path and query)
        register_secret(bot_token.value if bot_token is not None else None, config.webhook.url)
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=_QUEUE_SIZE)
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()
        self._closed = threading.Event()
        self._log_filter = RedactingFilter()
        for name in _HTTP_LOGGERS:
            logging.getLogger(name).addFilter(self._log_filter)
        self._journal: Journal | None = None
        self._lock = threading.Lock()  # guards what follows
        self._retry: list[tuple[float, int, _Job]] = []  # heap of (due, seq, job): another round later in this run
        self._seq = itertools.count()
        self._active = 0  # notices queued, in flight or waiting for another round
        self._backlog: deque[_Job] = deque()  # re-sends read from the outbox, not handed to the worker yet
        self._backlog_after = 0  # outbox ids up to this one are read
        self._backlog_up_to = 0  # the last id an earlier run wrote (0: nothing to re-send)
        self._backlog_left = 0
        self._backlog_next = 0.0  # monotonic time of the next re-send

    def notify(self, kind: str, text: str, fields: Mapping[str, NoticeValue] | None = None) -> None:
        """Log the notice, write it to the outbox and queue it for the configured chat/webhook. Never raises, never
        blocks.

        ``fields`` go into the webhook's JSON body next to ``kind`` and ``text`` (which they cannot replace)."""
        extra = tuple((k, scrub(v) if isinstance(v, str) else v) for k, v in (fields or {}).items()
                      if k not in ("kind", "text"))
        notice = Notice(kind, scrub(text), extra)  # a notice may quote a channel post: never a secret of ours
        log.warning("%s: %s", kind, notice.text)
        for listener in self.listeners:
            try:
                listener(notice)
            except Exception:
                log.exception("notice listener failed")
        if not self._targets():
            return  # log only: nothing to deliver, nothing to keep
        self._submit(_Job(notice, self._write_outbox(notice), time.time()))

    def use_journal(self, journal: Journal) -> None:
        """Keep every notice from now on in the journal's outbox until delivered, and re-send (on the worker, paced)
        what an earlier run left undelivered. Prunes old rows; a problem with the outbox is logged, never raised."""
        config = self._config
        targets = self._targets()
        pruned = 0
        try:
            pruned = journal.outbox_prune(config.outbox_keep_days * 86400.0)
        except Exception as exc:  # a full disk: pruning waits for the next start, re-sending does not
            log.error("the notice outbox cannot be pruned (%s)", scrub(f"{type(exc).__name__}: {exc}"))
        try:
            last_id = journal.outbox_last_id()
            if targets:
                expired = journal.outbox_expire(max_age_s=config.redeliver_within_hours * 3600.0,
                                                keep=config.redeliver_max, up_to_id=last_id)
            else:
                expired = journal.outbox_expire(max_age_s=0.0, keep=0, up_to_id=last_id,
                                                reason="not re-sent: no chat or webhook is configured")
            waiting = journal.outbox_pending_count()
        except Exception as exc:
            log.error("the notice outbox cannot be read (%s): undelivered notices of an earlier run are not re-sent",
                      scrub(f"{type(exc).__name__}: {exc}"))
            last_id, waiting, expired = 0, 0, None
        self._journal = journal
        if pruned:
            log.info("notice outbox: %d delivered notice(s) older than %g days deleted", pruned,
                     config.outbox_keep_days)
        if expired is not None and expired.count:
            kinds = ", ".join(f"{kind} x{count}" for kind, count in
                              sorted(expired.kinds.items(), key=lambda item: (-item[1], item[0])))
            span = (f"raised between {utc_text(expired.first_at or 0.0)} and {utc_text(expired.last_at or 0.0)}")
            why = (f"older than {config.redeliver_within_hours:g} h or beyond the newest {config.redeliver_max}"
                   if targets else "no chat or webhook is configured")
            self.notify(NOT_RESENT_KIND,
                        f"{expired.count} notice(s) {span} were not delivered before a restart and are not re-sent "
                        f"({why}): {kinds}. They stay in the journal's outbox table for "
                        f"{config.outbox_keep_days:g} days.",
                        {"count": expired.count, "first_raised_at": utc_text(expired.first_at or 0.0),
                         "last_raised_at": utc_text(expired.last_at or 0.0)})
        with self._lock:  # after the summary, which goes first
            self._backlog_after, self._backlog_up_to, self._backlog_left = 0, last_id, waiting
        if waiting:
            log.warning("%d notice(s) not delivered before the restart are re-sent, oldest first", waiting)
            self._start_worker()

    def undelivered(self) -> int:
        """Notices not yet accepted by every target: queued, in flight, waiting for another round, to be re-sent."""
        with self._lock:
            return self._active + self._backlog_left

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (within ``timeout``), then stop the worker. What is left stays in the outbox."""
        self._closed.set()
        with self._worker_lock:
            worker = self._worker
        if worker is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=timeout)
            worker.join(timeout)
        for name in _HTTP_LOGGERS:
            logging.getLogger(name).removeFilter(self._log_filter)

    # --- internals ---------------------------------------------------------------------------------
    def _targets(self) -> tuple[str, ...]:
        targets: list[str] = []
        webhook = self._config.webhook
        if webhook.enabled and webhook.url:
            targets.append(WEBHOOK)
        bot = self._config.telegram_bot
        if bot.enabled and self._bot_token is not None and bot.chat_id:
            targets.append(TELEGRAM_BOT)
        return tuple(targets)

    def _write_outbox(self, notice: Notice) -> int | None:
        journal = self._journal
        if journal is None:
            return None
        try:
            return journal.outbox_add(notice.kind, notice.text, dict(notice.fields))
        except Exception as exc:  # a full disk must not cost the notice: it still goes out from memory
            log.error("notice %s not written to the outbox (%s): delivered from memory only", notice.kind,
                      scrub(f"{type(exc).__name__}: {exc}"))
            return None

    def _deliveries(self, job: _Job) -> list[_Delivery]:
        notice = job.notice
        marker = _marker(job)
        text = f"{marker} {notice.text}" if marker else notice.text
        deliveries: list[_Delivery] = []
        webhook = self._config.webhook
        if WEBHOOK in self._targets() and WEBHOOK not in job.done:
            body: dict[str, NoticeValue] = {"kind": notice.kind, "text": text, **dict(notice.fields)}
            if marker:
                body.update(resent=True, first_raised_at=utc_text(job.raised_at))
            deliveries.append(_Delivery(WEBHOOK, webhook.url, body))
        bot = self._config.telegram_bot
        if TELEGRAM_BOT in self._targets() and TELEGRAM_BOT not in job.done:
            assert self._bot_token is not None
            url = f"{self._bot_api_url}/bot{self._bot_token.value}/sendMessage"
            deliveries.append(_Delivery(TELEGRAM_BOT, url, {"chat_id": bot.chat_id,
                                                            "text": cut_for_telegram(f"[{notice.kind}] {text}")}))
        return deliveries

    def _start_worker(self) -> None:
        with self._worker_lock:
            if self._worker is None and not self._closed.is_set():
                self._worker = threading.Thread(target=self._run, name="notifier", daemon=True)
                self._worker.start()

    def _submit(self, job: _Job) -> None:
        if self._closed.is_set():
            log.error("notice %s not sent now: the notifier is closed%s", job.notice.kind,
                      "; it is re-sent at the next start" if job.row_id is not None else "")
            return
        with self._lock:
            self._active += 1
        try:
            self._queue.put_nowait(job)  # before the worker starts: a new notice goes ahead of any re-send
        except queue.Full:
            log.error("notice %s waits: %d notices are queued already", job.notice.kind, _QUEUE_SIZE)
            self._retry_later(job)
        self._start_worker()

    def _retry_later(self, job: _Job) -> None:
        """Another round of ``job`` after a pause growing with its rounds; beyond the limit it stays in the outbox
        (re-sent at the next start) or, in memory only, is dropped. Called with the job counted in ``_active``."""
        pause = min(self._retry_later_s * 2 ** max(0, job.rounds - 1), _RETRY_LATER_MAX_S)
        with self._lock:
            if len(self._retry) < _RETRY_LATER_LIMIT:
                heapq.heappush(self._retry, (time.monotonic() + pause, next(self._seq), job))
                return
            self._active -= 1
        log.error("notice %s not delivered: %d notices wait already%s", job.notice.kind, _RETRY_LATER_LIMIT,
                  "; it is re-sent at the next start" if job.row_id is not None else "")

    def _run(self) -> None:
        while True:
            job = self._next_job()
            if job is None:
                return
            try:
                self._process(job)
            except Exception as exc:  # the worker must outlive any one notice
                log.error("notice %s failed: %s", job.notice.kind, scrub(f"{type(exc).__name__}: {exc}"))
                with self._lock:
                    self._active -= 1

    def _next_job(self) -> _Job | None:
        """New notices first; then, when due, one re-sent after a restart or another round of a failed one. None:
        stop (closed and nothing queued)."""
        while True:
            try:
                return self._queue.get_nowait()
            except queue.Empty:
                pass
            if self._closed.is_set():
                return None
            job, wait = self._due_job()
            if job is not None:
                return job
            try:
                return self._queue.get(timeout=wait)
            except queue.Empty:
                continue

    def _due_job(self) -> tuple[_Job | None, float]:
        """A job due now, else None and how long to wait for the next."""
        now = time.monotonic()
        wait = _WAKE_UP_S
        if self._backlog_left and not self._backlog:
            self._read_backlog()
        with self._lock:
            if self._backlog:
                if now >= self._backlog_next:
                    self._backlog_next = now + self._redeliver_pause_s
                    self._backlog_left = max(0, self._backlog_left - 1)
                    self._active += 1
                    return self._backlog.popleft(), 0.0
                wait = min(wait, self._backlog_next - now)
            if self._retry:
                due = self._retry[0][0]
                if now >= due:
                    return heapq.heappop(self._retry)[2], 0.0
                wait = min(wait, due - now)
        return None, max(0.0, wait)

    def _read_backlog(self) -> None:
        journal = self._journal
        rows: list[OutboxRow] = []
        if journal is not None:
            try:
                rows = journal.outbox_pending(after_id=self._backlog_after, up_to_id=self._backlog_up_to,
                                              limit=_REDELIVER_PAGE)
            except Exception as exc:
                log.error("the notice outbox cannot be read (%s): the rest is re-sent at the next start",
                          scrub(f"{type(exc).__name__}: {exc}"))
        with self._lock:
            if not rows:
                self._backlog_left = 0
                return
            self._backlog_after = rows[-1].id
            for row in rows:
                notice = Notice(row.kind, row.text, tuple((k, _field_value(v)) for k, v in row.fields.items()
                                                          if k not in ("kind", "text")))
                self._backlog.append(_Job(notice, row.id, row.created_at, "restart", frozenset(row.delivered_to)))

    def _process(self, job: _Job) -> None:
        """One round: every target not served yet, then the outbox row marked; a failed round is tried again later."""
        max_age_s = self._config.redeliver_within_hours * 3600.0
        if job.rounds and time.time() - job.raised_at > max_age_s:  # as a restart would: too old to be news
            log.error("notice %s given up: not delivered within %g h", job.notice.kind,
                      self._config.redeliver_within_hours)
            self._mark(job, set(job.done), 0, False, True,
                       f"not delivered within {self._config.redeliver_within_hours:g} h")
            with self._lock:
                self._active -= 1
            return
        deliveries = self._deliveries(job)
        if job.resent == "restart" and job.rounds == 0:
            log.warning("%s (re-sent, first raised %s): %s", job.notice.kind, utc_text(job.raised_at), job.notice.text)
        done = set(job.done)
        attempts, refused, failed, errors = 0, False, False, []
        for delivery in deliveries:
            outcome, tries, error = self._deliver(delivery)
            attempts += tries
            if outcome == "ok":
                done.add(delivery.target)
            else:
                refused, failed = refused or outcome == "refused", failed or outcome == "failed"
                errors.append(f"{delivery.target}: {error}")
        if not self._targets():
            refused, errors = True, ["no chat or webhook is configured"]
        delivered = not refused and not failed
        self._mark(job, done, attempts, delivered, refused, "; ".join(errors) or None)
        if failed and not refused:
            self._retry_later(replace(job, done=frozenset(done), rounds=job.rounds + 1,
                                      resent=job.resent or "retry"))
        else:
            with self._lock:
                self._active -= 1

    def _mark(self, job: _Job, done: set[str], attempts: int, delivered: bool, gave_up: bool,
              error: str | None) -> None:
        journal = self._journal
        if job.row_id is None or journal is None:
            return
        try:
            journal.outbox_update(job.row_id, delivered_to=done, attempts=attempts, delivered=delivered,
                                  gave_up=gave_up, error=error)
        except Exception as exc:  # e.g. the journal closed while stopping: the notice may come again, never lost
            log.error("notice %s: its outbox row is not updated (%s)", job.notice.kind,
                      scrub(f"{type(exc).__name__}: {exc}"))

    def _deliver(self, delivery: _Delivery) -> tuple[Outcome, int, str]:
        """Up to ``_ATTEMPTS`` posts: the outcome, the posts made and the last error."""
        error = ""
        for attempt in range(1, _ATTEMPTS + 1):
            result = self._post(delivery)
            if result.outcome != "retry":
                return result.outcome, attempt, result.error
            error = result.error
            if attempt < _ATTEMPTS and self._closed.wait(min(result.pause, _RETRY_PAUSE_MAX_S)):
                return "failed", attempt, error  # closing: do not sit out a retry pause
        log.error("notice to %s not delivered after %d attempts", delivery.target, _ATTEMPTS)
        return "failed", _ATTEMPTS, error

    def _post(self, delivery: _Delivery) -> _Attempt:
        """One attempt: delivered, refused for good (a 4xx other than 429), or to be retried after a pause."""
        try:
            response = self._session.post(delivery.url, json=delivery.payload, timeout=self._timeout)
        except requests.RequestException as exc:
            error = scrub(f"{type(exc).__name__}: {exc}")
            log.error("notice to %s failed: %s", delivery.target, error)
            return _Attempt("retry", self._retry_pause_s, scrub_cut(error, 300))
        if response.status_code < 300:
            return _Attempt("ok")
        detail = self._error_detail(response)
        log.error("notice to %s refused: HTTP %s%s", delivery.target, response.status_code, detail)
        error = f"HTTP {response.status_code}{detail}"
        if response.status_code == 429:
            return _Attempt("retry", self._retry_after(response), error)
        if response.status_code >= 500:
            return _Attempt("retry", self._retry_pause_s, error)
        return _Attempt("refused", 0.0, error)  # a 4xx will not get better by retrying

    def _error_detail(self, response: requests.Response) -> str:
        try:
            body: Any = response.json()
        except ValueError:
            return ""
        description = body.get("description") if isinstance(body, dict) else None
        return f" ({scrub_cut(str(description), 200)})" if description else ""

    @staticmethod
    def _retry_after(response: requests.Response) -> float:
        try:
            body = response.json()
            return float(body["parameters"]["retry_after"])
        except (ValueError, KeyError, TypeError):
            pass
        try:
            return float(response.headers.get("Retry-After", "1"))
        except ValueError:
            return 1.0
