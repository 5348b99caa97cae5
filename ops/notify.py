"""Telling the user: notify_only signals, refusals, mode changes, protective actions.

Every notice goes to the log at once; optionally also to a Telegram bot chat (Bot API ``sendMessage``) and/or
a webhook (a JSON POST of ``{"kind", "text"}`` plus, for outcome notices, structured fields: ``channel``,
``message_id``, ``signal_id``, ``symbol``, ``side``, ``price``, ``size``, ``realized_pnl``, ``fees``, ``r_multiple``,
``cause``, ``link`` ... as JSON numbers and strings). Remote delivery runs on a worker thread of its own, so a slow
or dead endpoint never holds up the actor that raised the notice (a stop repair must not wait for a chat
message). Delivery failures are logged and swallowed, and nothing that is logged contains the bot token or the
webhook address: ``requests`` puts the URL (and with it ``/bot<token>/``) into its exception messages, so
every such text is scrubbed.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from exchange.redact import RedactingFilter, register_secret, scrub, scrub_cut
from runtime.config import NotifyConfig, Secret

log = logging.getLogger("following.notify")

# Bot API sendMessage accepts 1-4096 characters; Telegram counts UTF-16 code units.
TELEGRAM_TEXT_LIMIT = 4096
_CUT_MARK = " […]"
_QUEUE_SIZE = 1000
_ATTEMPTS = 2
_RETRY_PAUSE_MAX_S = 5.0


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
    target: str  # "telegram bot" | "webhook": what the log names, never the address
    url: str
    payload: dict[str, NoticeValue]


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
    ) -> None:
        self._config = config
        self._bot_token = bot_token
        self._session = session or requests.Session()
        self._timeout = timeout
        self._bot_api_url = bot_api_url.rstrip("/")
        self._retry_pause_s = retry_pause_s
        self.listeners: list[Callable[[Notice], None]] = []
        # the scrubber masks each in every form it can take (URL-quoted, JSON-escaped, a URL's path and query)
        register_secret(bot_token.value if bot_token is not None else None, config.webhook.url)
        self._queue: queue.Queue[_Delivery | None] = queue.Queue(maxsize=_QUEUE_SIZE)
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()
        self._closed = threading.Event()
        self._log_filter = RedactingFilter()
        for name in _HTTP_LOGGERS:
            logging.getLogger(name).addFilter(self._log_filter)

    def notify(self, kind: str, text: str, fields: Mapping[str, NoticeValue] | None = None) -> None:
        """Log the notice and queue it for the configured chat/webhook. Never raises, never blocks.

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
        for delivery in self._deliveries(notice):
            self._enqueue(delivery)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (within ``timeout``), then stop the worker."""
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
    def _deliveries(self, notice: Notice) -> list[_Delivery]:
        deliveries: list[_Delivery] = []
        webhook = self._config.webhook
        if webhook.enabled and webhook.url:
            body: dict[str, NoticeValue] = {"kind": notice.kind, "text": notice.text, **dict(notice.fields)}
            deliveries.append(_Delivery("webhook", webhook.url, body))
        bot = self._config.telegram_bot
        if bot.enabled and self._bot_token is not None and bot.chat_id:
            url = f"{self._bot_api_url}/bot{self._bot_token.value}/sendMessage"
            text = cut_for_telegram(f"[{notice.kind}] {notice.text}")
            deliveries.append(_Delivery("telegram bot", url, {"chat_id": bot.chat_id, "text": text}))
        return deliveries

    def _enqueue(self, delivery: _Delivery) -> None:
        if self._closed.is_set():
            log.error("notice to %s dropped: the notifier is closed", delivery.target)
            return
        with self._worker_lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="notifier", daemon=True)
                self._worker.start()
        try:
            self._queue.put_nowait(delivery)
        except queue.Full:
            log.error("notice to %s dropped: %d notices are waiting already", delivery.target, _QUEUE_SIZE)

    def _run(self) -> None:
        while True:
            delivery = self._queue.get()
            if delivery is None:
                return
            try:
                self._deliver(delivery)
            except Exception as exc:  # the worker must outlive any one delivery
                log.error("notice to %s failed: %s", delivery.target, scrub(f"{type(exc).__name__}: {exc}"))

    def _deliver(self, delivery: _Delivery) -> None:
        for attempt in range(1, _ATTEMPTS + 1):
            pause = self._post(delivery)
            if pause is None:
                return
            if attempt < _ATTEMPTS and self._closed.wait(min(pause, _RETRY_PAUSE_MAX_S)):
                break  # closing: do not sit out a retry pause
        log.error("notice to %s not delivered after %d attempts", delivery.target, _ATTEMPTS)

    def _post(self, delivery: _Delivery) -> float | None:
        """One attempt: None when done (delivered or refused for good), else the pause before a retry."""
        try:
            response = self._session.post(delivery.url, json=delivery.payload, timeout=self._timeout)
        except requests.RequestException as exc:
            log.error("notice to %s failed: %s", delivery.target, scrub(f"{type(exc).__name__}: {exc}"))
            return self._retry_pause_s
        if response.status_code < 300:
            return None
        detail = self._error_detail(response)
        log.error("notice to %s refused: HTTP %s%s", delivery.target, response.status_code, detail)
        if response.status_code == 429:
            return self._retry_after(response)
        return self._retry_pause_s if response.status_code >= 500 else None  # a 4xx will not get better by retrying

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
