"""The built-in page's feed view in real Chromium: the recent history of a
topic, newest first, at once; multi-line or long data switches to it by
itself; a page opened after the last publish shows the current value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ssehub import BackgroundHub
from tests.support.helpers import free_port
from tests.support.processes import spawn, stop

pytestmark = pytest.mark.browser

IDS = "() => [...document.querySelectorAll('#log li[data-id]')].map(li => li.dataset.id)"
TEXTS = "() => [...document.querySelectorAll('#log li[data-id] pre')].map(p => p.textContent)"
VIEW = "() => document.body.className"
NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"


def _count(page: Any, n: int, timeout: float = 5000) -> None:
    page.wait_for_function(f"() => ({IDS})().length >= {n}", timeout=timeout)


def test_feed_opens_with_the_last_lines_newest_first_then_follows(
    browser: Any, artifacts: Path
) -> None:
    with BackgroundHub(port=0, page=True) as hub:
        lines = [f"line {i}" for i in range(30)]
        sent = [hub.publish("logs", line) for line in lines]
        hub.publish("other", "not for this page")
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            page.goto(f"{hub.url}/?topic=logs&view=feed")
            _count(page, 20)
            assert page.evaluate(VIEW) == "view-feed"
            assert page.evaluate(IDS)[:20] == sent[::-1][:20]  # the last 20, newest first
            assert page.evaluate(TEXTS)[:20] == lines[::-1][:20]
            assert page.evaluate(IDS) == sent[::-1][: len(page.evaluate(IDS))]  # no more
            assert page.is_hidden("#value")
            stamps = page.eval_on_selector_all(
                "#log li[data-id] time", "ts => ts.map(t => t.dateTime)"
            )
            assert len(stamps) == len(page.evaluate(IDS))
            assert all(stamp.endswith("Z") for stamp in stamps)  # from the ids: publish time

            sent.append(hub.publish("logs", "a live one"))
            page.wait_for_function(f"() => ({TEXTS})()[0] === 'a live one'")
            assert page.evaluate(IDS)[0] == sent[-1]

            page.click("#follow")  # pause: new events wait
            assert page.text_content("#follow") == "Follow"
            sent.append(hub.publish("logs", "while paused"))
            page.wait_for_function(
                "() => document.querySelector('#follow').textContent === 'Follow (1 new)'"
            )
            assert page.evaluate(TEXTS)[0] == "a live one"
            page.click("#follow")
            assert page.evaluate(TEXTS)[0] == "while paused"
            assert page.evaluate(IDS)[:2] == sent[::-1][:2]
            assert page.text_content("#follow") == "Pause"
        finally:
            page.close()


def test_multi_line_or_long_data_switches_to_the_feed_by_itself(
    browser: Any, artifacts: Path
) -> None:
    trace = 'Traceback (most recent call last):\n  File "app.py", line 3\nValueError: bad'
    long = "GET /api/items?page=2 200 " + "x" * 80
    with BackgroundHub(port=0, page=True) as hub:
        page = browser.new_page(viewport={"width": 390, "height": 844})
        forced = browser.new_page()
        try:
            page.goto(f"{hub.url}/?topic=logs")
            forced.goto(f"{hub.url}/?topic=logs&view=value")
            for p in (page, forced):
                p.wait_for_function(
                    "() => document.querySelector('#status').textContent === 'live'"
                )
            hub.publish("logs", "short")
            page.wait_for_function("() => document.querySelector('#value').textContent === 'short'")
            assert page.evaluate(VIEW) == "view-value"
            hub.publish("logs", trace)
            page.wait_for_function(f"() => ({VIEW})() === 'view-feed'")
            assert page.evaluate(TEXTS) == [trace, "short"]  # the whole text, every event
            hub.publish("logs", long)
            page.wait_for_function(f"() => ({TEXTS})().length === 3")
            assert page.evaluate(TEXTS)[0] == long
            for i in range(5):
                hub.publish("logs", f"{i} {long}\n    at frame {i}\n    at main")
            _count(page, 8)
            assert page.evaluate(NO_SIDEWAYS_SCROLL)  # a phone: long lines wrap
            page.screenshot(path=str(artifacts / "feed-page-390.png"), full_page=True)

            # view=value keeps the value view whatever the data
            forced.wait_for_function(f"() => ({IDS})().length === 8")
            assert forced.evaluate(VIEW) == "view-value"
            assert forced.text_content("#value") == f"4 {long}\n    at frame 4\n    at main"

            page.set_viewport_size({"width": 1280, "height": 900})
            assert page.evaluate(NO_SIDEWAYS_SCROLL)
            page.screenshot(path=str(artifacts / "feed-page-1280.png"), full_page=True)
        finally:
            page.close()
            forced.close()


def test_a_page_opened_after_the_last_publish_shows_the_current_value_at_once(
    browser: Any, artifacts: Path
) -> None:
    with BackgroundHub(port=0, page=True) as hub:
        hub.publish("state", "warming up")
        last = hub.publish("state", "ready")
        for width in (1280, 390):
            page = browser.new_page(viewport={"width": width, "height": 800})
            try:
                page.goto(f"{hub.url}/?topic=state")
                page.wait_for_function(
                    "() => document.querySelector('#value').textContent === 'ready'",
                    timeout=1000,  # from the history, not from a next publish
                )
                assert page.evaluate(VIEW) == "view-value"
                assert page.evaluate(IDS)[0] == last
                assert page.evaluate(NO_SIDEWAYS_SCROLL)
                page.screenshot(path=str(artifacts / f"value-page-{width}.png"), full_page=True)
            finally:
                page.close()


def test_a_tab_joining_a_shared_connection_gets_the_recent_events_from_the_others(
    browser: Any,
) -> None:
    """The second tab rides on the first tab's connection (SharedEventSource),
    which already replayed the history: the open tab hands it what it has."""
    with BackgroundHub(port=0, page=True) as hub:
        lines = [f"line {i}" for i in range(25)]
        sent = [hub.publish("logs", line) for line in lines]
        context = browser.new_context()
        try:
            first = context.new_page()
            first.goto(f"{hub.url}/?topic=logs&view=feed")
            _count(first, 25)
            second = context.new_page()
            second.goto(f"{hub.url}/?topic=logs&view=feed")
            _count(second, 25)
            assert hub.statistics().subscribers == 1  # one stream for both tabs
            assert second.evaluate(IDS) == sent[::-1]
            assert second.evaluate(TEXTS) == lines[::-1]
            sent.append(hub.publish("logs", "for both"))
            for page in (first, second):
                page.wait_for_function(f"() => ({TEXTS})()[0] === 'for both'")
                assert page.evaluate(IDS) == sent[::-1]
        finally:
            context.close()


def test_pipe_serve_feed_url_shows_the_piped_lines_after_the_input_ended(
    browser: Any, tmp_path: Path
) -> None:
    """Issue 13's `tail -f app.log | ssehub pipe logs --serve`, as a real
    process: the URL it printed is alive after its input ended, and shows
    the last lines, newest first."""
    lines = [f"2026-12-01 09:00:{i:02} INFO request {i} done" for i in range(30)]
    (tmp_path / "app.log").write_text("\n".join(lines) + "\n")
    port = free_port()
    with (tmp_path / "app.log").open() as stdin:
        proc = spawn("pipe", "logs", "--serve", "--port", str(port), stdin=stdin.fileno())
    page = browser.new_page()
    try:
        assert proc.stderr is not None
        said = [proc.stderr.readline(), proc.stderr.readline()]
        url = f"http://127.0.0.1:{port}/?topic=logs&view=feed"
        assert said[0] == f"ssehub pipe: open {url}\n"
        assert said[1].startswith("ssehub pipe: input ended")
        page.goto(url)
        _count(page, 20)
        assert page.evaluate(TEXTS)[:20] == lines[::-1][:20]
        assert proc.poll() is None
    finally:
        page.close()
        code, _, err = stop(proc)
    assert code == 0, err
