"""One refusal helper: the SIGNAL_REFUSED event and one counter series per reason, however it is spelled."""

from __future__ import annotations

from pathlib import Path

from ops.metrics import Metrics
from trading.journal import Journal
from trading.refusals import record_refusal


def test_a_refusal_is_journaled_and_counted_under_one_spelling(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path / "journal.sqlite"))
    metrics = Metrics()
    try:
        record_refusal(journal, metrics, signal_id=1, message_id=10, reason="SYMBOL_UNKNOWN", detail="no contract")
        record_refusal(journal, metrics, signal_id=2, reason="symbol_unknown", detail="no contract", age_s=3.5)
        first, second = journal.events("SIGNAL_REFUSED")
        assert first.detail == {"signal_id": 1, "message_id": 10, "reason": "SYMBOL_UNKNOWN", "detail": "no contract"}
        assert second.detail == {"signal_id": 2, "reason": "symbol_unknown", "detail": "no contract", "age_s": 3.5}
        value = metrics.registry.get_sample_value("following_refusals_total", {"reason": "symbol_unknown"})
        assert value == 2.0
    finally:
        journal.close()
