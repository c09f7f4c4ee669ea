"""Every example in examples/ runs, under uvicorn, and does what it says."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.asgi import Served, take, wait_until
from tests.support.helpers import self_signed_certificate


def test_fastapi_tokens_streams_and_stops_with_the_client() -> None:
    served = Served("uvicorn", app="examples.fastapi_tokens:app")
    try:
        tokens = []
        with httpx.stream("GET", f"{served.url}/generate", params={"prompt": "hi", "delay": 0.01},
                          timeout=10) as response:  # fmt: skip
            assert response.headers["content-type"].startswith("text/event-stream")
            from ssehub.protocol import EventStreamParser

            parser = EventStreamParser()
            for chunk in response.iter_bytes():
                tokens += parser.feed(chunk)
                if tokens and tokens[-1].event == "done":
                    break
        words = [t.data for t in tokens if t.event == "token"]
        assert " ".join(words).startswith("You said 'hi'.")
        # a client that leaves early stops the generator
        before = httpx.get(f"{served.url}/stats").json()
        with httpx.stream("GET", f"{served.url}/generate", params={"prompt": "x", "delay": 1},
                          timeout=10) as response:  # fmt: skip
            next(response.iter_bytes())
        assert wait_until(
            lambda: httpx.get(f"{served.url}/stats").json()["finished"] == before["finished"] + 1,
            1.0,
        )
    finally:
        served.stop()


def test_fastapi_notifications_broadcast_with_resume() -> None:
    served = Served("uvicorn", app="examples.fastapi_notifications:app")
    try:
        ids = [
            httpx.post(f"{served.url}/notify", params={"text": f"note {i}"}).json()["id"]
            for i in range(3)
        ]
        url = f"{served.url}/events/?topic=notes"
        assert [e.id for e in take(url, 3, last_event_id="earliest")] == ids
        assert [e.data for e in take(url, 1, last_event_id=ids[1])] == ["note 2"]
        assert "new EventSource" in httpx.get(served.url).text
    finally:
        served.stop()


@pytest.mark.browser
def test_fastapi_notifications_reach_every_open_page(browser: Any) -> None:
    served = Served("uvicorn", app="examples.fastapi_notifications:app")
    pages = []
    try:
        for _ in range(3):
            page = browser.new_page()
            page.goto(served.url)
            pages.append(page)
        time.sleep(0.5)  # let the three EventSources connect
        httpx.post(f"{served.url}/notify", params={"text": "deploy finished"})
        for page in pages:
            page.wait_for_function(
                "() => document.querySelector('#notes').textContent.includes('deploy finished')"
            )
    finally:
        for page in pages:
            page.close()
        served.stop()


@pytest.mark.browser
def test_starlette_clock_page_shows_the_time(browser: Any) -> None:
    served = Served("uvicorn", app="examples.starlette_clock:app")
    page = browser.new_page()
    try:
        page.goto(f"{served.url}/")
        page.wait_for_function("() => document.querySelector('#status').textContent === 'live'")
        seen = {page.text_content("#value")}
        deadline = time.monotonic() + 10
        while len(seen) < 3 and time.monotonic() < deadline:
            page.wait_for_function(
                "(prev) => document.querySelector('#value').textContent !== prev",
                arg=page.text_content("#value"),
            )
            seen.add(page.text_content("#value"))
        assert len(seen) >= 3  # the placeholder and at least two times
    finally:
        page.close()
        served.stop()


@pytest.mark.browser
def test_http2_lets_ten_tabs_stream_from_one_origin(browser: Any, tmp_path: Path) -> None:
    """Over HTTP/1.1 a browser holds 6 connections per origin and the 7th
    EventSource hangs; over HTTP/2 (hypercorn with TLS) all share one."""
    cert, key = self_signed_certificate(tmp_path)
    served = Served("hypercorn", "--certfile", str(cert), "--keyfile", str(key), scheme="https")
    context = browser.new_context(ignore_https_errors=True)
    try:
        pages = []
        for _ in range(10):
            page = context.new_page()
            page.goto(f"{served.url}/tabs")
            pages.append(page)
        for page in pages:
            page.wait_for_function("() => document.querySelector('#state').textContent === 'open'")
        protocol = pages[0].evaluate(
            "() => performance.getEntriesByType('navigation')[0].nextHopProtocol"
        )
        assert protocol == "h2"
        httpx.post(
            f"{served.url}/publish", params={"topic": "tabs", "data": "to all"}, verify=False
        )
        for page in pages:
            page.wait_for_function("() => document.querySelector('#got').textContent === 'to all'")
    finally:
        context.close()
        served.stop()
