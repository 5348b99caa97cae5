"""Commands from the phone: /status, /positions, /report, /pause, /panic (confirmed), /resume, /help.

They arrive on the bot that sends the notices (``notify.telegram_bot``) by long polling ``getUpdates`` on a thread
of their own: nothing here runs on an actor, and the only ways into trading are the Supervisor's mailbox
(``RequestMode`` / ``ResetMode``, never waited on) and reads of the journal and of a cached exchange view.

- Only chats in ``notify.telegram_bot.allowed_chat_ids`` are obeyed. Anything else is ignored (no reply, so a
  stranger learns nothing) and journaled as ``TELEGRAM_COMMAND_IGNORED`` with the chat id and the command word.
- ``/panic`` asks for ``/panic confirm`` from the same chat within ``PANIC_CONFIRM_S``.
- ``/resume`` is refused while a kill switch is set (the same rule as ``following reset-mode``).
- A flood cannot slow trading: reading commands are taken at most ``burst`` per ``per_seconds`` (the rest are
  dropped and counted; /pause /panic /resume always pass), the runtime caches the exchange view for /status and
  /positions for a few seconds, and replies are scrubbed of every registered secret before they leave.

Why a small client on ``requests`` and not a bot library: the project is thread-based (pykka) and needs two Bot
API calls (``getUpdates``, ``sendMessage``); python-telegram-bot and aiogram are asyncio frameworks that would
bring an event loop, their own retry/update machinery and a larger dependency surface into a process that
already has a requests session and secret scrubbing. ``decide`` (pure) holds the rules; ``CommandBot`` the I/O.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import requests

from exchange.redact import scrub

log = logging.getLogger("following.commands")

COMMANDS = ("status", "positions", "report", "pause", "panic", "resume", "help")
PANIC_CONFIRM_S = 60.0
Action = Literal["reply", "pause", "panic", "resume", "ignore", "status", "positions", "report"]

HELP_TEXT = (
    "/status - mode, readiness, open positions, working entries\n"
    "/positions - open positions with stop and targets left\n"
    "/report - results per channel (P&L after fees, win rate, R)\n"
    "/pause - safe mode: no new entries (stops and closes keep working)\n"
    "/panic - close every position (asks for confirmation)\n"
    "/resume - back to normal (refused while a kill switch is set)\n"
    "/help - this list"
)


@dataclass(frozen=True)
class Update:
    update_id: int
    chat_id: str
    text: str


@dataclass(frozen=True)
class Decision:
    action: Action
    text: str = ""  # the reply (action "reply"), or what the action is about
    command: str = ""


def command_word(text: str) -> tuple[str, str]:
    """``/status@MyBot extra`` -> ("status", "extra"); not a command -> ("", "")."""
    stripped = text.strip()
    if not stripped.startswith("/"):
        return "", ""
    head, _, rest = stripped[1:].partition(" ")
    return head.split("@", 1)[0].lower(), rest.strip().lower()


@dataclass
class PanicConfirmations:
    """Chat id -> when /panic was asked (confirmation window)."""

    asked: dict[str, float] = field(default_factory=dict)

    def ask(self, chat_id: str, now: float) -> None:
        self.asked[chat_id] = now

    def confirm(self, chat_id: str, now: float) -> bool:
        asked = self.asked.pop(chat_id, None)
        return asked is not None and now - asked <= PANIC_CONFIRM_S


def decide(update: Update, allowed: frozenset[str], confirmations: PanicConfirmations, now: float) -> Decision:
    """What to do with one message (pure apart from the confirmation memory)."""
    word, rest = command_word(update.text)
    if update.chat_id not in allowed:
        return Decision("ignore", "chat not allowed", word)
    if not word:
        return Decision("ignore", "not a command", "")
    if word == "panic":
        if rest == "confirm":
            if confirmations.confirm(update.chat_id, now):
                return Decision("panic", "telegram /panic confirmed", word)
            return Decision("reply", "No /panic is waiting for confirmation (or it expired): send /panic first.", word)
        confirmations.ask(update.chat_id, now)
        return Decision("reply", f"PANIC cancels working entries and closes EVERY position at market. Send "
                                 f"/panic confirm within {int(PANIC_CONFIRM_S)} s to do it.", word)
    if word in ("pause", "resume", "status", "positions", "report"):
        return Decision(word, "", word)  # type: ignore[arg-type]
    if word in ("help", "start"):
        return Decision("reply", HELP_TEXT, word)
    return Decision("reply", f"Unknown command /{word[:32]}.\n{HELP_TEXT}", word)


class CommandRate:
    """At most ``burst`` commands per ``per_seconds`` (sliding window); the rest are dropped."""

    def __init__(self, burst: int = 5, per_seconds: float = 10.0) -> None:
        self._burst = burst
        self._per = per_seconds
        self._times: deque[float] = deque()

    def allow(self, now: float) -> bool:
        while self._times and now - self._times[0] > self._per:
            self._times.popleft()
        if len(self._times) >= self._burst:
            return False
        self._times.append(now)
        return True


class BotApi:
    """The two Bot API calls used, on requests. Errors are raised as ``BotApiError`` with scrubbed text."""

    def __init__(self, token: str, *, base_url: str = "https://api.telegram.org",
                 session: requests.Session | None = None) -> None:
        self._url = f"{base_url.rstrip('/')}/bot{token}"
        self._session = session or requests.Session()

    def get_updates(self, offset: int | None, timeout_s: int) -> list[Update]:
        params: dict[str, Any] = {"timeout": timeout_s, "allowed_updates": '["message"]'}
        if offset is not None:
            params["offset"] = offset
        body = self._call("getUpdates", params, http_timeout=timeout_s + 10)
        updates: list[Update] = []
        for item in body.get("result") or []:
            if not isinstance(item, dict) or not isinstance(item.get("update_id"), int):
                continue
            message = item.get("message") or item.get("edited_message") or {}
            chat = message.get("chat") if isinstance(message, dict) else None
            text = message.get("text") if isinstance(message, dict) else None
            chat_id = str(chat.get("id")) if isinstance(chat, dict) and chat.get("id") is not None else ""
            updates.append(Update(item["update_id"], chat_id, text if isinstance(text, str) else ""))
        return updates

    def send_message(self, chat_id: str, text: str) -> None:
        self._call("sendMessage", {"chat_id": chat_id, "text": text[:4000]}, http_timeout=10, post=True)

    def _call(self, method: str, params: Mapping[str, Any], *, http_timeout: float, post: bool = False
              ) -> dict[str, Any]:
        try:
            if post:
                response = self._session.post(f"{self._url}/{method}", json=dict(params), timeout=http_timeout)
            else:
                response = self._session.get(f"{self._url}/{method}", params=dict(params), timeout=http_timeout)
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise BotApiError(scrub(f"{method}: {type(exc).__name__}: {exc}")) from None
        if not isinstance(body, dict) or not body.get("ok"):
            description = body.get("description") if isinstance(body, dict) else None
            raise BotApiError(scrub(f"{method}: HTTP {response.status_code} {str(description or '')[:200]}"))
        return body


class BotApiError(RuntimeError):
    pass


@dataclass
class CommandHandlers:
    """What the commands do; each returns the reply text. Provided by the runtime (tests give their own)."""

    status: Callable[[], str]
    positions: Callable[[], str]
    report: Callable[[], str]
    pause: Callable[[str], str]
    panic: Callable[[str], str]
    resume: Callable[[str], str]
    journal_event: Callable[[str, dict[str, Any]], None]


class CommandBot:
    """Long polls the Bot API on a daemon thread and answers the allowed chats."""

    def __init__(self, api: BotApi, handlers: CommandHandlers, allowed_chat_ids: frozenset[str], *,
                 poll_timeout_s: int = 25, rate: CommandRate | None = None, error_pause_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._api = api
        self._handlers = handlers
        self._allowed = allowed_chat_ids
        self._poll_timeout_s = poll_timeout_s
        self._rate = rate or CommandRate()
        self._error_pause_s = error_pause_s
        self._clock = clock
        self._confirmations = PanicConfirmations()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._offset: int | None = None
        self.dropped = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="telegram-commands", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stops taking commands; a long poll in flight is abandoned (daemon thread), never waited on for long."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                updates = self._api.get_updates(self._offset, self._poll_timeout_s)
            except BotApiError as exc:
                log.warning("telegram commands: %s", exc)
                self._stop.wait(self._error_pause_s)
                continue
            for update in updates:
                self._offset = update.update_id + 1
                if self._stop.is_set():
                    return
                try:
                    self.handle(update)
                except Exception as exc:  # a command must never kill the poller
                    log.error("telegram command failed: %s", scrub(f"{type(exc).__name__}: {exc}"))

    def handle(self, update: Update) -> None:
        decision = decide(update, self._allowed, self._confirmations, self._clock())
        if decision.action == "ignore":
            if decision.text == "chat not allowed":
                self._handlers.journal_event("TELEGRAM_COMMAND_IGNORED", {
                    "chat_id": update.chat_id, "command": decision.command[:32], "why": "chat not allowed"})
            return
        # Control commands (/pause /panic /resume) are cheap and must always get through; replies that read the
        # journal or the exchange are what a flood could make expensive, so only they are rate limited.
        control = decision.action in ("pause", "panic", "resume") or decision.command == "panic"
        if not control and not self._rate.allow(self._clock()):
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 50 == 0:
                self._handlers.journal_event("TELEGRAM_COMMANDS_DROPPED", {"dropped": self.dropped})
            return
        self._handlers.journal_event("TELEGRAM_COMMAND", {"chat_id": update.chat_id, "command": decision.command})
        reply = self._reply(decision, update.chat_id)
        try:
            self._api.send_message(update.chat_id, scrub(reply))
        except BotApiError as exc:
            log.warning("telegram reply failed: %s", exc)

    def _reply(self, decision: Decision, chat_id: str) -> str:
        by = f"telegram chat {chat_id}"
        if decision.action == "reply":
            return decision.text
        if decision.action == "status":
            return self._handlers.status()
        if decision.action == "positions":
            return self._handlers.positions()
        if decision.action == "report":
            return self._handlers.report()
        if decision.action == "pause":
            return self._handlers.pause(by)
        if decision.action == "panic":
            return self._handlers.panic(by)
        if decision.action == "resume":
            return self._handlers.resume(by)
        return HELP_TEXT
