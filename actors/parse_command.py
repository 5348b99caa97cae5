"""``following parse``: read messages as the Parser would, offline; with ``--conf``, check coins on the exchange.

Offline is the default and always works. Given a config, the contract list comes from the configured exchange:
the paper simulator's catalogue when ``dry_run`` is true, else ``bitget.base_url``'s public contracts endpoint.
An exchange that cannot be reached is a note on stderr, never a failure: the readings are then unchecked.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import requests

from actors.config import Config
from exchange.bitget.client import BitgetClient
from exchange.bitget.errors import BitgetError
from parsing.rules import parse_text
from parsing.signals import ParsedMessage
from trading.symbol_check import check_symbols

CONTRACTS_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class ContractList:
    symbols: frozenset[str] | None  # None: the exchange could not be asked
    source: str  # where the list came from (or was asked for)
    note: str | None = None  # why there is no list


def load_contract_symbols(config: Config) -> ContractList:
    if config.dry_run:
        from exchange.sim.catalogue import DEFAULT_CONTRACTS  # what start_paper_exchange trades on

        return ContractList(frozenset(c.symbol for c in DEFAULT_CONTRACTS), "the paper simulator's catalogue")
    url = config.bitget.base_url
    client = BitgetClient(
        url,
        None,  # the contract list is public: no credentials are read
        product_type=config.bitget.product_type,
        margin_coin=config.bitget.margin_coin,
        demo=config.bitget.demo_trading,
        timeout=min(config.bitget.timeout_seconds, CONTRACTS_TIMEOUT_SECONDS),
        max_read_retries=1,
    )
    try:
        contracts = client.contracts()
    except (BitgetError, requests.RequestException, OSError) as exc:
        reason = getattr(exc, "code", None) or type(exc).__name__
        return ContractList(None, url, f"exchange at {url} unreachable ({reason}); symbols not checked, "
                                       "parsing offline")
    return ContractList(frozenset(c.symbol for c in contracts if c.status == "normal"), url)


def only_listed(readings: list[ParsedMessage], listed: Collection[str] | None) -> list[ParsedMessage]:
    """With a contract list, readings on coins it does not hold become notify_only; without one, unchanged."""
    return readings if listed is None else check_symbols(readings, listed)


def read_text(text: str, listed: Collection[str] | None = None) -> list[ParsedMessage]:
    """The readings of one text-only message as `following parse` gives them without a vision model."""
    return only_listed(parse_text(text), listed)
