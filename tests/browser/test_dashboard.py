"""The live dashboard at /_ssehub/: access control, its stats feed, and what
it shows in real Chromium (screenshots saved in test-artifacts/)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from ssehub import BackgroundHub
from ssehub.protocol import Event, EventStreamParser
from tests.support.helpers import read_head, request
from tests.support.servers import run, serving


def test_access_and_stats_feed() -> None:
    async def body() -> None:
        async with serving(dashboard=False) as (_, _, port):
            off = await request(port, "GET", "/_ssehub/")
            assert (off.status, off.text) == (
                404,
                "the dashboard is off (start the hub with --dashboard)\n",
            )
            helper = await request(port, "GET", "/_ssehub/ssehub.js")
            assert helper.status == 200  # the browser helper is always there
            assert helper.headers["content-type"].startswith("text/javascript")
        async with serving(dashboard_token="s3cret") as (hub, _, port):
            assert (await request(port, "GET", "/_ssehub/")).status == 401
            assert (await request(port, "GET", "/_ssehub/?token=wrong")).status == 401
            page = await request(port, "GET", "/_ssehub/?token=s3cret")
            assert page.status == 200
            assert "dashboard.js" in page.text
            cookie = await request(port, "GET", "/_ssehub/dashboard.js",
                                   headers={"Cookie": "ssehubDashboard=s3cret"})  # fmt: skip
            assert cookie.status == 200
            await hub.publish("news", "x")
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /_ssehub/stats?token=s3cret HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers = await read_head(reader)
            assert (status, headers["content-type"]) == (200, "text/event-stream")
            parser = EventStreamParser()
            events: list[Event] = []
            while not events:
                events = parser.feed(await asyncio.wait_for(reader.read(4096), 5))
            stats = json.loads(events[0].data)
            assert events[0].event == "stats"
            assert stats["events_published"] == 1
            assert stats["events_by_topic"] == {"news": 1}
            assert stats["mercure_dialects"] == "both"  # what the tail speaks
            writer.close()

    run(body)


@pytest.mark.browser
def test_dashboard_shows_a_publish_within_a_second(browser: Any, artifacts: Path) -> None:
    with BackgroundHub(port=0, dashboard=True) as hub:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            page.goto(f"{hub.url}/_ssehub/")
            page.wait_for_function("() => document.querySelector('#status').textContent === 'live'")
            for i in range(5):
                hub.publish("orders", f"order {i}")
            hub.publish("alerts", "disk almost full")
            page.wait_for_function(
                "() => document.querySelector('#tail').textContent.includes('disk almost full')",
                timeout=1000,
            )
            page.wait_for_function("() => document.querySelector('#published').textContent === '6'")
            page.wait_for_function(
                "() => document.querySelector('[data-topic=\"orders\"]') !== null"
            )
            # which process answered (each of --workers N has its own numbers)
            assert page.text_content("#worker") == f"process {os.getpid()}"
            # the page's own tail selector `*` is no topic: no card for it
            assert page.query_selector('[data-topic="*"]') is None
            with hub.subscribe("orders"):  # one subscriber: said in the singular
                page.wait_for_function(
                    "() => document.querySelector('[data-topic=\"orders\"] .nums')"
                    ".textContent.includes('· 1 subscriber ·')",
                    timeout=5000,
                )
            # the publish form
            page.fill("#pub-topic", "from-the-form")
            page.fill("#pub-data", "typed by hand")
            page.fill("#pub-token", "")
            page.click("#publish-form button")
            page.wait_for_function("() => document.querySelector('#pub-result').textContent !== ''")
            assert page.text_content("#pub-result").startswith(
                "403"
            )  # this hub takes no anonymous publish
            # pause holds the tail; resuming shows what came meanwhile
            page.check("#pause")
            hub.publish("orders", "while paused")
            page.wait_for_timeout(300)
            assert "while paused" not in page.text_content("#tail")
            page.uncheck("#pause")
            page.wait_for_function(
                "() => document.querySelector('#tail').textContent.includes('while paused')"
            )
            page.screenshot(path=str(artifacts / "dashboard-desktop.png"), full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(1200)  # a stats tick redraws for the narrow screen
            page.screenshot(path=str(artifacts / "dashboard-phone.png"), full_page=True)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390  # nothing sticks out sideways on a phone
        finally:
            page.close()


@pytest.mark.browser
def test_dashboard_tail_says_why_a_jwt_hub_refused_it(browser: Any) -> None:
    from ssehub.mercure import JWTAuth, MercureConfig

    auth = JWTAuth(subscriber_key="a-subscriber-secret-of-32-bytes-at-least!")
    with BackgroundHub(port=0, dashboard=True, mercure=MercureConfig(auth=auth)) as hub:
        page = browser.new_page()
        try:
            page.goto(f"{hub.url}/_ssehub/")
            page.wait_for_function(
                "() => document.querySelector('#tail').textContent.includes('401')",
                timeout=10_000,
            )
            assert "subscriber JWT" in page.text_content("#tail")
        finally:
            page.close()


@pytest.mark.browser
def test_dashboard_charts_open_with_the_rate_so_far_not_zero(browser: Any) -> None:
    """A page opened on a hub that has been publishing shows the topic's rate
    at once: its chart is seeded from the hub's counters."""
    with BackgroundHub(port=0, dashboard=True) as hub:
        for i in range(50):
            hub.publish("busy", f"event {i}")
        page = browser.new_page()
        try:
            page.goto(f"{hub.url}/_ssehub/")
            page.wait_for_function(
                "() => document.querySelector('[data-topic=\"busy\"] .nums') !== null"
            )
            text = page.text_content('[data-topic="busy"] .nums')
            assert not text.startswith("0.0 events/s"), text
        finally:
            page.close()


