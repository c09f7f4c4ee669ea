"""The live page in real Chromium: it updates, and it survives a restart of
the hub without missing what was published while it was away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ssehub import BackgroundHub, MemoryBackend
from tests.support.helpers import free_port

pytestmark = pytest.mark.browser

VALUE_CHANGED = "(prev) => document.querySelector('#value').textContent !== prev"
LOG_IDS = "() => [...document.querySelectorAll('#log li[data-id]')].map(li => li.dataset.id)"


def test_live_clock_updates_and_resumes_after_restart(browser: Any, artifacts: Path) -> None:
    port = free_port()
    backend = MemoryBackend()
    start = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
    published: list[str] = []
    page = browser.new_page()
    try:
        with BackgroundHub(port=port, page=True, backend=backend) as hub:
            page.goto(f"{hub.url}/")
            page.wait_for_function("() => document.querySelector('#status').textContent === 'live'")
            seen = [page.text_content("#value")]
            for i in range(4):  # the time changes at least three times
                tick = (start + timedelta(seconds=i)).isoformat()
                published.append(hub.publish("clock", tick))
                page.wait_for_function(VALUE_CHANGED, arg=seen[-1], timeout=5000)
                seen.append(page.text_content("#value"))
            assert len(set(seen)) == 5
            assert page.evaluate(LOG_IDS) == published[::-1]  # newest first
        # the hub is gone: the page notices and keeps trying
        page.wait_for_function(
            "() => document.querySelector('#status').textContent !== 'live'", timeout=5000
        )
        with BackgroundHub(port=port, page=True, backend=backend) as hub:
            # published before the page is back (EventSource waits ~3 s)
            away = [hub.publish("clock", f"while away {i}") for i in range(3)]
            page.wait_for_function(
                f"() => ({LOG_IDS})().length === {len(published) + len(away)}", timeout=15000
            )
            ids = page.evaluate(LOG_IDS)
            assert ids == (published + away)[::-1]  # every event, once, in order
            assert page.text_content("#value") == "while away 2"
            assert page.text_content("#status") == "live"
            page.screenshot(path=str(artifacts / "live-page.png"), full_page=True)
    finally:
        page.close()


def test_page_index_html_and_topic_parameter(browser: Any) -> None:
    with BackgroundHub(port=0, page=True) as hub:
        page = browser.new_page()
        try:
            page.goto(f"{hub.url}/index.html?topic=builds")
            page.wait_for_function("() => document.querySelector('#status').textContent === 'live'")
            assert page.text_content("#topic") == "builds"
            hub.publish("clock", "not for this page")
            hub.publish("builds", "build #42 passed")
            page.wait_for_function(
                "() => document.querySelector('#value').textContent === 'build #42 passed'"
            )
            assert len(page.evaluate(LOG_IDS)) == 1
        finally:
            page.close()


def test_ten_tabs_share_one_connection_and_survive_the_leader_closing(browser: Any) -> None:
    """On HTTP/1.1 a browser holds six connections per origin; the page's
    SharedEventSource opens one for all tabs, and when the tab holding it
    closes another takes over and resumes, so no event is missed."""
    with BackgroundHub(port=0, page=True) as hub:
        context = browser.new_context()
        try:
            pages = []
            for _ in range(10):
                page = context.new_page()
                page.goto(f"{hub.url}/")
                pages.append(page)
            for page in pages:
                page.wait_for_function(
                    "() => document.querySelector('#status').textContent === 'live'"
                )
            assert hub.statistics().subscribers == 1  # one stream for ten tabs
            sent = [hub.publish("clock", f"tick {i}") for i in range(3)]
            for page in pages:
                page.wait_for_function(f"() => ({LOG_IDS})().length === 3")
                assert page.evaluate(LOG_IDS) == sent[::-1]
            [leader] = [p for p in pages if p.evaluate("window.ssehubSource.isLeader")]
            leader.close()
            pages.remove(leader)
            sent += [
                hub.publish("clock", f"after {i}") for i in range(3)
            ]  # maybe while no one listens
            for page in pages:
                page.wait_for_function(f"() => ({LOG_IDS})().length === 6", timeout=15_000)
                assert page.evaluate(LOG_IDS) == sent[::-1]  # every event, once, in order
            assert sum(p.evaluate("window.ssehubSource.isLeader") for p in pages) == 1
            module = pages[0].evaluate(
                "async () => typeof (await import('/_ssehub/ssehub.mjs')).SharedEventSource"
            )
            assert module == "function"
        finally:
            context.close()
