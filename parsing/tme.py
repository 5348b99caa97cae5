"""Read a ``t.me/s/<channel>`` web-preview page into ``Post`` objects.

Pure functions over the server-rendered markup (see docs in the module functions). Every public function
accepts any string and never raises: garbage HTML gives an empty result, because the poller must be able
to treat "I could not read this page" as data, not as a crash.

Text rules (decided here, relied on by the channel server's round trip):
- ``<br>`` becomes ``\\n``; literal newlines inside text nodes are HTML whitespace and become one space;
  trailing spaces of each line and blank edges of the whole text are stripped.
- A link whose visible label differs from its target keeps the target visible as ``label (url)``;
  hashtag/cashtag search links (``?q=``) and mention links (label ``@name``) keep only the label.
- Emoji images contribute their character (the ``<b>`` inside ``i.emoji``); custom emoji without one vanish.
- A reply's quoted block is never part of the text: only the post's own ``js-message_text`` is read.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import lxml.html
from lxml import etree
from lxml.html import HtmlElement

from parsing.posts import Post

log = logging.getLogger(__name__)

_BACKGROUND_URL = re.compile(r"background-image\s*:\s*url\(\s*['\"]?(.*?)['\"]?\s*\)", re.IGNORECASE)
_SOURCE_NEWLINE = re.compile(r"[ \t\r\f\v]*\n[ \t\r\f\v\n]*")
_TRAILING_SPACES = re.compile(r"[ \t\u00a0]+\n")
_LAST_PATH_NUMBER = re.compile(r"/([0-9]{1,18})(?:[/?#].*)?$")


@dataclass(frozen=True)
class PageInfo:
    """Paging and health facts of one page.

    ``before`` is the cursor for older posts (the ``data-before`` anchor, else ``link[rel=prev]``);
    ``after`` the cursor for newer posts when the page is not the newest one. ``soft_empty`` is the
    "No posts found" page, which can be a soft rate limit and must never be read as an empty channel.
    ``has_history`` is False when the message history section is missing (not a channel page).
    ``channel_info`` is True when the page carries the channel's header (``tgme_channel_info``): "No posts found"
    under a channel header is how a channel with no posts at all is shown.
    """

    before: int | None
    after: int | None
    soft_empty: bool
    has_history: bool
    channel_info: bool = False


def _classes(element: etree._Element) -> set[str]:
    return set((element.get("class") or "").split())


def _has_class(element: etree._Element, name: str) -> bool:
    return name in _classes(element)


class _Select:
    """A compiled XPath that selects elements, typed (lxml types every XPath result as ``Any``)."""

    def __init__(self, path: str) -> None:
        self._xpath = etree.XPath(path)

    def __call__(self, node: etree._Element) -> list[HtmlElement]:
        return [item for item in self._xpath(node) if isinstance(item, HtmlElement)]


def _xpath_class(name: str) -> str:
    # match one class token, not a substring of the attribute (photo wraps carry numeric classes too)
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


# Compiled once: each runs per message, and compiling them on every call was most of the parse time.
_XP_JS_MESSAGE_TEXT = _Select(f".//div[{_xpath_class('js-message_text')}]")
_XP_PHOTO_WRAP = _Select(f".//a[{_xpath_class('tgme_widget_message_photo_wrap')}]")
_XP_VIDEO_THUMB = _Select(f".//i[{_xpath_class('tgme_widget_message_video_thumb')}]")
_XP_GROUPED_MEDIA_WRAP = _Select(f".//a[{_xpath_class('grouped_media_wrap')}]")
_XP_REPLY = _Select(f".//a[{_xpath_class('tgme_widget_message_reply')}]")
_XP_FORWARDED_FROM_NAME = _Select(f".//*[{_xpath_class('tgme_widget_message_forwarded_from_name')}]")
_XP_FORWARDED_FROM = _Select(f".//*[{_xpath_class('tgme_widget_message_forwarded_from')}]")
_XP_META = _Select(f".//span[{_xpath_class('tgme_widget_message_meta')}]")
_XP_LINKS = _Select(".//a")
_XP_VIEWS = _Select(f".//span[{_xpath_class('tgme_widget_message_views')}]")
_XP_DATE_TIME = _Select(f".//a[{_xpath_class('tgme_widget_message_date')}]//time[@datetime]")
_XP_ANY_TIME = _Select(".//time[@datetime]")
_XP_MESSAGES = _Select(f"//div[{_xpath_class('tgme_widget_message')}][@data-post]")
_XP_TME_MESSAGES_MORE = _Select(f"//a[{_xpath_class('tme_messages_more')}]")
_XP_PREV_LINK = _Select("//link[@rel='prev']")
_XP_TME_NO_MESSAGES_FOUND = _Select(f"//*[{_xpath_class('tme_no_messages_found')}]")
_XP_TGME_CHANNEL_HISTORY = _Select(f"//section[{_xpath_class('tgme_channel_history')}]")
_XP_TGME_CHANNEL_INFO = _Select(f"//*[{_xpath_class('tgme_channel_info')}]")


def _load(html: str) -> etree._Element | None:
    if not isinstance(html, str) or not html.strip():
        return None
    try:
        return lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError, TypeError):
        return None


_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits only ("²".isdigit() is true, int("²") raises), of a sane length


def _int_or_none(value: str | None) -> int | None:
    """A message id or cursor from an attribute or URL: ASCII digits, else None (never an exception)."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if _ID.fullmatch(value) else None


