"""A loopback stand-in of the Telegram Bot API: getUpdates (long poll, bounded) and sendMessage, one token."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


class FakeBotApi:
    def __init__(self, token: str) -> None:
        self.token = token
        self.sent: list[dict[str, Any]] = []
        self.polls = 0
        self._updates: list[dict[str, Any]] = []
        self._next_id = 1000
        self._cond = threading.Condition()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        host, port = self._httpd.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self) -> FakeBotApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._cond.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()

    def say(self, chat_id: int | str, text: str) -> None:
        """A user writes ``text`` in chat ``chat_id``."""
        with self._cond:
            self._next_id += 1
            self._updates.append({"update_id": self._next_id, "message": {
                "message_id": self._next_id, "date": 0, "chat": {"id": int(chat_id), "type": "private"},
                "from": {"id": int(chat_id), "is_bot": False, "first_name": "u"}, "text": text}})
            self._cond.notify_all()

    def replies(self, chat_id: int | str) -> list[str]:
        with self._cond:
            return [m["text"] for m in self.sent if str(m.get("chat_id")) == str(chat_id)
                    and not str(m.get("text", "")).startswith("[")]  # "[KIND] ..." are notices, not replies

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _method(self) -> str | None:
                parts = urlparse(self.path).path.strip("/").split("/")
                if len(parts) != 2 or parts[0] != f"bot{api.token}":
                    self._reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
                    return None
                return parts[1]

            def do_GET(self) -> None:
                if self._method() != "getUpdates":
                    return
                query = parse_qs(urlparse(self.path).query)
                offset = int(query.get("offset", ["0"])[0])
                timeout = min(float(query.get("timeout", ["0"])[0]), 2.0)
                with api._cond:
                    api.polls += 1
                    api._cond.wait_for(lambda: any(u["update_id"] >= offset for u in api._updates), timeout)
                    result = [u for u in api._updates if u["update_id"] >= offset]
                self._reply(200, {"ok": True, "result": result})

            def do_POST(self) -> None:
                method = self._method()
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                if method != "sendMessage":
                    if method is not None:
                        self._reply(404, {"ok": False, "description": "Not Found"})
                    return
                with api._cond:
                    api.sent.append(body)
                    api._cond.notify_all()
                self._reply(200, {"ok": True, "result": {"message_id": 1}})

        return Handler
