"""The shipped Grafana dashboard and Prometheus alert rules use only metrics the bot exports (read from a served
/metrics), the rules cover what an operator must hear about, readiness reaches the metrics, and logs can be JSON
lines in a rotating file without secrets."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import requests
import yaml

from ops.health import HealthServer
from ops.metrics import Metrics
from runtime.wiring import READY_CHECKS, configure_logging

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "observability"
SYNTHETIC = {"up"}  # made by Prometheus itself, not by the bot
NAME = re.compile(r"\b((?:following|process|python)_[a-z0-9_]+|up)\b")


def served_metric_names() -> tuple[set[str], str]:
    metrics = Metrics()
    metrics.before_render(lambda: metrics.set_readiness(False, {name: True for name in READY_CHECKS}))
    with HealthServer(metrics, port=0, liveness=lambda: (True, {}), readiness=lambda: (True, {})) as health:
        address = health.address
        assert address is not None
        text = requests.get("http://{}:{}/metrics".format(*address), timeout=5).text
    names: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names, text


def rule_list() -> list[dict[str, Any]]:
    data = yaml.safe_load((DEPLOY / "prometheus-rules.yaml").read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    data = json.loads((DEPLOY / "grafana-dashboard.json").read_text(encoding="utf-8"))
    return [target["expr"] for panel in data["panels"] for target in panel.get("targets", [])]


def test_every_metric_in_the_dashboard_and_the_rules_is_exported() -> None:
    exported, _ = served_metric_names()
    used: dict[str, str] = {}
    for expr in [rule["expr"] for rule in rule_list()] + dashboard_exprs():
        for name in NAME.findall(expr):
            used.setdefault(name, expr)
    missing = {name: expr for name, expr in used.items() if name not in exported and name not in SYNTHETIC}
    assert not missing, missing
    assert len(used) >= 20


def test_rules_cover_what_an_operator_must_hear_about() -> None:
    rules = rule_list()
    for rule in rules:
        assert rule["alert"] and rule["expr"] and rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
    text = "\n".join(rule["expr"] for rule in rules)
    for needle in ('following_trading_mode{mode!="normal"}', "following_ready ==", 'check="positions_protected"',
                   'following_price_feed_state{state="stale"}', 'result="rate_limited"', "following_drawdown_breaker",
                   "following_last_post_seen_timestamp_seconds", "following_actor_restarts_total",
                   "following_unread_posts_total", 'cause=~"protective'):
        assert needle in text, needle
    assert "positions_protected" in READY_CHECKS


def test_readiness_is_published_on_every_scrape() -> None:
    _, text = served_metric_names()
    assert "following_ready 0.0" in text
    assert 'following_ready_check{check="positions_protected"} 1.0' in text
    assert "_created" not in text


def test_json_log_lines_in_a_rotating_file_without_secrets(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved = list(root.handlers), [list(h.filters) for h in root.handlers], root.level
    log_file = tmp_path / "logs" / "following.log"
    try:
        configure_logging("INFO", ["sup3r-secret-value"], fmt="json", file=str(log_file), max_bytes=2048,
                          backup_count=2)
        log = logging.getLogger("following.test")
        for n in range(40):
            log.info("line %d with sup3r-secret-value inside", n)
        try:
            raise ValueError("boom sup3r-secret-value")
        except ValueError:
            log.exception("failed")
        for handler in root.handlers:
            handler.flush()
        lines = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
        assert lines and {"ts", "level", "logger", "message"} <= set(lines[0])
        assert lines[-1]["level"] == "ERROR" and "ValueError" in lines[-1]["exc"]
        everything = "".join(p.read_text(encoding="utf-8") for p in log_file.parent.iterdir())
        assert "sup3r-secret-value" not in everything
        assert sorted(p.name for p in log_file.parent.iterdir()) == ["following.log", "following.log.1",
                                                                     "following.log.2"]
    finally:
        for handler in list(root.handlers):
            if handler not in saved[0]:
                root.removeHandler(handler)
                handler.close()
        for handler, filters in zip(saved[0], saved[1], strict=True):
            handler.filters = filters
            if getattr(handler, "_following", False):
                handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        root.setLevel(saved[2])
