"""`SharedEventSource` never gives up where a native EventSource does: on
5xx answers, on a 401 (after the page's hook refreshed its cookie), and it
resumes from the last id — in real Chromium, against a real HTTP server
that misbehaves on cue."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ssehub.server import ASSETS

pytestmark = pytest.mark.browser

PAGE = b"""<!doctype html>
<script src="/ssehub.js"></script>
<script>
  window.seen = []; window.errors = []; window.refreshed = 0;
  const source = new SharedEventSource("/events?topic=t", {
    onunauthorized: async () => { window.refreshed += 1; await fetch("/refresh"); },
  });
  source.onmessage = (e) => window.seen.push(e.data + "@" + e.lastEventId);
  source.onerror = (e) => window.errors.push([e.reason, e.status, e.retryIn === undefined]);
  window.source = source;
</script>
"""


class Flaky(ThreadingHTTPServer):
    """Answers /events from a script of outcomes: a status code, or
    "stream" (events after the asked id, then the connection ends)."""

    daemon_threads = True

    def __init__(self, script: list[int | str]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script = script
        self.requests: list[tuple[str | None, str | None]] = []  # (lastEventID, cookie)
        self.events = [f"e{i}" for i in range(1, 7)]


class Handler(BaseHTTPRequestHandler):
    server: Flaky

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/":
            return self._send(200, "text/html", PAGE)
        if url.path == "/ssehub.js":
            return self._send(200, "text/javascript", (ASSETS / "ssehub.js").read_bytes())
        if url.path == "/refresh":
            self.send_response(204)
            self.send_header("Set-Cookie", "session=fresh; Path=/")
            self.end_headers()
            return None
        if url.path != "/events":
            return self._send(404, "text/plain", b"not found\n")
        asked = (
            self.headers.get("Last-Event-ID") or parse_qs(url.query).get("lastEventID", [None])[0]
        )
        cookie = self.headers.get("Cookie")
        self.server.requests.append((asked, cookie))
        outcome = self.server.script.pop(0) if self.server.script else "stream"
        if outcome == 401 and cookie and "session=fresh" in cookie:
            outcome = "stream"  # the hook's fresh cookie is accepted
        if outcome != "stream":
            return self._send(int(outcome), "text/plain", b"no\n")
        events = self.server.events
        start = events.index(asked) + 1 if asked in events else 0
        batch = events[start : start + 2]  # two events per connection, then EOF
        body = "".join(f"id: {e}\ndata: {e}\n\n" for e in batch).encode()
        self._send(200, "text/event-stream", b"retry: 50\n\n" + body)
        return None

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def flaky(request: pytest.FixtureRequest) -> Iterator[Flaky]:
    server = Flaky(list(request.param))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def port_of(server: Flaky) -> int:
    return int(server.server_address[1])


# stream e1,e2 (EOF) -> the browser reconnects: 503, 502 (fatal for a native
# EventSource) -> revived with backoff -> 401 -> hook sets a cookie -> e3,e4
# -> ... every event once, in order, resumed from the last id each time.
@pytest.mark.parametrize("flaky", [["stream", 503, 503, 502, 502, 401, 401]], indirect=True)
def test_reconnects_through_5xx_and_401_and_resumes(
    browser: Any, flaky: Flaky, artifacts: Path
) -> None:
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{port_of(flaky)}/")
        page.wait_for_function("() => window.seen.length >= 6", timeout=30_000)
        seen = page.evaluate("window.seen")
        assert seen == [f"e{i}@e{i}" for i in range(1, 7)]  # once each, in order
        errors = page.evaluate("window.errors")
        statuses = [status for _, status, _ in errors]
        assert 503 in statuses
        assert 502 in statuses
        assert 401 in statuses
        assert all(reason in ("http", "network") for reason, _, _ in errors)
        assert not any(final for _, _, final in errors if _ != 0)  # it never gave up
        assert page.evaluate("window.refreshed") >= 1
        # every reconnection after the first stream resumed from the last id
        asked = [a for a, _ in flaky.requests[1:]]
        assert None not in asked
        assert page.evaluate("window.source.readyState") in (0, 1)
    finally:
        page.close()


@pytest.mark.parametrize("flaky", [[404, 404]], indirect=True)
def test_gives_up_on_a_client_error_with_the_reason(browser: Any, flaky: Flaky) -> None:
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{port_of(flaky)}/")
        page.wait_for_function("() => window.errors.length >= 1", timeout=10_000)
        page.wait_for_timeout(300)
        assert page.evaluate("window.errors") == [["http", 404, True]]
        assert page.evaluate("window.source.readyState") == 2  # CLOSED, no retry loop
        assert len(flaky.requests) == 1  # fetch() reads the status: no second request
    finally:
        page.close()
