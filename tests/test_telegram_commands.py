"""Telegram commands on the notifier's bot, against a loopback stand-in of the Bot API: only allowed chats are
obeyed (others ignored and journaled), /panic needs a confirmation, /resume is refused while a kill switch is set,
no reply carries a secret, and a flood of commands is cut off."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.telegram_commands import CommandRate, PanicConfirmations, Update, command_word, decide
from tests.bot_api_server import FakeBotApi
from tests.e2e import running_system
from tests.waiting import wait_until

TOKEN = "123456789:AAHsecretTOKENvalue-xyz"
ALLOWED = 111
STRANGER = 999


@pytest.mark.parametrize(("text", "word", "rest"), [("/status", "status", ""), ("/status@FollowBot", "status", ""),
                                                    ("/PANIC Confirm", "panic", "confirm"), ("hello", "", "")])
def test_command_word(text: str, word: str, rest: str) -> None:
    assert command_word(text) == (word, rest)


def test_decisions() -> None:
    allowed = frozenset({"1"})
    memory = PanicConfirmations()
    assert decide(Update(1, "2", "/pause"), allowed, memory, 0).action == "ignore"
    assert decide(Update(1, "1", "just text"), allowed, memory, 0).action == "ignore"
    assert decide(Update(1, "1", "/pause"), allowed, memory, 0).action == "pause"
    assert decide(Update(1, "1", "/panic confirm"), allowed, memory, 0).action == "reply"  # nothing asked yet
    asked = decide(Update(1, "1", "/panic"), allowed, memory, 0)
    assert asked.action == "reply" and "/panic confirm" in asked.text
    assert decide(Update(1, "1", "/panic confirm"), allowed, memory, 10).action == "panic"
    assert decide(Update(1, "1", "/panic confirm"), allowed, memory, 11).action == "reply"  # used once
    decide(Update(1, "1", "/panic"), allowed, memory, 100)
    assert decide(Update(1, "1", "/panic confirm"), allowed, memory, 161).action == "reply"  # expired
    assert "/status" in decide(Update(1, "1", "/help"), allowed, memory, 0).text
    assert "Unknown command" in decide(Update(1, "1", "/rm -rf"), allowed, memory, 0).text


def test_command_rate_is_a_sliding_window() -> None:
    rate = CommandRate(burst=3, per_seconds=10)
    assert [rate.allow(t) for t in (0, 1, 2, 3, 4)] == [True, True, True, False, False]
    assert rate.allow(10.5)


@pytest.mark.slow
def test_commands_end_to_end_on_the_running_bot(tmp_path: Path) -> None:
    with FakeBotApi(TOKEN) as api:
        notify = {"telegram_bot": {"enabled": True, "chat_id": str(ALLOWED), "api_url": api.url,
                                   "allowed_chat_ids": [ALLOWED, "222"], "poll_timeout_seconds": 1}}
        env = {"FOLLOWING_BOT_TOKEN": TOKEN}
        with running_system(tmp_path, env, notify=notify) as system:
            journal = system.runtime.journal
            assert journal is not None

            def reply(count: int) -> str:
                return wait_until(lambda: len(api.replies(ALLOWED)) >= count and api.replies(ALLOWED)[count - 1],
                                  what=f"reply {count}")

            api.say(ALLOWED, "/status")
            assert "mode: normal" in reply(1)
            api.say(ALLOWED, "/positions")
            assert reply(2) == "no open position"
            api.say(ALLOWED, "/report")
            assert reply(3)

            api.say(STRANGER, "/pause")
            api.say(STRANGER, "/panic")
            wait_until(lambda: len(journal.events("TELEGRAM_COMMAND_IGNORED")) == 2, what="strangers journaled")
            assert api.replies(STRANGER) == []
            assert journal.events("TELEGRAM_COMMAND_IGNORED")[0].detail == {
                "chat_id": str(STRANGER), "command": "pause", "why": "chat not allowed"}
            assert system.runtime.gate.mode.value == "normal"

            api.say(ALLOWED, "/pause")
            assert "Safe mode requested" in reply(4)
            wait_until(lambda: journal.get_flag("mode") == "safe", what="safe mode")

            (tmp_path / "KILL_SWITCH").write_text("safe", encoding="utf-8")
            api.say(ALLOWED, "/resume")
            assert "refused" in reply(5)
            (tmp_path / "KILL_SWITCH").unlink()
            api.say(ALLOWED, "/resume")
            assert "Resume requested" in reply(6)
            wait_until(lambda: journal.get_flag("mode") == "normal", what="back to normal")

            api.say(ALLOWED, "/panic")
            assert "/panic confirm" in reply(7)
            assert journal.get_flag("mode") == "normal", "not before the confirmation"
            api.say(ALLOWED, "/panic confirm")
            assert "PANIC requested" in reply(8)
            wait_until(lambda: journal.get_flag("mode") == "panic", what="panic")

            # A flood: at most the burst is answered, the rest dropped and journaled; the bot keeps running.
            for _ in range(60):
                api.say(ALLOWED, "/help")
            wait_until(lambda: journal.events("TELEGRAM_COMMANDS_DROPPED"), what="the flood cut off")
            assert len(api.replies(ALLOWED)) <= 8 + 5
            assert system.runtime.readiness is not None

        assert all(TOKEN not in str(message) for message in api.sent)
