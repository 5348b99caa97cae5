"""conf/example.yaml documents every option: each key of runtime/config.py is in it, set or as a commented line
(an unknown key in it is already an error: test_cli_check_config loads it)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from runtime.config import Config

EXAMPLE = Path(__file__).resolve().parents[1] / "conf" / "example.yaml"


def _config_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= _config_keys(annotation, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def _yaml_keys(data: dict[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, value in data.items():
        if isinstance(value, dict) and value:
            keys |= _yaml_keys(value, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def test_every_config_key_is_in_the_example() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    missing = _config_keys(Config) - _yaml_keys(yaml.safe_load(text))
    commented = {key for key in missing
                 if re.search(rf"^\s*#\s*{re.escape(key.rsplit('.', 1)[-1])}:", text, flags=re.MULTILINE)}
    assert missing - commented == set(), "add these options to conf/example.yaml (with a comment)"
