"""Signal references in a post: which earlier signal an update speaks of.

Two forms are seen in real channels (reference notes §3.4, dev set):
- an id the channel gives its signals: ``SIGNAL ID: #2001``, ``Signal #123``, ``Signal No. 7``, ``Trade ID: 45``,
  ``ID: 123``, ``Сигнал №12``; read as the bare number, ``"2001"``;
- a link to a post: ``https://t.me/<channel>/<id>`` (also ``t.me/s/<channel>/<id>``, and ``t.me/c/<n>/<id>``
  for a private chat), read as ``"t.me/<channel>/<id>"`` / ``"t.me/c/<n>/<id>"``.

``find_signal_refs`` also returns the text with every reference blanked out, so that no number of a
reference can ever be read as a price.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LETTER = r"A-Za-zА-Яа-яЁё"
# "Signal: 7/10" (a risk score) has no id marker and is not a reference; "Signal #7" and "Signal ID 7" are.
ID_REF = re.compile(
    rf"(?i)(?<![{_LETTER}])(?:"
    r"(?:signal|trade|сигнал|сделка)[ \t]*(?:(?:id|no\.?|nr\.?|number|№)[ \t]*[:#]?|#)[ \t]*#?"
    r"|id[ \t]*[:#][ \t]*#?"
    r")(?P<id>\d{1,9})(?![\d.,]?\d)"
)
POST_LINK = re.compile(
    r"(?i)(?:https?://)?(?:www\.)?(?:t\.me|telegram\.me)/(?:s/)?"
    # "/<id>/<n>" would be a forum topic's message, not a post id: not a reference
    r"(?P<channel>c/\d{1,15}|[A-Za-z][A-Za-z0-9_]{3,31})/(?P<post>\d{1,9})(?!\d|/\d)(?:\?single)?"
)
POST_REF = re.compile(r"t\.me/(?P<channel>c/\d+|[A-Za-z][A-Za-z0-9_]*)/(?P<post>\d+)")


@dataclass(frozen=True)
class SignalRefs:
    ids: tuple[str, ...]  # distinct channel signal ids, in order of appearance
    links: tuple[str, ...]  # distinct post links, normalised to "t.me/<channel>/<id>"
    text: str  # the input with every reference replaced by spaces

    @property
    def ref(self) -> str | None:
        """The one reference the post names: its signal id, else its post link; None when none or several."""
        if self.ids:
            return self.ids[0] if len(self.ids) == 1 else None
        return self.links[0] if len(self.links) == 1 else None

    @property
    def ambiguous(self) -> bool:
        """Several different signals are named: no update may be applied from this post alone."""
        return len(self.ids) > 1 or (not self.ids and len(self.links) > 1)


def find_signal_refs(text: str) -> SignalRefs:
    ids: list[str] = []
    links: list[str] = []

    def take_link(match: re.Match[str]) -> str:
        ref = f"t.me/{match.group('channel')}/{int(match.group('post'))}"
        if ref not in links:
            links.append(ref)
        return " " * len(match.group(0))

    def take_id(match: re.Match[str]) -> str:
        ref = str(int(match.group("id")))
        if ref not in ids:
            ids.append(ref)
        return " " * len(match.group(0))

    blanked = POST_LINK.sub(take_link, text)
    blanked = ID_REF.sub(take_id, blanked)
    return SignalRefs(ids=tuple(ids), links=tuple(links), text=blanked)


def linked_post(ref: str, channel: str) -> int | None:
    """The message id a post-link reference names when it points into ``channel`` (case-insensitive)."""
    match = POST_REF.fullmatch(ref)
    if match is None or match.group("channel").lower() != channel.lower():
        return None
    return int(match.group("post"))


def is_post_link(ref: str) -> bool:
    return POST_REF.fullmatch(ref) is not None
