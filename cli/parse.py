"""``following parse``: read messages as the Parser would, offline; with ``--conf``, check coins on the exchange.

Input: stdin (one message), ``--jsonl FILE`` (one object a line: ``text``, optional ``image`` path and
``message_id``), or a channel: ``--url https://t.me/s/<channel> [--pages N]`` / ``--html FILE``. Each reading is one
JSON line with ``input`` (the 1-based line of the JSON lines file, 1 for stdin, the post's place in a channel
listing), the ``message_id`` when known, and a ``reason`` for noise and notify_only. A channel ends with a
``summary`` line (and a short summary for people on stderr): entries tradable and notify_only with reasons,
updates / closes / cancels linked or not to the entries seen in the same pages (replies included), noise, and
posts about an open signal that were not read (UNREAD, as the bot would notify them). Empty input is an error.

Offline is the default and always works. Given a config, the contract list comes from the configured exchange:
when ``dry_run`` is true the list a paper run trades on (Bitget's live list with ``paper.live_prices``, else the
simulator's catalogue), else ``bitget.base_url``'s public contracts endpoint.
An exchange that cannot be reached is a note on stderr, never a failure: the readings are then unchecked.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import requests

from exchange.bitget.client import BitgetClient
from exchange.bitget.errors import BitgetError
from parsing.hybrid import Extractor, looks_like_signal, read_hybrid, with_image_note
from parsing.posts import Post
from parsing.reading import clean_text, read_safely
from parsing.rules import parse_text
from parsing.signals import Action, Kind, ParsedMessage, ReadingContext, UpdateType, reading_context
from runtime.config import Config
from trading.linking import OpenSignal, UpdateToLink, link_update
from trading.symbol_check import check_symbols
from trading.unread import post_link, unread_post

CONTRACTS_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class ContractList:
    symbols: frozenset[str] | None  # None: the exchange could not be asked
    source: str  # where the list came from (or was asked for)
    note: str | None = None  # why there is no list


def load_contract_symbols(config: Config) -> ContractList:
    if config.dry_run:
        return paper_contract_symbols(config)
    url = config.bitget.base_url
    client = BitgetClient(
        url,
        None,  # the contract list is public: no credentials are read
        product_type=config.bitget.product_type,
        margin_coin=config.bitget.margin_coin,
        demo=config.bitget.demo_trading,
        timeout=min(config.bitget.timeout_seconds, CONTRACTS_TIMEOUT_SECONDS),
        max_read_retries=1,
    )
    try:
        contracts = client.contracts()
    except (BitgetError, requests.RequestException, OSError) as exc:
        reason = getattr(exc, "code", None) or type(exc).__name__
        return ContractList(None, url, f"exchange at {url} unreachable ({reason}); symbols not checked, "
                                       "parsing offline")
    return ContractList(frozenset(c.symbol for c in contracts if c.status == "normal"), url)


def paper_contract_symbols(config: Config) -> ContractList:
    """The contracts a paper run trades on (``start_paper_exchange``): Bitget's live list when ``paper.live_prices``
    and it can be read, else the simulator's built-in catalogue (with a note saying so)."""
    from exchange.sim.catalogue import DEFAULT_CONTRACTS
    from exchange.sim.live_prices import LiveMarketUnavailable, fetch_live_market

    catalogue = frozenset(c.symbol for c in DEFAULT_CONTRACTS)
    paper = config.paper
    if not paper.live_prices:
        return ContractList(catalogue, "the paper simulator's catalogue")
    try:
        market = fetch_live_market(paper.live_prices_url, product_type=config.bitget.product_type,
                                   timeout_s=paper.live_prices_timeout_seconds)
    except LiveMarketUnavailable as exc:
        return ContractList(catalogue, "the paper simulator's catalogue",
                            f"Bitget's live market at {paper.live_prices_url} cannot be read ({exc.reason}); "
                            f"checking against the simulator's {len(catalogue)} built-in contracts, as a paper "
                            "run would use now")
    return ContractList(frozenset(c.symbol for c in market.contracts), paper.live_prices_url)


