"""Notices reach the user at least once across restarts: the journal's outbox (ops/notify.py, trading/journal.py).

A loopback server stands for the Telegram Bot API and the webhook; "killed before delivery" is a notifier whose
endpoint is down (or answers 500) stopped with the notice still undelivered, and the next start is a new
``Notifier`` on the same journal file."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from ops.metrics import Metrics
from ops.notify import NOT_RESENT_KIND, Notifier
from runtime.config import NotifyConfig, Secret, TelegramBotNotify, WebhookNotify
from tests.e2e import running_system
from tests.notify_server import NotifyServer, Received
from tests.waiting import wait_until
from trading.journal import _MIGRATIONS, SCHEMA_VERSION, Journal

TOKEN = "123456789:AAHoutboxTOKENvalue-xyz"
CHAT = "-1009876543"
HOOK_PATH = "/hooks/T111/outbox-secret-hook"
SEND = f"/bot{TOKEN}/sendMessage"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def endpoint() -> Iterator[NotifyServer]:
    with NotifyServer() as server:
        yield server


@pytest.fixture
def down_url() -> str:
    """An address nobody listens on: connections are refused (a Telegram outage, a dead webhook)."""
    with NotifyServer() as server:
        url = server.url
    return url


def notifier(url: str, *, bot: bool = True, webhook: bool = False, redeliver_pause_s: float = 0.0,
             retry_later_s: float = 30.0, **notify: object) -> Notifier:
    config = NotifyConfig.model_validate({
        "telegram_bot": TelegramBotNotify(enabled=bot, chat_id=CHAT),
        "webhook": WebhookNotify(enabled=webhook, url=f"{url}{HOOK_PATH}"), **notify})
    return Notifier(config, Secret(TOKEN), bot_api_url=url, timeout=2.0, retry_pause_s=0.01,
                    retry_later_s=retry_later_s, redeliver_pause_s=redeliver_pause_s)


def texts(server: NotifyServer, path: str = SEND) -> list[str]:
    return [str(r.body["text"]) for r in server.requests() if r.path == path]


def killed_with_undelivered(path: Path, url: str, *notices: tuple[str, str], **kwargs: object) -> list[int]:
    """A run whose endpoint never took ``notices``: stopped with them undelivered. Their outbox ids."""
    journal = Journal(str(path))
    first = notifier(url, **kwargs)  # type: ignore[arg-type]
    first.use_journal(journal)
    start = journal.outbox_last_id()
    for kind, text in notices:
        first.notify(kind, text)
    ids = [row.id for row in journal.outbox_pending(after_id=start)]
    first.close(timeout=5)
    journal.close()
    return ids


def test_a_notice_undelivered_when_killed_is_resent_at_the_next_start_with_a_marker(
    tmp_path: Path, endpoint: NotifyServer, down_url: str
) -> None:
    db = tmp_path / "journal.sqlite"
    before = time.time()
    (row_id,) = killed_with_undelivered(db, down_url, ("EXIT_NOT_EXECUTED", "BTCUSDT long: close not executed"))
    with Journal(str(db)) as journal:
        restarted = notifier(endpoint.url)
        restarted.use_journal(journal)
        (text,) = wait_until(lambda: texts(endpoint), timeout=10, what="the re-sent notice")
        assert text.startswith("[EXIT_NOT_EXECUTED] (re-sent after a restart; first raised ")
        assert text.endswith(" UTC) BTCUSDT long: close not executed")
        raised = text.split("first raised ")[1][:19]
        assert time.strftime("%Y-%m-%d %H:%M", time.gmtime(before)) <= raised[:16]
        wait_until(lambda: journal.outbox_pending_count() == 0, timeout=10, what="the row marked delivered")
        row = journal.outbox_notice(row_id)
        assert row is not None and row.delivered_at is not None and row.delivered_to == ("telegram bot",)
        assert row.attempts >= 2  # the failed first run and the re-send
        restarted.close()
        assert restarted.undelivered() == 0

    # A third start re-sends nothing: the notice was delivered.
    with Journal(str(db)) as journal:
        third = notifier(endpoint.url)
        third.use_journal(journal)
        assert third.undelivered() == 0
        third.notify("NOTIFY_ONLY", "fresh")
        wait_until(lambda: len(texts(endpoint)) == 2, timeout=10, what="the fresh notice")
        third.close()
    assert texts(endpoint)[1] == "[NOTIFY_ONLY] fresh"


def test_the_webhook_gets_the_resent_notice_with_its_fields_and_the_marker(
    tmp_path: Path, endpoint: NotifyServer, down_url: str
) -> None:
    db = tmp_path / "journal.sqlite"
    with Journal(str(db)) as journal:
        first = notifier(down_url, bot=False, webhook=True)
        first.use_journal(journal)
        first.notify("POSITION_CLOSED", "ETHUSDT short closed", {"symbol": "ETHUSDT", "realized_pnl": "-1.25",
                                                                 "message_id": 7})
        first.close(timeout=5)
    with Journal(str(db)) as journal:
        restarted = notifier(endpoint.url, bot=False, webhook=True)
        restarted.use_journal(journal)
        (received,) = wait_until(endpoint.requests, timeout=10, what="the re-sent webhook post")
        restarted.close()
    assert received.path == HOOK_PATH
    body = received.body
    assert body["kind"] == "POSITION_CLOSED" and body["resent"] is True
    assert body["text"] == f"(re-sent after a restart; first raised {body['first_raised_at']}) ETHUSDT short closed"
    assert (body["symbol"], body["realized_pnl"], body["message_id"]) == ("ETHUSDT", "-1.25", 7)


def test_only_the_target_that_missed_it_gets_it_again(tmp_path: Path, endpoint: NotifyServer) -> None:
    """The webhook took the notice, the bot did not (HTTP 500): after the restart only the bot gets it."""
    db = tmp_path / "journal.sqlite"
    endpoint.status = 500  # both fail ...
    with Journal(str(db)) as journal:
        first = notifier(endpoint.url, webhook=True)
        first.use_journal(journal)
        row_id = journal.outbox_last_id() + 1
        first.notify("PROTECTIVE_CLOSE", "SOLUSDT long closed: stop repair failed")
        wait_until(lambda: len(endpoint.requests()) >= 4, timeout=10, what="both targets tried")
        first.close(timeout=5)
        journal.outbox_update(row_id, delivered_to=["webhook"], attempts=0, delivered=False)  # ... but the hook took it
    endpoint.status = 200
    seen = len(endpoint.requests())
    with Journal(str(db)) as journal:
        restarted = notifier(endpoint.url, webhook=True)
        restarted.use_journal(journal)
        wait_until(lambda: journal.outbox_pending_count() == 0, timeout=10, what="delivered")
        restarted.close()
    again = endpoint.requests()[seen:]
    assert [r.path for r in again] == [SEND]


def test_old_notices_are_summarized_not_resent_and_young_ones_come_oldest_first(
    tmp_path: Path, endpoint: NotifyServer
) -> None:
    db = tmp_path / "journal.sqlite"
    now = time.time()
    with Journal(str(db), clock=lambda: now - 30 * 3600) as old:  # an earlier run, 30 hours ago
        old.outbox_add("EXIT_NOT_EXECUTED", "old exit", {})
        old.outbox_add("POSITION_CLOSED", "old close 1", {})
        old.outbox_add("POSITION_CLOSED", "old close 2", {})
    with Journal(str(db), clock=lambda: now - 3600) as recent:
        recent.outbox_add("STOP_MISSING", "young 1", {})
        recent.outbox_add("POSITION_CLOSED", "young 2", {})
    with Journal(str(db)) as journal:
        restarted = notifier(endpoint.url)
        restarted.use_journal(journal)
        sent = wait_until(lambda: texts(endpoint) if len(texts(endpoint)) >= 3 else None, timeout=10,
                          what="the summary and two re-sends")
        wait_until(lambda: journal.outbox_pending_count() == 0, timeout=10, what="all settled")
        restarted.close()
        expired = [journal.outbox_notice(i) for i in (1, 2, 3)]
    summary, *resent = sent
    assert summary.startswith(f"[{NOT_RESENT_KIND}] 3 notice(s) raised between ")
    assert "POSITION_CLOSED x2, EXIT_NOT_EXECUTED x1" in summary and "older than 24 h" in summary
    assert [text.split(" UTC) ")[1] for text in resent] == ["young 1", "young 2"]
    assert all("(re-sent after a restart; first raised " in text for text in resent)
    assert all("old " not in text for text in resent)
    for row in expired:
        assert row is not None and row.gave_up and row.delivered_at is None
        assert row.last_error == "not re-sent: older than 24 h at a restart"
    assert len(texts(endpoint)) == 3


def test_a_flood_is_capped_and_never_holds_up_a_new_notice(tmp_path: Path, endpoint: NotifyServer) -> None:
    db = tmp_path / "journal.sqlite"
    with Journal(str(db)) as earlier:
        for n in range(300):
            earlier.outbox_add("STOP_MOVED", f"flood {n}", {})
    with Journal(str(db)) as journal:
        # one re-send a minute: the backlog crawls, a new notice must not wait behind it
        restarted = notifier(endpoint.url, redeliver_pause_s=60.0, redeliver_max=5)
        restarted.use_journal(journal)
        restarted.notify("EXIT_NOT_EXECUTED", "new and urgent")
        wait_until(lambda: "[EXIT_NOT_EXECUTED] new and urgent" in texts(endpoint), timeout=10,
                   what="the new notice, past the backlog")
        restarted.close(timeout=5)
        sent = texts(endpoint)
        assert sent[0].startswith(f"[{NOT_RESENT_KIND}] 295 notice(s)") and "STOP_MOVED x295" in sent[0]
        assert "beyond the newest 5" in sent[0]
        resent = [text for text in sent if "re-sent after a restart" in text]
        assert len(resent) <= 1 and all(text.endswith("flood 295") for text in resent)  # the oldest of the newest 5
        assert journal.outbox_pending_count() == 5 - len(resent)  # the rest waits for the next start
        assert journal.outbox_notice(1).last_error == "not re-sent: more than 5 notices were waiting at a restart"  # type: ignore[union-attr]


def test_a_permanent_refusal_is_given_up_with_its_error_and_not_resent(tmp_path: Path,
                                                                       endpoint: NotifyServer) -> None:
    db = tmp_path / "journal.sqlite"
    endpoint.status = 400
    endpoint.body = {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
    with Journal(str(db)) as journal:
        first = notifier(endpoint.url)
        first.use_journal(journal)
        first.notify("NOTIFY_ONLY", "post 9: not traded")
        row = wait_until(lambda: (r := journal.outbox_notice(1)) is not None and r.gave_up and r, timeout=10,
                         what="the notice given up")
        first.close()
    assert row.last_error == "telegram bot: HTTP 400 (Bad Request: chat not found)"
    assert row.delivered_at is None and row.attempts == 1
    assert len(endpoint.requests()) == 1
    endpoint.status = 200
    with Journal(str(db)) as journal:
        restarted = notifier(endpoint.url)
        restarted.use_journal(journal)
        assert restarted.undelivered() == 0
        restarted.notify("NOTIFY_ONLY", "next")
        wait_until(lambda: len(endpoint.requests()) == 2, timeout=10, what="the next notice")
        restarted.close()
    assert texts(endpoint)[-1] == "[NOTIFY_ONLY] next"


def test_a_failed_notice_is_retried_in_the_same_run_once_the_endpoint_is_back(tmp_path: Path,
                                                                               endpoint: NotifyServer) -> None:
    endpoint.status = 502
    with Journal(str(tmp_path / "journal.sqlite")) as journal:
        live = notifier(endpoint.url, retry_later_s=0.05)
        live.use_journal(journal)
        live.notify("PROTECTIVE_CLOSE", "BTCUSDT long closed: stop repair failed")
        wait_until(lambda: len(endpoint.requests()) >= 2, timeout=10, what="the first round")
        assert live.undelivered() == 1
        endpoint.status = 200
        wait_until(lambda: journal.outbox_pending_count() == 0, timeout=10, what="delivered on a later round")
        wait_until(lambda: live.undelivered() == 0, timeout=10, what="the gauge back to zero")
        live.close()
    last = texts(endpoint)[-1]
    assert last.startswith("[PROTECTIVE_CLOSE] (delayed: the first attempts failed; first raised ")
    assert last.endswith(" UTC) BTCUSDT long closed: stop repair failed")


def test_a_journal_that_cannot_be_written_does_not_stop_the_notice(tmp_path: Path, endpoint: NotifyServer) -> None:
    journal = Journal(str(tmp_path / "journal.sqlite"))
    live = notifier(endpoint.url)
    live.use_journal(journal)
    journal.close()  # every outbox write now fails
    live.notify("JOURNAL_UNWRITABLE", "disk full")
    assert wait_until(lambda: texts(endpoint), timeout=10, what="the notice from memory") == [
        "[JOURNAL_UNWRITABLE] disk full"]
    live.close()


def test_log_only_keeps_nothing_and_old_rows_are_pruned(tmp_path: Path) -> None:
    db = tmp_path / "journal.sqlite"
    now = time.time()
    with Journal(str(db), clock=lambda: now - 10 * 86400) as old:
        delivered = old.outbox_add("NOTIFY_ONLY", "delivered long ago", {})
        old.outbox_update(delivered, delivered_to=["webhook"], attempts=1, delivered=True)
    with Journal(str(db), clock=lambda: now - 60) as recent:
        recent.outbox_add("NOTIFY_ONLY", "left by a run with a webhook", {})
    with Journal(str(db)) as journal:
        log_only = Notifier(NotifyConfig())
        log_only.use_journal(journal)
        assert journal.outbox_notice(delivered) is None  # pruned: delivered more than 7 days ago
        leftover = journal.outbox_notice(delivered + 1)
        assert leftover is not None and leftover.gave_up
        assert leftover.last_error == "not re-sent: no chat or webhook is configured"
        last = journal.outbox_last_id()
        for n in range(5):
            log_only.notify("NOTIFY_ONLY", f"logged only {n}")
        assert journal.outbox_last_id() == last  # nothing written for a log-only setup
        log_only.close()


def test_no_secret_reaches_the_outbox(tmp_path: Path, down_url: str) -> None:
    db = tmp_path / "journal.sqlite"
    with Journal(str(db)) as journal:
        first = notifier(down_url, webhook=True)
        first.use_journal(journal)
        first.notify("ORDER_FAILED", f"error from https://api.telegram.org/bot{TOKEN}/x and {down_url}{HOOK_PATH}",
                     {"detail": f"token {TOKEN}"})
        wait_until(lambda: (r := journal.outbox_notice(1)) is not None and r.attempts >= 2, timeout=10,
                   what="the first round failed")
        first.close(timeout=5)
        row = journal.outbox_notice(1)
    assert row is not None and "***" in row.text and "***" in str(row.fields["detail"])
    with sqlite3.connect(db) as raw:
        dump = "\n".join(raw.iterdump())
    assert TOKEN not in dump and TOKEN.split(":")[1] not in dump and "outbox-secret-hook" not in dump


def test_a_version_3_journal_migrates_and_keeps_its_data(tmp_path: Path) -> None:
    db = tmp_path / "journal.sqlite"
    raw = sqlite3.connect(db)
    raw.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for version in (1, 2, 3):
        for statement in _MIGRATIONS[version]:
            raw.execute(statement)
    raw.execute("INSERT INTO meta VALUES ('schema_version', '3')")
    raw.execute("INSERT INTO flags VALUES ('kill_switch', 'safe', 1.0)")
    raw.commit()
    raw.close()
    with Journal(str(db)) as journal:
        assert journal.schema_version == SCHEMA_VERSION >= 4
        assert journal.get_flag("kill_switch") == "safe"
        notice_id = journal.outbox_add("NOTIFY_ONLY", "after the upgrade", {"n": 1})
        assert [row.text for row in journal.outbox_pending()] == ["after the upgrade"]
        journal.outbox_update(notice_id, delivered_to=["telegram bot"], attempts=1, delivered=True)
        assert journal.outbox_pending_count() == 0
    with Journal(str(db)) as reopened:
        assert reopened.schema_version == SCHEMA_VERSION
        assert reopened.outbox_notice(notice_id) is not None


def test_the_undelivered_gauge_is_exported(endpoint: NotifyServer, down_url: str, tmp_path: Path) -> None:
    metrics = Metrics()
    with Journal(str(tmp_path / "journal.sqlite")) as journal:
        stuck = notifier(down_url, retry_later_s=60.0)
        stuck.use_journal(journal)
        metrics.before_render(lambda: metrics.set_notices_undelivered(stuck.undelivered()))
        stuck.notify("EXIT_NOT_EXECUTED", "x")
        stuck.notify("EXIT_NOT_EXECUTED", "y")
        assert "following_notices_undelivered 2.0" in metrics.render().decode()
        stuck.close(timeout=5)


@pytest.mark.slow
def test_the_runtime_resends_what_an_earlier_run_left_undelivered(tmp_path: Path, endpoint: NotifyServer) -> None:
    with Journal(str(tmp_path / "journal.sqlite")) as earlier:
        earlier.outbox_add("EXIT_NOT_EXECUTED", "post 12 BTCUSDT: close not executed", {"message_id": 12})
    notify = {"webhook": {"enabled": True, "url": f"{endpoint.url}/hook"}}
    with running_system(tmp_path, notify=notify):
        received: Received = wait_until(
            lambda: next((r for r in endpoint.requests() if r.body.get("kind") == "EXIT_NOT_EXECUTED"), None),
            timeout=15, what="the re-sent notice at the webhook")
    assert received.body["resent"] is True and received.body["message_id"] == 12
    assert str(received.body["text"]).endswith("post 12 BTCUSDT: close not executed")
    with Journal(str(tmp_path / "journal.sqlite")) as after:
        row = after.outbox_notice(1)
        assert row is not None and row.delivered_at is not None and row.delivered_to == ("webhook",)


def test_a_notice_failing_for_longer_than_the_bound_is_given_up_in_the_same_run(tmp_path: Path,
                                                                                 endpoint: NotifyServer) -> None:
    endpoint.status = 503
    with Journal(str(tmp_path / "journal.sqlite")) as journal:
        live = notifier(endpoint.url, retry_later_s=0.01, redeliver_within_hours=0)
        live.use_journal(journal)
        live.notify("NOTIFY_ONLY", "stale soon")
        row = wait_until(lambda: (r := journal.outbox_notice(1)) is not None and r.gave_up and r, timeout=10,
                         what="the notice given up")
        wait_until(lambda: live.undelivered() == 0, timeout=10, what="nothing left waiting")
        live.close()
    assert row.last_error == "not delivered within 0 h" and row.attempts == 2


def _bot_process(conf: Path) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen([sys.executable, str(REPO / "bin" / "following"), "--conf", str(conf)],
                               cwd=REPO, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    assert process.stderr is not None
    stderr = process.stderr
    threading.Thread(target=lambda: lines.extend(iter(stderr.readline, "")), daemon=True).start()
    return process, lines


def _safe_mode_by_signal(process: subprocess.Popen[str], lines: list[str]) -> None:
    line = wait_until(lambda: next((x for x in lines if "health on http://" in x), None), timeout=60,
                      what="the health server line")
    base = re.search(r"http://[0-9.]+:\d+", line).group(0)  # type: ignore[union-attr]
    wait_until(lambda: requests.get(f"{base}/healthz", timeout=2).status_code == 200, timeout=30)
    process.send_signal(signal.SIGUSR1)


@pytest.mark.slow
def test_a_notice_lost_to_kill_9_reaches_the_webhook_after_the_restart(tmp_path: Path,
                                                                         endpoint: NotifyServer) -> None:
    """The real process: the webhook is down (503) when safe mode is notified, the bot is killed with SIGKILL; the
    next start delivers the MODE_CHANGED notice, marked as re-sent."""
    demo = yaml.safe_load((REPO / "conf" / "demo.yaml").read_text())
    demo["monitor"]["health"]["port"] = 0
    demo["storage"] = {"db_path": str(tmp_path / "demo.sqlite"), "media_dir": str(tmp_path / "media")}
    demo["kill_switch"] = {"file": str(tmp_path / "KILL_SWITCH")}
    demo["notify"] = {"webhook": {"enabled": True, "url": f"{endpoint.url}/hook"}}
    conf = tmp_path / "demo.yaml"
    conf.write_text(yaml.safe_dump(demo))

    def mode_changes() -> list[Received]:
        return [r for r in endpoint.requests() if r.body.get("kind") == "MODE_CHANGED"]

    endpoint.status = 503
    process, lines = _bot_process(conf)
    try:
        _safe_mode_by_signal(process, lines)
        wait_until(mode_changes, timeout=30, what="the safe-mode notice tried at the webhook")
    finally:
        process.kill()  # SIGKILL: nothing is flushed
        process.wait()
    with Journal(str(tmp_path / "demo.sqlite")) as journal:
        assert any(row.kind == "MODE_CHANGED" for row in journal.outbox_pending(limit=1000))
    endpoint.status = 200
    tried = len(mode_changes())
    process, lines = _bot_process(conf)
    try:
        resent = wait_until(lambda: [r for r in mode_changes()[tried:] if r.body.get("resent")], timeout=60,
                            what="the notice re-sent after the restart")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert str(resent[0].body["text"]).startswith("(re-sent after a restart; first raised ")
    assert "trading mode is now safe" in str(resent[0].body["text"])
