"""How `following parse` reads the dev set of real channel messages: one Markdown table row per expected kind.

Columns:
- **messages**: messages of that kind in the dev set;
- **right kind**: every reading of the message has the expected kind;
- **traded**: the message has at least one reading with action ``trade``;
- **wrong-kind trades**: a ``trade`` reading of another kind than expected (any trade of a noise message);
- **entries with a wrong field**: entry messages where a reading states a coin, side, entry, stop or target that
  the message does not give (``benchmarks/devset_expected.json`` holds what a human reads in each entry). A field
  left out is not "wrong" (the reading is then not traded); a target dropped with a warning is not either.

Usage: ``.venv/bin/python -m benchmarks.devset_report [--devset FILE] [--conf FILE] [--details]``
(default dev set: ``../shared/fixtures/signals-dev.jsonl`` beside the checkout). ``--conf`` checks coins against
the configured exchange exactly as ``following parse --conf`` does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.parse_command import load_contract_symbols, read_text
from parsing.signals import Action, Kind, ParsedMessage

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DEVSET = REPO.parent / "shared" / "fixtures" / "signals-dev.jsonl"
EXPECTED = Path(__file__).resolve().parent / "devset_expected.json"
KINDS = ("entry", "update", "close", "cancel", "noise")

Reader = Callable[[str], list[ParsedMessage]]


@dataclass
class KindRow:
    messages: int = 0
    right_kind: int = 0
    traded: int = 0
    wrong_kind_trades: int = 0
    wrong_field_entries: int = 0
    details: list[str] = field(default_factory=list)


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_expected(path: Path = EXPECTED) -> dict[str, list[dict[str, Any]]]:
    return {item["sha1"]: item["readings"] for item in json.loads(path.read_text(encoding="utf-8"))}


def _decimals(values: Sequence[Any]) -> list[Decimal]:
    return [Decimal(str(value)) for value in values]


def _is_subsequence(found: list[Decimal], expected: list[Decimal]) -> bool:
    remaining = iter(expected)
    return all(any(value == candidate for candidate in remaining) for value in found)


def wrong_fields(reading: ParsedMessage, expected: dict[str, Any]) -> list[str]:
    """The fields the reading states differently from what the message gives."""
    wrong: list[str] = []
    if reading.symbol is not None and reading.symbol != expected["symbol"]:
        wrong.append(f"symbol {reading.symbol} (message: {expected['symbol']})")
    if reading.side is not None and reading.side.value != expected["side"]:
        wrong.append(f"side {reading.side.value} (message: {expected['side']})")
    if reading.entries and list(reading.entries) != _decimals(expected["entries"]):
        wrong.append(f"entries {[str(e) for e in reading.entries]} (message: {expected['entries']})")
    if reading.stop_loss is not None and (expected["stop"] is None or reading.stop_loss != Decimal(expected["stop"])):
        wrong.append(f"stop {reading.stop_loss} (message: {expected['stop']})")
    if not _is_subsequence(list(reading.take_profits), _decimals(expected["targets"])):
        wrong.append(f"targets {[str(t) for t in reading.take_profits]} (message: {expected['targets']})")
    return wrong


def evaluate(samples: Sequence[dict[str, Any]], expected: dict[str, list[dict[str, Any]]],
             read: Reader) -> dict[str, KindRow]:
    rows = {kind: KindRow() for kind in KINDS}
    for sample in samples:
        kind = sample["kind"]
        row = rows.setdefault(kind, KindRow())
        readings = read(sample["text"])
        head = sample["text"].split("\n", 1)[0][:50]
        row.messages += 1
        row.right_kind += {r.kind.value for r in readings} == {kind}
        trades = [r for r in readings if r.action is Action.TRADE]
        row.traded += bool(trades)
        if any(r.kind.value != kind or kind == Kind.NOISE.value for r in trades):
            row.wrong_kind_trades += 1
            row.details.append(f"{kind}: traded as {sorted({r.kind.value for r in trades})}: {head!r}")
        if kind != Kind.ENTRY.value:
            continue
        human = expected.get(text_key(sample["text"]))
        if human is None:
            row.details.append(f"entry: no expectation recorded: {head!r}")
            continue
        entry_readings = [r for r in readings if r.kind is Kind.ENTRY]
        wrong = [w for reading, want in zip(entry_readings, human, strict=False) for w in wrong_fields(reading, want)]
        if wrong:
            row.wrong_field_entries += 1
            row.details.append(f"entry: {'; '.join(wrong)}: {head!r}")
    return rows


def markdown(rows: dict[str, KindRow]) -> str:
    lines = ["| expected kind | messages | right kind | traded | wrong-kind trades | entries with a wrong field |",
             "|---|---|---|---|---|---|"]
    total = KindRow()
    for kind, row in rows.items():
        if not row.messages:
            continue
        wrong_field = str(row.wrong_field_entries) if kind == Kind.ENTRY.value else "–"
        lines.append(f"| {kind} | {row.messages} | {row.right_kind} | {row.traded} | {row.wrong_kind_trades} "
                     f"| {wrong_field} |")
        total.messages += row.messages
        total.right_kind += row.right_kind
        total.traded += row.traded
        total.wrong_kind_trades += row.wrong_kind_trades
        total.wrong_field_entries += row.wrong_field_entries
    lines.append(f"| **all** | {total.messages} | {total.right_kind} | {total.traded} | {total.wrong_kind_trades} "
                 f"| {total.wrong_field_entries} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--devset", type=Path, default=DEFAULT_DEVSET)
    parser.add_argument("--conf", help="check coins against this config's exchange, like `following parse --conf`")
    parser.add_argument("--details", action="store_true", help="list every wrong-kind trade and wrong field")
    args = parser.parse_args(argv)
    if not args.devset.exists():
        print(f"dev set not found: {args.devset}", file=sys.stderr)
        return 1
    listed: Collection[str] | None = None
    if args.conf:
        from actors.config import load_config

        contracts = load_contract_symbols(load_config(args.conf))
        if contracts.note:
            print(f"note: {contracts.note}", file=sys.stderr)
        listed = contracts.symbols
    rows = evaluate(load_jsonl(args.devset), load_expected(), lambda text: read_text(text, listed))
    print(markdown(rows))
    if args.details:
        for row in rows.values():
            for line in row.details:
                print(f"- {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
