"""Which post source the listener reads (web preview or Telegram user client), and the media store beside it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from parsing.media import BytesFetcher, MediaStore, url_host
from parsing.posts import PostSource
from parsing.telegram_source import TelegramSource, telethon_client_factory
from parsing.web_preview import WebPreviewClient
from runtime.config import Config, Secrets
from trading.journal import Journal


def build_post_source(
    config: Config,
    secrets: Secrets,
    site_url: str,
    *,
    telegram_client_factory: Callable[[], Any] | None = None,
) -> PostSource:
    """The web preview at ``site_url``, or (``listener.mode: telegram``, not in the demo) the user client.

    Raises ``TelegramSetupError`` with a clear message when Telethon or the credentials are missing.
    """
    listener = config.listener
    if listener.mode != "telegram" or config.demo.enabled:
        return WebPreviewClient(site_url, listener.channel, timeout=listener.timeout_seconds)
    telegram = config.telegram
    if telegram_client_factory is None:
        api_hash = secrets.telegram_api_hash.value if secrets.telegram_api_hash is not None else None
        telegram_client_factory = telethon_client_factory(telegram.session_path, secrets.telegram_api_id, api_hash,
                                                          telegram.push)
        Path(telegram.session_path).parent.mkdir(parents=True, exist_ok=True)
    return TelegramSource(journal_channel(config), telegram_client_factory,
                          timeout=max(listener.timeout_seconds, 5.0), session_path=telegram.session_path)


def journal_channel(config: Config) -> str:
    """The followed channel's name as the journal keys its posts and signals."""
    if config.listener.mode != "telegram" or config.demo.enabled:
        return config.listener.channel
    # "@name" and "name" are one channel: the journal keys posts by the bare name in both modes
    return (config.telegram.channel or config.listener.channel).lstrip("@")


def build_media_store(config: Config, journal: Journal, source: PostSource,
                      site_url: str | None = None) -> MediaStore | None:
    """The store for post images when ``media.download`` is on; it reads ``tg://`` pictures through the
    user client. Images are fetched only from ``media.allowed_hosts`` and the channel site's host."""
    media = config.media
    if not media.download:
        return None
    fetchers: dict[str, BytesFetcher] = {}
    if isinstance(source, TelegramSource):
        fetchers["tg"] = source.download_image
    site_host = url_host(site_url or config.listener.site_url)
    allowed = (*media.allowed_hosts, site_host) if site_host else media.allowed_hosts
    return MediaStore(config.storage.media_dir, journal, max_bytes=media.max_bytes, timeout=media.timeout_seconds,
                      fetchers=fetchers, allowed_hosts=allowed)
