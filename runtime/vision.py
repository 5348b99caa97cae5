"""Wiring of the vision model: the client from the config, and where a post's images come from.

Kept out of ``runtime/wiring.py`` and ``actors/parser.py`` so the seams stay small: ``build_vision(config, secrets,
metrics, journal)`` returns the Parser's ``HybridReader`` (None when ``vlm.enabled`` is false), and
``ModelReads`` runs the Parser's model calls off the actor thread.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pykka

from actors.messages import PostReadByModel
from ops.metrics import Metrics
from parsing.hybrid import HybridReader
from parsing.posts import Post
from parsing.signals import Action, Kind, ParsedMessage
from parsing.vlm.client import RequestObserver, VLMClient
from runtime.config import Config, ConfigError, Secrets
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
    return HybridReader(client, threshold=config.vlm.confidence_threshold, load_images=loader,
                        on_parse_error=metrics.parse_error)


class ModelReads:
    """The Parser's model reads: one at a time on a worker thread, so the actor keeps answering heartbeats;
    posts that arrive meanwhile wait their turn, so posts are still recorded in channel order."""

    def __init__(self, vision: HybridReader, deliver: Callable[[PostReadByModel], None], name: str) -> None:
        self._vision = vision
        self._deliver = deliver  # tells the result back to the actor
        self._name = name
        self._worker: ThreadPoolExecutor | None = None
        self._busy = False
        self._waiting: deque[tuple[Post, bool]] = deque()

    def take(self, post: Post, *, edited: bool, already_read: Callable[[], bool],
             parse: Callable[[str], list[ParsedMessage]] | None = None) -> bool:
        """True when this post is handled here (queued, or sent to the model); False: read it with rules now."""
        if self._busy:
            self._waiting.append((post, edited))
            return True
        if not self._vision.wants_model(post, parse) or (edited and already_read()):
            return False  # an edit of a post already read is only a notice: no model needed
        self._busy = True
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self._name}-vlm")
        self._worker.submit(self._read, post, edited, parse)
        return True

    def finished(self) -> list[tuple[Post, bool]]:
        """The model read is recorded: the posts that waited, in order, to be read again."""
        self._busy = False
        waiting = list(self._waiting)
        self._waiting.clear()
        return waiting

    def shutdown(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)

    def _read(self, post: Post, edited: bool, parse: Callable[[str], list[ParsedMessage]] | None = None) -> None:
        try:
            readings = self._vision.read(post, parse)
        except Exception as exc:  # read never raises by design; this is the last guard
            log.exception("hybrid reading failed on %s/%s", post.channel, post.message_id)
            readings = [ParsedMessage(kind=Kind.NOISE, action=Action.NOTIFY_ONLY,
                                      warnings=(f"reading failed: {type(exc).__name__}",))]
        with contextlib.suppress(pykka.ActorDeadError):  # a restarted Parser reads it again from the journal
            self._deliver(PostReadByModel(post=post, edited=edited, readings=tuple(readings)))
