"""The README's metric list is exactly what /metrics exports (no `_created` series); outcome metrics count."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from ops.metrics import Metrics

README = Path(__file__).resolve().parent.parent / "README.md"


def exported_families(metrics: Metrics) -> set[str]:
    text = metrics.render().decode()
    return set(re.findall(r"^# TYPE (\S+) \S+$", text, re.MULTILINE))


def readme_metrics() -> set[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("- **Metrics**"):text.index("- **Journal**")]
    return set(re.findall(r"`((?:following|process|python)_[a-z_]+)", section))


def test_readme_lists_exactly_the_exported_metrics() -> None:
    exported = exported_families(Metrics())
    listed = readme_metrics()
    assert listed == exported, {"listed, not exported": sorted(listed - exported),
                                "exported, not listed": sorted(exported - listed)}


def test_no_created_series_and_build_and_process_metrics_present() -> None:
    metrics = Metrics()
    metrics.post_seen()
    text = metrics.render().decode()
    assert "_created" not in text
    assert re.search(r'^following_build_info\{python="[^"]+",version="[^"]+"\} 1\.0$', text, re.MULTILINE)
    assert metrics.registry.get_sample_value("process_start_time_seconds") is not None
    assert metrics.registry.get_sample_value("process_resident_memory_bytes")


def test_outcome_metrics() -> None:
    metrics = Metrics()
    metrics.fill("alpha", "entry1")
    metrics.fill("alpha", "tp2")
    metrics.fill("alpha", "sl")
    metrics.fill("alpha", "stop")
    metrics.trade_closed("alpha", "break_even_stop")
    metrics.set_outcome_totals("alpha", Decimal("-1.5"), Decimal("0.25"))
    metrics.entry_accepted("alpha", 1.2)
    get = metrics.registry.get_sample_value
    assert get("following_fills_total", {"channel": "alpha", "leg": "entry"}) == 1
    assert get("following_fills_total", {"channel": "alpha", "leg": "tp"}) == 1
    assert get("following_fills_total", {"channel": "alpha", "leg": "stop"}) == 2
    assert get("following_closes_total", {"channel": "alpha", "cause": "break_even_stop"}) == 1
    assert get("following_realized_pnl_usdt", {"channel": "alpha"}) == -1.5
    assert get("following_fees_usdt", {"channel": "alpha"}) == 0.25
    assert get("following_entry_latency_seconds_count", {"channel": "alpha"}) == 1
