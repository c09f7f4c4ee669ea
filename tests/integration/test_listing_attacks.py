"""Attacks on the subscriptions API (`--subscriptions`) over real sockets to
a hub server in the test's loop: path tricks that list more than the token
allows, and listings whose cost grows with every subscription of the hub
rather than with the page asked for (docs/security.md)."""

from __future__ import annotations

import gc
import time
from urllib.parse import quote

import jwt

from ssehub.mercure import JWTAuth
from ssehub.mercure._subscriptions import Active, Entry, Registry
from tests.support.helpers import request, subscribe
from tests.support.servers import run, serving, until

SECRET = "!ChangeThisMercureHubJWTSecretKey!"
SUBS = "/.well-known/mercure/subscriptions"
RESOURCE = "https://hub.example/.well-known/mercure"
ISSUER = "https://issuer.example"


def _bearer(subscribe: list[str]) -> dict[str, str]:
    token = jwt.encode({"mercure": {"subscribe": subscribe}}, SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def _access_token() -> dict[str, str]:
    claims = {
        "iss": ISSUER,
        "aud": RESOURCE,
        "exp": int(time.time()) + 600,
        "authorization_details": [
            {
                "type": "https://mercure.rocks/authorization-detail",
                "actions": ["subscribe"],
                "topics": [{"match": f"{SUBS}*", "match_type": "urlpattern"}],
            }
        ],
    }
    token = jwt.encode(claims, SECRET, algorithm="HS256", headers={"typ": "at+jwt"})
    return {"Authorization": f"Bearer {token}"}


def test_an_empty_segment_in_a_0x_listing_path_lists_nothing_more() -> None:
    # a token allowed to read single subscriptions
    # (`{topic}/{subscriber}`, ids it was given) listed every subscription
    # of the hub with `//`, and every subscriber of a topic with `TOPIC/`:
    # the template's variables match empty segments
    async def body() -> None:
        auth = JWTAuth(subscriber_key=SECRET)
        async with serving(auth=auth, anonymous=True, subscriptions=True) as (hub, _, port):
            stream = await subscribe(port, "https://example.com/room")
            try:
                await until(lambda: hub.statistics().subscribers == 1)
                one = _bearer([f"{SUBS}/{{topic}}/{{subscriber}}"])
                room = quote("https://example.com/room", safe="")
                for path in (f"{SUBS}//", f"{SUBS}/{room}/", f"{SUBS}/{room}//"):
                    answer = await request(port, "GET", path, headers=one)
                    assert answer.status == 404, (path, answer.text)
                    assert "urn:uuid:" not in answer.text
                # (the token's own shape still works: an unknown id is 404)
                unknown = await request(port, "GET", f"{SUBS}/{room}/nobody", headers=one)
                assert (unknown.status, unknown.text) == (404, "no such subscription\n")
            finally:
                stream.close()

    run(body)


async def _cost(port: int, path: str, headers: dict[str, str], times: int = 40) -> float:
    """Seconds of `times` listings of `path`, each answered 200."""
    started = time.perf_counter()
    for _ in range(times):
        answer = await request(port, "GET", path, headers=headers)
        assert answer.status == 200, answer.text
    return time.perf_counter() - started


async def _add(registry: Registry, start: int, stop: int) -> None:
    """Subscriptions of other clients (one 0.x topic, one 1.0 matcher each)."""
    for n in range(start, stop):
        await registry.opened(Active(f"urn:uuid:{n}", (Entry(f"https://example.com/t/{n}"),)))
        await registry.opened(
            Active(f"urn:uuid:m{n}", (Entry(f"https://example.com/t/{n}", "exact"),))
        )


def test_a_listing_costs_its_page_not_every_subscription_of_the_hub() -> None:
    # a listing of one topic or matcher, or a page after a cursor (`after=`,
    # also a forged one past the end), scanned every subscription of the
    # hub: with 50,000 a client holding a listing token could keep the loop
    # busy ~100 ms per request. Measured as a ratio against the same
    # requests with 200 subscriptions (no wall-clock limit): it was ~30x.
    async def body() -> None:
        auth = JWTAuth(subscriber_key=SECRET)
        async with serving(auth=auth, subscriptions=True, issuers=(ISSUER,), resource=RESOURCE) as (
            _,
            server,
            port,
        ):
            registry = server.mercure.registry
            assert registry is not None
            registry.max_pending = 0  # listed, not announced: only the listing is measured
            v0 = _bearer(["*"])
            v1 = _access_token()
            topic = quote("https://example.com/t/7", safe="")
            requests = [
                (f"{SUBS}/{topic}", v0),
                (f"{SUBS}/exact/{topic}", v1),
                # a cursor before every subscription (seqs are microseconds):
                # a page of 100 either way, so the two sides list as much
                (f"{SUBS}?after=999999999.0&limit=100", v1),
            ]
            # Each the best of three, after a full collection: the collector
            # walking the 100,000 objects added (or a busy machine) is not
            # what is measured.
            await _add(registry, 0, 200)
            gc.collect()
            small = [min([await _cost(port, p, h) for _ in range(3)]) for p, h in requests]
            await _add(registry, 200, 50_000)
            gc.collect()
            large = [min([await _cost(port, p, h) for _ in range(3)]) for p, h in requests]
            for (path, _), few, many in zip(requests, small, large, strict=True):
                assert many < 5 * few, (path, few, many)

    run(body)


def test_forged_cursors_and_limits_are_refused_or_harmless() -> None:
    # (holds) `after` must look like a `next` link's cursor, `limit` 1 to 1000
    async def body() -> None:
        auth = JWTAuth(subscriber_key=SECRET)
        async with serving(auth=auth, subscriptions=True, issuers=(ISSUER,), resource=RESOURCE) as (
            _,
            _,
            port,
        ):
            v1 = _access_token()
            for query in ("after=1", "after=-1.0", "after=1.1e9", "limit=0", "limit=1001"):
                answer = await request(port, "GET", f"{SUBS}?{query}", headers=v1)
                assert answer.status == 400, (query, answer.text)
            answer = await request(port, "GET", f"{SUBS}?after={'9' * 30}.0", headers=v1)
            assert answer.status == 200

    run(body)
