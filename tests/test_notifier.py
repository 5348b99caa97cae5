from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.notify import TELEGRAM_TEXT_LIMIT, Notifier, cut_for_telegram
from parsing.channel_server import ChannelServer
from runtime.config import NotifyConfig, Secret, TelegramBotNotify, WebhookNotify
from tests.e2e import running_system
from tests.notify_server import NotifyServer
from tests.waiting import wait_until

TOKEN = "123456789:AAHsecretTOKENvalue-xyz"
CHAT = "-1001234567"


@pytest.fixture
def endpoint() -> Iterator[NotifyServer]:
    with NotifyServer() as server:
        yield server


def notifier_for(server: NotifyServer, *, bot: bool = True, webhook: bool = False, timeout: float = 2.0,
                 webhook_path: str = "/hooks/T000/secret-hook") -> Notifier:
    config = NotifyConfig(
        telegram_bot=TelegramBotNotify(enabled=bot, chat_id=CHAT),
        webhook=WebhookNotify(enabled=webhook, url=f"{server.url}{webhook_path}"),
    )
    return Notifier(config, Secret(TOKEN), bot_api_url=server.url, timeout=timeout, retry_pause_s=0.05)


def test_bot_notice_is_a_send_message_call(endpoint: NotifyServer) -> None:
    notifier = notifier_for(endpoint)
    notifier.notify("NOTIFY_ONLY", "post 7 ETHUSDT: not traded: no stop loss")
    (received,) = wait_until(endpoint.requests, timeout=5, what="the sendMessage call")
    assert received.path == f"/bot{TOKEN}/sendMessage"
    assert received.content_type.startswith("application/json")
    assert received.body == {"chat_id": CHAT, "text": "[NOTIFY_ONLY] post 7 ETHUSDT: not traded: no stop loss"}
    notifier.close()


def test_webhook_notice_is_a_json_post_beside_the_bot(endpoint: NotifyServer) -> None:
    notifier = notifier_for(endpoint, webhook=True)
    notifier.notify("PROTECTIVE_CLOSE", "BTCUSDT long closed: stop repair failed")
    received = wait_until(lambda: len(endpoint.requests()) == 2 and endpoint.requests(), timeout=5,
                          what="both deliveries")
    by_path = {r.path: r.body for r in received}
    assert by_path["/hooks/T000/secret-hook"] == {"kind": "PROTECTIVE_CLOSE",
                                                  "text": "BTCUSDT long closed: stop repair failed"}
    assert f"/bot{TOKEN}/sendMessage" in by_path
    notifier.close()


def test_webhook_body_carries_structured_fields_that_cannot_replace_kind_or_text(endpoint: NotifyServer) -> None:
    notifier = notifier_for(endpoint, bot=False, webhook=True)
    notifier.notify("POSITION_CLOSED", "BTCUSDT long closed", {
        "kind": "NOT_THIS", "text": "nor this", "channel": "c", "message_id": 7, "realized_pnl": -1.25, "cause": "stop",
        "r_multiple": None})
    (received,) = wait_until(endpoint.requests, timeout=5, what="the webhook post")
    assert received.body == {"kind": "POSITION_CLOSED", "text": "BTCUSDT long closed", "channel": "c",
                             "message_id": 7, "realized_pnl": -1.25, "cause": "stop", "r_multiple": None}
    notifier.close()


