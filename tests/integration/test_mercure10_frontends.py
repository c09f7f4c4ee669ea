"""Mercure 1.0 (draft 1.0.0-alpha.3) beside 0.x, on both front ends: every
test runs against `ssehub serve` and `examples/fastapi_mercure.py` under
uvicorn, real processes configured by the same `SSEHUB_*` variables."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.frontends import FRONTENDS, Frontend
from tests.support.helpers import free_port
from tests.support.mercure10 import (
    DETAIL,
    ENV,
    FORM,
    access_token,
    publish,
    stream,
)


@pytest.fixture(scope="module", params=FRONTENDS)
def hub(request: pytest.FixtureRequest) -> Iterator[Frontend]:
    frontend = Frontend(request.param, ENV, free_port())
    yield frontend
    frontend.stop()


def test_match_and_match_urlpattern_select_topics(hub: Frontend) -> None:
    params = [
        ("match", "https://example.com/{x}"),  # exact: braces are not a template in 1.0
        ("match_urlpattern", "https://example.com/books/:id"),
        ("match_urlpattern", "/relative/:name"),  # resolved against the hub's resource URL
    ]
    with stream(hub, params) as s:
        publish(hub, "https://example.com/books/7/reviews", "not matched")
        publish(hub, "https://example.com/x", "not matched either")
        publish(hub, "https://example.com/{x}", "exact")
        publish(hub, "https://example.com/books/7", "pattern")
        publish(hub, "https://hub.example/relative/abc", "relative")
        assert [e.data for e in s.take(3)] == ["exact", "pattern", "relative"]


def test_reconnection_speaks_the_dialect_of_the_request(hub: Frontend) -> None:
    ids = [publish(hub, "resume10", str(i)) for i in range(3)]
    with stream(hub, [("match", "resume10"), ("last_event_id", ids[0])]) as s:
        assert s.response.headers["mercure-last-event-id"] == ids[0]
        assert "last-event-id" not in s.response.headers
        assert [e.data for e in s.take(2)] == ["1", "2"]
    # the header takes precedence over the query parameter
    query = [("match", "resume10"), ("last_event_id", "earliest")]
    with stream(hub, query, {"Last-Event-ID": ids[1]}) as s:
        assert s.response.headers["mercure-last-event-id"] == ids[1]
        assert [e.data for e in s.take(1)] == ["2"]
    with stream(hub, [("match", "resume10"), ("last_event_id", "urn:uuid:gone")]) as s:
        assert s.response.headers["mercure-last-event-id"] == "earliest"
    with stream(hub, [("topic", "resume10"), ("lastEventID", ids[0])]) as s:  # 0.x, as before
        assert s.response.headers["last-event-id"] == ids[0]
        assert "mercure-last-event-id" not in s.response.headers


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("match=a&topic=b", "mixes Mercure 1.0 (match) and 0.x (topic)"),
        ("match=a&lastEventID=x", "mixes Mercure 1.0 (match) and 0.x (lastEventID)"),
        ("last_event_id=x&topic=a", "mixes Mercure 1.0 (last_event_id) and 0.x (topic)"),
        ("match=a&authorization=x", "and 0.x (authorization)"),
        ("match_regex=a", "unsupported matcher parameter 'match_regex'"),
        ("Matches=a", "unsupported matcher parameter 'Matches'"),
        ("match=a%01b", "control or format character U+0001"),
        ("match=a%E2%80%8Bb", "control or format character U+200B"),
        ("match=", "empty 'match' query parameter"),
        ("match=a&match=b&match=c&match=d", "more than 3 topic matchers"),
        ("last_event_id=x", "missing 'match' query parameter"),
        ("match_urlpattern=https://e.com/(a", "match_urlpattern"),
    ],
)
def test_bad_1_0_requests_get_a_400_naming_the_problem(
    hub: Frontend, query: str, reason: str
) -> None:
    r = httpx.get(f"{hub.hub}?{query}", timeout=10)
    assert r.status_code == 400
    assert reason in r.text
    assert r.text.count("\n") == 1


@pytest.mark.parametrize("kind", FRONTENDS)
@pytest.mark.parametrize(
    ("dialect", "refused", "accepted"),
    [("1.0", "topic=a", "match=a"), ("0.x", "match=a", "topic=a")],
)
def test_a_hub_can_speak_one_dialect_only(
    kind: str, dialect: str, refused: str, accepted: str
) -> None:
    frontend = Frontend(kind, {**ENV, "SSEHUB_MERCURE_DIALECT": dialect}, free_port())
    try:
        r = httpx.get(f"{frontend.hub}?{refused}", timeout=10)
        assert r.status_code == 400
        assert f"this hub speaks Mercure {dialect} only" in r.text
        with httpx.stream("GET", f"{frontend.hub}?{accepted}", timeout=10) as ok:
            assert ok.status_code == 200
    finally:
        frontend.stop()


def test_private_updates_reach_1_0_access_tokens_by_header_and_cookie(hub: Frontend) -> None:
    topic = "https://example.com/books/1"
    pattern = [("match_urlpattern", "https://example.com/books/:id")]
    reader = access_token(["subscribe"], [{"match": topic}])
    writer = access_token(
        ["publish"], [{"match": "https://example.com/*", "match_type": "urlpattern"}]
    )
    cookie = {"Cookie": f"__Secure-mercure_access_token={reader}"}
    with (
        stream(hub, pattern) as anonymous,
        stream(hub, pattern, {"Authorization": f"Bearer {reader}"}) as by_header,
        stream(hub, pattern, cookie) as by_cookie,
    ):
        publish(hub, "https://example.com/books/2", "other secret", ("private", "on"), auth=writer)
        publish(hub, topic, "secret", ("private", "on"), auth=writer)
        publish(hub, topic, "public", auth=writer)
        for s in (by_header, by_cookie):
            assert [e.data for e in s.take(2)] == ["secret", "public"]
        assert [e.data for e in anonymous.take(1)] == ["public"]


def test_1_0_token_refusals_are_rfc_6750_challenges(hub: Frontend) -> None:
    foreign = access_token(["subscribe"], [{"match": "*"}], iss="https://evil.example")
    r = httpx.get(hub.hub, params={"match": "a"}, headers={"Authorization": f"Bearer {foreign}"})
    assert r.status_code == 401
    assert r.text == "the access token's issuer 'https://evil.example' is not trusted\n"
    assert r.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    reader = access_token(["subscribe"], [{"match": "*"}])
    sent = {**FORM, "Authorization": f"Bearer {reader}"}
    r = httpx.post(hub.hub, content="topic=a&data=x", headers=sent, timeout=10)
    assert r.status_code == 403
    assert r.headers["www-authenticate"].startswith('Bearer error="insufficient_scope"')


def test_a_1_0_stream_ends_when_its_token_expires(hub: Frontend) -> None:
    reader = access_token(["subscribe"], [{"match": "*"}], seconds=2)
    started = time.monotonic()
    with stream(hub, [("match", "expiring")], {"Authorization": f"Bearer {reader}"}) as s:
        raw = b"".join(s.chunks)  # ends when the hub closes the stream
    assert time.monotonic() - started < 8
    assert raw.endswith(b"retry: 1000\n\n")


def test_protected_resource_metadata_and_the_challenge_that_points_at_it(hub: Frontend) -> None:
    where = f"{hub.url}/.well-known/oauth-protected-resource/.well-known/mercure"
    r = httpx.get(where, timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    document = r.json()
    assert document["resource"] == ENV["SSEHUB_RESOURCE"]  # the aud tokens need
    assert document["authorization_details_types_supported"] == [DETAIL]
    assert document["bearer_methods_supported"] == ["header"]
    assert document["mercure_cookie"] == "__Secure-mercure_access_token"
    bad = access_token(["subscribe"], [{"match": "*"}], seconds=-10)
    r = httpx.get(hub.hub, params={"match": "a"}, headers={"Authorization": f"Bearer {bad}"})
    assert r.status_code == 401
    # derived from the resource identifier (RFC 9728 section 3.1)
    metadata = "https://hub.example/.well-known/oauth-protected-resource/.well-known/mercure"
    assert r.headers["www-authenticate"].endswith(f', resource_metadata="{metadata}"')
