"""Mercure JWT authorization over real sockets: who may publish, who may
subscribe, who gets private updates, and why a token is refused."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ssehub.mercure import JWTAuth
from tests.support.helpers import publish, request, subscribe
from tests.support.servers import serving

SECRET = "!ChangeThisMercureHubJWTSecretKey!"


def token(publish: list[str] | None = None, subscribe: list[str] | None = None,
          key: Any = SECRET, algorithm: str = "HS256", **extra: Any) -> str:  # fmt: skip
    claims: dict[str, Any] = {}
    if publish is not None:
        claims["publish"] = publish
    if subscribe is not None:
        claims["subscribe"] = subscribe
    return jwt.encode({"mercure": claims, **extra}, key, algorithm=algorithm)


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(body())  # type: ignore[arg-type]


def bearer(t: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {t}"}


async def post(port: int, t: str | None, **fields: Any) -> Any:
    from tests.support.helpers import form

    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if t is not None:
        headers |= bearer(t)
    return await request(port, "POST", "/.well-known/mercure", headers=headers, body=form(**fields))


HS = JWTAuth(publisher_key=SECRET, subscriber_key=SECRET)
UNSIGNED = jwt.encode({"mercure": {"publish": ["*"]}}, None, algorithm="none")  # type: ignore[arg-type]


def test_publish_needs_a_token_that_covers_every_topic() -> None:
    async def body() -> None:
        async with serving(auth=HS, anonymous=True) as (hub, _, port):
            missing = await publish(port, topic="a", data="x")
            assert (missing.status, missing.text) == (
                401, "publishing requires a JWT with a mercure.publish claim\n"
            )  # fmt: skip
            narrow = await post(port, token(publish=["a"]), topic=["a", "b"], data="x")
            assert (narrow.status, narrow.text) == (
                403,
                "the JWT does not allow publishing to 'b'\n",
            )
            ok = await post(port, token(publish=["a", "b"]), topic=["a", "b"], data="x")
            assert ok.status == 200
            star = await post(port, token(publish=["*"]), topic="anything", data="y")
            assert star.status == 200
            history = await hub.backend.history(None, None)
            assert [r.event.data for r in history.records] == ["x", "y"]  # refused ones: nothing

    run(body)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (
            token(publish=["*"], key="another secret entirely, 32+ bytes long"),
            "signature is not valid",
        ),
        (token(publish=["*"], exp=int(time.time()) - 10), "has expired"),
        (UNSIGNED, "must be signed with HS256"),
        ("not.a.jwt", "the JWT is not valid"),
        (token(publish="*"), "mercure.publish claim must be a list"),  # type: ignore[arg-type]
    ],
)
def test_bad_tokens_are_refused_with_a_reason(bad: str, reason: str) -> None:
    async def body() -> None:
        async with serving(auth=HS) as (hub, _, port):
            response = await post(port, bad, topic="a", data="x")
            assert response.status == 401
            assert reason in response.text
            assert response.text.count("\n") == 1
            assert (await hub.backend.history(None, None)).records == []
            if "claim" not in reason:  # a token that is bad as a JWT is bad for subscribing too
                path = "/.well-known/mercure?topic=a"
                assert (await request(port, "GET", path, headers=bearer(bad))).status == 401

    run(body)


def test_private_updates_by_header_query_and_cookie() -> None:
    async def body() -> None:
        async with serving(auth=HS, anonymous=True) as (_, _, port):
            sub_token = token(subscribe=["orders"])
            anonymous = await subscribe(port, "orders")
            by_query = await subscribe(port, "orders", extra_query={"authorization": sub_token})
            by_cookie = await subscribe(
                port, "orders", headers={"Cookie": f"mercureAuthorization={sub_token}"}
            )
            by_header = await subscribe(port, "orders", headers=bearer(sub_token))
            pub = token(publish=["*"])
            secret = (await post(port, pub, topic="orders", data="secret", private="on")).text
            public = (await post(port, pub, topic="orders", data="public")).text
            for stream in (by_query, by_cookie, by_header):
                assert [e.id for e in await stream.next_events(2)] == [secret, public]
            assert [e.id for e in await anonymous.next_events(1)] == [public]
            for stream in (anonymous, by_query, by_cookie, by_header):
                stream.close()

    run(body)


def test_without_anonymous_access_subscribing_needs_a_token() -> None:
    async def body() -> None:
        async with serving(auth=HS) as (_, _, port):
            refused = await request(port, "GET", "/.well-known/mercure?topic=a")
            assert refused.status == 401
            assert "subscribing requires a JWT" in refused.text
            ok = await subscribe(port, "a", headers=bearer(token(subscribe=[])))
            assert ok.status == 200
            ok.close()

    run(body)


def test_rs256_with_separate_publisher_and_subscriber_keys() -> None:
    pub_private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sub_private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def pem(key: rsa.RSAPrivateKey) -> str:
        return (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    auth = JWTAuth(publisher_key=pem(pub_private), subscriber_key=pem(sub_private),
                   algorithm="RS256")  # fmt: skip

    async def body() -> None:
        async with serving(auth=auth) as (_, _, port):
            sub_token = token(subscribe=["*"], key=sub_private, algorithm="RS256")
            stream = await subscribe(port, "t", headers=bearer(sub_token))
            assert stream.status == 200
            wrong = token(publish=["*"], key=sub_private, algorithm="RS256")  # subscriber's key
            assert (await post(port, wrong, topic="t", data="x")).status == 401
            hs = token(publish=["*"])  # HS256 is not accepted by an RS256 hub
            assert "must be signed with RS256" in (await post(port, hs, topic="t", data="x")).text
            good = token(publish=["*"], key=pub_private, algorithm="RS256")
            sent = (await post(port, good, topic="t", data="private", private="1")).text
            assert [e.id for e in await stream.next_events(1)] == [sent]
            stream.close()

    run(body)


def test_config_checks_the_algorithm() -> None:
    with pytest.raises(ValueError, match="JWT algorithm must be one of"):
        JWTAuth(publisher_key="k", algorithm="none")


def test_cookie_publishing_needs_an_allowed_origin() -> None:
    from tests.support.helpers import form

    async def body() -> None:
        async with serving(auth=HS, publish_origins=("https://app.example",)) as (hub, _, port):
            cookie = {"Cookie": f"mercureAuthorization={token(publish=['*'])}",
                      "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
            path = "/.well-known/mercure"
            no_origin = await request(port, "POST", path, headers=cookie, body=form(topic="a"))
            assert no_origin.status == 403
            assert "needs an allowed Origin" in no_origin.text
            evil = {**cookie, "Origin": "https://evil.example"}
            assert (
                await request(port, "POST", path, headers=evil, body=form(topic="a"))
            ).status == 403
            good = {**cookie, "Origin": "https://app.example"}
            assert (
                await request(port, "POST", path, headers=good, body=form(topic="a"))
            ).status == 200
            referer = {**cookie, "Referer": "https://app.example/page?x=1"}
            assert (
                await request(port, "POST", path, headers=referer, body=form(topic="a"))
            ).status == 200
            assert len((await hub.backend.history(None, None)).records) == 2

    run(body)


def test_discovery_link() -> None:
    from ssehub.server import discovery_link

    assert discovery_link("https://hub.example/.well-known/mercure") == (
        '<https://hub.example/.well-known/mercure>; rel="mercure"'
    )
    assert discovery_link("https://h/.well-known/mercure", self_url="https://a/books/1") == (
        '<https://h/.well-known/mercure>; rel="mercure", <https://a/books/1>; rel="self"'
    )
    with pytest.raises(ValueError, match="not a URL"):
        discovery_link("https://h/>; rel=evil")


def test_subscription_events_and_the_subscriptions_api() -> None:
    from urllib.parse import quote

    watch = "/.well-known/mercure/subscriptions{/topic}{/subscriber}"

    async def body() -> None:
        async with serving(auth=HS, subscriptions=True) as (_, _, port):
            watcher_token = token(subscribe=[watch])
            watcher = await subscribe(port, watch, headers=bearer(watcher_token))
            assert watcher.status == 200
            reader = jwt.encode(
                {"mercure": {"subscribe": [], "payload": {"user": "alice"}}},
                SECRET,
                algorithm="HS256",
            )
            own = json.loads((await watcher.next_events(1))[0].data)
            assert (own["topic"], own["active"]) == (watch, True)  # it sees itself too
            alice = await subscribe(port, "books", headers=bearer(reader))
            started = json.loads((await watcher.next_events(1))[0].data)
            assert started["type"] == "Subscription"
            assert (started["topic"], started["active"], started["payload"]) == (
                "books", True, {"user": "alice"}
            )  # fmt: skip
            subscriber = started["subscriber"]
            assert started["id"] == (
                f"/.well-known/mercure/subscriptions/books/{quote(subscriber, safe='')}"
            )
            listing = await request(port, "GET", "/.well-known/mercure/subscriptions",
                                    headers=bearer(watcher_token))  # fmt: skip
            assert listing.status == 200
            assert listing.headers["content-type"] == "application/ld+json"
            doc = json.loads(listing.body)
            assert doc["type"] == "Subscriptions"
            assert {s["topic"] for s in doc["subscriptions"]} == {"books", watch}
            one = await request(port, "GET", started["id"], headers=bearer(watcher_token))
            assert json.loads(one.body)["subscriber"] == subscriber
            assert (await request(port, "GET", "/.well-known/mercure/subscriptions")).status == 401
            other = bearer(token(subscribe=["books"]))
            denied = await request(port, "GET", "/.well-known/mercure/subscriptions", headers=other)
            assert denied.status == 403
            alice.close()
            ended = json.loads((await watcher.next_events(1))[0].data)
            assert (ended["subscriber"], ended["active"]) == (subscriber, False)
            watcher.close()

    run(body)


def test_clock_skew_leeway_on_nbf_and_iat_is_configurable() -> None:
    async def body() -> None:
        soon = int(time.time()) + 2  # the publisher's clock is 2 s ahead of the hub's
        skewed = token(publish=["*"], nbf=soon, iat=soon)
        strict = JWTAuth(publisher_key=SECRET, leeway=0)
        async with serving(auth=strict) as (_, _, port):
            refused = await post(port, skewed, topic="a", data="x")
            assert (refused.status, refused.text) == (
                401, "the JWT is not valid yet (nbf or iat in the future)\n"
            )  # fmt: skip
        async with serving(auth=JWTAuth(publisher_key=SECRET, leeway=5)) as (_, _, port):
            accepted = await post(port, skewed, topic="a", data="x")
            assert accepted.status == 200

    run(body)
