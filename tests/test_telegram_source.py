"""listener.mode telegram: the user client as a post source, tested at the Telethon boundary with a fake client."""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from actors.listener import ChannelPoller, PollPlan
from actors.messages import PostEdited, PostSeen
from ops.metrics import Metrics
from parsing.posts import PostSourceRateLimited
from parsing.telegram_source import (
    TelegramNotAuthorized,
    TelegramSetupError,
    TelegramSource,
    TelegramSourceError,
    telethon_client_factory,
)
from parsing.web_preview import WebPreviewClient, catch_up
from runtime.config import check_live_requirements, load_secrets, parse_config
from runtime.sources import build_media_store, build_post_source
from tests.fake_telethon import Document, FakeTelegramClient, FloodWaitError, FwdHeader, PeerChannel, Photo, ReplyHeader
from trading.journal import Journal

CHANNEL = "SigDesk"


@pytest.fixture
def fake() -> FakeTelegramClient:
    return FakeTelegramClient(CHANNEL)


@pytest.fixture
def source(fake: FakeTelegramClient) -> Iterator[TelegramSource]:
    telegram = TelegramSource(CHANNEL, lambda: fake, page_size=12, timeout=2.0, session_path="var/tg")
    yield telegram
    telegram.close()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(str(tmp_path / "journal.sqlite")) as opened:
        yield opened


def test_messages_become_posts_with_the_web_preview_fields(fake: FakeTelegramClient, source: TelegramSource) -> None:
    signal = fake.post("BTCUSDT LONG\nEntry 60000\nSL 59000", photo=Photo(1), views=2500)
    reply = fake.post("TP1 hit\nmove stop to entry", reply_to=ReplyHeader(signal))
    forwarded = fake.post("ETH short", fwd_from=FwdHeader(from_name="Other Desk"))
    relayed = fake.post("SOL long", fwd_from=FwdHeader(from_id=PeerChannel(777)))
    fake.edit(signal, "BTCUSDT LONG\nEntry 60000\nSL 59500")
    posts = source.fetch_latest()
    assert [p.message_id for p in posts] == [signal, reply, forwarded, relayed]
    first = posts[0]
    assert first.channel == CHANNEL and first.text == "BTCUSDT LONG\nEntry 60000\nSL 59500" and first.edited
    assert first.date == "2026-01-05T09:01:00+00:00" and first.views == "2500"
    assert first.image_urls == (f"tg://{CHANNEL}/{signal}",)
    assert posts[1].reply_to == signal and posts[1].text == "TP1 hit\nmove stop to entry" and not posts[1].edited
    assert posts[2].forwarded_from == "Other Desk" and posts[3].forwarded_from == "channel 777"


def test_an_album_is_one_post_with_every_item(fake: FakeTelegramClient, source: TelegramSource) -> None:
    ids = fake.album("chart BTC", [b"a", b"b", b"c"])
    (post,) = source.fetch_latest()
    assert post.message_id == ids[0] and post.album_ids == tuple(ids) and post.text == "chart BTC"
    assert post.image_urls == tuple(f"tg://{CHANNEL}/{i}" for i in ids)


def test_service_and_empty_messages_are_skipped_image_documents_kept(fake: FakeTelegramClient,
                                                                     source: TelegramSource) -> None:
    fake.post("", action="pinned")
    fake.post("")  # e.g. a sticker: nothing a signal reader can use
    fake.post("", document=Document("application/pdf"))
    picture = fake.post("", document=Document("image/png"))
    assert [(p.message_id, p.image_urls) for p in source.fetch_latest()] == [(picture, (f"tg://{CHANNEL}/{picture}",))]


