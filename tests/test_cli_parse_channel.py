"""`following parse` for people and scripts: each line says which input it reads, noise and notify_only say why,
and a channel's recent posts are read and summarized ("how will it read my channel?")."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from cli.main import main
from parsing.channel_server import ChannelServer

BTC = "#BTC/USDT LONG\nEntry: 65000\nStop: 64000\nTarget 1: 66000"
ETH_NO_STOP = "#ETH/USDT SHORT\nEntry: 3200\nTarget 1: 3100"


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, Any]], str]:
    code = main(["parse", *args])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


# --- messages -------------------------------------------------------------------------------------------------
def test_jsonl_lines_carry_their_input_line_message_id_and_reason(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "messages.jsonl"
    path.write_text("\n".join([
        json.dumps({"text": BTC, "message_id": 101}),
        "",
        json.dumps({"text": "Good morning everyone ☕"}),
        json.dumps({"text": ETH_NO_STOP, "message_id": "eth-1"}),
    ]) + "\n", encoding="utf-8")
    code, lines, err = _run(["--jsonl", str(path)], capsys)
    assert code == 0 and err == ""
    btc, hello, eth = lines
    assert (btc["input"], btc["message_id"], btc["action"]) == (1, 101, "trade") and "reason" not in btc
    assert (hello["input"], hello["kind"]) == (3, "noise") and "message_id" not in hello
    assert hello["reason"].startswith("no signal")
    assert (eth["input"], eth["message_id"], eth["action"]) == (4, "eth-1", "notify_only")
    assert "no stop loss" in eth["reason"]


def test_stdin_is_input_1(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _stdin(monkeypatch, BTC.encode())
    code, [line], _ = _run([], capsys)
    assert code == 0 and line["input"] == 1 and line["symbol"] == "BTCUSDT"


@pytest.mark.parametrize("data", [b"", b"  \n\t\n"])
def test_empty_stdin_is_an_error(data: bytes, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    _stdin(monkeypatch, data)
    code, lines, err = _run([], capsys)
    assert code == 1 and lines == [] and "empty input" in err


def test_binary_stdin_gives_a_reading(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _stdin(monkeypatch, b"\xff\xfe\x00\x01#BTC\x00\xc3")
    code, [line], _ = _run([], capsys)
    assert code == 0 and line["kind"] == "noise" and line["reason"]


@pytest.mark.parametrize(("content", "problem"), [("", "empty input"), ("\n \n", "empty input"),
                                                  ('{"text": "a"}\n[1, 2]\n', "messages.jsonl:2: not a JSON object"),
                                                  ('"just a string"\n', "messages.jsonl:1: not a JSON object")])
def test_bad_jsonl_is_an_error_naming_the_line(content: str, problem: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "messages.jsonl"
    path.write_text(content, encoding="utf-8")
    code, lines, err = _run(["--jsonl", str(path)], capsys)
    assert code == 1 and lines == [] and problem in err


# --- a channel ------------------------------------------------------------------------------------------------
@pytest.fixture
def channel() -> Iterator[ChannelServer]:
    server = ChannelServer("mysignals", page_size=10)
    for number in range(8):
        server.add_post(f"Old chatter number {number} 🙂")
    btc = server.add_post(BTC)
    server.add_post(ETH_NO_STOP)
    server.add_post("😬 hmm, careful with this one", reply_to=btc)
    server.add_post("TP1 hit ✅", reply_to=btc)
    server.add_post("#SOL TP2 hit ✅")
    server.add_post("#ETH cancelled")
    server.add_post("BTC looks shaky here 🤔")
    server.add_post("Close all #BTC")
    server.add_post("Good night!")
    arb = server.add_post("#ARB LONG\nEntry 0.8000\nSL 0.7600\nTP1 0.8400\nTP2 0.8800")
    server.add_post("dời SL lên TP1", reply_to=arb)  # read with the signal's targets: the stop goes to 0.8400
    with server:
        yield server


def test_channel_url_reads_recent_posts_and_summarizes(channel: ChannelServer,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{channel.base_url}/s/mysignals"
    code, lines, err = _run(["--url", url, "--pages", "2"], capsys)
    assert code == 0
    *readings, last = lines
    summary = last["summary"]
    assert summary["posts"] == 19
    assert summary["entries"] == {"tradable": 2, "notify_only": 1, "notify_only_reasons": {"no stop loss": 1}}
    assert summary["updates"] == {"linked": 2, "unlinked": 1, "notify_only": 0}
    assert summary["closes"] == {"linked": 1, "unlinked": 0, "notify_only": 0}
    assert summary["cancels"] == {"linked": 0, "unlinked": 1, "notify_only": 0}
    assert summary["unread"] == {"replies": 1, "mentions": 1}
    assert summary["noise"] == 8 + 3
    by_id = {line["message_id"]: line for line in readings}
    assert [line["input"] for line in readings] == list(range(1, 20))
    assert by_id[19]["linked_to"] == 18 and by_id[19]["update_type"] == "set_stop"
    assert by_id[19]["update_price"] == "0.8400"
    assert by_id[12]["linked_to"] == 9 and by_id[12]["link_reason"].startswith("reply to post 9")
    assert "no open signal on SOLUSDT" in by_id[13]["unlinked"]
    assert by_id[11]["unread"] == "read as noise" and by_id[11]["link"].endswith("/mysignals/11")
    assert by_id[16]["linked_to"] == 9
    assert "entries: 2 tradable, 1 notify_only" in err and "unread" in err


def test_one_page_reads_only_the_newest_posts(channel: ChannelServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = _run(["--url", f"{channel.base_url}/s/mysignals"], capsys)
    assert code == 0 and lines[-1]["summary"]["posts"] == 10 and lines[0]["message_id"] == 10


def test_saved_page_reads_like_the_url(channel: ChannelServer, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "page.html"
    page.write_text(requests.get(f"{channel.base_url}/s/mysignals", timeout=10).text, encoding="utf-8")
    code, lines, _ = _run(["--html", str(page)], capsys)
    from_url = _run(["--url", f"{channel.base_url}/s/mysignals"], capsys)[1]
    assert code == 0 and lines == from_url


@pytest.mark.parametrize("args", [["--url", "https://t.me/mysignals"], ["--url", "http://127.0.0.1:9/s/x", "--pages",
                                                                        "0"]])
def test_bad_channel_arguments_are_errors(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = _run(args, capsys)
    assert code == 1 and lines == [] and err


def test_a_real_saved_t_me_page(capsys: pytest.CaptureFixture[str]) -> None:
    page = Path(__file__).parent / "fixtures" / "tme" / "signal_channel.html"
    code, lines, err = _run(["--html", str(page)], capsys)
    summary = lines[-1]["summary"]
    assert code == 0 and summary["posts"] == len({line["message_id"] for line in lines[:-1]})
    assert summary["entries"]["tradable"] >= 1 and summary["updates"]["linked"] >= 1
    # a picture the rules cannot read is not noise: it is told, and counted with its reason
    assert summary["not_read"]["reasons"].get("post has an image the rules cannot read") == 1
    assert err.startswith(f"{summary['channel']}: {summary['posts']} posts read")


def test_output_cut_short_by_its_reader_is_no_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps({"text": BTC, "message_id": n}) + "\n" for n in range(3000)), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "parse", "--jsonl", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=Path(__file__).parent.parent)
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["input"] == 1
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err