def only_listed(readings: list[ParsedMessage], listed: Collection[str] | None) -> list[ParsedMessage]:
    """With a contract list, readings on coins it does not hold become notify_only; without one, unchanged."""
    return readings if listed is None else check_symbols(readings, listed)


def read_text(text: str, listed: Collection[str] | None = None) -> list[ParsedMessage]:
    """The readings of one text-only message as `following parse` gives them without a vision model."""
    return only_listed(parse_text(text), listed)


# --- reading messages ------------------------------------------------------------------------------------------
class InputError(ValueError):
    """The input cannot be read (the message says where and why): exit 1."""


@dataclass(frozen=True)
class Message:
    input: int  # 1-based line of the JSON lines file (1 for stdin)
    text: str
    message_id: int | str | None = None
    image: Path | None = None


# reads one message: (text, image bytes, whether the post has images, the replied-to signal) -> readings
Reader = Callable[[str, list[bytes], bool, ReadingContext | None], list[ParsedMessage]]


def messages_from_stdin(data: bytes | str) -> list[Message]:
    text = clean_text(data)
    if not text.strip():
        raise InputError("empty input: nothing on stdin")
    return [Message(1, text)]


def messages_from_jsonl(path: str) -> list[Message]:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    messages: list[Message] = []
    for number, line in enumerate(clean_text(raw).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise InputError(f"{path}:{number}: not a JSON object") from None
        if not isinstance(item, dict):
            raise InputError(f"{path}:{number}: not a JSON object")
        message_id = item.get("message_id")
        if isinstance(message_id, bool) or not isinstance(message_id, (int, str)):
            message_id = None
        image = item.get("image")
        messages.append(Message(number, clean_text(item.get("text") or ""), message_id,
                                Path(path).parent / str(image) if image else None))
    if not messages:
        raise InputError(f"{path}: empty input: no JSON object in the file")
    return messages


def make_reader(vision: tuple[Extractor, float] | None, listed: Collection[str] | None) -> Reader:
    """How `following parse` reads a message: rules (through the reading boundary), the model when configured,
    then the exchange's contract list when known."""

    def read(text: str, images: list[bytes], has_image_urls: bool,
             context: ReadingContext | None = None) -> list[ParsedMessage]:
        rules = parse_text if context is None else partial(parse_text, context=context)
        if vision is not None:
            extractor, threshold = vision
            readings = read_hybrid(text, images, extractor, threshold=threshold, has_image_urls=has_image_urls,
                                   parse=rules)
        else:
            readings = with_image_note(read_safely(text, rules), has_image_urls=has_image_urls or bool(images))
        return only_listed(readings, listed)

    return read


def reason(reading: ParsedMessage, text: str) -> str | None:
    """Why a reading trades nothing (noise and notify_only), in words; None for a reading that trades."""
    if reading.action is Action.TRADE:
        return None
    if reading.warnings:
        return "; ".join(reading.warnings)
    if reading.action is Action.NOTIFY_ONLY:
        return "incomplete"
    if not text.strip():
        return "empty message"
    if looks_like_signal(text):
        return "looks like a signal or an update, but the rules could not read it"
    return "no signal: nothing in it reads as an entry, update, close or cancel"


def reading_line(reading: ParsedMessage, text: str, *, input_no: int, message_id: int | str | None = None,
                 **extra: Any) -> dict[str, Any]:
    line: dict[str, Any] = {"input": input_no}
    if message_id is not None:
        line["message_id"] = message_id
    line.update(reading.to_json())
    why = reason(reading, text)
    if why is not None:
        line["reason"] = why
    line.update({key: value for key, value in extra.items() if value is not None})
    return line


def read_messages(messages: Iterable[Message], read: Reader) -> Iterator[dict[str, Any]]:
    """The output lines of JSON lines / stdin input (InputError for an image that cannot be read)."""
    for message in messages:
        images: list[bytes] = []
        if message.image is not None:
            try:
                images.append(message.image.read_bytes())
            except OSError as exc:
                raise InputError(f"{message.image}: cannot read image: {exc.strerror}") from None
        for reading in read(message.text, images, False, None):
            yield reading_line(reading, message.text, input_no=message.input, message_id=message.message_id)


# --- reading a channel -----------------------------------------------------------------------------------------
_EXIT_KINDS = {Kind.UPDATE: "updates", Kind.CLOSE: "closes", Kind.CANCEL: "cancels"}


@dataclass
class ChannelSummary:
    """How the bot would read a channel's recent posts."""

    channel: str
    posts: int = 0
    entries_tradable: int = 0
    entries_notify_only: Counter[str] = field(default_factory=Counter)
    exits: dict[str, Counter[str]] = field(default_factory=lambda: {name: Counter() for name in _EXIT_KINDS.values()})
    unlinked_reasons: Counter[str] = field(default_factory=Counter)
    noise: int = 0
    not_read: Counter[str] = field(default_factory=Counter)  # notify_only readings of no kind (an image, an error)
    unread_replies: int = 0
    unread_mentions: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "posts": self.posts,
            "entries": {"tradable": self.entries_tradable, "notify_only": sum(self.entries_notify_only.values()),
                        "notify_only_reasons": dict(self.entries_notify_only.most_common())},
            **{name: {key: counts[key] for key in ("linked", "unlinked", "notify_only")}
               for name, counts in self.exits.items()},
            "unlinked_reasons": dict(self.unlinked_reasons.most_common()),
            "noise": self.noise,
            "not_read": {"count": sum(self.not_read.values()), "reasons": dict(self.not_read.most_common())},
            "unread": {"replies": self.unread_replies, "mentions": self.unread_mentions},
        }

    def text(self) -> str:
        """A few lines for people."""
        notify = sum(self.entries_notify_only.values())
        lines = [f"{self.channel}: {self.posts} posts read",
                 f"entries: {self.entries_tradable} tradable, {notify} notify_only"]
        lines += [f"  {count} x {why}" for why, count in self.entries_notify_only.most_common(8)]
        for name, counts in self.exits.items():
            lines.append(f"{name}: {counts['linked']} linked, {counts['unlinked']} unlinked, "
                         f"{counts['notify_only']} notify_only")
        lines += [f"  unlinked: {count} x {why}" for why, count in self.unlinked_reasons.most_common(8)]
        lines.append(f"noise: {self.noise}")
        if self.not_read:
            lines.append(f"not read, told to you: {sum(self.not_read.values())}")
            lines += [f"  {count} x {why}" for why, count in self.not_read.most_common(8)]
        lines.append(f"unread (the bot would send an UNREAD notice): {self.unread_replies} replies to a signal, "
                     f"{self.unread_mentions} posts naming a signal's coin")
        return "\n".join(lines)


