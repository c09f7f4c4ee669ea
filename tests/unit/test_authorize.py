"""The authorization callback's sans-IO half: the question `Mercure.decide`
asks, what the app's answer means (`parse_answer`), and how
`Mercure.resume` combines it with the JWT's rights."""

from __future__ import annotations

import asyncio
import json

import pytest

from ssehub.hub import Hub
from ssehub.mercure import (
    Authorize,
    AuthorizeConfig,
    JWTAuth,
    Mercure,
    MercureConfig,
    Publish,
    Request,
    Response,
    Subscribe,
    Verdict,
    parse_answer,
)
from ssehub.mercure._authorize import sanitise
from tests.support.processes import SECRET

CALLBACK = AuthorizeConfig("http://127.0.0.1:9/authorize", forward=("Cookie", "X-Tenant"))


def token(claims: dict[str, object]) -> str:
    import jwt

    return str(jwt.encode({"mercure": claims}, SECRET, algorithm="HS256"))


def decide(config: MercureConfig, request: Request) -> object:
    async def body() -> object:
        async with Hub() as hub:
            return Mercure(config, hub).decide(request)

    return asyncio.run(body())


def resume(config: MercureConfig, request: Request, verdict: Verdict) -> object:
    async def body() -> object:
        async with Hub() as hub:
            mercure = Mercure(config, hub)
            decision = mercure.decide(request)
            assert isinstance(decision, Authorize), decision
            return mercure.resume(decision, verdict)

    return asyncio.run(body())


def get(query: str, **headers: str) -> Request:
    pairs = [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    return Request.from_pairs("GET", "/.well-known/mercure", query, pairs)


def test_the_question_names_the_action_the_topics_and_only_the_forwarded_headers() -> None:
    request = get("topic=a&topic=b/{id}", cookie="s=1", x_tenant="acme", x_other="no")
    decision = decide(MercureConfig(authorize=CALLBACK), request)
    assert isinstance(decision, Authorize)
    assert isinstance(decision.pending, Subscribe)
    question = decision.question
    assert json.loads(question.body) == {"action": "subscribe", "topics": ["a", "b/{id}"]}
    assert question.headers == (("cookie", "s=1"), ("x-tenant", "acme"))
    other = decide(MercureConfig(authorize=CALLBACK), get("topic=a&topic=b/{id}", cookie="s=2"))
    assert isinstance(other, Authorize)
    assert other.question.key != question.key


def test_without_a_callback_nothing_is_asked_and_publishing_needs_it_or_a_key() -> None:
    assert isinstance(decide(MercureConfig(), get("topic=a")), Subscribe)
    body = b"topic=a&data=x"
    post = Request.from_pairs(
        "POST",
        "/.well-known/mercure",
        b"",
        [(b"content-type", b"application/x-www-form-urlencoded")],
        body,
    )
    refused = decide(MercureConfig(), post)
    assert isinstance(refused, Response)
    assert refused.status == 403
    asked = decide(MercureConfig(authorize=CALLBACK), post)
    assert isinstance(asked, Authorize)
    assert isinstance(asked.pending, Publish)
    assert json.loads(asked.question.body) == {
        "action": "publish",
        "topics": ["a"],
        "private": False,
    }


def test_a_jwt_is_still_checked_before_the_app_is_asked() -> None:
    config = MercureConfig(auth=JWTAuth(subscriber_key=SECRET), authorize=CALLBACK)
    refused = decide(config, get("topic=a"))
    assert isinstance(refused, Response)
    assert refused.status == 401


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"nope", "not JSON"),
        (b"[]", '"allow"'),
        (b'{"allow": "yes"}', '"allow"'),
        (b'{"allow": true, "ttl": -1}', '"ttl"'),
        (b'{"allow": true, "ttl": true}', '"ttl"'),
        (b'{"allow": true, "private": "a"}', '"private"'),
        (b'{"allow": true, "subscribe": [1]}', '"subscribe"'),
        (b'{"allow": true, "publish": [""]}', '"publish"'),
        (b"[" * 100_000, "not JSON"),
    ],
)
def test_an_answer_that_makes_no_sense_is_a_failure(answer: bytes, reason: str) -> None:
    verdict = parse_answer(200, answer)
    assert verdict.failed
    assert not verdict.allow
    assert reason in verdict.reason


