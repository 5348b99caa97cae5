"""Telling the user: notify_only signals, refusals, mode changes, protective actions.

Every notice goes to the log; optionally to a Telegram bot chat and/or a webhook. Delivery failures are
logged and swallowed: a notice must never break the caller, and nothing secret is put in a notice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import requests

from actors.config import NotifyConfig, Secret

log = logging.getLogger("following.notify")


@dataclass(frozen=True)
class Notice:
    kind: str  # NOTIFY_ONLY, SIGNAL_REFUSED, MODE_CHANGED, PROTECTIVE_CLOSE, ...
    text: str


class Notifier:
    def __init__(
        self,
        config: NotifyConfig,
        bot_token: Secret | None = None,
        *,
        session: requests.Session | None = None,
        timeout: float = 5.0,
        bot_api_url: str = "https://api.telegram.org",
    ) -> None:
        self._config = config
        self._bot_token = bot_token
        self._session = session or requests.Session()
        self._timeout = timeout
        self._bot_api_url = bot_api_url.rstrip("/")
        self.listeners: list[Callable[[Notice], None]] = []

    def notify(self, kind: str, text: str) -> None:
        notice = Notice(kind, text)
        log.warning("%s: %s", kind, text)
        for listener in self.listeners:
            listener(notice)
        if self._config.webhook.enabled and self._config.webhook.url:
            self._post(self._config.webhook.url, {"kind": kind, "text": text}, "webhook")
        bot = self._config.telegram_bot
        if bot.enabled and self._bot_token is not None and bot.chat_id:
            url = f"{self._bot_api_url}/bot{self._bot_token.value}/sendMessage"
            self._post(url, {"chat_id": bot.chat_id, "text": f"[{kind}] {text}"}, "telegram bot")

    def _post(self, url: str, payload: dict[str, str], target: str) -> None:
        try:
            response = self._session.post(url, json=payload, timeout=self._timeout)
            if response.status_code >= 300:
                log.error("notice to %s refused: HTTP %s", target, response.status_code)
        except requests.RequestException as exc:
            # The bot URL holds the token: name only the exception type.
            log.error("notice to %s failed: %s", target, type(exc).__name__)