def _commentary(post: Post | None, readings: list[ParsedMessage] | None) -> bool:
    """The replied-to post was seen and read as no signal (text only), as the RiskGate decides it."""
    return (post is not None and readings is not None and not post.image_urls
            and all(reading.kind is not Kind.ENTRY for reading in readings))


def read_channel(posts: list[Post], read: Reader, channel: str) -> tuple[list[dict[str, Any]], ChannelSummary]:
    """Every reading of ``posts`` (ascending) with what the bot would do with it, and the summary. Updates are
    linked to the tradable entries seen before them in the same posts; a close or cancel ends its signal."""
    summary = ChannelSummary(channel)
    seen: dict[int, tuple[Post, list[ParsedMessage]]] = {}
    open_signals: list[OpenSignal] = []
    lines: list[dict[str, Any]] = []
    for number, post in enumerate(posts, start=1):
        summary.posts += 1
        text = clean_text(post.text)
        replied = seen.get(post.reply_to) if post.reply_to is not None else None
        # a reply is read with the signal it replies to in mind, as the Parser reads it
        context = next((context for reading in (replied[1] if replied else ())
                        if (context := reading_context(reading.to_json())) is not None), None)
        readings = read(text, [], bool(post.image_urls), context)
        seen[post.message_id] = (post, readings)
        unread = unread_post(channel=post.channel, text=text, reply_to=post.reply_to, readings=readings,
                             handed_on=False, open_signals=open_signals)
        if unread is not None:
            if unread.replies:
                summary.unread_replies += 1
            else:
                summary.unread_mentions += 1
        new_signals: list[OpenSignal] = []
        for reading in readings:
            extra: dict[str, Any] = {"link": post_link(post.channel, post.message_id), "reply_to": post.reply_to}
            if unread is not None:
                extra["unread"] = unread.why
            if reading.kind is Kind.ENTRY:
                if reading.action is Action.TRADE and reading.symbol:
                    summary.entries_tradable += 1
                    new_signals.append(OpenSignal(post.message_id, post.channel, post.message_id, reading.symbol,
                                                  reading.signal_ref))
                else:
                    summary.entries_notify_only[reason(reading, text) or "incomplete"] += 1
            elif reading.kind in _EXIT_KINDS:
                counts = summary.exits[_EXIT_KINDS[reading.kind]]
                if reading.action is not Action.TRADE:
                    counts["notify_only"] += 1
                else:
                    link = link_update(UpdateToLink(
                        channel=post.channel, reply_to=post.reply_to,
                        replied_is_commentary=_commentary(*(replied or (None, None))),
                        signal_ref=reading.signal_ref, symbol=reading.symbol,
                    ), open_signals)
                    if link.signal is not None:
                        counts["linked"] += 1
                        extra["linked_to"] = link.signal.message_id
                        if reading.update_type in (UpdateType.CLOSE_ALL, UpdateType.CANCEL_ENTRIES):
                            open_signals = [s for s in open_signals if s is not link.signal]
                    else:
                        counts["unlinked"] += 1
                        summary.unlinked_reasons[_general(link.reason)] += 1
                    extra["link_reason" if link.linked else "unlinked"] = link.reason
            elif reading.action is Action.IGNORE:
                summary.noise += 1
            else:
                summary.not_read[reason(reading, text) or "not read"] += 1
            lines.append(reading_line(reading, text, input_no=number, message_id=post.message_id, **extra))
        open_signals.extend(new_signals)
    return lines, summary


