"""`newest=N` over HTTP (issue 13 item 1): the current state on open, then
the live marker, then live events — for `ssehub serve`'s server and for
`HubApp` under uvicorn, over real sockets."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from ssehub.hub import LIVE_EVENT
from tests.support.asgi import Served, take
from tests.support.helpers import publish, request, subscribe
from tests.support.servers import run, serving


def test_newest_gives_each_topics_current_state_then_the_marker_then_live() -> None:
    async def body() -> None:
        async with serving(anonymous_publish=True) as (hub, _, port):
            await hub.publish("a", "a0")
            await hub.publish("a", "a1")
            await hub.publish("b", "b0")
            await hub.publish("c", "c0")
            stream = await subscribe(port, "a", "b", extra_query={"newest": "1"})
            assert stream.status == 200
            assert "last-event-id" not in stream.headers  # not a resume
            assert [e.data for e in await stream.next_events(2)] == ["a1", "b0"]
            assert (await publish(port, topic="a", data="a2")).status == 200
            assert [e.data for e in await stream.next_events(1)] == ["a2"]
            [marker] = stream.live
            assert marker.event == LIVE_EVENT
            assert json.loads(marker.data) == {"replayed": 2}
            raw = stream.raw.decode()
            assert raw.index("data: b0") < raw.index("event: ssehub-live") < raw.index("data: a2")
            stream.close()

    run(body)


def test_a_resume_wins_over_newest_so_a_url_may_carry_it_for_good() -> None:
    async def body() -> None:
        async with serving() as (hub, _, port):
            ids = [await hub.publish("a", f"a{i}") for i in range(3)]
            fresh = await subscribe(port, "a", extra_query={"newest": "1"})
            assert [e.data for e in await fresh.next_events(1)] == ["a2"]
            fresh.close()
            stream = await subscribe(port, "a", last_event_id=ids[0], extra_query={"newest": "1"})
            assert stream.headers["last-event-id"] == ids[0]
            assert [e.data for e in await stream.next_events(2)] == ["a1", "a2"]
            stream.close()

    run(body)


@pytest.mark.parametrize("value", ["0", "x", "-1", "1001", "", "1.5", "\u0661", "9" * 5000])
def test_a_bad_newest_is_a_400_naming_it(value: str) -> None:
    async def body() -> None:
        async with serving() as (_, _, port):
            answer = await request(
                port, "GET", f"/.well-known/mercure?{httpx.QueryParams(topic='a', newest=value)}"
            )
            assert answer.status == 400
            assert "'newest' must be one integer from 1 to 1000" in answer.text
            assert len(answer.text.splitlines()) == 1
            twice = await request(port, "GET", "/.well-known/mercure?topic=a&newest=1&newest=2")
            assert twice.status == 400

    run(body)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    s = Served("uvicorn")
    yield s
    s.stop()


def test_hub_app_takes_newest_too(served: Served) -> None:
    for data in ("n0", "n1"):
        httpx.post(f"{served.url}/publish", params={"topic": "state", "data": data}, timeout=10)
    url = f"{served.url}/hub/.well-known/mercure?topic=state&newest=1"
    assert [e.data for e in take(url, 1)] == ["n1"]
    with httpx.stream("GET", url, timeout=10) as r:
        text = ""
        for chunk in r.iter_text():
            text += chunk
            if "ssehub-live" in text:
                break
    assert 'data: n1\n\nevent: ssehub-live\ndata: {"replayed": 1}\n\n' in text
    bad = httpx.get(f"{served.url}/hub/.well-known/mercure?topic=state&newest=x", timeout=10)
    assert bad.status_code == 400
    assert "'newest' must be one integer" in bad.text
