"""Mercure 1.0 "Active Subscriptions" on both front ends (`ssehub serve` and
`examples/fastapi_mercure.py` under uvicorn, real processes): subscription
events received by a real subscriber, the subscription API with its cursor
and pages, and its refusals."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest

from tests.support.frontends import FRONTENDS, Frontend
from tests.support.helpers import free_port
from tests.support.mercure10 import ENV, SECRET, publish, stream

DETAIL = "https://mercure.rocks/authorization-detail"
SUBS = "/.well-known/mercure/subscriptions"


def access_token(*details: dict[str, Any]) -> str:
    claims = {
        "iss": "https://issuer.example",
        "aud": ENV["SSEHUB_RESOURCE"],
        # long-lived: module-level tokens are made when the module is collected
        "exp": int(time.time()) + 3600,
        "authorization_details": [{"type": DETAIL, **d} for d in details],
    }
    return jwt.encode(claims, SECRET, algorithm="HS256", headers={"typ": "at+jwt"})


# every subscription event and API resource (a relative pattern: resolved
# against the hub's URL, like the relative topics of the events)
WATCHER = access_token(
    {"actions": ["subscribe"], "topics": [{"match": f"{SUBS}/*", "match_type": "urlpattern"}]},
    {"actions": ["subscribe"], "topics": [{"match": SUBS}]},
)


@pytest.fixture(scope="module", params=FRONTENDS)
def hub(request: pytest.FixtureRequest) -> Iterator[Frontend]:
    frontend = Frontend(request.param, {**ENV, "SSEHUB_SUBSCRIPTIONS": "1"}, free_port())
    yield frontend
    frontend.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_1_0_watcher_receives_the_events_of_a_subscription(hub: Frontend) -> None:
    reader = access_token(
        {"actions": ["subscribe"], "topics": [{"match": "watched"}], "payload": {"u": "alice"}}
    )
    watch = [("match_urlpattern", f"{SUBS}/exact/watched/:subscriber")]
    anonymous = [*watch, ("match", "marker")]
    with stream(hub, watch, bearer(WATCHER)) as watcher, stream(hub, anonymous) as nobody:
        with stream(hub, [("match", "watched")], bearer(reader)):
            (started,) = watcher.take(1)
        (ended,) = watcher.take(1)
        publish(hub, "marker", "public")
        (first,) = nobody.take(1)  # private: the anonymous one got neither
        assert (first.event, first.data) == ("message", "public")
    assert (started.event, ended.event) == ("mercure", "mercure")
    doc = json.loads(started.data)
    subscriber = doc["subscriber"]
    topic = f"{SUBS}/exact/watched/{quote(subscriber, safe='')}"
    assert doc == {
        "id": topic, "type": "subscription", "match_type": "exact", "match": "watched",
        "subscriber": subscriber, "active": True, "payload": {"u": "alice"},
    }  # fmt: skip
    assert subscriber.startswith("urn:uuid:")
    assert json.loads(ended.data) == {**doc, "active": False}


def test_the_1_0_api_lists_with_the_link_cursor_and_pages(hub: Frontend) -> None:
    with (
        stream(hub, [("match", "listed")]),
        stream(hub, [("match", "listed")]),
        stream(hub, [("match", "listed"), ("match", "also")]),
        stream(hub, [("topic", "listed")]),  # 0.x: in the 0.x API only
    ):
        url = f"{hub.hub}/subscriptions/exact/listed"
        deadline = time.monotonic() + 10
        while True:  # (the front ends register a stream once its head is out)
            r = httpx.get(url, headers=bearer(WATCHER), timeout=10)
            assert r.status_code == 200, r.text
            if len(r.json()["subscriptions"]) == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert r.headers["content-type"] == "application/json"
        mercure = r.headers["link"].split(", ")[0]
        assert mercure.startswith(f'<{ENV["SSEHUB_RESOURCE"]}>; rel="mercure"; last-event-id="')
        assert mercure.endswith('; content-type="application/json"; type="mercure"')
        cursor = mercure.split('last-event-id="')[1].split('"')[0]
        assert r.json()["last_event_id"] == cursor
        everyone = [s["subscriber"] for s in r.json()["subscriptions"]]
        assert len(set(everyone)) == 3
        # two at a time, following `rel="next"`
        seen: list[str] = []
        target = "?limit=2"
        while target:  # (a `next` link is a query-only reference: the same path)
            r = httpx.get(f"{url}{target}", headers=bearer(WATCHER), timeout=10)
            assert r.status_code == 200, r.text
            assert len(r.json()["subscriptions"]) <= 2
            seen += [s["subscriber"] for s in r.json()["subscriptions"]]
            links = r.headers["link"].split(", ")
            target = links[1].removeprefix("<").removesuffix('>; rel="next"') if links[1:] else ""
        assert seen == everyone
        one = r.json()["subscriptions"][-1]
        r = httpx.get(f"{hub.url}{one['id']}", headers=bearer(WATCHER), timeout=10)
        assert (r.status_code, r.json()) == (200, one)
        if hub.kind == "serve":  # /metrics counts 1.0 matchers beside 0.x topics
            metrics = httpx.get(f"{hub.url}/metrics", timeout=10).text
            assert 'ssehub_topic_subscribers{topic="listed"} 4\n' in metrics
        # the whole collection
        r = httpx.get(f"{hub.hub}/subscriptions", headers=bearer(WATCHER), timeout=10)
        assert {(s["match_type"], s["match"]) for s in r.json()["subscriptions"]} >= {
            ("exact", "listed"),
            ("exact", "also"),
        }
        assert all("topic" not in s for s in r.json()["subscriptions"])
        # a resumable cursor: subscribing from it replays what came after
        with stream(hub, [("match", "after-cursor"), ("last_event_id", cursor)]) as s:
            publish(hub, "after-cursor", "next")
            assert s.response.headers["mercure-last-event-id"] == cursor
            (replayed, live) = s.take(2)  # (ssehub says how many it replayed first)
            assert (replayed.data, live.data) == ('{"replayed": 0}', "next")


def test_1_0_api_refusals(hub: Frontend) -> None:
    narrow = access_token({"actions": ["subscribe"], "topics": [{"match": f"{SUBS}/exact/a"}]})
    cases = [
        (SUBS, None, 401, "requires an access token"),
        (SUBS, narrow, 403, "does not allow subscribe on /.well-known/mercure/subscriptions"),
        (f"{SUBS}/exact", WATCHER, 404, "/subscriptions[/{match_type}/{match}[/{subscriber}]]"),
        (f"{SUBS}/regex/a", WATCHER, 404, "no matcher type 'regex'"),
        (f"{SUBS}/exact/a%FF", WATCHER, 400, "the match in the path is not valid UTF-8"),
        (f"{SUBS}?limit=5000", WATCHER, 400, "'limit' must be one integer from 1 to 1000"),
        (f"{SUBS}/exact/a/urn%3Anobody", WATCHER, 404, "no such subscription"),
    ]
    for path, token, status, reason in cases:
        r = httpx.get(f"{hub.url}{path}", headers=bearer(token) if token else {}, timeout=10)
        assert (r.status_code, reason in r.text, r.text.count("\n")) == (status, True, 1), r.text
        if status in (401, 403):
            assert r.headers["www-authenticate"].startswith("Bearer"), path
    assert r.headers["content-type"].startswith("text/plain")
    r = httpx.get(f"{hub.hub}/subscriptions/exact/a", headers=bearer(narrow), timeout=10)
    assert r.status_code == 200  # exactly what its matcher grants
    # a 0.x JWT still reads the 0.x API, in the 0.x format
    old = jwt.encode({"mercure": {"subscribe": ["*"]}}, SECRET, algorithm="HS256")
    r = httpx.get(f"{hub.hub}/subscriptions", headers=bearer(old), timeout=10)
    assert (r.status_code, r.json()["type"]) == (200, "Subscriptions")
