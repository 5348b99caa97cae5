"""The dev-set report counts what matters: wrong-kind trades and entry fields the message does not give."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from benchmarks.devset_report import (
    DEFAULT_DEVSET,
    DEVSET_2,
    evaluate,
    load_expected,
    load_jsonl,
    markdown,
    readme_report,
    report,
    text_key,
)
from parsing.rules import parse_text
from parsing.signals import Action, Kind, ParsedMessage

EXCERPT = Path(__file__).resolve().parent / "fixtures" / "signals" / "excerpt.jsonl"
ENTRY = "#BTC/USDT LONG\nEntry: 65000\nStop: 64000\nTarget 1: 66000\nTarget 2: 67000"
EXPECTED = {text_key(ENTRY): [{"symbol": "BTCUSDT", "side": "long", "entries": ["65000"], "stop": "64000",
                               "targets": ["66000", "67000"]}]}
SAMPLES = [{"text": ENTRY, "kind": "entry"}, {"text": "gm, markets later", "kind": "noise"}]


def test_a_correct_reader_scores_clean() -> None:
    rows = evaluate(SAMPLES, EXPECTED, parse_text)
    assert (rows["entry"].messages, rows["entry"].right_kind, rows["entry"].traded) == (1, 1, 1)
    assert rows["entry"].wrong_field_entries == 0 and rows["noise"].wrong_kind_trades == 0


def test_a_misread_stop_or_invented_target_is_a_wrong_field() -> None:
    def misread(text: str) -> list[ParsedMessage]:
        return [replace(r, stop_loss=Decimal("6400")) if r.kind is Kind.ENTRY else r for r in parse_text(text)]

    def invented(text: str) -> list[ParsedMessage]:
        return [replace(r, take_profits=(Decimal("66000"), Decimal("70000"))) for r in parse_text(text)]

    def dropped(text: str) -> list[ParsedMessage]:
        return [replace(r, take_profits=(Decimal("67000"),)) for r in parse_text(text)]

    assert evaluate(SAMPLES, EXPECTED, misread)["entry"].wrong_field_entries == 1
    assert evaluate(SAMPLES, EXPECTED, invented)["entry"].wrong_field_entries == 1
    assert evaluate(SAMPLES, EXPECTED, dropped)["entry"].wrong_field_entries == 0  # left out is not wrong


def test_trading_noise_is_a_wrong_kind_trade() -> None:
    def trades_everything(text: str) -> list[ParsedMessage]:
        return [replace(r, action=Action.TRADE) for r in parse_text(text)]

    rows = evaluate(SAMPLES, EXPECTED, trades_everything)
    assert rows["noise"].wrong_kind_trades == 1 and rows["entry"].wrong_kind_trades == 0
    assert "| noise | 1 | 1 | 1 | 1 | – |" in markdown(rows)


def test_the_rule_parser_reads_every_excerpt_entry_field_right() -> None:
    rows = evaluate(load_jsonl(EXCERPT), load_expected(), parse_text)
    assert rows["entry"].messages >= 5
    assert not [d for row in rows.values() for d in row.details], "every excerpt entry has an expectation"
    assert sum(row.wrong_kind_trades for row in rows.values()) == 0
    assert rows["entry"].wrong_field_entries == 0


def test_every_dev_set_entry_has_an_expectation() -> None:
    if not DEFAULT_DEVSET.exists():
        pytest.skip("shared dev set not available")
    expected = load_expected()
    entries = [s for s in load_jsonl(DEFAULT_DEVSET) if s["kind"] == "entry"]
    assert {text_key(s["text"]) for s in entries} == set(expected)


def test_the_readme_tables_are_the_report_of_both_dev_sets() -> None:
    if not (DEFAULT_DEVSET.exists() and DEVSET_2.exists()):
        pytest.skip("shared dev sets not available")
    readme = Path(__file__).resolve().parents[1] / "README.md"
    tables = report([DEFAULT_DEVSET, DEVSET_2], parse_text)
    assert readme_report(readme) == tables, "regenerate: python -m benchmarks.devset_report --readme README.md"
