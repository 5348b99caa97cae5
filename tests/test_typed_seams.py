"""The actors' seams stay typed: no constructor parameter of an actor is ``Any`` or a catch-all ``**kwargs``
(what an actor needs is a Protocol in ``actors/ports.py``, one of the project's classes, or a settings object)."""

from __future__ import annotations

import inspect
import re

import pytest

from actors.listener import Listener
from actors.order_manager import OrderManager
from actors.outcomes import OutcomeTracker
from actors.parser import Parser
from actors.position_guard import PositionGuard
from actors.price_feed import PriceFeed
from actors.risk_gate import RiskGate
from actors.supervisor import Supervisor

ACTORS = (Listener, Parser, RiskGate, OrderManager, PositionGuard, PriceFeed, OutcomeTracker, Supervisor)


@pytest.mark.parametrize("actor", ACTORS, ids=lambda actor: actor.__name__)
def test_no_actor_constructor_parameter_is_typed_any(actor: type) -> None:
    untyped = []
    for name, parameter in inspect.signature(actor.__init__).parameters.items():
        if name == "self":
            continue
        annotation = parameter.annotation
        text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
        if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            untyped.append(f"{'**' if parameter.kind is parameter.VAR_KEYWORD else '*'}{name}")
        elif annotation is inspect.Parameter.empty or re.search(r"\bAny\b", text):
            untyped.append(f"{name}: {text}")
    assert not untyped, f"{actor.__name__}.__init__ has untyped parameters: {untyped}"
