"""What a desktop program needs from `BackgroundHub`: events read from a
plain thread, its own pages publishing to its command topics (and nobody
else), `ssehub serve`'s Mercure settings, and a log line that says why a
page of another origin is refused."""

from __future__ import annotations

import logging
import threading
import time

import httpx
import jwt
import pytest

from ssehub import BackgroundHub
from ssehub.hub import HubConfig, SlowSubscriberError
from ssehub.mercure import JWTAuth, MercureConfig
from ssehub.protocol import Event
from tests.support.helpers import free_port
from tests.support.processes import SECRET, spawn, stop

MERCURE = "/.well-known/mercure"


def test_a_plain_thread_iterates_a_topic_until_close_or_stop() -> None:
    with BackgroundHub(port=0) as hub:
        received: list[Event] = []
        commands = hub.subscribe("commands")

        def read() -> None:
            with commands:
                received.extend(commands)

        reader = threading.Thread(target=read)
        reader.start()
        ids = [hub.publish("commands", f"c{i}") for i in range(3)]
        hub.publish("other", "not for it")
        closing = hub.subscribe("*")
        threading.Timer(0.2, closing.close).start()  # from another thread
        assert closing.get(timeout=10) is None  # close() ended the blocked read
        assert list(closing) == []
    reader.join(10)  # stop() ended the iteration
    assert not reader.is_alive()
    assert [(e.id, e.data) for e in received] == list(zip(ids, ["c0", "c1", "c2"], strict=True))
    assert commands.last_event_id == ids[-1]


def test_a_thread_resumes_after_an_id_and_times_out_when_nothing_comes() -> None:
    with BackgroundHub(port=0) as hub:
        ids = [hub.publish("t", str(i)) for i in range(3)]
        with hub.subscribe("t", last_event_id=ids[0]) as events:
            assert [events.get(10).data, events.get(10).data] == ["1", "2"]  # type: ignore[union-attr]
            with pytest.raises(TimeoutError):
                events.get(timeout=0.05)


def test_a_thread_that_falls_behind_meets_the_slow_subscriber_policy() -> None:
    config = HubConfig(max_buffer_events=4)
    with BackgroundHub(port=0, config=config) as hub, hub.subscribe("t", buffer=2) as events:
        ids = [hub.publish("t", str(i)) for i in range(20)]  # the thread reads none meanwhile
        taken: list[str | None] = []

        def drain() -> None:
            while True:
                event = events.get(10)
                assert event is not None
                taken.append(event.id)

        with pytest.raises(SlowSubscriberError):
            drain()
        assert taken == ids[: len(taken)]  # in order, then the end: resume from the last one
        assert events.last_event_id == (taken[-1] if taken else None)


def test_the_page_gets_a_cookie_that_publishes_to_its_topics_from_its_origin_only() -> None:
    with BackgroundHub(port=0, page=True, page_publishes=("commands",)) as hub:
        page = httpx.get(hub.url + "/")
        cookie = page.headers["set-cookie"]
        assert cookie.endswith("; HttpOnly; SameSite=Strict; Path=/")
        token = cookie.split(";")[0].removeprefix("mercureAuthorization=")
        cookies = {"mercureAuthorization": token}

        def post(topic: str, origin: str | None, host: str | None = None) -> httpx.Response:
            headers = {"Origin": origin} if origin else {}
            if host:
                headers["Host"] = host
            with httpx.Client(cookies=cookies) as client:
                return client.post(
                    hub.url + MERCURE, data={"topic": topic, "data": "x"}, headers=headers
                )

        with hub.subscribe("commands") as commands:
            ok = post("commands", hub.url)
            assert ok.status_code == 200
            assert commands.get(10) == Event("x", id=ok.text)
        assert post("settings", hub.url).status_code == 403  # not its topic
        refused = post("commands", "http://evil.example")  # another site's page
        assert (refused.status_code, refused.text) == (
            403,
            "publishing with the cookie needs an allowed Origin (publish_origins)\n",
        )
        assert post("commands", None).status_code == 403  # no Origin: not provably the page
        # a DNS name rebound to this address is not "self", even if it matches
        rebound = f"evil.example:{hub.port}"
        assert post("commands", f"http://{rebound}", host=rebound).status_code == 403
        anonymous = httpx.post(hub.url + MERCURE, data={"topic": "commands"})
        assert anonymous.status_code == 401  # never anonymous
    with BackgroundHub(port=0, page=True) as hub:
        assert "set-cookie" not in httpx.get(hub.url + "/").headers


def test_the_mercure_settings_of_ssehub_serve() -> None:
    config = MercureConfig(auth=JWTAuth(publisher_key=SECRET), cors_origins=("null",))
    with BackgroundHub(port=0, mercure=config) as hub:
        token = jwt.encode({"mercure": {"publish": ["*"]}}, SECRET, algorithm="HS256")
        answer = httpx.post(
            hub.url + MERCURE,
            data={"topic": "t", "data": "x"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 200
        preflight = httpx.options(hub.url + MERCURE, headers={"Origin": "null"})
        assert preflight.headers["access-control-allow-origin"] == "null"
    with pytest.raises(ValueError, match="inside mercure=MercureConfig"):
        BackgroundHub(port=0, mercure=config, cors_origins=("null",))
    with pytest.raises(ValueError, match="choose one"):
        BackgroundHub(port=0, anonymous_publish=True, page_publishes=("c",))
    with BackgroundHub(port=0, page=True, mercure=config, page_publishes=("c",)) as hub:
        cookie = httpx.get(hub.url + "/").headers["set-cookie"].split(";")[0]
        claims = jwt.decode(cookie.split("=", 1)[1], SECRET, algorithms=["HS256"])
        assert claims == {"mercure": {"publish": ["c"]}}  # signed with the hub's own key


def test_a_refused_origin_is_logged_once_naming_the_option(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "ssehub.mercure")
    with BackgroundHub(port=0, cors_origins=("http://friend.example",)) as hub:
        for origin in ("null", "null", "http://friend.example", hub.url, "https://other.example"):
            with httpx.stream(
                "GET", hub.url + MERCURE, params={"topic": "t"}, headers={"Origin": origin}
            ) as response:
                assert response.status_code == 200
        assert httpx.options(hub.url + MERCURE, headers={"Origin": "null"}).status_code == 403
    lines = [r.getMessage() for r in caplog.records if r.name == "ssehub.mercure"]
    assert lines == [
        "refused cross-origin request from Origin 'null' "
        "(allow it with --cors-origin null / cors_origins=('null',))",
        "refused cross-origin request from Origin 'https://other.example' (allow it with "
        "--cors-origin https://other.example / cors_origins=('https://other.example',))",
    ]


def test_ssehub_serve_says_which_option_allows_a_refused_page() -> None:
    port = free_port()
    proc = spawn("serve", "--port", str(port), "--store", "memory:")
    try:
        url = f"http://127.0.0.1:{port}{MERCURE}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "ssehub serve did not start"
                time.sleep(0.05)
        for _ in range(3):
            with httpx.stream("GET", url, params={"topic": "t"}, headers={"Origin": "null"}):
                pass
    finally:
        code, _, err = stop(proc)
    assert code == 0, err
    refusals = [line for line in err.splitlines() if "refused cross-origin" in line]
    assert len(refusals) == 1, err
    assert refusals[0].endswith(
        "INFO ssehub.mercure refused cross-origin request from Origin 'null' "
        "(allow it with --cors-origin null / cors_origins=('null',))"
    )