def _general(why: str) -> str:
    """A linking reason without its post numbers and coins, so that like reasons add up in the summary."""
    words = ["N" if word.strip("#,():").isdigit() else word for word in why.split()]
    return " ".join(words)


def channel_posts(url: str | None, html: str | None, pages: int, timeout: float = 15.0) -> tuple[str, list[Post]]:
    """The channel's name and its recent posts, ascending: ``pages`` pages of the web preview back from the newest,
    or one saved page. InputError for a bad address or an unreadable page."""
    from cli.posts import posts_from_html, preview_client
    from parsing.web_preview import PreviewError, smallest_id

    try:
        if html is not None:
            posts = posts_from_html(html)
            return (posts[0].channel if posts else Path(html).stem), posts
        client = preview_client(url or "", timeout)
        found: dict[int, Post] = {}
        page = client.fetch_latest()
        for index in range(pages):
            for post in page:
                found.setdefault(post.message_id, post)
            oldest = smallest_id(page)
            if index + 1 >= pages or oldest is None or oldest <= 1:
                break
            page = client.fetch_before(oldest)
            if not page or (smallest_id(page) or oldest) >= oldest:
                break  # the beginning of the channel, or a server that ignores the cursor
        return client.channel, [found[key] for key in sorted(found)]
    except (PreviewError, ValueError, OSError) as exc:
        raise InputError(str(exc)) from None


def run_channel(url: str | None, html: str | None, pages: int, read: Reader, out: TextIO, err: TextIO) -> None:
    channel, posts = channel_posts(url, html, pages)
    if not posts:
        raise InputError(f"no posts on {url or html}")
    lines, summary = read_channel(posts, read, channel)
    write_json_lines([*lines, {"summary": summary.to_json()}], out)
    print(summary.text(), file=err)


def write_json_lines(rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    """One JSON object a line; a reader that stops early (``| head``) ends the output quietly."""
    try:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False), file=out)
        out.flush()
    except BrokenPipeError:
        with contextlib.suppress(OSError, ValueError):  # no complaint when Python flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
