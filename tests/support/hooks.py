"""The app's side of the hooks, for tests against real processes: a small
real HTTP server standing for the app's authorization endpoint or webhook
receiver, a hub front end configured by `SSEHUB_*`, and /metrics readings."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tests.support.frontends import Frontend
from tests.support.helpers import free_port

Answer = Callable[[dict[str, Any]], tuple[int, bytes, float]]
"""The app's answer to a JSON request: status, body, seconds to wait first."""


def allow(**fields: Any) -> tuple[int, bytes, float]:
    return 200, json.dumps({"allow": True, **fields}).encode(), 0.0


class App:
    """A small real HTTP server standing for the app: it records every
    request in `requests` (path, lower-case headers, body) and its headers
    as sent in `raw_headers` (lower-case names, bytes), and answers with
    `answer`."""

    def __init__(self, answer: Answer, port: int = 0) -> None:
        self.answer = answer
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.raw_headers: list[list[tuple[bytes, bytes]]] = []
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                app.raw_headers.append(
                    [
                        (k.lower().encode("latin-1"), v.encode("latin-1"))
                        for k, v in self.headers.raw_items()
                    ]
                )
                app.requests.append((self.path, headers, body))
                status, payload, delay = app.answer(json.loads(body))
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, _, body in list(self.requests)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@contextlib.contextmanager
def app(answer: Answer = lambda _: allow(), port: int = 0) -> Iterator[App]:
    server = App(answer, port)
    try:
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def hub(kind: str, env: dict[str, str]) -> Iterator[Frontend]:
    """A hub front end configured by `SSEHUB_*` variables (anonymous
    publishing off unless given), stopped after."""
    frontend = Frontend(kind, {"SSEHUB_ANONYMOUS_PUBLISH": "0", **env}, free_port())
    try:
        yield frontend
    finally:
        frontend.stop()


def metric(base: str, name: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, flags=re.MULTILINE)
    assert found is not None, f"{name} not in /metrics:\n{text}"
    return float(found.group(1))


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
