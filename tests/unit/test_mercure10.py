"""Mercure 1.0 beside 0.x in the sans-IO layer, and the hub's `matchers=`."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

import jwt
import pytest

from ssehub.hub import Hub, Matcher, Resume
from ssehub.mercure import (
    METADATA_PATH,
    Mercure,
    MercureConfig,
    Publish,
    Request,
    Response,
    Subscribe,
    discovery_link,
)
from tests.support.mercure10_decide import (
    DETAIL,
    FORM,
    ISSUER,
    RESOURCE,
    SECRET,
    TOKENS,
    access_token,
    publish_with,
    refused,
    subscribe_with,
)


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


def test_exact_matchers_alone_reach_live_events() -> None:
    async def main() -> list[str]:
        async with Hub() as hub:
            matchers = [Matcher.exact("a"), Matcher.exact("b{x}")]
            async with hub.subscribe((), matchers=matchers) as events:
                for topic in ("c", "b{x}", "a"):
                    await hub.publish(topic, topic)
                got = [(await asyncio.wait_for(anext(events), 5)).data for _ in range(2)]
            async with hub.subscribe(("c",), matchers=[Matcher.exact("a")]) as events:
                await hub.publish(("a", "c"), "both")  # one delivery for two matching topics
                await hub.publish("c", "c")
                got += [(await asyncio.wait_for(anext(events), 5)).data for _ in range(2)]
            return got

    assert asyncio.run(main()) == ["b{x}", "a", "both", "c"]


# -- Mercure 1.0 access tokens (RFC 9068 profile) ----------------------------------


def test_a_valid_access_token_grants_its_matchers_and_ends_at_exp() -> None:
    exp = int(time.time()) + 30
    topics = [{"match": "/books/:id", "match_type": "urlpattern"}, {"match": "a"}]
    token = access_token(["subscribe", "some-future-action"], topics, exp=exp)
    decision = subscribe_with(token)
    assert isinstance(decision, Subscribe)
    assert decision.private_topics == {
        Matcher.urlpattern("/books/:id", base=RESOURCE),
        Matcher.exact("a"),
    }
    assert decision.expires == exp + TOKENS.auth.leeway
    typ = jwt.encode(
        {"iss": ISSUER, "aud": RESOURCE, "exp": exp}, SECRET, headers={"typ": "application/AT+JWT"}
    )
    assert isinstance(subscribe_with(typ), Subscribe)  # the equivalent spelling of typ


@pytest.mark.parametrize(
    ("make", "reason"),  # (made when the test runs: the tokens expire)
    [
        (lambda: access_token(headers={"typ": "JWT"}), "typ must be at+jwt"),
        (
            lambda: access_token(iss="https://evil.example"),
            "issuer 'https://evil.example' is not trusted",
        ),
        (lambda: access_token(iss=None), "has no 'iss' claim"),
        (lambda: access_token(aud="https://other-hub.example"), f"aud does not contain {RESOURCE}"),
        (lambda: access_token(exp=None), "has no 'exp' claim"),
        (lambda: access_token(exp=int(time.time()) - 60), "has expired"),
        (lambda: access_token(nbf=int(time.time()) + 60), "not valid yet"),
        (
            lambda: access_token(key="another key, long enough for HS256 !!"),
            "signature is not valid",
        ),
        (lambda: access_token(algorithm="HS512", key=SECRET * 2), "must be signed with HS256"),
        (
            lambda: access_token(topics=[{"match": "a", "match_type": "regex"}]),
            "unsupported match_type",
        ),
        (lambda: access_token(topics=[{"match": "a"}, "b"]), "topic 1: must be an object"),
        (lambda: access_token(topics=[]), "topics must be a non-empty array"),
        (lambda: access_token(actions=[]), "actions must be a non-empty array"),
        (lambda: access_token(actions=["subscribe", 7]), "every action must be a string"),
        (lambda: access_token(topics=[{"match": "x"}] * 65), "more than 64 topics"),
        (
            lambda: access_token(topics=[{"match": "x" * 2000}]),
            "match must be 1 to 1024 characters",
        ),
        (
            lambda: access_token(authorization_details=[{"type": DETAIL}] * 33),
            "more than 32 Mercure",
        ),
        (lambda: access_token(authorization_details={"type": DETAIL}), "must be an array"),
        (lambda: "x" * 9000, "longer than 8192 bytes"),
    ],
)
def test_bad_access_tokens_are_invalid_tokens_never_partly_accepted(
    make: Callable[[], str], reason: str
) -> None:
    token = make()
    refused(subscribe_with(token), 401, reason, "invalid_token")
    if "typ" not in reason:  # (not at+jwt: a 0.x publish)
        refused(publish_with(token), 401, reason, "invalid_token")


def test_a_urlpattern_that_does_not_compile_invalidates_the_whole_token() -> None:
    bad = {"match": "https://e.com/(a", "match_type": "urlpattern"}
    token = access_token(["subscribe"], [{"match": "*"}, bad])
    refused(subscribe_with(token), 401, "Mercure authorization detail 0, topic 1", "invalid_token")


def test_key_material_in_the_token_header_is_ignored() -> None:
    attacker = "attacker's own key, long enough for HS256"
    jwk = {"kty": "oct", "k": "YXR0YWNrZXIncyBvd24ga2V5LCBsb25nIGVub3VnaCBmb3IgSFMyNTY"}
    for header in ({"jwk": jwk}, {"jku": "https://evil.example/jwks.json"}):
        token = access_token(key=attacker, headers=header)
        refused(subscribe_with(token), 401, "signature is not valid", "invalid_token")


def test_alg_none_is_refused() -> None:
    token = access_token(algorithm="none", key="")
    refused(subscribe_with(token), 401, "must be signed with HS256", "invalid_token")


def test_publishing_needs_publish_on_every_topic() -> None:
    token = access_token(
        ["publish"], [{"match": "https://e.com/b/:id", "match_type": "urlpattern"}]
    )
    ok = publish_with(token, b"topic=https://e.com/b/1&topic=https://e.com/b/2&data=x")
    assert isinstance(ok, Publish)
    assert ok.topics == ("https://e.com/b/1", "https://e.com/b/2")
    both = publish_with(token, b"topic=https://e.com/b/1&topic=https://e.com/c&data=x")
    refused(both, 403, "does not allow publishing to 'https://e.com/c'", "insufficient_scope")
    reader = access_token(["subscribe"])
    refused(publish_with(reader), 403, "does not allow publishing to 'a'", "insufficient_scope")
    refused(publish_with(access_token(), b"topic=*&data=x"), 400, "the topic '*'", "")
    refused(publish_with(access_token(), b"topic=a&id=earliest"), 400, "is reserved", "")


def test_1_0_refusals_without_a_token_carry_a_bare_bearer_challenge() -> None:
    closed = dataclasses.replace(TOKENS, anonymous=False)
    request = Request("GET", "/.well-known/mercure", b"match=a")
    refused(Mercure(closed, Hub()).decide(request), 401, "requires an access token", None)


def test_the_1_0_cookie_and_never_a_token_in_the_url() -> None:
    token = access_token(["subscribe"], [{"match": "a"}])
    cookie = {b"cookie": f"__Secure-mercure_access_token={token}".encode()}
    decision = Mercure(TOKENS, Hub()).decide(
        Request("GET", "/.well-known/mercure", b"match=a", cookie)
    )
    assert isinstance(decision, Subscribe)
    assert decision.private_topics == {Matcher.exact("a")}
    in_url = f"match=a&authorization={token}".encode()
    decision = Mercure(TOKENS, Hub()).decide(Request("GET", "/.well-known/mercure", in_url))
    assert isinstance(decision, Response)
    assert decision.status == 400  # a 0.x marker in a 1.0 request


def test_0_x_tokens_keep_working_unless_the_hub_speaks_1_0_only() -> None:
    old = jwt.encode({"mercure": {"publish": ["*"], "subscribe": ["a"]}}, SECRET)
    assert isinstance(publish_with(old), Publish)
    sent = {b"authorization": f"Bearer {old}".encode()}
    request = Request("GET", "/.well-known/mercure", b"topic=a", sent)
    decision = Mercure(TOKENS, Hub()).decide(request)
    assert isinstance(decision, Subscribe)
    assert decision.private_topics == {"a"}
    only = dataclasses.replace(TOKENS, dialects="1.0")
    post = Request("POST", "/.well-known/mercure", b"", {**FORM, **sent}, b"topic=a")
    refused(Mercure(only, Hub()).decide(post), 401, "typ must be at+jwt", "invalid_token")
    # a 1.0 token on a 0.x request mixes the dialects
    new = {b"authorization": f"Bearer {access_token()}".encode()}
    mixed = Mercure(TOKENS, Hub()).decide(Request("GET", "/.well-known/mercure", b"topic=a", new))
    assert isinstance(mixed, Response)
    assert mixed.status == 400
    assert "mixes 0.x query parameters (topic) with a Mercure 1.0 access token" in (
        mixed.body.decode()
    )


def test_issuers_setting_and_variable() -> None:
    config = MercureConfig.from_environ({"SSEHUB_JWT_ISSUER": "https://a, https://b"})
    assert config.issuers == ("https://a", "https://b")
    with pytest.raises(ValueError, match=r"^MercureConfig.issuers must be a tuple"):
        MercureConfig(issuers=("",))


def test_discovery_link_carries_the_optional_target_attributes() -> None:
    hub = "https://hub.example/.well-known/mercure"
    link = discovery_link(
        hub, self_url="https://app.example/b/1", last_event_id="urn:uuid:1", event_type="book"
    )
    assert link == (
        f'<{hub}>; rel="mercure"; last-event-id="urn:uuid:1"; type="book", '
        '<https://app.example/b/1>; rel="self"'
    )
    assert discovery_link(hub) == f'<{hub}>; rel="mercure"'
    with pytest.raises(ValueError, match="not a value for the Link attribute type"):
        discovery_link(hub, event_type='a"b')


def test_a_0_x_only_hub_publishes_no_metadata() -> None:
    request = Request("GET", METADATA_PATH)
    assert isinstance(Mercure(TOKENS, Hub()).decide(request), Response)
    document = Mercure(TOKENS, Hub()).decide(request)
    assert isinstance(document, Response)
    assert document.status == 200
    only = dataclasses.replace(TOKENS, dialects="0.x")
    refused = Mercure(only, Hub()).decide(request)
    assert isinstance(refused, Response)
    assert refused.status == 404  # its absence tells clients it is a 0.x hub
