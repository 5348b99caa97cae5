"""The whole runtime with the vision model on: an image-only post is traded only as far as its evidence goes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from parsing.vlm.local_server import LocalVlmServer
from tests.e2e import System, running_system
from tests.vlm_helpers import PNG_1PX, image_answer
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

KEY = "e2e-vlm-key"


def post_image(system: System, tmp_path: Path, name: str, text: str = "") -> int:
    """Publish an image post whose image is already stored in the journal (as media download does)."""
    journal = system.runtime.journal
    assert journal is not None
    url = system.channel.add_image(name, PNG_1PX)
    path = tmp_path / name
    path.write_bytes(PNG_1PX)
    journal.record_media(url, hashlib.sha256(PNG_1PX + name.encode()).hexdigest(), str(path), len(PNG_1PX),
                         "image/png")
    return system.channel.add_post(text, image_urls=[url])


def chart_answer(system: System) -> dict[str, Any]:
    entry, stop = system.price("SOLUSDT"), system.price("SOLUSDT", "0.99")
    tp1, tp2 = system.price("SOLUSDT", "1.01"), system.price("SOLUSDT", "1.02")
    image_text = f"SOL/USDT LONG\nEntry: {entry}\nSL: {stop}\nTP1: {tp1}\nTP2: {tp2}"
    return image_answer(
        image_text=image_text, entries=[str(entry)], stop_loss=str(stop), take_profits=[str(tp1), str(tp2)],
        evidence={
            "symbol": {"quote": "SOL/USDT", "source": "image"},
            "side": {"quote": "SOL/USDT LONG", "source": "image"},
            "entries": {"quote": f"Entry: {entry}", "source": "image"},
            "stop_loss": {"quote": f"SL: {stop}", "source": "image"},
            "take_profits": {"quote": f"TP1: {tp1}\nTP2: {tp2}", "source": "image"},
        },
    )


def test_image_post_is_traded_as_its_evidence_allows(tmp_path: Path) -> None:
    with LocalVlmServer(api_key=KEY) as vlm, running_system(
        tmp_path, {"NIM_API_KEY": KEY},
        vlm={"enabled": True, "provider": "kimi", "model": "local", "base_url": vlm.base_url,
             "timeout_seconds": 5, "max_retries": 0},
    ) as system:
        journal = system.runtime.journal
        assert journal is not None
        # 1. The model claims a stop it cannot quote: nothing is traded, the user is told.
        unproven = chart_answer(system)
        del unproven["evidence"]["stop_loss"]
        vlm.queue_answer(unproven)
        first = post_image(system, tmp_path, "chart1.png", "👇")
        notice = wait_until(lambda: [e for e in journal.events("NOTIFY_ONLY") if e.detail["message_id"] == first],
                            what="a notice for the unproven image post")
        assert "stop_loss dropped: no evidence quoted" in notice[0].detail["why"]
        assert system.entry_orders("SOLUSDT") == []

        # 2. Every field quoted from the image: one entry, with its stop attached.
        vlm.queue_answer(chart_answer(system))
        post_image(system, tmp_path, "chart2.png")
        entries = wait_until(lambda: system.entry_orders("SOLUSDT"), what="the entry read from the image")
        assert len(entries) == 1
        assert entries[0].preset_stop_loss is not None and entries[0].preset_stop_loss < system.price("SOLUSDT")

        requests_sent = vlm.requests
        assert len(requests_sent) == 2 and all(r.authorized for r in requests_sent)
        assert requests_sent[0].image_urls()[0].startswith("data:image/png;base64,")
        metrics = system.runtime.metrics.render().decode()
        assert "following_vlm_request_seconds_count 2.0" in metrics
        assert KEY not in metrics and KEY not in json.dumps([e.detail for e in journal.events()])
