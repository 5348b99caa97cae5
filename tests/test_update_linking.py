"""Which open signal an update applies to: reply, then a named signal, then the only signal on the coin."""

from __future__ import annotations

from decimal import Decimal

import pytest

from parsing.rules import parse_text
from parsing.rules.refs import find_signal_refs
from parsing.signals import Action, Kind
from trading.linking import LinkedBy, OpenSignal, UpdateToLink, link_update

CHANNEL = "SignalsChan"
BTC = OpenSignal(signal_id=1, channel=CHANNEL, message_id=10, symbol="BTCUSDT", signal_ref="2001")
ETH = OpenSignal(signal_id=2, channel=CHANNEL, message_id=11, symbol="ETHUSDT", signal_ref="2002")
OPEN = [BTC, ETH]


def link(**fields: object) -> tuple[OpenSignal | None, LinkedBy | None]:
    result = link_update(UpdateToLink(channel=CHANNEL, **fields), OPEN)  # type: ignore[arg-type]
    return result.signal, result.by


# ---- the text's reference, as the rules read it ----------------------------------------------------
@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("SIGNAL ID: #2001\nClosed Manually", "2001"),
        ("Signal #123 close 50%", "123"),
        ("Signal No. 7: move stop to breakeven", "7"),
        ("Trade ID: 45 cancelled ❌", "45"),
        ("ID: 123\nSet stoploss 0.0214", "123"),
        ("Сигнал №12 стоп в бу", "12"),
        ("https://t.me/SignalsChan/15 move stop to breakeven", "t.me/SignalsChan/15"),
        ("t.me/s/SignalsChan/15 close all", "t.me/SignalsChan/15"),
        ("https://t.me/c/100/10 остаток закрываю", "t.me/c/100/10"),
        ("Risk of the signal: 7/10", None),
        ("Signal Type: Regular (Long)", None),
        ("Join https://t.me/SignalsChan for more", None),
        ("see t.me/SomeGroup/5/77", None),
    ],
)
def test_signal_reference_forms(text: str, ref: str | None) -> None:
    assert find_signal_refs(text).ref == ref


def test_a_signal_id_is_never_read_as_a_price() -> None:
    # the same line with a bare number would be a complete trade at 64900
    assert parse_text("BTCUSDT LONG 64900\nSL 64500\nTP 66000")[0].action is Action.TRADE
    for text in ("BTCUSDT LONG Signal #64900\nSL 64500\nTP 66000", "ID: 64900 BTCUSDT LONG\nSL 64500\nTP 66000"):
        (entry,) = parse_text(text)
        assert entry.signal_ref == "64900"
        assert entry.entries == () and entry.action is Action.NOTIFY_ONLY
    (update,) = parse_text("https://t.me/SignalsChan/64150 move stop to 64300")
    assert update.update_price == Decimal("64300") and update.signal_ref == "t.me/SignalsChan/64150"


def test_an_update_naming_several_signals_is_notify_only() -> None:
    (update,) = parse_text("Signal #12 and Signal #13: closed manually")
    assert update.kind is Kind.CLOSE and update.action is Action.NOTIFY_ONLY and update.signal_ref is None


# ---- the linking decision ---------------------------------------------------------------------------
def test_reply_links_first_even_against_a_signal_id() -> None:
    assert link(reply_to=11, signal_ref="2001") == (ETH, LinkedBy.REPLY)


def test_reply_to_a_signal_without_open_position_stays_unlinked() -> None:
    # the post says which signal it means; the only open signal on the coin is another one
    assert link(reply_to=9, symbol="BTCUSDT") == (None, None)


def test_reply_to_commentary_falls_back_to_reference_and_symbol() -> None:
    assert link(reply_to=9, replied_is_commentary=True, signal_ref="2002") == (ETH, LinkedBy.SIGNAL_REF)
    assert link(reply_to=9, replied_is_commentary=True, symbol="BTCUSDT") == (BTC, LinkedBy.SYMBOL)


def test_reply_to_a_post_of_unknown_kind_never_links_by_symbol() -> None:
    # e.g. an old BTC signal from before the first start: "close all" must not close today's BTC signal
    assert link(reply_to=3, symbol="BTCUSDT") == (None, None)