def _background_url(style: str | None) -> str | None:
    if not style:
        return None
    match = _BACKGROUND_URL.search(style)
    if not match or not match.group(1):
        return None
    url = match.group(1).strip()
    return "https:" + url if url.startswith("//") else url


def _is_inside(element: etree._Element, ancestor_class: str, stop: etree._Element) -> bool:
    parent = element.getparent()
    while parent is not None and parent is not stop:
        if _has_class(parent, ancestor_class):
            return True
        parent = parent.getparent()
    return False


def _link_label(anchor: etree._Element, label: str) -> str:
    # t.me double-escapes "&" in some hrefs since 2024; undo it so the url is the real one
    href = (anchor.get("href") or "").strip().replace("&amp;", "&")
    if not href or "?q=" in href or label.startswith(("@", "#", "$")):
        return label
    if not label.strip():
        return href

    def bare(url: str) -> str:
        return url.split("://", 1)[-1].rstrip("/").lower()

    if bare(label.strip()) == bare(href):
        return label
    return f"{label} ({href})"


def _render_text(node: etree._Element) -> str:
    """Visible text of a message text node with line breaks and link targets kept."""
    parts: list[str] = []

    def walk(element: etree._Element) -> None:
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag == "br":
            parts.append("\n")
        elif tag == "a":
            saved = len(parts)
            if element.text:
                parts.append(_SOURCE_NEWLINE.sub(" ", element.text))
            for child in element:
                walk(child)
            inner = parts[saved:]
            del parts[saved:]
            parts.append(_link_label(element, "".join(inner)))
        elif tag in ("script", "style"):
            pass
        else:
            if element.text and isinstance(element.tag, str):
                parts.append(_SOURCE_NEWLINE.sub(" ", element.text))
            for child in element:
                walk(child)
        if element.tail and element is not node:
            parts.append(_SOURCE_NEWLINE.sub(" ", element.tail))

    walk(node)
    text = "".join(parts).replace("\u00a0", " ")
    text = _TRAILING_SPACES.sub("\n", text)
    return text.strip()


def _own_text_node(message: etree._Element) -> etree._Element | None:
    """The post's own text div: outermost ``js-message_text`` outside a reply quote."""
    for candidate in _XP_JS_MESSAGE_TEXT(message):
        if _is_inside(candidate, "tgme_widget_message_reply", message):
            continue
        if _is_inside(candidate, "js-message_text", message):
            continue  # nested twin of an outer text div: the outer one already contains it
        return candidate
    return None


def _image_urls(message: etree._Element) -> tuple[str, ...]:
    urls: list[str] = []
    for wrap in _XP_PHOTO_WRAP(message):
        if _is_inside(wrap, "tgme_widget_message_reply", message):
            continue
        url = _background_url(wrap.get("style"))
        if url and url not in urls:
            urls.append(url)
    if not urls:  # a video's poster is the only picture of a video post
        for thumb in _XP_VIDEO_THUMB(message):
            url = _background_url(thumb.get("style"))
            if url and url not in urls:
                urls.append(url)
    return tuple(urls)


