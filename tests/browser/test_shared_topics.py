"""`SharedEventSource` in real Chromium: tabs with different topic sets share
one hub connection (the union of their selectors), each tab getting exactly
its own events — when a tab joins with new topics, and when the leader tab
closes, with events published all along."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ssehub import BackgroundHub
from ssehub.mercure import MercureConfig

pytestmark = pytest.mark.browser

PAGE = """<!doctype html>
<script src="/_ssehub/ssehub.js"></script>
<script>
  window.got = [];
  window.source = new SharedEventSource("/.well-known/mercure" + location.search);
  source.onmessage = (e) => window.got.push(e.data);
</script>
"""
OPEN = "() => window.source.readyState === 1"


@pytest.fixture
def page_dir(tmp_path: Path) -> Path:
    (tmp_path / "index.html").write_text(PAGE)
    return tmp_path


def got(page: Any) -> list[str]:
    return list(page.evaluate("window.got"))


def wait_for(page: Any, expected: list[str]) -> None:
    page.wait_for_function(f"() => window.got.length >= {len(expected)}", timeout=15_000)
    page.wait_for_timeout(200)  # nothing more comes
    assert got(page) == expected


def wait_one_stream(hub: BackgroundHub, page: Any) -> None:
    """The leader's previous stream ends a moment after its successor opens."""
    for _ in range(100):
        if hub.statistics().subscribers == 1:
            return
        page.wait_for_timeout(50)
    assert hub.statistics().subscribers == 1


def test_tabs_with_different_topics_share_one_stream_and_get_their_own(
    browser: Any, page_dir: Path
) -> None:
    with BackgroundHub(port=0, page=page_dir) as hub:
        context = browser.new_context()
        try:
            a = context.new_page()
            a.goto(f"{hub.url}/?topic=a")
            a.wait_for_function(OPEN)
            b = context.new_page()
            b.goto(f"{hub.url}/?topic=b&topic=books/{{id}}")
            b.wait_for_function(OPEN)
            wait_one_stream(hub, a)
            hub.publish("a", "a1")
            hub.publish("b", "b1")
            hub.publish("books/7", "book7")
            hub.publish("c", "c1")  # nobody's
            hub.publish(["b", "a"], "ab")  # both
            wait_for(a, ["a1", "ab"])
            wait_for(b, ["b1", "book7", "ab"])
            assert hub.statistics().subscribers == 1  # one stream for both tabs

            # a third tab joins with new topics, while events keep coming
            sent_a = [hub.publish("a", f"a-before-{i}") for i in range(3)]
            c = context.new_page()
            c.goto(f"{hub.url}/?topic=c&topic=a")
            sent_a += [hub.publish("a", f"a-during-{i}") for i in range(5)]
            c.wait_for_function(OPEN)
            wait_one_stream(hub, c)
            hub.publish("c", "c2")
            hub.publish("a", "a3")
            hub.publish("b", "b2")
            wait_for(a, ["a1", "ab", *[f"a-before-{i}" for i in range(3)],
                         *[f"a-during-{i}" for i in range(5)], "a3"])  # fmt: skip
            wait_for(b, ["b1", "book7", "ab", "b2"])
            # the new tab gets what came after it opened: no history of c
            c_got = got(c)
            assert "c1" not in c_got
            assert c_got[-2:] == ["c2", "a3"]
            assert len(sent_a) == 8
            assert hub.statistics().subscribers == 1

            # the leader tab closes; events published meanwhile reach every tab once
            tabs = [a, b, c]
            [leader] = [p for p in tabs if p.evaluate("window.source.isLeader")]
            before = {id(p): got(p) for p in tabs}
            leader.close()
            tabs.remove(leader)
            after = [hub.publish(t, f"{t}-after") for t in ("a", "b", "c")]
            assert len(after) == 3
            expect = {"a": "a-after", "b": "b-after", "c": "c-after"}
            for p in tabs:
                topics = json.loads(
                    p.evaluate(
                        "JSON.stringify(new URLSearchParams(location.search).getAll('topic'))"
                    )
                )
                mine = [expect[t] for t in ("a", "b", "c") if t in topics]
                wait_for(p, before[id(p)] + mine)
            assert sum(p.evaluate("window.source.isLeader") for p in tabs) == 1
            wait_one_stream(hub, tabs[0])
        finally:
            context.close()


def test_a_tab_leaving_narrows_the_stream(browser: Any, page_dir: Path) -> None:
    with BackgroundHub(port=0, page=page_dir) as hub:
        context = browser.new_context()
        try:
            a = context.new_page()
            a.goto(f"{hub.url}/?topic=a")
            a.wait_for_function(OPEN)
            b = context.new_page()
            b.goto(f"{hub.url}/?topic=b")
            b.wait_for_function(OPEN)
            wait_one_stream(hub, a)
            assert hub.statistics().subscribers_by_topic.get("b") == 1
            b.close()
            for _ in range(100):
                if "b" not in hub.statistics().subscribers_by_topic:
                    break
                a.wait_for_timeout(50)
            assert "b" not in hub.statistics().subscribers_by_topic
            hub.publish("a", "a1")
            wait_for(a, ["a1"])
        finally:
            context.close()


