"""The same Mercure behaviour, auth and limits on both front ends: every
test runs against `ssehub serve` and against `examples/fastapi_mercure.py`
under uvicorn, real processes configured by the same `SSEHUB_*` variables."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import pytest

from ssehub.protocol import Event, EventStreamParser
from tests.support.frontends import FRONTENDS, Frontend, start_failure
from tests.support.helpers import free_port

SECRET = "!ChangeThisMercureHubJWTSecretKey!"
APP = "https://app.example"
ENV = {
    "SSEHUB_JWT_KEY": SECRET,
    "SSEHUB_ANONYMOUS": "1",
    "SSEHUB_CORS_ORIGIN": f"{APP},*",
    "SSEHUB_PUBLISH_ORIGIN": APP,
    "SSEHUB_SUBSCRIPTIONS": "1",
    "SSEHUB_MAX_TOPICS": "3",
    "SSEHUB_JWT_LEEWAY": "0",
}


def token(publish: list[str] | None = None, subscribe: list[str] | None = None,
          **claims: Any) -> str:  # fmt: skip
    mercure: dict[str, Any] = {}
    if publish is not None:
        mercure["publish"] = publish
    if subscribe is not None:
        mercure["subscribe"] = subscribe
    return jwt.encode({"mercure": mercure, **claims}, SECRET, algorithm="HS256")


WRITER = token(publish=["*"])
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module", params=FRONTENDS)
def hub(request: pytest.FixtureRequest) -> Iterator[Frontend]:
    frontend = Frontend(request.param, ENV, free_port())
    yield frontend
    frontend.stop()


def publish(hub: Frontend, body: str | list[tuple[str, str]], *, auth: str | None = WRITER,
            headers: dict[str, str] | None = None) -> httpx.Response:  # fmt: skip
    sent = {**FORM, **({"Authorization": f"Bearer {auth}"} if auth else {}), **(headers or {})}
    content = body if isinstance(body, str) else urlencode(body)
    return httpx.post(hub.hub, content=content, headers=sent, timeout=10)


class Stream:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.chunks = response.iter_raw()
        self.parser = EventStreamParser()
        self.events: list[Event] = []
        self.raw = b""

    def take(self, n: int) -> list[Event]:
        while len(self.events) < n:
            chunk = next(self.chunks)
            self.raw += chunk
            self.events += self.parser.feed(chunk)
        taken, self.events = self.events[:n], self.events[n:]
        return taken


@contextmanager
def stream(hub: Frontend, *topics: str, headers: dict[str, str] | None = None,
           params: list[tuple[str, str]] | None = None) -> Iterator[Stream]:  # fmt: skip
    query = urlencode([("topic", t) for t in topics] + (params or []))
    with (
        httpx.Client(timeout=10) as client,
        client.stream("GET", hub.hub, params=query, headers=headers or {}) as response,
    ):
        assert response.status_code == 200, response.read()
        yield Stream(response)


def test_subscribe_and_publish(hub: Frontend) -> None:
    with stream(hub, "news", "https://example.com/books/{id}") as s:
        assert s.response.headers["content-type"].startswith("text/event-stream")
        assert "no-store" in s.response.headers["cache-control"]
        r = publish(hub, [("topic", "news"), ("data", "one"), ("type", "note"), ("retry", "5")])
        assert r.status_code == 200
        assert r.text.startswith("urn:uuid:")
        publish(hub, [("topic", "https://example.com/books/7"), ("data", "two")])
        first, second = s.take(2)
        assert (first.id, first.data, first.event, first.retry) == (r.text, "one", "note", 5)
        assert second.data == "two"


def test_resume_headers_name_the_event_before_the_first_sent(hub: Frontend) -> None:
    ids = [publish(hub, [("topic", "resume"), ("data", str(i))]).text for i in range(3)]
    secret = publish(hub, [("topic", "elsewhere"), ("data", "s"), ("private", "on")]).text
    with stream(hub, "resume") as live:
        assert "last-event-id" not in live.response.headers  # it did not ask to resume
    with stream(hub, "resume", headers={"Last-Event-ID": ids[0]}) as s:
        assert s.response.headers["last-event-id"] == ids[0]  # never the private update's id
        assert [e.data for e in s.take(2)] == ["1", "2"]
    with stream(hub, "resume", params=[("lastEventID", "earliest")]) as s:
        assert s.response.headers["last-event-id"] == "earliest"
        assert [e.id for e in s.take(3)] == ids
    with stream(hub, "resume", headers={"Last-Event-ID": "urn:uuid:gone"}) as s:
        assert s.response.headers["last-event-id"] == "earliest"
        assert s.response.headers["ssehub-gap"] == "1"
        assert secret not in s.response.headers.values()


def test_private_updates_reach_tokens_by_header_cookie_and_query(hub: Frontend) -> None:
    topic = "https://example.com/private/1"
    reader = token(subscribe=[topic])
    with (
        stream(hub, topic) as anonymous,
        stream(hub, topic, headers={"Authorization": f"Bearer {reader}"}) as by_header,
        stream(hub, topic, headers={"Cookie": f"mercureAuthorization={reader}"}) as by_cookie,
        stream(hub, topic, params=[("authorization", reader)]) as by_query,
    ):
        publish(hub, [("topic", topic), ("data", "secret"), ("private", "on")])
        publish(hub, [("topic", topic), ("data", "public")])
        for s in (by_header, by_cookie, by_query):
            assert [e.data for e in s.take(2)] == ["secret", "public"]
        assert [e.data for e in anonymous.take(1)] == ["public"]


def test_refusals_have_their_status_and_reason(hub: Frontend) -> None:
    bad = jwt.encode(
        {"mercure": {"subscribe": ["*"]}},
        "another key, long enough for HS256 !!",
        algorithm="HS256",
    )
    r = httpx.get(hub.hub, params={"topic": "a"}, headers={"Authorization": f"Bearer {bad}"})
    assert (r.status_code, r.text) == (401, "the JWT's signature is not valid for this hub\n")
    r = publish(hub, [("topic", "a"), ("data", "x")], auth=None)
    assert (r.status_code, r.text) == (
        401,
        "publishing requires a JWT with a mercure.publish claim\n",
    )
    r = publish(hub, [("topic", "b"), ("data", "x")], auth=token(publish=["a"]))
    assert (r.status_code, r.text) == (403, "the JWT does not allow publishing to 'b'\n")
    r = httpx.get(hub.hub, params=[("topic", t) for t in "abcd"])
    assert (r.status_code, r.text) == (400, "more than 3 topics in one subscription\n")
    r = httpx.get(hub.hub)
    assert (r.status_code, r.text) == (400, "missing 'topic' query parameter\n")
    r = httpx.put(hub.hub)
    assert r.status_code == 405


def test_cors_gives_credentials_to_listed_origins_only(hub: Frontend) -> None:
    def cors(origin: str) -> httpx.Headers:
        with stream(hub, "cors", headers={"Origin": origin}) as s:
            return s.response.headers

    listed = cors(APP)
    assert listed["access-control-allow-origin"] == APP
    assert listed["access-control-allow-credentials"] == "true"
    other = cors("https://evil.example")
    assert other["access-control-allow-origin"] == "*"  # public updates, no cookie
    assert "access-control-allow-credentials" not in other
    assert "access-control-allow-origin" not in cors("null")
    pre = httpx.options(hub.hub, headers={"Origin": APP, "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 204
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert "Authorization" in pre.headers["access-control-allow-headers"]


def test_publishing_with_the_cookie_needs_an_allowed_origin(hub: Frontend) -> None:
    cookie = {"Cookie": f"mercureAuthorization={WRITER}"}
    r = publish(hub, [("topic", "c"), ("data", "x")], auth=None, headers=cookie)
    assert (r.status_code, r.text) == (
        403, "publishing with the cookie needs an allowed Origin (publish_origins)\n"
    )  # fmt: skip
    r = publish(hub, [("topic", "c"), ("data", "x")], auth=None, headers={**cookie, "Origin": APP})
    assert r.status_code == 200


def test_subscriptions_api_lists_who_is_subscribed(hub: Frontend) -> None:
    reader = token(subscribe=["/.well-known/mercure/subscriptions{/topic}{/subscriber}"])
    with stream(hub, "watched"):
        url = f"{hub.hub}/subscriptions/watched"
        deadline = time.monotonic() + 5
        while True:
            r = httpx.get(url, headers={"Authorization": f"Bearer {reader}"})
            assert r.status_code == 200, r.text
            if r.json()["subscriptions"] or time.monotonic() > deadline:
                break
        (sub,) = r.json()["subscriptions"]
        assert (sub["topic"], sub["active"]) == ("watched", True)
        r = httpx.get(url, headers={"Authorization": f"Bearer {token(subscribe=['other'])}"})
        assert r.status_code == 403


# -- issue 11: the protocol-level trust fixes -----------------------------------------


def test_an_empty_id_is_no_id(hub: Frontend) -> None:
    with stream(hub, "ids") as s:
        first = publish(hub, [("topic", "ids"), ("data", "a"), ("id", "")])
        second = publish(hub, [("topic", "ids"), ("data", "b"), ("id", "")])
        assert (first.status_code, second.status_code) == (200, 200)
        assert first.text.startswith("urn:uuid:")
        assert second.text != first.text
        assert [e.id for e in s.take(2)] == [first.text, second.text]
        assert b"id: \n" not in s.raw
        assert b"id:\n" not in s.raw


def test_non_utf8_fields_and_parameters_are_refused(hub: Frontend) -> None:
    with stream(hub, "a\ufffd", "a%FE") as s:
        r = publish(hub, "topic=a%FF&data=x")
        assert (r.status_code, r.text) == (400, "form field 'topic' is not valid UTF-8\n")
        r = publish(hub, "topic=a%25FE&data=%FF%FE")
        assert (r.status_code, r.text) == (400, "form field 'data' is not valid UTF-8\n")
        publish(hub, [("topic", "a%FE"), ("data", "only this")])
        assert [e.data for e in s.take(1)] == ["only this"]  # nothing else was stored
    r = httpx.get(f"{hub.hub}?topic=a%FF")
    assert (r.status_code, r.text) == (400, "query parameter 'topic' is not valid UTF-8\n")


def test_a_huge_retry_is_a_400_naming_the_field(hub: Frontend) -> None:
    r = publish(hub, [("topic", "r"), ("data", "x"), ("retry", "9" * 4400)])
    assert (r.status_code, r.text) == (400, "'retry' has more than 10 digits\n")


def test_a_stream_ends_when_its_token_expires(hub: Frontend) -> None:
    reader = token(subscribe=["*"], exp=int(time.time()) + 2)
    started = time.monotonic()
    with stream(hub, "expiring", headers={"Authorization": f"Bearer {reader}"}) as s:
        for chunk in s.chunks:  # ends when the hub closes the stream
            s.raw += chunk
    assert time.monotonic() - started < 8  # it stayed open forever before
    assert s.raw.endswith(b"retry: 1000\n\n")  # the browser comes back soon, with a fresh token


@pytest.mark.parametrize("kind", FRONTENDS)
def test_a_key_that_does_not_fit_the_algorithm_is_refused_at_start(kind: str) -> None:
    pem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"
    code, err = start_failure(kind, {"SSEHUB_JWT_KEY": pem}, free_port())
    assert code != 0
    assert "the publisher JWT key does not fit HS256, which needs an HMAC secret" in err


def test_two_authorization_headers_are_refused(hub: Frontend) -> None:
    reader, other = token(subscribe=["*"]), token(subscribe=[])
    twice = [("Authorization", f"Bearer {other}"), ("Authorization", f"Bearer {reader}")]
    r = httpx.get(hub.hub, params={"topic": "a"}, headers=twice, timeout=10)
    assert (r.status_code, r.text) == (400, "more than one Authorization header\n")
    r = httpx.post(hub.hub, content="topic=a&data=x", headers=[*twice, *FORM.items()])
    assert (r.status_code, r.text) == (400, "more than one Authorization header\n")


@pytest.mark.parametrize("kind", FRONTENDS)
def test_a_bad_variable_is_named_alike_by_both(kind: str) -> None:
    code, err = start_failure(kind, {"SSEHUB_ANONYMOUS": "maybe"}, free_port())
    assert code != 0
    assert "SSEHUB_ANONYMOUS: expected true or false, not 'maybe'" in err
