"""With the vision model on, a reply is read with the context of the signal it replies to, as without it."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from actors.messages import Heartbeat, PostSeen, SignalParsed
from actors.parser import Parser
from ops.metrics import Metrics
from parsing.hybrid import HybridReader
from parsing.posts import Post
from parsing.rules import parse_text
from parsing.signals import UpdateType
from parsing.vlm.schema import VlmAnswer
from tests.vlm_helpers import PNG_1PX
from trading.journal import Journal

SIGNAL = "#ARB LONG\nEntry 0.8000\nSL 0.7600\nTP1 0.8400\nTP2 0.8800"


class Inbox:
    def __init__(self) -> None:
        self.items: list[Any] = []

    def tell(self, message: Any) -> None:
        self.items.append(message)

    def notify(self, kind: str, text: str) -> None:
        self.items.append((kind, text))


class NoModel:
    def __init__(self) -> None:
        self.calls = 0

    def extract(self, image_bytes: bytes | None, text_context: str, *,
                more_images: Sequence[bytes] = ()) -> VlmAnswer:
        self.calls += 1
        raise RuntimeError("the model should not be asked about a reply the rules read with its context")


def test_a_reply_with_a_picture_is_read_with_its_signal_s_context_and_not_sent_to_the_model() -> None:
    model, risk_gate = NoModel(), Inbox()
    with Journal(":memory:") as journal:
        (entry,) = parse_text(SIGNAL)
        journal.record_signal("chan", 10, entry.to_json(), "parsed", "", symbol=entry.symbol)
        vision = HybridReader(model, threshold=0.8, load_images=lambda post: [PNG_1PX])
        parser = Parser.start(name="parser", supervisor=None, journal=journal, risk_gate=risk_gate,
                              notifier=Inbox(), metrics=Metrics(), vision=vision)
        try:
            post = Post("chan", 11, "dời SL lên TP1", image_urls=("https://cdn.test/chart.jpg",), reply_to=10)
            journal.record_post(post)
            parser.tell(PostSeen(post))
            assert parser.ask(Heartbeat(), timeout=10) is True
        finally:
            parser.stop()
    [update] = [item.parsed for item in risk_gate.items if isinstance(item, SignalParsed)]
    assert (update.update_type, update.update_price) == (UpdateType.SET_STOP, Decimal("0.8400"))
    assert model.calls == 0