def test_paging_never_splits_an_album_and_catch_up_sees_each_post_once(fake: FakeTelegramClient,
                                                                         source: TelegramSource) -> None:
    singles = [fake.post(f"old {n}") for n in range(5)]
    album = fake.album("the album", [b"1", b"2", b"3", b"4"])
    newer = [fake.post(f"new {n}") for n in range(10)]  # page of 12: ten singles and two album items
    latest = source.fetch_latest()
    assert [p.message_id for p in latest] == newer  # the cut album waits for the next page
    older = source.fetch_before(newer[0])
    assert [p.message_id for p in older] == [*singles, album[0]] and older[-1].album_ids == tuple(album)
    caught = catch_up(source, singles[1], max_pages=5)
    assert [p.message_id for p in caught] == [*singles[2:], album[0], *newer]
    assert [p.message_id for p in source.fetch_after(album[-1])] == newer


def test_poller_over_the_user_client_hands_each_post_on_once_and_edits_as_updates(
    fake: FakeTelegramClient, source: TelegramSource, journal: Journal
) -> None:
    handed: list[Any] = []

    def poller() -> ChannelPoller:
        return ChannelPoller(source=source, journal=journal, hand_on=handed.append, metrics=Metrics(),
                             plan=PollPlan(1.0, 0.0, 30.0, random.Random(1)))

    fake.post("history")
    poller().poll()
    assert handed == []
    missed = [fake.post(f"while down {n}") for n in range(30)]  # two and a half pages
    restarted = poller()
    restarted.poll()
    restarted.poll()
    assert [m.post.message_id for m in handed if isinstance(m, PostSeen)] == missed
    fake.edit(missed[-1], "while down 29 (corrected)")
    restarted.poll()
    assert isinstance(handed[-1], PostEdited) and handed[-1].post.text == "while down 29 (corrected)"
    assert len(handed) == len(missed) + 1


def test_flood_wait_is_a_rate_limit_with_its_seconds(fake: FakeTelegramClient, source: TelegramSource,
                                                     journal: Journal) -> None:
    fake.fail_next.append(FloodWaitError(42))
    with pytest.raises(PostSourceRateLimited) as caught:
        source.fetch_latest()
    assert caught.value.retry_after == 42
    fake.fail_next.append(FloodWaitError(90))
    poller = ChannelPoller(source=source, journal=journal, hand_on=lambda m: None, metrics=Metrics(),
                           plan=PollPlan(1.0, 0.0, 30.0, random.Random(1)))
    assert poller.poll() >= 90


def test_connection_errors_and_rpc_errors_are_source_errors(fake: FakeTelegramClient,
                                                            source: TelegramSource) -> None:
    fake.fail_next.append(ConnectionError("network down"))
    with pytest.raises(TelegramSourceError, match="ConnectionError"):
        source.fetch_latest()
    fake.post("back")
    assert [p.text for p in source.fetch_latest()] == ["back"]  # reconnected and resolved again


def test_a_hanging_call_times_out(fake: FakeTelegramClient) -> None:
    class Hanging(FakeTelegramClient):
        async def get_messages(self, entity: Any, limit: float | None = None, **kwargs: Any) -> Any:
            await asyncio.sleep(30)

    telegram = TelegramSource(CHANNEL, lambda: Hanging(CHANNEL), page_size=12, timeout=0.2)
    try:
        with pytest.raises(TelegramSourceError, match=r"within 0\.2s"):
            telegram.fetch_latest()
    finally:
        telegram.close()


def test_a_session_without_login_says_how_to_log_in() -> None:
    telegram = TelegramSource(CHANNEL, lambda: FakeTelegramClient(CHANNEL, authorized=False), page_size=12,
                              session_path="var/telegram")
    try:
        with pytest.raises(TelegramNotAuthorized, match=r"var/telegram is not logged in.*telegram_source login"):
            telegram.fetch_latest()
    finally:
        telegram.close()


def test_pictures_are_stored_through_the_client(fake: FakeTelegramClient, source: TelegramSource,
                                                journal: Journal, tmp_path: Path) -> None:
    config = parse_config({"listener": {"mode": "telegram"}, "storage": {"media_dir": str(tmp_path / "media")}})
    media = build_media_store(config, journal, source)
    assert media is not None
    _first, second = fake.album("two charts", [b"\xff\xd8jpeg-1", b"\xff\xd8jpeg-2"])
    stored = media.fetch(f"tg://{CHANNEL}/{second}")
    assert Path(stored.path).read_bytes() == b"\xff\xd8jpeg-2" and stored.content_type == "image/jpeg"
    row = journal.media_by_url(f"tg://{CHANNEL}/{second}")
    assert row is not None and row.path == stored.path


