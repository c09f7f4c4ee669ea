"""The built-in page opens with the hub's `newest=N`, not all history: the
value view reads the newest event, the feed the newest 200 (fewer on a hub
whose history bound is lower); reconnections still resume by last id."""

from __future__ import annotations

from typing import Any

import pytest

from ssehub import BackgroundHub, MemoryBackend
from ssehub.backends import HistoryLimits
from tests.support.helpers import free_port

pytestmark = pytest.mark.browser

IDS = "() => [...document.querySelectorAll('#log li[data-id]')].map(li => li.dataset.id)"
LIVE = "() => document.querySelector('#status').textContent === 'live'"


def test_the_value_view_reads_only_the_newest_event(browser: Any) -> None:
    with BackgroundHub(port=0, page=True) as hub:
        sent = [hub.publish("clock", f"t{i}") for i in range(50)]
        page = browser.new_page()
        try:
            page.goto(f"{hub.url}/?topic=clock")
            page.wait_for_function(f"() => ({IDS})().length === 1", timeout=5_000)
            page.wait_for_timeout(300)
            assert page.evaluate(IDS) == [sent[-1]]
            assert page.text_content("#value") == "t49"
            assert hub.statistics().events_replayed == 1
        finally:
            page.close()


def test_the_feed_reads_its_length_and_resumes_by_id_after_a_restart(browser: Any) -> None:
    port = free_port()
    backend = MemoryBackend()
    page = browser.new_page()
    try:
        with BackgroundHub(port=port, page=True, backend=backend) as hub:
            sent = [hub.publish("logs", f"line {i}") for i in range(250)]
            page.goto(f"{hub.url}/?topic=logs&view=feed")
            page.wait_for_function(f"() => ({IDS})().length === 200", timeout=10_000)
            assert page.evaluate(IDS) == sent[::-1][:200]
            assert hub.statistics().events_replayed == 200  # not the 250 of history
        page.wait_for_function(f"() => !({LIVE})()", timeout=5_000)
        with BackgroundHub(port=port, page=True, backend=backend) as hub:
            away = [hub.publish("logs", f"away {i}") for i in range(3)]
            page.wait_for_function(f"() => ({IDS})()[0] === {away[-1]!r}", timeout=15_000)
            assert page.evaluate(IDS)[:3] == away[::-1]
            assert hub.statistics().events_replayed == 3  # resumed after the last id seen
    finally:
        page.close()


def test_a_hub_with_a_short_history_gets_a_shorter_feed(browser: Any) -> None:
    backend = MemoryBackend(HistoryLimits(max_events=30))
    with BackgroundHub(port=0, page=True, backend=backend) as hub:
        sent = [hub.publish("logs", f"line {i}") for i in range(40)]
        page = browser.new_page()
        try:
            page.goto(f"{hub.url}/?topic=logs&view=feed")
            page.wait_for_function(LIVE, timeout=10_000)
            page.wait_for_function(f"() => ({IDS})().length === 20", timeout=5_000)
            assert page.evaluate(IDS) == sent[::-1][:20]  # newest=20: the bound is 30
        finally:
            page.close()