def test_nothing_is_sent_when_nothing_is_configured(endpoint: NotifyServer,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    notifier = notifier_for(endpoint, bot=False, webhook=False)
    with caplog.at_level(logging.WARNING, logger="following.notify"):
        notifier.notify("NOTIFY_ONLY", "logged only")
    notifier.close()
    assert endpoint.requests() == []
    assert "NOTIFY_ONLY: logged only" in caplog.text


def test_long_text_is_cut_to_the_telegram_limit(endpoint: NotifyServer) -> None:
    notifier = notifier_for(endpoint)
    notifier.notify("NOTIFY_ONLY", "🚀" * 3000)  # 6000 UTF-16 units
    (received,) = wait_until(endpoint.requests, timeout=5, what="the sendMessage call")
    text = received.body["text"]
    assert len(text.encode("utf-16-le")) // 2 <= TELEGRAM_TEXT_LIMIT
    assert text.startswith("[NOTIFY_ONLY] 🚀🚀") and text.endswith("[…]")
    notifier.close()


def test_cut_keeps_short_texts_whole_and_never_splits_a_character() -> None:
    assert cut_for_telegram("short") == "short"
    exact = "x" * TELEGRAM_TEXT_LIMIT
    assert cut_for_telegram(exact) == exact
    cut = cut_for_telegram("a" + "😀" * 5000, limit=20)
    assert len(cut.encode("utf-16-le")) // 2 <= 20 and cut.endswith("[…]")
    cut.encode("utf-8")  # no lone surrogate halves


def test_a_failing_endpoint_is_logged_without_the_token_and_never_raises(
    endpoint: NotifyServer, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint.status = 500
    endpoint.body = {"ok": False, "error_code": 500, "description": "Internal Server Error"}
    notifier = notifier_for(endpoint, webhook=True)
    with caplog.at_level(logging.DEBUG):
        notifier.notify("MODE_CHANGED", "trading mode is now safe")
        wait_until(lambda: len(endpoint.requests()) == 4, timeout=10, what="one retry per target")
        notifier.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("telegram bot refused: HTTP 500" in e for e in errors)
    assert any("webhook refused: HTTP 500" in e for e in errors)
    assert TOKEN not in caplog.text and "secret-hook" not in caplog.text


def test_a_refused_bot_request_is_not_retried_and_says_why(endpoint: NotifyServer,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    endpoint.status = 400
    endpoint.body = {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
    notifier = notifier_for(endpoint)
    with caplog.at_level(logging.ERROR, logger="following.notify"):
        notifier.notify("NOTIFY_ONLY", "x")
        notifier.close()
    assert len(endpoint.requests()) == 1
    assert "HTTP 400 (Bad Request: chat not found)" in caplog.text


def test_an_unreachable_endpoint_error_is_scrubbed_of_the_token(caplog: pytest.LogCaptureFixture) -> None:
    closed = ChannelServer("x")  # a port nobody listens on once stopped
    url = closed.base_url
    closed.stop()
    config = NotifyConfig(telegram_bot=TelegramBotNotify(enabled=True, chat_id=CHAT))
    notifier = Notifier(config, Secret(TOKEN), bot_api_url=url, timeout=1.0, retry_pause_s=0.05)
    with caplog.at_level(logging.DEBUG):
        notifier.notify("NOTIFY_ONLY", "x")
        notifier.close(timeout=10)
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert failures and all("ConnectionError" in f for f in failures)
    assert any("***" in f for f in failures)  # requests named the URL; the token in it was replaced
    assert TOKEN not in caplog.text and TOKEN.split(":")[1] not in caplog.text


def test_a_slow_endpoint_never_holds_up_the_caller(endpoint: NotifyServer) -> None:
    endpoint.delay_s = 30.0  # released when the endpoint stops
    notifier = notifier_for(endpoint, timeout=5.0)
    started = time.monotonic()
    for n in range(5):
        notifier.notify("STOP_MISSING", f"BTCUSDT long has no stop; repairing ({n})")
    # A caller waiting for a send would wait at least the 5 s request timeout: far above this bound.
    assert time.monotonic() - started < 2.5
    assert endpoint.arrived.wait(5)
    notifier.close(timeout=0.1)


def test_a_failing_listener_does_not_stop_the_notice(endpoint: NotifyServer) -> None:
    notifier = notifier_for(endpoint)

    def broken(notice: object) -> None:
        raise RuntimeError("listener bug")

    notifier.listeners.append(broken)
    notifier.notify("NOTIFY_ONLY", "still delivered")
    assert wait_until(endpoint.requests, timeout=5, what="the delivery")
    notifier.close()


@pytest.mark.slow
def test_every_notify_only_reading_reaches_the_webhook(tmp_path: Path, endpoint: NotifyServer) -> None:
    notify = {"webhook": {"enabled": True, "url": f"{endpoint.url}/hook"}}
    with running_system(tmp_path, notify=notify) as system:
        price = system.price("ETHUSDT")
        no_stop = system.channel.add_post(f"ETH LONG\nEntry: {price}\nTargets: {system.price('ETHUSDT', '1.01')}")
        unlinked = system.channel.add_post("DOGE: move stop to break-even")
        texts = wait_until(
            lambda: [r.body["text"] for r in endpoint.requests() if r.body.get("kind") == "NOTIFY_ONLY"]
            if len([r for r in endpoint.requests() if r.body.get("kind") == "NOTIFY_ONLY"]) >= 2 else None,
            timeout=15, what="two notify_only notices at the webhook",
        )
        assert any(t.startswith(f"post {no_stop} ETHUSDT: not traded") for t in texts)
        assert any(t.startswith(f"post {unlinked}") for t in texts)
        assert system.entry_orders() == []
