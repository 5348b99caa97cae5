"""Readings against the exchange's contract list: a coin the exchange does not list is never traded."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace

from parsing.signals import Action, ParsedMessage


def check_symbols(readings: Sequence[ParsedMessage], listed: Collection[str]) -> list[ParsedMessage]:
    """Each reading naming a symbol outside ``listed`` becomes notify_only, with a warning saying so."""
    checked: list[ParsedMessage] = []
    for reading in readings:
        if reading.symbol is None or reading.symbol in listed:
            checked.append(reading)
            continue
        warning = f"{reading.symbol} is not a tradable contract on the exchange"
        action = Action.IGNORE if reading.action is Action.IGNORE else Action.NOTIFY_ONLY
        checked.append(replace(reading, action=action, warnings=(*reading.warnings, warning)))
    return checked