def _album_ids(message: etree._Element, own_id: int) -> tuple[int, ...]:
    ids: set[int] = set()
    for item in _XP_GROUPED_MEDIA_WRAP(message):
        href = item.get("href") or ""
        match = _LAST_PATH_NUMBER.search(href)
        if match:
            ids.add(int(match.group(1)))
    if not ids:
        return ()
    ids.add(own_id)
    return tuple(sorted(ids))


def _parse_message(message: etree._Element, channel: str | None) -> Post | None:
    data_post = message.get("data-post") or ""
    channel_part, _, id_part = data_post.rpartition("/")
    message_id = _int_or_none(id_part)
    if message_id is None or not channel_part:
        return None
    classes = _classes(message)
    if "service_message" in classes or any("sponsored" in name for name in classes):
        return None

    text_node = _own_text_node(message)
    text = _render_text(text_node) if text_node is not None else ""
    image_urls = _image_urls(message)
    if not text and not image_urls:
        return None  # unsupported media, stickers, polls without caption: nothing a signal reader can use

    reply_to: int | None = None
    for reply in _XP_REPLY(message):
        match = _LAST_PATH_NUMBER.search(reply.get("href") or "")
        if match:
            reply_to = int(match.group(1))
        break

    forwarded_from: str | None = None
    for name in _XP_FORWARDED_FROM_NAME(message):
        forwarded_from = " ".join(name.text_content().split()) or (name.get("href") or None)
        break
    if forwarded_from is None:
        for block in _XP_FORWARDED_FROM(message):
            label = " ".join(block.text_content().replace("\u00a0", " ").split())
            forwarded_from = label.removeprefix("Forwarded from").strip() or None
            break

    edited = False
    for meta in _XP_META(message):
        own = "".join(meta.itertext())
        date_text = "".join(t for a in _XP_LINKS(meta) for t in a.itertext())
        edited = "edited" in own.replace(date_text, "")
        break

    views: str | None = None
    for span in _XP_VIEWS(message):
        views = span.text_content().strip() or None
        break

    date: str | None = None
    for time_node in _XP_DATE_TIME(message):
        date = time_node.get("datetime")
        break
    if date is None:
        for time_node in _XP_ANY_TIME(message):
            date = time_node.get("datetime")
            break

    return Post(
        channel=channel or channel_part,
        message_id=message_id,
        text=text,
        date=date,
        image_urls=image_urls,
        reply_to=reply_to,
        forwarded_from=forwarded_from,
        edited=edited,
        views=views,
        album_ids=_album_ids(message, message_id),
    )


def parse_page(html: str, channel: str | None = None) -> list[Post]:
    """Every readable post of a t.me/s page, ascending by message id, one per id.

    ``channel`` overrides the channel name read from ``data-post`` (useful to keep the configured spelling).
    Service messages, sponsored posts and posts with neither text nor picture are skipped.
    """
    root = _load(html)
    if root is None:
        return []
    by_id: dict[int, Post] = {}
    try:
        messages = _XP_MESSAGES(root)
    except etree.XPathError:
        return []
    for message in messages:
        try:
            post = _parse_message(message, channel)
        except (ValueError, TypeError, etree.LxmlError) as exc:  # one odd wrap must not cost the page
            log.warning("skipping unreadable message wrap: %s", exc)
            continue
        if post is not None:
            by_id[post.message_id] = post
    return [by_id[key] for key in sorted(by_id)]


def _query_int(href: str | None, key: str) -> int | None:
    if not href:
        return None
    values = parse_qs(urlparse(href).query).get(key)
    return _int_or_none(values[0]) if values else None


def page_info(html: str) -> PageInfo:
    """Paging cursors and health markers of a page (never raises)."""
    root = _load(html)
    if root is None:
        return PageInfo(before=None, after=None, soft_empty=False, has_history=False)
    before: int | None = None
    after: int | None = None
    for anchor in _XP_TME_MESSAGES_MORE(root):
        if before is None:
            before = _int_or_none(anchor.get("data-before"))
        if after is None:
            after = _int_or_none(anchor.get("data-after"))
    if before is None:
        for link in _XP_PREV_LINK(root):
            before = _query_int(link.get("href"), "before")
            break
    soft_empty = bool(_XP_TME_NO_MESSAGES_FOUND(root))
    has_history = bool(_XP_TGME_CHANNEL_HISTORY(root))
    channel_info = bool(_XP_TGME_CHANNEL_INFO(root))
    return PageInfo(before=before, after=after, soft_empty=soft_empty, has_history=has_history,
                    channel_info=channel_info)


