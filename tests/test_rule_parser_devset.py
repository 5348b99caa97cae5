"""The rule parser on real channel messages with a known kind (dev set), and the project's own excerpt."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from benchmarks.devset_report import shared_fixture
from parsing.rules import parse_text
from parsing.signals import Action, Kind

EXCERPT = Path(__file__).resolve().parent / "fixtures" / "signals" / "excerpt.jsonl"
SHARED_DEVSET = shared_fixture("signals-dev.jsonl")


def _load(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _devset() -> list[dict[str, str]]:
    if not SHARED_DEVSET.exists():
        pytest.skip("shared dev set not available")
    return _load(SHARED_DEVSET)


def _check_no_wrong_trade(samples: list[dict[str, str]]) -> None:
    for sample in samples:
        for reading in parse_text(sample["text"]):
            if reading.action is Action.TRADE:
                assert reading.kind.value == sample["kind"], sample["text"]
                assert sample["kind"] != "noise"


def test_excerpt_never_trades_the_wrong_kind() -> None:
    _check_no_wrong_trade(_load(EXCERPT))


def test_devset_never_trades_the_wrong_kind() -> None:
    _check_no_wrong_trade(_devset())


def test_devset_accuracy_per_kind(capsys: pytest.CaptureFixture[str]) -> None:
    samples = _devset()
    total: Counter[str] = Counter()
    right: Counter[str] = Counter()
    for sample in samples:
        kinds = {reading.kind.value for reading in parse_text(sample["text"])}
        total[sample["kind"]] += 1
        right[sample["kind"]] += kinds == {sample["kind"]}
    with capsys.disabled():
        print("\nrule parser dev-set accuracy by kind:")
        for kind in sorted(total):
            print(f"  {kind:7s} {right[kind]:2d}/{total[kind]:2d}")
    # a floor, not a target: a regression below it means a parser change broke real formats
    assert sum(right.values()) / sum(total.values()) >= 0.9


# Every traded entry of the dev set, with the fields a human reads in it.
EXPECTED_TRADES = {
    "CTK  / USDT": ("CTKUSDT", "long", ["1.38"], "1.28", ["1.43", "1.49", "1.53", "1.58"]),
    "#SIGNAL (BTCUSD)": (
        "BTCUSDT", "short", ["44150", "45600"], "46250", ["43600", "43100", "42400", "41500", "40300"]
    ),
    "#BRD at": ("BRDUSDT", "long", ["666", "652"], "600", ["677", "690", "738", "850"]),
    "Short #xbt": ("BTCUSDT", "short", ["6640", "6700"], "6800", ["6580", "6500", "6400", "6200"]),
    "BINANCE\nFTMUSDT": ("FTMUSDT", "short", ["0.2572", "0.2665"], "0.2726", ["0.2524", "0.2444", "0.2405", "0.2405"]),
    "BINANCE\nPair: XRP": ("XRPUSDT", "long", ["0.3292"], "0.3127", ["0.3358", "0.3374", "0.3397"]),
    "#sol $sol": ("SOLUSDT", "long", ["185"], "178", ["200"]),
    "#H 🟢 LONG": ("HUSDT", "long", ["0.104680"], "0.100493", ["0.105727"]),
    "⚡⚡ #BNB/USDT": ("BNBUSDT", "long", ["287", "285"], "283", ["288.5", "291", "294", "299"]),
    "📩 #LTCUSDT": (
        "LTCUSDT", "short", ["91", "93"], "102.486", ["90.636", "90.09", "89.544", "88.816", "87.36", "77.532"]
    ),
}


def test_devset_traded_entries_have_every_field_right() -> None:
    samples = _devset()
    checked = 0
    for sample in samples:
        for reading in parse_text(sample["text"]):
            if reading.kind is not Kind.ENTRY or reading.action is not Action.TRADE:
                continue
            assert reading.stop_loss is not None and reading.side is not None
            targets = reading.take_profits
            if reading.side.value == "long":
                assert all(reading.stop_loss < entry for entry in reading.entries)
                assert all(target > max(reading.entries) for target in targets)
                assert list(targets) == sorted(targets)
            else:
                assert all(reading.stop_loss > entry for entry in reading.entries)
                assert all(target < min(reading.entries) for target in targets)
                assert list(targets) == sorted(targets, reverse=True)
            for prefix, (symbol, side, entries, stop, targets) in EXPECTED_TRADES.items():
                if sample["text"].startswith(prefix):
                    checked += 1
                    assert reading.symbol == symbol
                    assert reading.side.value == side
                    assert [str(e) for e in reading.entries] == entries
                    assert str(reading.stop_loss) == stop
                    assert [str(t) for t in reading.take_profits] == targets
    assert checked == len(EXPECTED_TRADES)


def test_stray_number_after_targets_is_dropped_and_flagged() -> None:
    sample = next(s for s in _load(EXCERPT) if s["text"].startswith("#SIGNAL (BTCUSD)"))
    (reading,) = parse_text(sample["text"])
    assert all(target > 40000 for target in reading.take_profits)
    assert any("4000" in warning for warning in reading.warnings)
