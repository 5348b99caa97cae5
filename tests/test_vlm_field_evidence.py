"""Each value of a model's answer must stand after its own field's label in the post; the model also reads
texts the rules cannot. Fuzzed answers never give a dangerous reading."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsing.hybrid import looks_like_signal, read_hybrid
from parsing.signals import Action, Kind, ParsedMessage, Side
from parsing.vlm.check import field_numbers, model_reading
from parsing.vlm.schema import AnswerRefused, VlmAnswer, parse_answer
from tests.vlm_helpers import CHART_TEXT, text_answer

THRESHOLD = 0.8
ETH_SHORT = "#ETH/USDT SHORT\nEntry: 3200\nTP1: 3150\nTP2: 3100\nTP3: 3050\nSL: 3250\nLeverage: 20x"


def read(answer: dict[str, Any], text: str) -> ParsedMessage:
    return model_reading(parse_answer(answer), text=text, threshold=THRESHOLD, image_sent=False)


def eth_answer(**overrides: Any) -> dict[str, Any]:
    answer = text_answer(symbol="ETH/USDT", side="short", entries=["3200"], stop_loss="3250",
                         take_profits=["3150", "3100", "3050"], evidence={
                             "symbol": {"quote": "#ETH/USDT", "source": "text"},
                             "side": {"quote": "#ETH/USDT SHORT", "source": "text"},
                             "entries": {"quote": "Entry: 3200", "source": "text"},
                             "stop_loss": {"quote": "SL: 3250", "source": "text"},
                             "take_profits": {"quote": "TP1: 3150\nTP2: 3100\nTP3: 3050", "source": "text"},
                         })
    answer.update(overrides)
    return answer


def test_the_honest_answer_trades() -> None:
    reading = read(eth_answer(), ETH_SHORT)
    assert reading.action is Action.TRADE
    assert (reading.entries, reading.stop_loss) == ((Decimal(3200),), Decimal(3250))


@pytest.mark.parametrize("quote", ["TP3: 3050", "3050", "Entry: 3200\nTP1: 3150\nTP2: 3100\nTP3: 3050", ETH_SHORT])
def test_a_target_is_never_an_entry_whatever_the_quote(quote: str) -> None:
    # the fuzzing finding: a short "entered" at its third target was approved
    answer = eth_answer(entries=["3050"], evidence={**eth_answer()["evidence"],
                                                     "entries": {"quote": quote, "source": "text"}})
    reading = read(answer, ETH_SHORT)
    assert reading.action is Action.NOTIFY_ONLY
    assert reading.entries == ()
    assert any(w.startswith("model entry 3050 dropped") for w in reading.warnings)


@pytest.mark.parametrize(("value", "quote"), [("20", "Leverage: 20x"), ("3250", "SL: 3250")])
def test_a_stop_or_leverage_is_never_an_entry(value: str, quote: str) -> None:
    text = "#ETH/USDT SHORT\nEntry: 20 - 3200\nSL: 3250\nLeverage: 20x" if value == "20" else ETH_SHORT
    answer = eth_answer(entries=[value], evidence={**eth_answer()["evidence"],
                                                    "entries": {"quote": quote, "source": "text"}})
    assert read(answer, text).action is Action.NOTIFY_ONLY


def test_a_stop_must_stand_after_a_stop_label() -> None:
    # the quote names a stop, but the number it gives is a target
    answer = eth_answer(stop_loss="3100", evidence={**eth_answer()["evidence"],
                                                     "stop_loss": {"quote": "TP2: 3100\nTP3: 3050\nSL: 3250",
                                                                   "source": "text"}})
    reading = read(answer, ETH_SHORT)
    assert reading.stop_loss is None and reading.action is Action.NOTIFY_ONLY
    assert "model stop_loss 3100 dropped: it does not stand after a stop label in the post" in reading.warnings


def test_a_target_must_stand_after_a_target_label() -> None:
    answer = eth_answer(take_profits=["3150", "3250"], evidence={
        **eth_answer()["evidence"], "take_profits": {"quote": "TP1: 3150\nTP2: 3100\nTP3: 3050\nSL: 3250",
                                                     "source": "text"}})
    reading = read(answer, ETH_SHORT)
    assert reading.take_profits == (Decimal(3150),)
    assert "model target 3250 dropped: it does not stand after a target label in the post" in reading.warnings


def test_entry_after_a_direction_word_and_targets_listed_below_their_label() -> None:
    text = "CTK / USDT\nLONG : 1.38\nTARGETS:\n1) 1.43\n2) 1.50\nSTOP : 1.28"
    answer = text_answer(symbol="CTK/USDT", side="long", entries=["1.38"], stop_loss="1.28",
                         take_profits=["1.43", "1.50"], evidence={
                             "symbol": {"quote": "CTK / USDT", "source": "text"},
                             "side": {"quote": "LONG : 1.38", "source": "text"},
                             "entries": {"quote": "LONG : 1.38", "source": "text"},
                             "stop_loss": {"quote": "STOP : 1.28", "source": "text"},
                             "take_profits": {"quote": "1) 1.43\n2) 1.50", "source": "text"},
                         })
    reading = read(answer, text)
    assert reading.action is Action.TRADE
    assert reading.take_profits == (Decimal("1.43"), Decimal("1.50"))


def test_field_numbers_of_a_post() -> None:
    numbers = field_numbers("BTC LONG x10\nEntry zone: 65000 - 64500\nTargets:\n66000\n67000 (50%)\nSL 63000")
    assert numbers.of("entries") == {Decimal(65000), Decimal(64500)}
    assert numbers.of("take_profits") == {Decimal(66000), Decimal(67000)}
    assert numbers.of("stop_loss") == {Decimal(63000)}
    assert numbers.of("leverage") == {Decimal(10)}


# --- the model as a reader of texts the rules cannot read --------------------------------------------------------
class ScriptedModel:
    def __init__(self, *answers: dict[str, Any]) -> None:
        self.answers = list(answers)
        self.texts: list[str] = []

    def extract(self, image_bytes: bytes | None, text_context: str, *,
                more_images: Sequence[bytes] = ()) -> VlmAnswer:
        self.texts.append(text_context)
        return parse_answer(self.answers.pop(0))


def rules_cannot_read(text: str) -> list[ParsedMessage]:
    return [ParsedMessage(kind=Kind.NOISE, action=Action.IGNORE)]


def test_a_signal_the_rules_cannot_read_is_read_by_the_model_under_the_evidence_rules() -> None:
    model = ScriptedModel(text_answer())
    [reading] = read_hybrid(CHART_TEXT, [], model, threshold=THRESHOLD, parse=rules_cannot_read)
    assert model.texts == [CHART_TEXT]
    assert reading.action is Action.TRADE and reading.source == "vlm" and reading.stop_loss == Decimal("145.2")


def test_an_update_the_rules_cannot_read_is_read_by_the_model_and_only_shown() -> None:
    model = ScriptedModel(text_answer(kind="close", evidence={}, entries=[], stop_loss=None, take_profits=[]))
    [reading] = read_hybrid("SOL/USDT: close everything now", [], model, threshold=THRESHOLD,
                            parse=rules_cannot_read)
    assert reading.kind is Kind.CLOSE and reading.action is Action.NOTIFY_ONLY


def test_a_target_as_entry_from_a_text_read_by_the_model_is_not_traded() -> None:
    model = ScriptedModel(eth_answer(entries=["3050"], evidence={
        **eth_answer()["evidence"], "entries": {"quote": "TP3: 3050", "source": "text"}}))
    [reading] = read_hybrid(ETH_SHORT, [], model, threshold=THRESHOLD, parse=rules_cannot_read)
    assert reading.action is Action.NOTIFY_ONLY


@pytest.mark.parametrize("text", ["Good morning traders!", "BTC to the moon", "see you at 9", "🚀🚀🚀", ""])
def test_chatter_is_not_sent_to_the_model(text: str) -> None:
    model = ScriptedModel()
    read_hybrid(text, [], model, threshold=THRESHOLD, parse=rules_cannot_read)
    assert model.texts == []
    assert not looks_like_signal(text)


# --- fuzzing the model's answers -------------------------------------------------------------------------------
COINS = ("BTC", "ETH", "SOL", "AVAX", "DOGE", "1000PEPE")
ENTRY_LABELS = ("Entry", "Entry zone", "Buy zone", "Вход", "入场", "Entry price")
STOP_LABELS = ("SL", "Stop loss", "Stop", "Стоп", "止损")
TARGET_LABELS = ("TP{i}", "Target {i}", "Цель {i}", "Take profit {i}")


@st.composite
def post_and_answer(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[str, Any]]:
    coin = draw(st.sampled_from(COINS))
    side = draw(st.sampled_from(("long", "short")))
    base = draw(st.decimals(min_value=Decimal("0.05"), max_value=Decimal(90000), places=2))
    sign = 1 if side == "long" else -1
    entries = [base, (base * (1 - sign * Decimal("0.01"))).quantize(Decimal("0.0001"))]
    stop = (base * (1 - sign * Decimal("0.05"))).quantize(Decimal("0.0001"))
    targets = [(base * (1 + sign * Decimal(step) / 100)).quantize(Decimal("0.0001")) for step in (2, 4, 7)]
    leverage = draw(st.integers(min_value=2, max_value=50))
    lines = [
        f"{draw(st.sampled_from(ENTRY_LABELS))}: {entries[0]} - {entries[1]}",
        f"{draw(st.sampled_from(STOP_LABELS))}: {stop}",
        *[f"{draw(st.sampled_from(TARGET_LABELS)).format(i=i + 1)}: {t}" for i, t in enumerate(targets)],
        f"Leverage: {leverage}x",
    ]
    lines = draw(st.permutations(lines))
    text = "\n".join([f"#{coin}/USDT {side.upper()}", *lines])
    numbers = [*entries, stop, *targets, Decimal(leverage)]
    # quotes: often the whole post (then only where a number stands can tell the fields apart), else a line, a
    # bare number or any slice of the post
    quotes = st.one_of(st.just(text), st.sampled_from(text.split("\n")), st.sampled_from([str(n) for n in numbers]),
                       st.builds(lambda a, b: text[min(a, b):max(a, b)], st.integers(0, len(text)),
                                 st.integers(0, len(text))).filter(bool))
    evidence = {name: {"quote": draw(quotes), "source": "text"}
                for name in ("symbol", "side", "entries", "stop_loss", "take_profits", "leverage")}
    values = st.sampled_from([str(n) for n in numbers])
    other_side = "short" if side == "long" else "long"
    answer = text_answer(
        symbol=draw(st.sampled_from((coin, coin, f"{coin}/USDT", "XRP", "BTC", "ETH/USDT"))),
        side=draw(st.sampled_from((side, side, side, other_side))),
        entries=draw(st.one_of(st.just([str(entries[0])]), st.lists(values, min_size=1, max_size=3, unique=True))),
        stop_loss=draw(st.one_of(st.just(str(stop)), values)),
        take_profits=draw(st.lists(values, max_size=4, unique=True)),
        leverage=draw(st.one_of(st.none(), st.sampled_from((leverage, 2, 10, 20)))),
        market_entry=False,
        evidence=evidence,
    )
    truth = {"symbol": f"{coin}USDT", "side": Side(side), "entries": set(entries), "stop": stop,
             "targets": set(targets), "leverage": leverage}
    return text, answer, truth


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(post_and_answer())
def test_fuzzed_answers_never_give_a_dangerous_trade(case: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    text, answer, truth = case
    reading = read(answer, text)
    if reading.action is not Action.TRADE:
        return
    assert reading.symbol == truth["symbol"]  # never a coin the text does not name
    assert reading.side is truth["side"]
    assert reading.entries and set(reading.entries) <= truth["entries"]  # never an entry from another field
    assert reading.stop_loss == truth["stop"]
    assert set(reading.take_profits) <= truth["targets"]
    assert reading.leverage in (None, truth["leverage"])
    stop = reading.stop_loss
    assert stop is not None and stop.is_finite() and stop > 0
    if reading.side is Side.LONG:
        assert stop < min(reading.entries)
    else:
        assert stop > max(reading.entries)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["NaN", "Infinity", "-Infinity", "-1", "0", "-0.0"]), st.sampled_from(["entries", "stop_loss",
                                                                                          "take_profits"]))
def test_non_finite_or_non_positive_prices_are_refused(value: str, name: str) -> None:
    answer = text_answer(**{name: value if name == "stop_loss" else [value]})
    with pytest.raises(AnswerRefused):
        parse_answer(answer)


def test_loopback_text_only_post_goes_to_the_local_model_and_a_target_entry_is_refused() -> None:
    from parsing.vlm.client import VLMClient
    from parsing.vlm.local_server import LocalVlmServer

    with LocalVlmServer(api_key="k") as server:
        client = VLMClient(provider="nim", model="local", base_url=server.base_url, api_key="k", timeout=5.0,
                           max_retries=0)
        server.queue_answer(text_answer())
        [good] = read_hybrid(CHART_TEXT, [], client, threshold=THRESHOLD, parse=rules_cannot_read)
        server.queue_answer(eth_answer(entries=["3050"], evidence={
            **eth_answer()["evidence"], "entries": {"quote": "TP3: 3050", "source": "text"}}))
        [bad] = read_hybrid(ETH_SHORT, [], client, threshold=THRESHOLD, parse=rules_cannot_read)
        requests = server.requests
    assert good.action is Action.TRADE and good.source == "vlm"
    assert bad.action is Action.NOTIFY_ONLY and bad.entries == ()
    assert len(requests) == 2 and all(not request.image_urls() for request in requests)


@pytest.mark.parametrize(("text", "entry", "stop", "targets"), [
    ("#BTC 做多\n入场 6万2\n止损 6万\n止盈 6万5", "62000", "60000", ["65000"]),
    ("#BTC LONG\nEntry: 112,5k\nSL: 110k\nTP1: 115k", "112500", "110000", ["115000"]),
    ("#BTC لانگ\nورود: ۶۵۰۰۰\nحد ضرر: ۶۴۰۰۰\nتارگت: ۶۶۰۰۰", "65000", "64000", ["66000"]),
])
def test_numbers_are_matched_as_the_rules_read_them(text: str, entry: str, stop: str, targets: list[str]) -> None:
    lines = text.split("\n")
    answer = text_answer(symbol="BTC", side="long", entries=[entry], stop_loss=stop, take_profits=targets, evidence={
        "symbol": {"quote": lines[0], "source": "text"}, "side": {"quote": lines[0], "source": "text"},
        "entries": {"quote": lines[1], "source": "text"}, "stop_loss": {"quote": lines[2], "source": "text"},
        "take_profits": {"quote": lines[3], "source": "text"}})
    reading = read(answer, text)
    assert reading.action is Action.TRADE, reading.warnings
    assert reading.entries == (Decimal(entry),) and reading.stop_loss == Decimal(stop)


def test_the_parser_asks_the_model_about_a_text_only_post_that_looks_like_a_signal() -> None:
    from parsing.hybrid import HybridReader
    from parsing.posts import Post

    reader = HybridReader(ScriptedModel(), threshold=THRESHOLD, parse=rules_cannot_read)
    assert reader.wants_model(Post("chan", 1, CHART_TEXT))
    assert not reader.wants_model(Post("chan", 2, "Good morning traders!"))


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400), st.text(max_size=60))
def test_odd_texts_and_quotes_never_break_the_check(text: str, quote: str) -> None:
    answer = text_answer(evidence={name: {"quote": quote or "x", "source": "text"}
                                   for name in ("symbol", "side", "entries", "stop_loss", "take_profits")})
    reading = read(answer, text)
    assert reading.action is Action.NOTIFY_ONLY or reading.stop_loss == Decimal("145.2")
    field_numbers(text)


def test_an_update_read_with_doubt_is_not_sent_to_the_model() -> None:
    model = ScriptedModel()
    [reading] = read_hybrid("#SOL move SL to TP1", [], model, threshold=THRESHOLD)
    assert model.texts == [] and reading.kind is Kind.UPDATE and reading.action is Action.NOTIFY_ONLY


def test_a_post_naming_two_coins_does_not_let_the_model_pick_one() -> None:
    text = "#BTC/USDT and #ETH/USDT LONG\nEntry: 3200\nSL: 3100\nTP1: 3300"
    answer = eth_answer(side="long", entries=["3200"], stop_loss="3100", take_profits=["3300"], evidence={
        "symbol": {"quote": "#ETH/USDT", "source": "text"}, "side": {"quote": "#ETH/USDT LONG", "source": "text"},
        "entries": {"quote": "Entry: 3200", "source": "text"}, "stop_loss": {"quote": "SL: 3100", "source": "text"},
        "take_profits": {"quote": "TP1: 3300", "source": "text"}})
    reading = read(answer, text)
    assert reading.action is Action.NOTIFY_ONLY and reading.symbol is None
    assert any("names several coins" in w for w in reading.warnings)


def test_a_failure_while_checking_an_answer_is_a_notice_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    import parsing.hybrid as hybrid

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError

    monkeypatch.setattr(hybrid, "verify_answer", broken)
    [reading] = read_hybrid(CHART_TEXT, [], ScriptedModel(text_answer()), threshold=THRESHOLD,
                            parse=rules_cannot_read)
    assert reading.action is Action.NOTIFY_ONLY
    assert reading.warnings == ("vision model answer could not be checked: ZeroDivisionError",)
