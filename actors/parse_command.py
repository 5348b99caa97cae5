"""``following parse``: read messages as the Parser would, offline; with ``--conf``, check coins on the exchange.

Offline is the default and always works. Given a config, the contract list comes from the configured exchange:
when ``dry_run`` is true the list a paper run trades on (Bitget's live list with ``paper.live_prices``, else the
simulator's catalogue), else ``bitget.base_url``'s public contracts endpoint.
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
        return paper_contract_symbols(config)
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


def paper_contract_symbols(config: Config) -> ContractList:
    """The contracts a paper run trades on (``start_paper_exchange``): Bitget's live list when ``paper.live_prices``
    and it can be read, else the simulator's built-in catalogue (with a note saying so)."""
    from exchange.sim.catalogue import DEFAULT_CONTRACTS
    from exchange.sim.live_prices import LiveMarketUnavailable, fetch_live_market

    catalogue = frozenset(c.symbol for c in DEFAULT_CONTRACTS)
    paper = config.paper
    if not paper.live_prices:
        return ContractList(catalogue, "the paper simulator's catalogue")
    try:
        market = fetch_live_market(paper.live_prices_url, product_type=config.bitget.product_type,
                                   timeout_s=paper.live_prices_timeout_seconds)
    except LiveMarketUnavailable as exc:
        return ContractList(catalogue, "the paper simulator's catalogue",
                            f"Bitget's live market at {paper.live_prices_url} cannot be read ({exc.reason}); "
                            f"checking against the simulator's {len(catalogue)} built-in contracts, as a paper "
                            "run would use now")
    return ContractList(frozenset(c.symbol for c in market.contracts), paper.live_prices_url)


def only_listed(readings: list[ParsedMessage], listed: Collection[str] | None) -> list[ParsedMessage]:
    """With a contract list, readings on coins it does not hold become notify_only; without one, unchanged."""
    return readings if listed is None else check_symbols(readings, listed)


def read_text(text: str, listed: Collection[str] | None = None) -> list[ParsedMessage]:
    """The readings of one text-only message as `following parse` gives them without a vision model."""
    return only_listed(parse_text(text), listed)