def test_mercure_1_0_matchers_share_one_stream_on_a_1_0_only_hub(
    browser: Any, page_dir: Path
) -> None:
    with BackgroundHub(port=0, page=page_dir, mercure=MercureConfig(dialects="1.0")) as hub:
        context = browser.new_context()
        try:
            a = context.new_page()
            a.goto(f"{hub.url}/?match=https://e.com/a")
            a.wait_for_function(OPEN)
            hub.publish("https://e.com/a", "a1")  # the leader resumes after it below
            wait_for(a, ["a1"])
            b = context.new_page()
            b.goto(f"{hub.url}/?match_urlpattern=https://e.com/b/:id")
            b.wait_for_function(OPEN)  # reconnected with the union, from last_event_id
            wait_one_stream(hub, a)
            hub.publish("https://e.com/b/1", "b1")
            hub.publish("https://e.com/a", "a2")
            wait_for(a, ["a1", "a2"])
            wait_for(b, ["b1"])
        finally:
            context.close()


VALUE = "() => document.querySelector('#value').textContent"


def test_a_page_joining_with_another_topic_opens_with_its_current_state(browser: Any) -> None:
    """The built-in page asks for `newest=1`; a tab that joins the shared
    stream with a new topic fetches its own current state, then follows the
    shared stream without a gap or a duplicate."""
    with BackgroundHub(port=0, page=True) as hub:
        context = browser.new_context()
        try:
            clock = context.new_page()
            clock.goto(f"{hub.url}/?topic=clock")
            clock.wait_for_function("() => window.ssehubSource.readyState === 1")
            hub.publish("clock", "12:00")
            hub.publish("score", "1-0")
            hub.publish("score", "2-0")  # the current score, before the page opens
            score = context.new_page()
            score.goto(f"{hub.url}/?topic=score")
            score.wait_for_function(f"() => ({VALUE})() === '2-0'", timeout=5_000)
            wait_one_stream(hub, score)
            hub.publish("score", "2-1")
            score.wait_for_function(f"() => ({VALUE})() === '2-1'", timeout=5_000)
            ids = score.evaluate(
                "() => [...document.querySelectorAll('#log li[data-id]')].map(li => li.textContent)"
            )
            assert [text[9:] for text in ids] == ["2-1", "2-0"]  # newest first; 1-0 is history
            assert clock.evaluate(VALUE) == "12:00"
            assert hub.statistics().subscribers == 1
        finally:
            context.close()


STREAMS = [
    "data: a\n\n",
    "event: up\r\nid: 1\r\ndata: x\r\ndata:  y\r\n\r\n",
    "data: cr\rdata: only\r\r: comment\n\ndata\n\n",
    "id: 7\n\nretry: 5\ndata: after an id-only block\n\n",
    "matched: topic=a\nmatched: topic=*\nfield-without-colon\ndata: z\n\ndata: cut",
]


@pytest.mark.parametrize("stream", STREAMS)
def test_the_leaders_parser_reads_streams_as_the_spec_says(browser: Any, stream: str) -> None:
    """`SharedEventSource.Parser` (what the leader and the dashboard read
    streams with) against ssehub's own parser, fed whole and a character
    at a time (a CRLF split across reads)."""
    from ssehub.protocol import EventStreamParser

    parser = EventStreamParser()
    expected = [[e.event, e.data, e.id or ""] for e in parser.feed(stream.encode())]
    with BackgroundHub(port=0) as hub:
        page = browser.new_page()
        try:
            page.goto(f"{hub.url}/_ssehub/ssehub.js")
            page.add_script_tag(url="/_ssehub/ssehub.js")
            for pieces in ([stream], list(stream)):
                got = page.evaluate(
                    """(pieces) => {
                      const out = [];
                      const parser = new SharedEventSource.Parser((e) => out.push(e));
                      for (const piece of pieces) parser.feed(piece);
                      return out;
                    }""",
                    pieces,
                )
                assert [[e["type"], e["data"], e["id"]] for e in got] == expected
            if "matched:" in stream:
                assert got[0]["matched"] == ["topic=a", "topic=*"]
        finally:
            page.close()


def test_tabs_share_a_stream_on_the_asgi_front_end_too(browser: Any, tmp_path: Path) -> None:
    """`HubApp` (examples/fastapi_mercure.py under uvicorn) tags events the
    same way: each tab gets its own, whichever tab leads."""
    import httpx

    from ssehub.server import ASSETS
    from tests.support.frontends import Frontend
    from tests.support.helpers import free_port

    helper = (ASSETS / "ssehub.js").read_text().replace("</", "<\\/")  # inline
    page_html = PAGE.replace(
        '<script src="/_ssehub/ssehub.js"></script>', f"<script>{helper}</script>"
    )
    (tmp_path / "index.html").write_text(page_html)
    env = {"SSEHUB_PAGE": str(tmp_path), "SSEHUB_ANONYMOUS_PUBLISH": "1"}
    frontend = Frontend("asgi", env, free_port())
    try:
        context = browser.new_context()
        try:
            a = context.new_page()
            a.goto(f"{frontend.url}/?topic=a")
            a.wait_for_function(OPEN)
            b = context.new_page()
            b.goto(f"{frontend.url}/?topic=b&topic=*")
            b.wait_for_function(OPEN)
            a.wait_for_timeout(500)  # the leader's stream with the union is open
            for topic, data in (("a", "a1"), ("b", "b1"), ("c", "c1")):
                r = httpx.post(frontend.hub, data={"topic": topic, "data": data}, timeout=10)
                assert r.status_code == 200, r.text
            wait_for(a, ["a1"])
            wait_for(b, ["a1", "b1", "c1"])
        finally:
            context.close()
    finally:
        frontend.stop()
