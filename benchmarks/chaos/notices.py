"""The user's side of the bot's notices: a loopback webhook (``notify.webhook``) that keeps every notice."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Notice:
    at: float
    kind: str
    text: str


class NoticeCollector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._notices: list[Notice] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                if isinstance(body, dict):
                    collector._add(str(body.get("kind", "")), str(body.get("text", "")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{port}/notify"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="chaos-notices", daemon=True)

    def start(self) -> str:
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _add(self, kind: str, text: str) -> None:
        with self._lock:
            self._notices.append(Notice(time.time(), kind, text))

    def notices(self) -> list[Notice]:
        with self._lock:
            return list(self._notices)