SECRET = "!ChangeThisMercureHubJWTSecretKey!"
RESOURCE = "https://hub.example/.well-known/mercure"
ISSUER = "https://issuer.example"
DETAIL = "https://mercure.rocks/authorization-detail"
TAIL = "() => document.querySelector('#tail').textContent"


def _token(dialect: str, action: str) -> str:
    """A token of the dialect: a 0.x `mercure` claim, or a 1.0 access token."""
    import time

    import jwt

    if dialect == "0.x":
        return jwt.encode({"mercure": {action: ["*"]}}, SECRET, algorithm="HS256")
    claims = {
        "iss": ISSUER,
        "aud": RESOURCE,
        "exp": int(time.time()) + 300,
        "authorization_details": [
            {"type": DETAIL, "actions": [action], "topics": [{"match": "*"}]}
        ],
    }
    return jwt.encode(claims, SECRET, algorithm="HS256", headers={"typ": "at+jwt"})


@pytest.mark.browser
@pytest.mark.parametrize("dialect", ["both", "1.0", "0.x"])
def test_dashboard_tail_and_publish_form_speak_the_hubs_mercure(browser: Any, dialect: str) -> None:
    from ssehub.mercure import JWTAuth, MercureConfig

    config = MercureConfig(
        auth=JWTAuth(publisher_key=SECRET, subscriber_key=SECRET),
        anonymous=True,
        dialects=dialect,
        issuers=(ISSUER,),
        resource=RESOURCE,
    )
    spoken = "0.x" if dialect == "0.x" else "1.0"  # the tokens this test uses
    kinds = {"both": ["topic", "match", "match_urlpattern"], "1.0": ["match", "match_urlpattern"],
             "0.x": ["topic"]}[dialect]  # fmt: skip
    with BackgroundHub(port=0, dashboard=True, mercure=config) as hub:
        page = browser.new_page()
        try:
            page.goto(f"{hub.url}/_ssehub/")
            page.wait_for_function("() => document.querySelector('#status').textContent === 'live'")
            options = page.eval_on_selector_all("#sub-kind option", "os => os.map(o => o.value)")
            assert options == kinds
            hub.publish("orders", "public order")  # the anonymous `*` tail sees it
            page.wait_for_function(f"() => ({TAIL})().includes('public order')", timeout=5_000)

            # a private tail with a subscriber token of the dialect, by header
            if dialect != "0.x":
                page.select_option("#sub-kind", "match_urlpattern")
                page.fill("#selector", "https://hub.example/secret/:id")
            else:
                page.fill("#selector", "https://hub.example/secret/{id}")
            page.fill("#sub-token", _token(spoken, "subscribe"))
            page.click("#tail-form button")
            page.wait_for_timeout(500)  # the new tail is open

            # the publish form, with a publisher token of the dialect
            page.fill("#pub-topic", "https://hub.example/secret/1")
            page.fill("#pub-data", "typed by hand")
            page.fill("#pub-token", _token(spoken, "publish"))
            page.check("#pub-private")
            page.click("#publish-form button")
            page.wait_for_function("() => document.querySelector('#pub-result').textContent !== ''")
            assert page.text_content("#pub-result").startswith("200: urn:uuid:")
            page.wait_for_function(f"() => ({TAIL})().includes('typed by hand')", timeout=5_000)
            assert "refused" not in page.text_content("#tail")
        finally:
            page.close()
