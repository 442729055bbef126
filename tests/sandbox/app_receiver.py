"""A tiny stand-in for the app's web server, for tests of the fake Bitrix24's app side.

It records every request the sandbox sends it (path, query, form fields), answers with a status
chosen per path, and can run a callback before answering — e.g. call event.bind with the AUTH_ID
of the install POST, as a real installer page does while Bitrix24 waits for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    content_type: str
    at: float


class AppReceiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.status: dict[str, int] = {}  # path -> HTTP status to answer (default 200)
        self.delay: dict[str, float] = {}  # path -> seconds to wait before answering
        self.on_post: dict[str, Callable[[Received], None]] = {}
        self.errors: list[BaseException] = []  # exceptions raised by on_post callbacks
        self._cond = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def received(self, path: str) -> list[Received]:
        with self._cond:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len([r for r in self.requests if r.path == path]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return [r for r in self.requests if r.path == path]

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                got = Received(
                    method="POST",
                    path=parts.path,
                    query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    form=dict(parse_qsl(body, keep_blank_values=True)),
                    content_type=self.headers.get("Content-Type", ""),
                    at=time.time(),
                )
                callback = receiver.on_post.get(parts.path)
                if callback is not None:
                    try:
                        callback(got)
                    except BaseException as exc:  # surfaced to the test through .errors
                        receiver.errors.append(exc)
                time.sleep(receiver.delay.get(parts.path, 0))
                with receiver._cond:
                    receiver.requests.append(got)
                    receiver._cond.notify_all()
                status = receiver.status.get(parts.path, 200)
                payload = b"<html><body>app page</body></html>"
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the sandbox gave up waiting (timeout tests)

            def log_message(self, *args) -> None:
                pass

        return Handler

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def running_receiver() -> Iterator[AppReceiver]:
    receiver = AppReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
