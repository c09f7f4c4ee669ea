"""The client twins and real Chromium on the same byte streams: what each
sends back on reconnection, and where (issue 11 items 17-19). The scripted
server records every request's `Last-Event-ID` line byte for byte."""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.sources import KINDS, collect
from tests.support.sse_test_server import ODD_IDS, SSETestServer

pytestmark = pytest.mark.browser


def chromium_reads(
    browser: Any, server: SSETestServer, src: str, requests: int, path: str | None = None
) -> None:
    """Open `src` in Chromium's EventSource until the server saw `requests`
    requests for `path` (that of `src` by default)."""
    path = path or src.split("?")[0]
    page = browser.new_page()
    try:
        page.goto(f"{server.url}/page?src={quote(src)}")
        deadline = time.monotonic() + 15
        while len(server.seen_at(path)) < requests:
            assert time.monotonic() < deadline, f"Chromium did not come back to {path}"
            time.sleep(0.05)
    finally:
        page.close()


def ours(kind: str, url: str) -> None:
    """Read `url` with a twin in a thread of its own (Playwright's sync API
    keeps an event loop running in this one)."""
    thread = threading.Thread(target=collect, args=(kind, url))
    thread.start()
    thread.join(15)
    assert not thread.is_alive()


def requests_for(server: SSETestServer) -> list[tuple[str, bytes | None]]:
    return [(s.path, s.raw_last_event_id) for s in server.seen if s.path not in ("/page",)]


@pytest.mark.parametrize("name", sorted(ODD_IDS))
def test_last_event_id_bytes_are_chromiums(browser: Any, name: str) -> None:
    path = f"/id/{name}"
    with SSETestServer() as server:
        chromium_reads(browser, server, path, 2)
        chromium = server.seen_at(path)[1].raw_last_event_id
    for kind in KINDS:
        with SSETestServer() as server:
            ours(kind, f"{server.url}{path}")
            sent = [s.raw_last_event_id for s in server.seen_at(path)]
        if name == "formfeed":
            # the one difference: Chromium sends a form feed raw, which no
            # HTTP/1.1 field value may hold; we reconnect without the header
            assert chromium == b" a\x0cb"
            assert sent == [None, None]
        else:
            assert sent == [None, chromium], kind


def test_after_a_redirect_both_go_where_chromium_goes(browser: Any) -> None:
    src = "/moved/307?to=/counter?total=2"
    with SSETestServer() as server:
        chromium_reads(browser, server, src, 2, path="/counter")
        chromium = [r for r in requests_for(server) if r[0] != "/favicon.ico"]
    assert chromium == [("/moved/307", None), ("/counter", None), ("/counter", b" 2")]
    for kind in KINDS:
        with SSETestServer() as server:
            ours(kind, f"{server.url}{src}")
            assert requests_for(server) == chromium, kind


def test_a_retry_too_long_is_ignored_as_chromium_ignores_it(browser: Any) -> None:
    # Chromium ignores it and comes back after its default 3 s
    with SSETestServer() as server:
        chromium_reads(browser, server, "/retry?digits=4000", 2)
    for kind in KINDS:
        with SSETestServer() as server:
            ours(kind, f"{server.url}/retry?digits=4000")
            assert [s.raw_last_event_id for s in server.seen_at("/retry")] == [None, b" r"], kind
