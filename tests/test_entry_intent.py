"""The typed entry intent: planned once (legs, stop, targets with shares and client ids), journaled through the one
codec with its approval, sent as is, and read back by reconciliation as the same value, digit for digit."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from exchange.sim.catalogue import DEFAULT_CONTRACTS
from parsing.signals import Side
from trading import reconcile as rec
from trading.bundle import LegPlan, StopPlan, plan_bundle
from trading.intents import EntryIntent, TargetPlan, decode, encode, entry_intent
from trading.journal import Journal, OrderState
from trading.risk import SizedEntry

D = Decimal
BTC = next(c for c in DEFAULT_CONTRACTS if c.symbol == "BTCUSDT")

_prices = st.decimals(min_value=D("0.000000001"), max_value=D("10000000"), allow_nan=False, allow_infinity=False)


@st.composite
def entry_intents(draw: st.DrawFn) -> EntryIntent:
    n_legs = draw(st.integers(1, 3))
    legs = tuple(
        LegPlan(leg="entry" if i == 0 else f"entry{i + 1}", client_oid=f"fl_{'a' * 20}_entry{i}", symbol="XUSDT",
                side=draw(st.sampled_from(["buy", "sell"])), trade_side=draw(st.none() | st.just("open")),
                reduce_only=False, order_type="limit", size=draw(_prices), price=draw(st.none() | _prices),
                preset_stop_loss_price=draw(st.none() | _prices))
        for i in range(n_legs)
    )
    stop = StopPlan(client_oid=f"fl_{'a' * 20}_sl", symbol="XUSDT", trigger_price=draw(_prices), hold_side="long",
                    size=draw(_prices))
    targets = tuple(TargetPlan(draw(_prices), draw(st.none() | _prices), f"fl_{'a' * 20}_tp{n}")
                    for n in range(1, draw(st.integers(0, 5)) + 1))
    side = draw(st.sampled_from(["long", "short"]))
    return EntryIntent(signal_id=draw(st.integers(1, 10**9)), symbol="XUSDT", side=side, margin_mode="isolated",
                       leverage=draw(st.integers(1, 125)), size=draw(_prices),
                       risk_usdt=draw(_prices), legs=legs, stop=stop, targets=targets,
                       default_stop=draw(st.booleans()))


@given(entry_intents())
def test_entry_intent_codec_round_trip_is_exact(intent: EntryIntent) -> None:
    back = decode(encode(intent))
    assert back == intent
    assert [str(t.price) for t in back.targets] == [str(t.price) for t in intent.targets]
    assert str(back.stop.trigger_price) == str(intent.stop.trigger_price)


def _sized(stop: str, targets: tuple[str, ...], shares: tuple[str, ...] = ()) -> SizedEntry:
    return SizedEntry(symbol="BTCUSDT", side=Side.LONG, size=D("0.030"), entry_prices=(D("65000.12345678"),),
                      market=False, stop_loss=D(stop), take_profits=tuple(D(t) for t in targets),
                      tp_percentages=tuple(D(s) for s in shares), leverage=5, margin_mode="isolated",
                      sizing_price=D("65000.12345678"), notional=D("1950"), margin=D("390"), risk_usdt=D("1.5"))


def test_the_journal_gives_back_the_planned_entry_and_reconciliation_reads_it(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path / "journal.sqlite"))
    signal_id = journal.record_signal("chan", 7, {}, "parsed", "", symbol="BTCUSDT")
    sized = _sized("64350.12345678", ("65650.87654321", "66300.00000001"), ("60", "40"))
    bundle = plan_bundle(sized, channel="chan", message_id=7, pos_mode="one_way_mode", contract=BTC)
    intent = entry_intent(signal_id, bundle, sized, channel="chan", message_id=7)
    assert intent.legs == bundle.entries and intent.stop == bundle.stop
    assert [t.client_oid for t in intent.targets] == [leg.client_oid for leg in bundle.take_profits]

    assert journal.approve_entry(intent, "approved")
    assert journal.signal(signal_id).decision == "approved"
    assert journal.entry_intents([signal_id]) == {signal_id: intent}
    assert not journal.approve_entry(intent, "again")  # one decision per signal

    leg = intent.legs[0]
    journal.record_intent(leg.client_oid, signal_id=signal_id, symbol="BTCUSDT", leg=leg.leg, side=leg.side,
                          trade_side=leg.trade_side, order_type=leg.order_type, size=leg.size, price=leg.price,
                          reduce_only=False, payload={})  # no text summary: the typed intent is what counts
    journal.set_order_state(leg.client_oid, OrderState.FILLED, filled_size=D("0.030"))
    rows = {signal_id: journal.orders(signal_id=signal_id)}
    (planned,) = rec.intents_from_journal(rows, journal.entry_intents(rows)).values()
    assert planned.stop_price == D("64350.12345678") and str(planned.stop_price) == "64350.12345678"
    assert planned.targets == (D("65650.87654321"), D("66300.00000001"))
    assert planned.shares == (D("60"), D("40"))
    assert planned.tp_oids == tuple(t.client_oid for t in intent.targets)
    assert rec.intents_from_journal(rows) == {}  # without it (and without a payload) nothing would be known
    journal.close()


def test_a_signal_refused_meanwhile_is_not_approved(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path / "journal.sqlite"))
    signal_id = journal.record_signal("chan", 8, {}, "parsed", "", symbol="BTCUSDT")
    assert journal.transition_signal(signal_id, ["parsed"], "refused", "INTERRUPTED")
    sized = _sized("64000", ("66000",))
    bundle = plan_bundle(sized, channel="chan", message_id=8, pos_mode="hedge_mode", contract=BTC)
    assert not journal.approve_entry(entry_intent(signal_id, bundle, sized, channel="chan", message_id=8), "late")
    assert journal.signal(signal_id).decision == "refused"
    assert journal.entry_intents([signal_id]) == {}
    journal.close()
