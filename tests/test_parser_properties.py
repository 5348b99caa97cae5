"""Properties: no input makes the parsers raise; random text never opens a position."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsing.rules import normalize_symbol, parse_text
from parsing.signals import Action, ParsedMessage
from parsing.tme import page_info, parse_page

SIGNAL_WORDS = [
    "LONG", "SHORT", "BTC", "#ETH/USDT", "Entry", "Entry Zone:", "TP1:", "Target 2", "SL", "Stop:", "Leverage",
    "x20", "20x", "市價空", "止损", "止盈", "做多", "Лонг", "стоп", "по рынку", "CMP", "market", "close 50%",
    "✅", "⛔", "❌", "1)", "1️⃣", "-", "–", ",", ".", "%", "$", "\n", " ", "QQ:", "@x", "https://t.me/c/1/2",
]
NUMBERS = st.decimals(min_value=0, max_value=10**7, allow_nan=False, allow_infinity=False, places=4).map(str)
SIGNALISH = st.lists(st.one_of(st.sampled_from(SIGNAL_WORDS), NUMBERS), max_size=40).map(" ".join)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid(readings: list[ParsedMessage]) -> None:
    assert readings, "always at least one reading"
    for reading in readings:
        assert 0.0 <= reading.confidence <= 1.0
        if reading.action is Action.TRADE and reading.kind.value == "entry":
            assert reading.symbol and reading.side and reading.stop_loss is not None
            assert reading.entries or reading.market_entry
            if reading.entries:
                if reading.side.value == "long":
                    assert all(reading.stop_loss < entry for entry in reading.entries)
                else:
                    assert all(reading.stop_loss > entry for entry in reading.entries)


@FAST
@given(st.text(max_size=400))
def test_random_text_never_raises_and_never_opens_a_position(text: str) -> None:
    readings = parse_text(text)
    _valid(readings)
    # A bare update word ("cancel") is a valid reading: it acts only when linked to an open signal
    # (reply, signal id, or the coin's only open signal), which random text cannot provide.
    for reading in readings:
        if reading.action is Action.TRADE:
            assert reading.kind.value != "entry"
            assert reading.update_type is not None


@FAST
@given(SIGNALISH)
def test_signal_like_word_salad_never_raises_and_trades_only_consistently(text: str) -> None:
    _valid(parse_text(text))


@FAST
@given(st.text(max_size=60))
def test_normalize_symbol_never_raises(raw: str) -> None:
    result = normalize_symbol(raw)
    assert result is None or result.endswith("USDT")


TAGS = ["div", "a", "span", "i", "b", "br", "time", "section", "<", ">", "/", "\"", "'", "="]
CLASSES = [
    "tgme_widget_message", "js-widget_message", "tgme_widget_message_text", "js-message_text",
    "tgme_widget_message_reply", "tgme_widget_message_photo_wrap", "grouped_media_wrap", "service_message",
    "tgme_widget_message_meta", "tme_messages_more", "tme_no_messages_found", "tgme_channel_history",
]
HTMLISH = st.lists(
    st.one_of(
        st.sampled_from(TAGS),
        st.sampled_from(CLASSES).map(lambda c: f'<div class="{c}" data-post="ch/{len(c)}">'),
        st.integers(0, 10**6).map(lambda n: f'data-post="x/{n}" data-before="{n}"'),
        st.text(max_size=15),
    ),
    max_size=60,
).map("".join)


@FAST
@given(st.one_of(st.text(max_size=500), HTMLISH))
def test_random_html_never_raises(html: str) -> None:
    posts = parse_page(html)
    ids = [post.message_id for post in posts]
    assert ids == sorted(set(ids))
    page_info(html)