def page_cursor(html: str) -> int | None:
    """The ``?before=`` cursor for the next older page, or None when the page shows none."""
    return page_info(html).before


def is_soft_empty(html: str) -> bool:
    """True for the "No posts found" page (a failure to retry, not an empty channel)."""
    return page_info(html).soft_empty


@dataclass(frozen=True)
class SkippedMessage:
    """A message of the page that :func:`parse_page` does not return, and why (for ``following posts``)."""

    message_id: int
    kind: str  # service | sponsored | sticker | video message | voice message | poll | location | file | ...
    reason: str
    media_urls: tuple[str, ...]  # what the message shows (sticker, thumbnail, map), for a human to look at
    date: str | None = None

    @property
    def is_post(self) -> bool:
        """A channel post (media without text); service and sponsored messages are not posts."""
        return self.kind not in ("service", "sponsored")


# (class token, kind) in the order they are tried; the first found names the message.
_SKIPPED_KINDS: tuple[tuple[str, str], ...] = (
    ("tgme_widget_message_sticker", "sticker"),
    ("tgme_widget_message_roundvideo", "video message"),
    ("tgme_widget_message_voice", "voice message"),
    ("tgme_widget_message_poll", "poll"),
    ("tgme_widget_message_location", "location"),
    ("tgme_widget_message_document", "file"),
    ("tgme_widget_message_video_player", "video without a preview picture"),
    ("message_media_not_supported", "media shown only in the app"),
)
# Media that may carry a signal the web preview cannot show (no text, no picture): the listener tells the user.
UNREADABLE_MEDIA = frozenset({"file", "video without a preview picture", "media shown only in the app"})
_SKIP_MEDIA_IN = ("tgme_widget_message_user", "tgme_widget_message_reply", "emoji", "tgme_widget_message_author")


def _media_urls(message: etree._Element) -> tuple[str, ...]:
    urls: list[str] = []
    for element in message.iter():
        if not isinstance(element.tag, str) or any(_has_class(element, name) or _is_inside(element, name, message)
                                                   for name in _SKIP_MEDIA_IN):
            continue
        for url in (_background_url(element.get("style")), element.get("data-webp"),
                    element.get("src") if element.tag in ("video", "img", "source") else None):
            if url and not url.startswith("data:"):
                url = "https:" + url if url.startswith("//") else url
                if url not in urls:
                    urls.append(url)
    return tuple(urls)


def _skip_reason(message: etree._Element) -> tuple[str, str]:
    classes = _classes(message)
    if "service_message" in classes:
        return "service", "a service message (a channel event such as a new title or photo), not a post"
    if any("sponsored" in name for name in classes):
        return "sponsored", "a sponsored message Telegram adds, not the channel's post"
    tokens = {name for element in message.iter() if isinstance(element.tag, str) for name in _classes(element)}
    for token, kind in _SKIPPED_KINDS:
        if token in tokens:
            what = f"a {kind} without text" if token != "message_media_not_supported" else (
                "media the web preview does not show (open it in the Telegram app)")
            return kind, f"{what}: nothing a signal can be read from"
    return "empty", "no text and no picture: nothing a signal can be read from"


def skipped_messages(html: str) -> list[SkippedMessage]:
    """Every message of the page :func:`parse_page` leaves out (service, sponsored, media without text or
    picture), ascending by id, with why and the media URLs it shows. Never raises."""
    root = _load(html)
    if root is None:
        return []
    kept = {post.message_id for post in parse_page(html)}
    skipped: dict[int, SkippedMessage] = {}
    try:
        messages = _XP_MESSAGES(root)
    except etree.XPathError:
        return []
    for message in messages:
        message_id = _int_or_none((message.get("data-post") or "").rpartition("/")[2])
        if message_id is None or message_id in kept or message_id in skipped:
            continue
        date = next((node.get("datetime") for node in _XP_DATE_TIME(message)), None)
        try:
            kind, reason = _skip_reason(message)
            media = _media_urls(message)
        except (ValueError, TypeError, etree.LxmlError) as exc:
            kind, reason, media = "unreadable", f"unreadable markup ({type(exc).__name__})", ()
        skipped[message_id] = SkippedMessage(message_id, kind, reason, media, date)
    return [skipped[key] for key in sorted(skipped)]
