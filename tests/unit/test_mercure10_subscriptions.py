"""Mercure 1.0 "Active Subscriptions" in the sans-IO layer: subscription
events (topic, document, SSE type, privacy), payloads, and the
subscription API (shapes, cursor, paging, refusals), beside the 0.x format."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import jwt

from ssehub.hub import Hub, Matcher
from ssehub.mercure import JWTAuth, Listing, Mercure, MercureConfig, Request, Response, Subscribe

SECRET = "!ChangeThisMercureHubJWTSecretKey!"
ISSUER = "https://issuer.example"
RESOURCE = "https://hub.example/.well-known/mercure"
DETAIL = "https://mercure.rocks/authorization-detail"
SUBS = "/.well-known/mercure/subscriptions"
CONFIG = MercureConfig(
    auth=JWTAuth(publisher_key=SECRET, subscriber_key=SECRET),
    issuers=(ISSUER,),
    resource=RESOURCE,
    anonymous=True,
    subscriptions=True,
)


def detail(actions: list[str], *topics: dict[str, str], payload: Any = None) -> dict[str, Any]:
    found: dict[str, Any] = {"type": DETAIL, "actions": actions, "topics": list(topics)}
    if payload is not None:
        found["payload"] = payload
    return found


def access_token(*details: dict[str, Any]) -> str:
    claims = {
        "iss": ISSUER,
        "aud": RESOURCE,
        "exp": int(time.time()) + 3600,  # WATCHER is made when the module is collected
        "sub": "alice",
        "authorization_details": list(details),
    }
    return jwt.encode(claims, SECRET, algorithm="HS256", headers={"typ": "at+jwt"})


WATCHER = access_token(
    detail(["subscribe"], {"match": f"{SUBS}/*", "match_type": "urlpattern"}),
    detail(["subscribe"], {"match": SUBS}),  # the whole collection
)


def request(path: str, query: bytes = b"", token: str | None = None, **extra: str) -> Request:
    headers = {k.replace("_", "-").encode(): v.encode() for k, v in extra.items()}
    if token is not None:
        headers[b"authorization"] = f"Bearer {token}".encode()
    return Request("GET", path, query, headers)


def run(body: Callable[[Mercure, Hub], Awaitable[None]]) -> None:
    async def main() -> None:
        async with Hub() as hub:
            mercure = Mercure(CONFIG, hub)
            await body(mercure, hub)
            await mercure.aclose()

    asyncio.run(main())


async def open_stream(mercure: Mercure, query: bytes, token: str | None) -> str:
    decision = mercure.decide(request("/.well-known/mercure", query, token))
    assert isinstance(decision, Subscribe), decision
    subscriber = await mercure.opened(decision, decision.topics)
    assert subscriber is not None
    return subscriber


async def events(mercure: Mercure, hub: Hub) -> list[tuple[str, str, bool, dict[str, Any]]]:
    assert mercure.registry is not None
    await mercure.registry.aclose()
    history = await hub.backend.history(None, None)
    return [
        (r.topics[0], r.event.event, r.private, json.loads(r.event.data)) for r in history.records
    ]


async def api(mercure: Mercure, path: str, query: bytes = b"", token: str | None = WATCHER,
              **headers: str) -> Response:  # fmt: skip
    decision = mercure.decide(request(path, query, token, **headers))
    if isinstance(decision, Response):
        return decision
    assert isinstance(decision, Listing), decision
    return await mercure.listing(decision)


def test_1_0_subscription_events_topic_document_type_and_privacy() -> None:
    async def body(mercure: Mercure, hub: Hub) -> None:
        token = access_token(detail(["subscribe"], {"match": "*"}, payload={"foo": "bar"}))
        query = b"match_urlpattern=https%3A%2F%2Fexample.com%2F%3Aselector&match=a%25b%2Fc"
        subscriber = await open_stream(mercure, query, token)
        assert subscriber.startswith("urn:uuid:")  # random, not derived from `sub`
        assert "alice" not in subscriber
        encoded = quote(subscriber, safe="")
        pattern = f"{SUBS}/urlpattern/https%3A%2F%2Fexample.com%2F%3Aselector/{encoded}"
        exact = f"{SUBS}/exact/a%25b%2Fc/{encoded}"  # the raw `a%b/c` encoded once, as a whole
        assert await events(mercure, hub) == [
            (pattern, "mercure", True, {
                "id": pattern, "type": "subscription", "match_type": "urlpattern",
                "match": "https://example.com/:selector", "subscriber": subscriber,
                "active": True, "payload": {"foo": "bar"},
            }),
            (exact, "mercure", True, {
                "id": exact, "type": "subscription", "match_type": "exact", "match": "a%b/c",
                "subscriber": subscriber, "active": True, "payload": {"foo": "bar"},
            }),
        ]  # fmt: skip

    run(body)


def test_events_say_active_true_then_false_and_0_x_keeps_its_format() -> None:
    async def body(mercure: Mercure, hub: Hub) -> None:
        assert mercure.registry is not None
        v1 = await open_stream(mercure, b"match=books", None)  # anonymous: no payload
        v0 = await open_stream(mercure, b"topic=books", None)
        await mercure.registry.aclose()
        mercure.closed(v1)
        mercure.closed(v0)
        seen = await events(mercure, hub)
        v1_topic = f"{SUBS}/exact/books/{quote(v1, safe='')}"
        v0_topic = f"{SUBS}/books/{quote(v0, safe='')}"
        assert [(t, e, p, d["active"]) for t, e, p, d in seen] == [
            (v1_topic, "mercure", True, True),
            (v0_topic, "message", True, True),
            (v1_topic, "mercure", True, False),
            (v0_topic, "message", True, False),
        ]
        assert "payload" not in seen[0][3]
        assert seen[1][3] == {  # 0.x: exactly as before
            "@context": "https://mercure.rocks/", "id": v0_topic, "type": "Subscription",
            "subscriber": v0, "topic": "books", "active": True,
        }  # fmt: skip

    run(body)


def test_payload_is_that_of_the_first_subscribe_detail_matching_the_matcher() -> None:
    token = access_token(
        detail(["publish"], {"match": "*"}, payload={"n": "publish only"}),
        detail(["subscribe"], {"match": "https://example.com/a"}, payload={"n": "a"}),
        detail(["subscribe"], {"match": "https://example.com/bare"}),  # first, no payload
        detail(
            ["subscribe"],
            {"match": "https://example.com/bar/:id", "match_type": "urlpattern"},
            payload={"n": "bar"},
        ),
        detail(["subscribe"], {"match": "*"}, payload={"n": "default"}),
    )
    query = (
        "match_urlpattern=https://example.com/bar/:id&match=https://example.com/a"
        "&match=https://example.com/bare&match=https://example.com/bar/7&match=other"
    )
    decision = Mercure(CONFIG, Hub()).decide(
        request("/.well-known/mercure", quote(query, safe="=&").encode(), token)
    )
    assert isinstance(decision, Subscribe)
    assert decision.matchers[0] == Matcher.urlpattern("https://example.com/bar/:id", base=RESOURCE)
    assert decision.payloads == (
        {"n": "bar"},  # the pattern matches the subscription's own pattern string
        {"n": "a"},
        None,  # its first matching detail has no payload: not a later one's
        {"n": "bar"},  # an exact topic the pattern matches
        {"n": "default"},  # `*` serves as a default
    )


def test_the_api_lists_1_0_subscriptions_with_the_link_cursor_and_pages() -> None:
    async def body(mercure: Mercure, hub: Hub) -> None:
        ids = [await open_stream(mercure, b"match=a&match=b", None) for _ in range(3)]
        v0 = await open_stream(mercure, b"topic=a", None)
        cursor = await hub.publish("x", "last")
        r = await api(mercure, SUBS)
        assert (r.status, r.content_type) == (200, "application/json")
        headers = dict(r.headers)
        assert headers["Link"] == (
            f'<{RESOURCE}>; rel="mercure"; last-event-id="{cursor}"; '
            'content-type="application/json"; type="mercure"'
        )
        doc = json.loads(r.body)
        assert (doc["id"], doc["type"], doc["last_event_id"]) == (SUBS, "subscriptions", cursor)
        assert [(s["subscriber"], s["match"]) for s in doc["subscriptions"]] == [
            (i, m) for i in ids for m in ("a", "b")
        ]  # 1.0 documents only: the 0.x one is in the 0.x API
        assert v0 not in r.body.decode()
        # one matcher's collection, in pages of 2 following the `next` link
        seen: list[str] = []
        path, query = f"{SUBS}/exact/b", b"limit=2"
        while True:
            r = await api(mercure, path, query)
            assert r.status == 200, r.body
            page = json.loads(r.body)
            assert page["id"] == f"{SUBS}/exact/b"
            seen += [s["subscriber"] for s in page["subscriptions"]]
            links = dict(r.headers)["Link"].split(", ")
            if len(links) == 1:
                break
            target = links[1].removeprefix("<?").removesuffix('>; rel="next"')
            query = target.encode()  # (a query-only reference: the same path)
        assert seen == ids
        # one subscription: the event document itself
        one = f"{SUBS}/exact/a/{quote(ids[1], safe='')}"
        r = await api(mercure, one)
        assert json.loads(r.body) == {
            "id": one, "type": "subscription", "match_type": "exact", "match": "a",
            "subscriber": ids[1], "active": True,
        }  # fmt: skip
        assert "last-event-id" in dict(r.headers)["Link"]
        mercure.closed(ids[1])
        assert (await api(mercure, one)).status == 404
        assert (await api(mercure, f"{SUBS}/exact/c/{quote(ids[0], safe='')}")).status == 404

    run(body)


def test_api_refusals_name_the_problem() -> None:
    narrow = access_token(detail(["subscribe"], {"match": f"{SUBS}/exact/a"}))
    publisher = access_token(detail(["publish"], {"match": "*"}))
    forged = jwt.encode(jwt.decode(WATCHER, options={"verify_signature": False}), "x" * 32,
                        headers={"typ": "at+jwt"})  # fmt: skip

    async def body(mercure: Mercure, hub: Hub) -> None:
        await open_stream(mercure, b"match=a", None)
        cases: list[tuple[Response, int, str, str | None]] = [
            (await api(mercure, SUBS, token=None), 401, "requires an access token", "Bearer"),
            (await api(mercure, SUBS, token=narrow), 403, "does not allow subscribe on", "scope"),
            (await api(mercure, SUBS, token=publisher), 403, "does not allow", "scope"),
            (await api(mercure, SUBS, token=forged), 401, "signature is not valid", "invalid"),
            (await api(mercure, f"{SUBS}/exact"), 404, "/{match_type}/{match}", None),
            (await api(mercure, f"{SUBS}/exact/a/b/c"), 404, "/{match_type}/{match}", None),
            (await api(mercure, f"{SUBS}/exact//b"), 404, "percent-encoded", None),
            (await api(mercure, f"{SUBS}/regex/a"), 404, "no matcher type 'regex'", None),
            (await api(mercure, f"{SUBS}/exact/a%FF"), 400, "match in the path is not valid", None),
            (await api(mercure, f"{SUBS}/exact/{'a' * 9000}"), 414, "longer than 8192", None),
            (await api(mercure, SUBS, b"limit=0"), 400, "'limit' must be one integer", None),
            (await api(mercure, SUBS, b"limit=1001"), 400, "from 1 to 1000", None),
            (await api(mercure, SUBS, b"after=x"), 400, "'after' must be the cursor", None),
        ]
        for response, status, reason, challenge in cases:
            assert (response.status, reason in response.body.decode()) == (status, True), response
            sent = dict(response.headers).get("WWW-Authenticate", "")
            if challenge == "scope":
                assert sent.startswith('Bearer error="insufficient_scope"'), sent
            elif challenge == "invalid":
                assert sent.startswith('Bearer error="invalid_token"'), sent
            elif challenge is not None:
                assert sent.startswith("Bearer resource_metadata="), sent
        # the narrow token reads exactly its own resource: the same matcher
        # that grants its events grants the API
        r = await api(mercure, f"{SUBS}/exact/a", token=narrow)
        assert r.status == 200
        assert len(json.loads(r.body)["subscriptions"]) == 1

    run(body)


def test_cors_pages_can_read_the_link_cursor() -> None:
    config = MercureConfig(
        auth=CONFIG.auth, issuers=(ISSUER,), resource=RESOURCE, subscriptions=True,
        cors_origins=("https://app.example",),
    )  # fmt: skip

    async def body() -> None:
        async with Hub() as hub:
            mercure = Mercure(config, hub)
            decision = mercure.decide(request(SUBS, b"", WATCHER, origin="https://app.example"))
            assert isinstance(decision, Listing)
            headers = dict((await mercure.listing(decision)).headers)
            assert headers["Access-Control-Expose-Headers"] == "Link"
            assert headers["Access-Control-Allow-Origin"] == "https://app.example"

    asyncio.run(body())


def test_a_listed_subscription_that_ends_before_its_event_is_announced_ending() -> None:
    async def body(mercure: Mercure, hub: Hub) -> None:
        assert mercure.registry is not None
        quick = await open_stream(mercure, b"match=q", None)
        mercure.closed(quick)  # before the worker ran: never told, never listed
        shown = await open_stream(mercure, b"match=s", None)
        listed = json.loads((await api(mercure, SUBS)).body)["subscriptions"]
        assert [s["subscriber"] for s in listed] == [shown]
        mercure.closed(shown)  # the listing showed it: its end must be told
        seen = await events(mercure, hub)
        assert [(d["subscriber"], d["active"]) for _, _, _, d in seen] == [
            (shown, True),
            (shown, False),
        ]
        assert mercure.registry.statistics().coalesced == 1

    run(body)


def test_hub_statistics_count_1_0_matcher_subscribers_by_topic() -> None:
    async def main() -> tuple[dict[str, int], int, int]:
        async with Hub() as hub:
            a = hub.subscribe((), matchers=[Matcher.exact("https://e.example/a")])
            b = hub.subscribe((), matchers=[Matcher.urlpattern("https://e.example/:x")])
            c = hub.subscribe(("https://e.example/a",))
            async with a, b, c:
                return (
                    hub.statistics().subscribers_by_topic,
                    hub.subscribers("https://e.example/a"),
                    hub.subscribers("https://e.example/b"),
                )

    by_topic, a, b = asyncio.run(main())
    assert by_topic == {"https://e.example/a": 2, "https://e.example/:x": 1}
    assert (a, b) == (3, 1)
