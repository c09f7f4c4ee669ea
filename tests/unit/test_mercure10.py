"""Mercure 1.0 beside 0.x in the sans-IO layer, and the hub's `matchers=`."""

from __future__ import annotations

import asyncio

import pytest

from ssehub.hub import Hub, Matcher, Resume
from ssehub.mercure import Mercure, MercureConfig, Request, Response, Subscribe

RESOURCE = "https://hub.example/.well-known/mercure"


def decide(query: bytes, config: MercureConfig | None = None, **headers: str) -> object:
    sent = {k.replace("_", "-").encode(): v.encode() for k, v in headers.items()}
    request = Request("GET", "/.well-known/mercure", query, sent)
    return Mercure(config or MercureConfig(resource=RESOURCE), Hub()).decide(request)


def test_a_1_0_subscription_has_matchers_and_answers_mercure_last_event_id() -> None:
    decision = decide(b"match=a%7Bx%7D&match_urlpattern=%2Fbooks%2F%3Aid&last_event_id=e1")
    assert isinstance(decision, Subscribe)
    assert decision.dialect == "1.0"
    assert decision.topics == ()
    assert decision.matchers == (
        Matcher.exact("a{x}"),
        Matcher.urlpattern("/books/:id", base=RESOURCE),
    )
    assert decision.last_event_id == "e1"
    headers = dict(decision.headers(Resume("newest", gap=False, replayed=0)))
    assert headers["Mercure-Last-Event-ID"] == "e1"
    assert "Last-Event-ID" not in headers
    gap = dict(decision.headers(Resume("newest", gap=True, replayed=0)))
    assert gap["Mercure-Last-Event-ID"] == "earliest"


def test_the_last_event_id_header_wins_over_the_query_parameter() -> None:
    decision = decide(b"match=a&last_event_id=from-query", last_event_id="from-header")
    assert isinstance(decision, Subscribe)
    assert decision.last_event_id == "from-header"


def test_0_x_requests_are_answered_as_before() -> None:
    decision = decide(b"topic=a{x}&lastEventID=e1")
    assert isinstance(decision, Subscribe)
    assert (decision.dialect, decision.topics, decision.matchers) == ("0.x", ("a{x}",), ())
    assert dict(decision.headers(Resume("n", gap=False, replayed=0)))["Last-Event-ID"] == "e1"


def test_relative_patterns_resolve_against_the_request_host_without_a_resource() -> None:
    decision = decide(b"match_urlpattern=%2Fbooks%2F%3Aid", MercureConfig(), host="h.example")
    assert isinstance(decision, Subscribe)
    (matcher,) = decision.matchers
    assert matcher.matches("http://h.example/books/1")
    assert not matcher.matches("http://other.example/books/1")


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        (b"match=a&topic=b", "mixes Mercure 1.0 (match) and 0.x (topic)"),
        (b"MATCH=a", "unsupported matcher parameter 'MATCH'"),
        (b"match=a%C2%85", "control or format character U+0085"),
        (b"match=a%7F", "control or format character U+007F"),
    ],
)
def test_refusals_name_the_problem(query: bytes, reason: str) -> None:
    decision = decide(query)
    assert isinstance(decision, Response)
    assert decision.status == 400
    assert reason in decision.body.decode()


def test_dialects_setting_and_its_variables() -> None:
    only = MercureConfig(dialects="1.0")
    refused = decide(b"topic=a", only)
    assert isinstance(refused, Response)
    assert "this hub speaks Mercure 1.0 only: subscribe with match=TOPIC" in refused.body.decode()
    assert isinstance(decide(b"match=a", only), Subscribe)
    config = MercureConfig.from_environ(
        {"SSEHUB_MERCURE_DIALECT": "0.x", "SSEHUB_RESOURCE": RESOURCE}
    )
    assert (config.dialects, config.resource) == ("0.x", RESOURCE)
    assert MercureConfig.from_environ({}).dialects == "both"
    with pytest.raises(ValueError, match=r"^SSEHUB_MERCURE_DIALECT: expected one of both, 1.0"):
        MercureConfig.from_environ({"SSEHUB_MERCURE_DIALECT": "2.0"})
    with pytest.raises(ValueError, match=r"^MercureConfig.dialects must be one of"):
        MercureConfig(dialects="1")
    with pytest.raises(ValueError, match=r"^MercureConfig.resource must be an absolute URL"):
        MercureConfig(resource="hub")


def test_hub_subscribe_takes_matchers_beside_or_instead_of_topics() -> None:
    async def main() -> list[str]:
        async with Hub() as hub:
            matchers = [Matcher.exact("a{x}"), Matcher.urlpattern("https://e.com/b/:id")]
            async with hub.subscribe((), matchers=matchers) as events:
                for topic in ("a{x}", "ab", "https://e.com/b/1", "https://e.com/b/1/2"):
                    await hub.publish(topic, topic)
                return [(await asyncio.wait_for(anext(events), 5)).data for _ in range(2)]

    assert asyncio.run(main()) == ["a{x}", "https://e.com/b/1"]