def test_a_status_other_than_200_is_a_failure_whatever_it_says() -> None:
    verdict = parse_answer(403, b'{"allow": true}')
    assert verdict.failed
    assert verdict.reason == "the authorization endpoint answered 403"


def test_the_reason_is_one_bounded_line() -> None:
    assert sanitise("a\r\nb\x1b[31m\u202ec\t d") == "a b [31m c d"
    long = sanitise("x" * 10_000)
    assert len(long) == 200
    assert long.endswith("…")
    verdict = parse_answer(200, json.dumps({"allow": False, "reason": "no\nway"}).encode())
    assert (verdict.allow, verdict.reason, verdict.failed) == (False, "no way", False)


def test_resume_refuses_with_the_reason_or_503_and_checks_the_lists() -> None:
    config = MercureConfig(authorize=CALLBACK)
    request = get("topic=a&topic=b")
    denied = resume(config, request, Verdict(False, "go away"))
    assert denied == Response.text(403, "not authorized: go away")
    failed = resume(config, request, Verdict.failure("timeout"))
    assert isinstance(failed, Response)
    assert failed.status == 503
    assert ("Retry-After", "1") in failed.headers
    narrowed = resume(config, request, Verdict(True, subscribe=frozenset({"a"})))
    assert narrowed == Response.text(403, "the app does not allow subscribing to 'b'")
    templated = resume(config, get("topic=b/1"), Verdict(True, subscribe=frozenset({"b/{x}"})))
    assert isinstance(templated, Subscribe)


def test_private_updates_are_what_both_the_jwt_and_the_app_allow() -> None:
    auth = JWTAuth(subscriber_key=SECRET)
    config = MercureConfig(auth=auth, authorize=CALLBACK, anonymous=True)
    with_jwt = get("topic=a", authorization=f"Bearer {token({'subscribe': ['books/{id}', 'x']})}")
    app = frozenset({"books/1", "y"})
    both = resume(config, with_jwt, Verdict(True, private=app))
    assert isinstance(both, Subscribe)
    assert both.private_topics == frozenset({"books/1"})
    silent = resume(config, with_jwt, Verdict(True))
    assert isinstance(silent, Subscribe)
    assert silent.private_topics == frozenset({"books/{id}", "x"})  # the app did not narrow
    anonymous = resume(config, get("topic=a"), Verdict(True, private=app))
    assert isinstance(anonymous, Subscribe)
    assert anonymous.private_topics == frozenset()
    alone = resume(MercureConfig(authorize=CALLBACK), get("topic=a"), Verdict(True, private=app))
    assert isinstance(alone, Subscribe)
    assert alone.private_topics == app


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "ftp://x"}, "AuthorizeConfig.url"),
        ({"forward": ("Cookie\r\n",)}, "AuthorizeConfig.forward"),
        ({"forward": ("Host",)}, "cannot name host"),
        ({"timeout": 0}, "AuthorizeConfig.timeout"),
        ({"cache_seconds": float("inf")}, "AuthorizeConfig.cache_seconds"),
        ({"cache_size": -1}, "AuthorizeConfig.cache_size"),
    ],
)
def test_config_mistakes_are_one_line(fields: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"url": "http://app/authorize", **fields}
    with pytest.raises(ValueError, match=message):
        AuthorizeConfig(**args)  # type: ignore[arg-type]


def test_from_environ_reads_the_callback() -> None:
    config = MercureConfig.from_environ(
        {"SSEHUB_AUTHORIZE_URL": "http://app/a", "SSEHUB_AUTHORIZE_FORWARD": "Cookie, X-T"}
    )
    assert config.authorize == AuthorizeConfig("http://app/a", forward=("Cookie", "X-T"))
    with pytest.raises(ValueError, match="SSEHUB_AUTHORIZE_"):
        MercureConfig.from_environ({"SSEHUB_AUTHORIZE_URL": "app"})
