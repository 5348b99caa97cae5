"""How `following parse` reads the dev set of real channel messages: one Markdown table row per expected kind.

Columns:
- **messages**: messages of that kind in the dev set;
- **right kind**: every reading of the message has the expected kind;
- **traded**: the message has at least one reading with action ``trade``;
- **wrong-kind trades**: a ``trade`` reading of another kind than expected (any trade of a noise message);
- **entries with a wrong field**: entry messages where a reading states a coin, side, entry, stop or target that
  the message does not give (``benchmarks/devset_expected.json`` holds what a human reads in each entry). A field
  left out is not "wrong" (the reading is then not traded); a target dropped with a warning is not either.

Per language (both dev sets, ``--languages``): messages, right kind, entries, entries traded, clear entries (a
careful trader would place exactly this trade: ``trade: yes`` in ``signals-dev-2``) traded exactly, and **wrong
trades**: a ``trade`` reading of another kind, an entry traded although ``trade: no``, or a traded entry whose coin,
side, entries, stop or leverage differ from the message or whose targets are not among the message's.
``signals-dev.jsonl`` has no language or trade label: its language is guessed from the script and lexicon, and its
entries count as "either" (traded or not, a traded field must still be right).

Usage: ``.venv/bin/python -m benchmarks.devset_report [--devset FILE ...] [--conf FILE] [--details]
[--readme README.md]`` (default: both dev sets in ``shared/fixtures`` found beside the checkout or above it).
``--conf`` checks coins against the configured exchange exactly as ``following parse --conf`` does.
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

from cli.parse import load_contract_symbols, read_text
from parsing.signals import Action, Kind, ParsedMessage

REPO = Path(__file__).resolve().parents[1]


def shared_fixture(name: str) -> Path:
    """``shared/fixtures/<name>`` beside the checkout or beside one of its parents (a worktree sits deeper)."""
    for parent in REPO.parents:
        candidate = parent / "shared" / "fixtures" / name
        if candidate.exists():
            return candidate
    return REPO.parent / "shared" / "fixtures" / name


DEFAULT_DEVSET = shared_fixture("signals-dev.jsonl")
DEVSET_2 = shared_fixture("signals-dev-2.jsonl")
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


@dataclass
class LanguageRow:
    messages: int = 0
    right_kind: int = 0
    entries: int = 0
    entries_traded: int = 0
    clear_entries: int = 0
    clear_traded_exactly: int = 0
    wrong_trades: int = 0
    details: list[str] = field(default_factory=list)


def sample_kind(sample: dict[str, Any]) -> str:
    return str(sample["expect"]["kind"]) if "expect" in sample else str(sample["kind"])


def _expected_entries(sample: dict[str, Any], expected: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """What a human reads in an entry message, one dict per plan, in the dev-2 field names."""
    if "expect" in sample:
        return [dict(sample["expect"])]
    human = expected.get(text_key(sample["text"]), [])
    return [{"trade": "either", "symbol": h["symbol"], "side": h["side"], "entries": h["entries"],
             "stop_loss": h["stop"], "take_profits": h["targets"], "leverage": "any"} for h in human]


def traded_wrong(reading: ParsedMessage, want: dict[str, Any]) -> list[str]:
    """Every traded field the message does not give (an empty list: the trade is exactly the message's)."""
    wrong: list[str] = []
    if reading.symbol != want["symbol"]:
        wrong.append(f"symbol {reading.symbol} (message: {want['symbol']})")
    if reading.side is None or reading.side.value != want["side"]:
        wrong.append(f"side {reading.side and reading.side.value} (message: {want['side']})")
    if list(reading.entries) != _decimals(want["entries"]):
        wrong.append(f"entries {[str(e) for e in reading.entries]} (message: {want['entries']})")
    stop = want["stop_loss"]
    if reading.stop_loss is None or stop is None or reading.stop_loss != Decimal(str(stop)):
        wrong.append(f"stop {reading.stop_loss} (message: {stop})")
    if not _is_subsequence(list(reading.take_profits), _decimals(want["take_profits"])):
        wrong.append(f"targets {[str(t) for t in reading.take_profits]} (message: {want['take_profits']})")
    allowed = want.get("leverage")
    if allowed != "any" and reading.leverage is not None and reading.leverage not in (allowed or []):
        wrong.append(f"leverage {reading.leverage} (message: {allowed})")
    return wrong


def evaluate_languages(samples: Sequence[dict[str, Any]], expected: dict[str, list[dict[str, Any]]],
                       read: Reader) -> dict[str, LanguageRow]:
    from parsing.rules.lexicon import guess_language

    rows: dict[str, LanguageRow] = {}
    for sample in samples:
        kind = sample_kind(sample)
        lang = sample.get("lang") or guess_language(sample["text"])
        row = rows.setdefault(lang, LanguageRow())
        readings = read(sample["text"])
        head = sample["text"].split("\n", 1)[0][:50]
        row.messages += 1
        if {r.kind.value for r in readings} == {kind}:
            row.right_kind += 1
        else:
            row.details.append(f"{lang} {kind}: read as {sorted({r.kind.value for r in readings})}: {head!r}")
        trades = [r for r in readings if r.action is Action.TRADE]
        if any(r.kind.value != kind or kind == Kind.NOISE.value for r in trades):
            row.wrong_trades += 1
            row.details.append(f"{lang} {kind}: WRONG: traded as {sorted({r.kind.value for r in trades})}: {head!r}")
            continue
        if kind != Kind.ENTRY.value:
            continue
        wants = _expected_entries(sample, expected)
        row.entries += 1
        row.entries_traded += bool(trades)
        clear = bool(wants) and all(w.get("trade") == "yes" for w in wants)
        row.clear_entries += clear
        if trades and any(w.get("trade") == "no" for w in wants):
            row.wrong_trades += 1
            row.details.append(f"{lang} entry: WRONG: traded although a careful trader would not: {head!r}")
            continue
        entry_readings = [r for r in readings if r.kind is Kind.ENTRY]
        wrong = [w for reading, want in zip(entry_readings, wants, strict=False)
                 if reading.action is Action.TRADE for w in traded_wrong(reading, want)]
        if wrong:
            row.wrong_trades += 1
            row.details.append(f"{lang} entry: WRONG: {'; '.join(wrong)}: {head!r}")
        elif clear and len(trades) == len(wants):
            row.clear_traded_exactly += 1
        elif clear:
            why = "; ".join(w for r in entry_readings for w in r.warnings) or "not traded"
            row.details.append(f"{lang} entry: clear entry not traded ({why}): {head!r}")
    return rows


def language_markdown(rows: dict[str, LanguageRow]) -> str:
    lines = ["| language | messages | right kind | entries | entries traded | clear entries traded exactly "
             "| wrong trades |", "|---|---|---|---|---|---|---|"]
    total = LanguageRow()
    for lang in sorted(rows, key=lambda code: (-rows[code].messages, code)):
        row = rows[lang]
        lines.append(f"| {lang} | {row.messages} | {row.right_kind} | {row.entries} | {row.entries_traded} "
                     f"| {row.clear_traded_exactly} / {row.clear_entries} | {row.wrong_trades} |")
        for name in ("messages", "right_kind", "entries", "entries_traded", "clear_entries", "clear_traded_exactly",
                     "wrong_trades"):
            setattr(total, name, getattr(total, name) + getattr(row, name))
    lines.append(f"| **all** | {total.messages} | {total.right_kind} | {total.entries} | {total.entries_traded} "
                 f"| {total.clear_traded_exactly} / {total.clear_entries} | {total.wrong_trades} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--devset", type=Path, action="append",
                        help="a dev set (repeatable); default: signals-dev.jsonl and signals-dev-2.jsonl")
    parser.add_argument("--conf", help="check coins against this config's exchange, like `following parse --conf`")
    parser.add_argument("--details", action="store_true", help="list every wrong-kind trade and wrong field")
    parser.add_argument("--readme", type=Path, help="write the tables between the devset-report markers of this file")
    args = parser.parse_args(argv)
    devsets: list[Path] = args.devset or [DEFAULT_DEVSET, DEVSET_2]
    missing = [path for path in devsets if not path.exists()]
    if missing:
        print(f"dev set not found: {', '.join(map(str, missing))}", file=sys.stderr)
        return 1
    listed: Collection[str] | None = None
    if args.conf:
        from runtime.config import load_config

        contracts = load_contract_symbols(load_config(args.conf))
        if contracts.note:
            print(f"note: {contracts.note}", file=sys.stderr)
        listed = contracts.symbols
    def read(text: str) -> list[ParsedMessage]:
        return read_text(text, listed)

    if args.readme:
        write_readme(args.readme, report(devsets, read))
        return 0
    print(report(devsets, read))
    if args.details:
        for path in devsets:
            for row in evaluate_languages(load_jsonl(path), load_expected(), read).values():
                for line in row.details:
                    print(f"- {line}")
    return 0


def report(devsets: Sequence[Path], read: Reader) -> str:
    """The Markdown tables of every dev set: by expected kind (when the set labels kinds) and by language."""
    parts: list[str] = []
    for path in devsets:
        samples = load_jsonl(path)
        parts.append(f"#### {path.name} ({len(samples)} messages)")
        if all("kind" in sample for sample in samples):
            parts.append(markdown(evaluate(samples, load_expected(), read)))
        parts.append(language_markdown(evaluate_languages(samples, load_expected(), read)))
    return "\n\n".join(parts)


README_START, README_END = "<!-- devset-report:start -->\n", "<!-- devset-report:end -->"


def readme_report(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return text[text.index(README_START) + len(README_START) : text.index(README_END)].strip()


def write_readme(path: Path, tables: str) -> None:
    text = path.read_text(encoding="utf-8")
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    path.write_text(text[:start] + tables + "\n" + text[end:], encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
