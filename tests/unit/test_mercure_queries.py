"""Subscribe query strings parsed once (`Mercure._queries`): shared by
the requests that send the same one, bounded whatever the requests send,
and never a carrier of what one request's headers or `Host` gave it."""

from __future__ import annotations

import tracemalloc

from ssehub.hub import Hub, Resume
from ssehub.mercure import Mercure, MercureConfig, Request, Response, Subscribe
from ssehub.mercure._mercure import _CORS_SHARED, _QUERIES, _QUERY_BYTES

PATH = "/.well-known/mercure"


def subscribe(mercure: Mercure, query: bytes, **headers: bytes) -> Subscribe:
    sent = {k.replace("_", "-").encode(): v for k, v in headers.items()}
    decision = mercure.decide(Request("GET", PATH, query, sent))
    assert isinstance(decision, Subscribe), decision
    return decision


def test_subscribers_that_add_nothing_to_the_same_query_share_one_decision() -> None:
    mercure = Mercure(MercureConfig(), Hub())
    first = subscribe(mercure, b"topic=a&topic=b")
    assert subscribe(mercure, b"topic=a&topic=b") is first
    assert (first.topics, first.last_event_id, first.cors) == (("a", "b"), None, ())
    resumed = subscribe(mercure, b"topic=a&topic=b", last_event_id=b"x")
    assert resumed is not first
    assert (resumed.topics, resumed.last_event_id) == (("a", "b"), "x")
    assert subscribe(mercure, b"topic=a&topic=b") is first  # and no trace of "x"


def test_kept_queries_are_bounded_in_number_and_length() -> None:
    mercure = Mercure(MercureConfig(), Hub())
    tracemalloc.start()
    try:
        for n in range(_QUERIES):
            subscribe(mercure, f"topic=t{n}".encode())
        full = tracemalloc.get_traced_memory()[0]
        for n in range(_QUERIES, 20 * _QUERIES):
            subscribe(mercure, f"topic=t{n}".encode())
        later = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(mercure._queries) == _QUERIES
    assert later - full < 64 * 1024  # 19 times as many queries: no more memory kept
    assert b"topic=t0" not in mercure._queries  # the oldest went first
    long = b"topic=" + b"x" * _QUERY_BYTES
    assert subscribe(mercure, long).topics == ("x" * _QUERY_BYTES,)
    assert long not in mercure._queries  # parsed, checked, not kept
    refused = mercure.decide(Request("GET", PATH, b"topic=a&newest=0"))
    assert isinstance(refused, Response)
    assert refused.status == 400
    assert b"topic=a&newest=0" not in mercure._queries


def test_a_kept_query_is_checked_as_a_new_one_is() -> None:
    mercure = Mercure(
        MercureConfig(),
        Hub(),
    )
    subscribe(mercure, b"topic=a&lastEventID=x")
    longest = mercure.hub.config.max_last_event_id
    too_long = mercure.decide(
        Request("GET", PATH, b"topic=a&lastEventID=x", {b"last-event-id": b"y" * (longest + 1)})
    )
    assert isinstance(too_long, Response)
    assert too_long.status == 400
    assert "Last-Event-ID is longer" in too_long.body.decode()
    # a query whose own id is too long is refused every time, never kept
    query = b"topic=a&lastEventID=" + b"z" * (longest + 1)
    for _ in range(2):
        refused = mercure.decide(Request("GET", PATH, query))
        assert isinstance(refused, Response)
        assert refused.status == 400
    assert query not in mercure._queries
    # ... and the header may still take its place, as always
    fine = subscribe(mercure, query, last_event_id=b"ok")
    assert fine.last_event_id == "ok"


def test_relative_url_patterns_resolve_against_each_request_host() -> None:
    mercure = Mercure(MercureConfig(dialects="both"), Hub())
    query = b"match_urlpattern=/books/:id"
    on_a = subscribe(mercure, query, host=b"a.example")
    on_b = subscribe(mercure, query, host=b"b.example")
    assert on_a.matchers[0].matches("http://a.example/books/1")
    assert not on_a.matchers[0].matches("http://b.example/books/1")
    assert on_b.matchers[0].matches("http://b.example/books/1")
    assert not on_b.matchers[0].matches("http://a.example/books/1")
    assert subscribe(mercure, query, host=b"b.example") is on_b
    again = subscribe(mercure, query, host=b"a.example")
    assert again.matchers[0].matches("http://a.example/books/1")
    assert not again.matchers[0].matches("http://b.example/books/1")


def test_each_allowed_origin_shares_its_own_decision_and_head() -> None:
    origins = tuple(f"https://app{n}.example" for n in range(2 * _CORS_SHARED))
    mercure = Mercure(MercureConfig(cors_origins=(*origins, "*")), Hub())
    resume = Resume("earliest", gap=False, replayed=0)
    for _ in range(2):
        for origin in (*origins, "https://any.example", "https://other.example"):
            decision = subscribe(mercure, b"topic=a", origin=origin.encode())
            allowed = "*" if origin not in origins else origin
            assert dict(decision.cors)["Access-Control-Allow-Origin"] == allowed
            head = decision.head(resume)
            assert f"Access-Control-Allow-Origin: {allowed}\r\n".encode() in head
            assert (b"Access-Control-Allow-Credentials" in head) is (origin in origins)
            assert decision.head(resume) is head  # made once
            assert b"Last-Event-ID" not in head
    shared = mercure._queries[b"topic=a"].with_cors
    assert len(shared) == _CORS_SHARED  # as many as allowed, at most the bound
    first = subscribe(mercure, b"topic=a", origin=origins[0].encode())
    assert subscribe(mercure, b"topic=a", origin=origins[0].encode()) is first
    assert subscribe(mercure, b"topic=a") is not first  # no Origin: no CORS headers
    assert subscribe(mercure, b"topic=a").cors == ()
