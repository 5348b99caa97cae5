"""Wiring of the vision model: the client from the config, and where a post's images come from.

Kept out of ``actors/app.py`` so the seam stays small: ``build_vision(config, secrets, metrics, journal)``
returns the Parser's ``HybridReader``, or None when ``vlm.enabled`` is false.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from actors.config import Config, ConfigError, Secrets
from actors.metrics import Metrics
from parsing.hybrid import HybridReader
from parsing.posts import Post
from parsing.vlm.client import RequestObserver, VLMClient
from trading.journal import Journal

log = logging.getLogger("following.vision")


def journal_image_loader(journal: Journal, *, max_bytes: int) -> Callable[[Post], list[bytes]]:
    """The images of a post already downloaded and recorded in the journal (others are skipped)."""

    def load(post: Post) -> list[bytes]:
        images: list[bytes] = []
        for url in post.image_urls:
            row = journal.media_by_url(url)
            if row is None:
                continue
            if row.size > max_bytes:
                log.warning("image of post %s skipped: %d bytes is over media.max_bytes", post.message_id, row.size)
                continue
            try:
                images.append(Path(row.path).read_bytes())
            except OSError as exc:
                log.warning("image of post %s unreadable: %s", post.message_id, exc.strerror)
        return images

    return load


def build_vlm_client(config: Config, secrets: Secrets, on_request: RequestObserver | None = None) -> VLMClient:
    """The configured client; ConfigError naming ``vlm.api_key_env`` when the key is not set."""
    vlm = config.vlm
    if secrets.vlm_api_key is None:
        raise ConfigError([("vlm.api_key_env", f"environment variable {vlm.api_key_env} is not set")])
    return VLMClient(provider=vlm.provider, model=vlm.model, base_url=vlm.base_url,
                     api_key=secrets.vlm_api_key.value, timeout=vlm.timeout_seconds,
                     max_retries=vlm.max_retries, on_request=on_request)


def build_vision(config: Config, secrets: Secrets, metrics: Metrics, journal: Journal,
                 load_images: Callable[[Post], list[bytes]] | None = None) -> HybridReader | None:
    if not config.vlm.enabled:
        return None
    client = build_vlm_client(config, secrets, metrics.vlm_request)
    loader = load_images or journal_image_loader(journal, max_bytes=config.media.max_bytes)
    log.info("vision model: %s %s at %s", config.vlm.provider, config.vlm.model, config.vlm.base_url)
    return HybridReader(client, threshold=config.vlm.confidence_threshold, load_images=loader)