def test_factory_names_missing_credentials_and_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TelegramSetupError, match="api id and api hash"):
        telethon_client_factory("var/tg", None, "hash")
    with pytest.raises(TelegramSetupError, match="must be a number"):
        telethon_client_factory("var/tg", "abc", "hash")
    monkeypatch.setitem(sys.modules, "telethon", None)  # as if the extra were not installed
    with pytest.raises(TelegramSetupError, match=r"pip install -e '\.\[telegram\]'"):
        telethon_client_factory("var/tg", "12345", "hash")


def test_config_check_names_the_telegram_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config({"listener": {"mode": "telegram"}})
    problems = dict(check_live_requirements(config, load_secrets(config, {})))
    assert "TELEGRAM_API_ID is not set" in problems["telegram.api_id_env"]
    assert "TELEGRAM_API_HASH is not set" in problems["telegram.api_hash_env"]
    env = {"TELEGRAM_API_ID": "12345", "TELEGRAM_API_HASH": "0123456789abcdef"}
    secrets = load_secrets(config, env)
    assert "0123456789abcdef" in secrets.values() and "12345" not in secrets.values()
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert [key for key, _ in check_live_requirements(config, secrets)] == ["listener.mode"]
    web = parse_config({})
    assert check_live_requirements(web, load_secrets(web, {})) == []


def test_the_runtime_reads_the_user_client_in_telegram_mode(fake: FakeTelegramClient) -> None:
    config = parse_config({"listener": {"mode": "telegram"}, "telegram": {"channel": f"@{CHANNEL}"}})
    secrets = load_secrets(config, {})
    telegram = build_post_source(config, secrets, "https://t.me", telegram_client_factory=lambda: fake)
    try:
        assert isinstance(telegram, TelegramSource) and telegram.channel == CHANNEL
    finally:
        assert isinstance(telegram, TelegramSource)
        telegram.close()
    with pytest.raises(TelegramSetupError):
        build_post_source(config, secrets, "https://t.me")  # no credentials in the environment
    web = build_post_source(parse_config({}), secrets, "https://t.me")
    assert isinstance(web, WebPreviewClient)


@pytest.mark.slow
def test_a_signal_read_by_the_user_client_becomes_one_protected_entry(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.e2e import CHANNEL as E2E_CHANNEL
    from tests.e2e import running_system
    from tests.waiting import wait_until

    fake = FakeTelegramClient(E2E_CHANNEL)
    fake.post("on the channel before the first start: history")
    monkeypatch.setattr("runtime.sources.telethon_client_factory", lambda *credentials: lambda: fake)
    env = {"TELEGRAM_API_ID": "12345", "TELEGRAM_API_HASH": "0123456789abcdef"}
    telegram = {"session_path": str(tmp_path / "tg" / "session")}
    with running_system(tmp_path, env, listener={"mode": "telegram"}, telegram=telegram) as system:
        assert isinstance(system.runtime.preview, TelegramSource)
        fake.post(system.long_signal("BTCUSDT"), date=datetime.now(timezone.utc))  # fresh: within the age limit
        entries = wait_until(lambda: system.entry_orders("BTCUSDT"), what="the entry on the simulator")
        assert len(entries) == 1 and entries[0].preset_stop_loss is not None
        polls = len(fake.calls)
        wait_until(lambda: len(fake.calls) >= polls + 10, what="ten more polls")
        assert len(system.entry_orders("BTCUSDT")) == 1


def test_close_disconnects_the_client(fake: FakeTelegramClient) -> None:
    telegram = TelegramSource(CHANNEL, lambda: fake, page_size=12)
    fake.post("x")
    telegram.fetch_latest()
    assert fake.connected
    telegram.close()
    assert not fake.connected