def test_signal_id_links_to_the_entry_that_carried_it() -> None:
    assert link(signal_ref="2002") == (ETH, LinkedBy.SIGNAL_REF)
    assert link(signal_ref="2002", symbol="ETHUSDT") == (ETH, LinkedBy.SIGNAL_REF)


def test_post_link_to_the_own_channel_links_by_message_id() -> None:
    assert link(signal_ref="t.me/signalschan/10") == (BTC, LinkedBy.SIGNAL_REF)


def test_references_that_point_nowhere_never_fall_back_to_the_symbol() -> None:
    assert link(signal_ref="9999", symbol="BTCUSDT") == (None, None)  # not an open signal
    assert link(signal_ref="t.me/OtherChan/10", symbol="BTCUSDT") == (None, None)  # another chat
    assert link(signal_ref="t.me/c/100/10", symbol="BTCUSDT") == (None, None)  # a private chat: unverifiable
    assert link(signal_ref="t.me/SignalsChan/12") == (None, None)  # a post that is no open signal


def test_reference_and_symbol_that_disagree_stay_unlinked() -> None:
    assert link(signal_ref="2001", symbol="ETHUSDT") == (None, None)
    assert link(reply_to=10, symbol="ETHUSDT") == (None, None)


def test_only_open_signal_on_the_symbol() -> None:
    assert link(symbol="ETHUSDT") == (ETH, LinkedBy.SYMBOL)
    assert link(symbol="SOLUSDT") == (None, None)
    assert link() == (None, None)


def test_two_open_signals_on_one_symbol_are_ambiguous() -> None:
    second_btc = OpenSignal(signal_id=3, channel=CHANNEL, message_id=12, symbol="BTCUSDT", signal_ref="2001")
    update = UpdateToLink(channel=CHANNEL, symbol="BTCUSDT")
    assert link_update(update, [*OPEN, second_btc]).signal is None
    assert link_update(UpdateToLink(channel=CHANNEL, signal_ref="2001"), [*OPEN, second_btc]).signal is None


def test_signal_ids_of_another_channel_do_not_count() -> None:
    foreign = OpenSignal(signal_id=4, channel="Other", message_id=10, symbol="SOLUSDT", signal_ref="77")
    assert link_update(UpdateToLink(channel=CHANNEL, signal_ref="77"), [*OPEN, foreign]).signal is None
    assert link_update(UpdateToLink(channel=CHANNEL, reply_to=10),
                       [foreign]).signal is None


def test_an_unlinked_update_says_why() -> None:
    result = link_update(UpdateToLink(channel=CHANNEL, signal_ref="9999"), OPEN)
    assert not result.linked and "9999" in result.reason


# ---- the RiskGate's reading of the journal into those facts -------------------------------------------------
def test_journal_facts_a_reply_to_history_or_a_picture_never_links_by_symbol() -> None:
    from actors.messages import SignalParsed
    from actors.risk_gate import link_update as link_from_journal
    from parsing.posts import Post
    from trading.journal import Journal

    with Journal(":memory:") as journal:
        journal.record_post(Post(CHANNEL, 1, "#BTC/USDT LONG ... (before the first start)"))
        journal.record_signal(CHANNEL, 1, {}, "history", "", symbol=None)
        journal.record_post(Post(CHANNEL, 2, "gm, BTC looks strong"))
        journal.record_signal(CHANNEL, 2, {"kind": "noise"}, "ignored", "")
        journal.record_post(Post(CHANNEL, 3, "", image_urls=("https://cdn/x.jpg",)))
        journal.record_signal(CHANNEL, 3, {"kind": "noise"}, "notify_only", "")
        journal.record_post(Post(CHANNEL, 4, "BTC long signal"))
        journal.record_signal(CHANNEL, 4, {"kind": "entry", "signal_ref": None}, "traded", "", symbol="BTCUSDT")
        (close,) = parse_text("#BTC/USDT close all")

        def linked(reply_to: int) -> int | None:
            update = SignalParsed(signal_id=99, channel=CHANNEL, message_id=10, reply_to=reply_to, parsed=close,
                                  index=0, posted_at=None)
            found = link_from_journal(journal, update).signal
            return found.message_id if found else None

        assert linked(4) == 4  # the signal itself
        assert linked(2) == 4  # commentary says nothing: the only open BTC signal
        assert linked(1) is None  # an old signal we never traded
        assert linked(3) is None  # a picture may be a signal the rules could not read
        assert linked(7) is None  # never seen
