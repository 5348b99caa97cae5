"""A loopback OpenAI-compatible chat completions server standing in for a vision model.

For the offline demo and the tests: ``POST /v1/chat/completions`` answers with a JSON reading (the
``default_answer``, or a ``responder`` computed from the request) unless a scripted behaviour is queued:
an answer, a raw text (e.g. malformed JSON), an HTTP status (429 with ``Retry-After``, 5xx) or a delay
longer than the client's timeout. The bearer key is checked when one is set; every request is recorded
(without its Authorization header) for assertions.

Standalone: ``python -m parsing.vlm.local_server --port 8091 --api-key demo --answer answer.json``; then
point ``vlm.base_url`` at ``http://127.0.0.1:8091/v1``.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

Responder = Callable[[dict[str, Any]], dict[str, Any]]

NOISE_ANSWER: dict[str, Any] = {
    "kind": "noise", "symbol": None, "side": None, "entries": [], "market_entry": False, "stop_loss": None,
    "take_profits": [], "leverage": None, "evidence": {}, "source": "text", "image_text": "",
    "uncertain_fields": [], "extraction_warnings": [], "safety": {"status": "ok", "reason": ""},
    "confidence": 0.9,
}


@dataclass(frozen=True)
class Behaviour:
    """One scripted reply: ``answer`` (a dict sent as JSON content), ``text`` (raw content), ``status``
    (an HTTP error, with ``retry_after``) and/or ``delay`` seconds before replying."""

    answer: dict[str, Any] | None = None
    text: str | None = None
    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    authorized: bool
    body: dict[str, Any] | None

    def image_urls(self) -> list[str]:
        """The image data URLs the request carried."""
        urls: list[str] = []
        for message in (self.body or {}).get("messages", []):
            content = message.get("content")
            if isinstance(content, list):
                urls.extend(part["image_url"]["url"] for part in content if part.get("type") == "image_url")
        return urls


class LocalVlmServer:
    """Thread-safe; binds in the constructor (port 0 picks a free port)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, api_key: str | None = None,
                 default_answer: dict[str, Any] | None = None, responder: Responder | None = None) -> None:
        self.api_key = api_key
        self.default_answer = dict(default_answer or NOISE_ANSWER)
        self.responder = responder
        self._lock = threading.Lock()
        self._queue: list[Behaviour] = []
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        bound_host, bound_port = self._httpd.server_address[:2]
        self.host, self.port = str(bound_host), int(bound_port)
        self.base_url = f"http://{self.host}:{self.port}/v1"

    # --- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> tuple[str, int]:
        if self._thread is None:
            # a short poll interval makes stop() quick
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="local-vlm", daemon=True)
            self._thread.start()
        return self.host, self.port

    def stop(self) -> None:
        self._stopping.set()  # releases delayed replies at once
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> LocalVlmServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- script ------------------------------------------------------------------------------------------
    def queue(self, *behaviours: Behaviour) -> None:
        with self._lock:
            self._queue.extend(behaviours)

    def queue_answer(self, answer: dict[str, Any]) -> None:
        self.queue(Behaviour(answer=answer))

    def queue_text(self, text: str) -> None:
        self.queue(Behaviour(text=text))

    def queue_status(self, status: int, *, retry_after: float | None = None, times: int = 1) -> None:
        self.queue(*[Behaviour(status=status, retry_after=retry_after)] * times)

    def queue_delay(self, seconds: float, answer: dict[str, Any] | None = None) -> None:
        self.queue(Behaviour(answer=answer, delay=seconds))

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    # --- HTTP --------------------------------------------------------------------------------------------
    def _reply(self, body: dict[str, Any]) -> Behaviour:
        with self._lock:
            behaviour = self._queue.pop(0) if self._queue else Behaviour()
        if behaviour.answer is None and behaviour.text is None and behaviour.status is None:
            answer = self.responder(body) if self.responder is not None else self.default_answer
            behaviour = Behaviour(answer=answer, delay=behaviour.delay)
        return behaviour

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                log.debug("local vlm: " + format, *args)

            def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
                           ) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout): nothing to answer

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = None
                authorized = server.api_key is None or self.headers.get("Authorization") == f"Bearer {server.api_key}"
                with server._lock:
                    server._requests.append(RecordedRequest(self.path, authorized, body))
                if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                    self._send_json(404, {"error": {"message": "not found"}})
                    return
                if not authorized:
                    self._send_json(401, {"error": {"message": "invalid API key", "type": "authentication_error"}})
                    return
                if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                    self._send_json(400, {"error": {"message": "messages required"}})
                    return
                behaviour = server._reply(body)
                if behaviour.delay and server._stopping.wait(behaviour.delay):
                    return
                if behaviour.status is not None:
                    headers = {} if behaviour.retry_after is None else {"Retry-After": f"{behaviour.retry_after:g}"}
                    self._send_json(behaviour.status, {"error": {"message": f"error {behaviour.status}"}}, headers)
                    return
                content = behaviour.text if behaviour.text is not None else json.dumps(behaviour.answer)
                self._send_json(200, {
                    "id": f"chatcmpl-local-{len(server.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": str(body.get("model", "local")),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                })

        return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m parsing.vlm.local_server",
        description="A loopback OpenAI-compatible chat completions server standing in for a vision model; point "
                    "vlm.base_url at http://HOST:PORT/v1.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8091, help="port, 0 for any free one (default: 8091)")
    parser.add_argument("--api-key", default=None, help="bearer key to require (default: none)")
    parser.add_argument("--answer", help="JSON file with the answer to give to every request (default: a reading of "
                                         "no signal)")
    args = parser.parse_args(argv)
    answer = None
    if args.answer:
        with open(args.answer, encoding="utf-8") as handle:
            answer = json.load(handle)
    server = LocalVlmServer(host=args.host, port=args.port, api_key=args.api_key, default_answer=answer)
    host, port = server.start()
    print(f"local VLM server on http://{host}:{port}/v1 (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
