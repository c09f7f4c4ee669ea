"""The attacks of the Mercure 1.0 draft's Security Considerations, and its
Reconnection MUSTs, over real sockets on both front ends (`ssehub serve`
and the ASGI app under uvicorn): oversized tokens, algorithm confusion,
key material in the token's header, partial authorization details, and
replayed private updates checked against the token of the reconnection."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

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


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_oversized_token_is_a_401_naming_the_bound_not_a_431(hub: Frontend) -> None:
    big = access_token(["subscribe", "publish"], [{"match": "x" * 500}] * 14)
    assert 8192 < len(big) < 12000  # (well under the 16 KiB request head)
    old = jwt.encode({"mercure": {"subscribe": ["x" * 9000]}}, ENV["SSEHUB_JWT_KEY"])
    for params, headers in (
        ({"match": "a"}, bearer(big)),
        ({"match": "a"}, {"Cookie": f"__Secure-mercure_access_token={big}"}),
        ({"topic": "a"}, bearer(old)),
        ({"topic": "a", "authorization": old}, {}),
    ):
        r = httpx.get(hub.hub, params=params, headers=headers, timeout=10)
        assert r.status_code == 401, r.text
        assert r.text == "the token is longer than 8192 bytes\n"
        assert r.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    r = httpx.post(hub.hub, content="topic=a&data=x", headers={**FORM, **bearer(big)}, timeout=10)
    assert r.status_code == 401
    assert r.text == "the token is longer than 8192 bytes\n"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize("kind", FRONTENDS)
def test_alg_confusion_and_header_keys_are_refused_on_an_rs256_hub(kind: str) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    env = {**ENV, "SSEHUB_JWT_KEY": public.decode(), "SSEHUB_JWT_ALGORITHM": "RS256"}
    claims = {
        "iss": "https://issuer.example",
        "aud": ENV["SSEHUB_RESOURCE"],
        "exp": int(time.time()) + 60,
        "authorization_details": [
            {"type": DETAIL, "actions": ["subscribe", "publish"], "topics": [{"match": "*"}]}
        ],
    }
    genuine = jwt.encode(claims, private, algorithm="RS256", headers={"typ": "at+jwt"})
    # the hub's public key used as an HMAC secret
    head = json.dumps({"alg": "HS256", "typ": "at+jwt"}).encode()
    signing_input = f"{b64(head)}.{b64(json.dumps(claims).encode())}"
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    confused = f"{signing_input}.{b64(mac)}"
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(attacker.public_key()))
    embedded = jwt.encode(
        claims, attacker, algorithm="RS256", headers={"typ": "at+jwt", "jwk": jwk, "kid": "k"}
    )
    frontend = Frontend(kind, env, free_port())
    try:
        with httpx.stream("GET", frontend.hub, params={"match": "a"}, headers=bearer(genuine)) as r:
            assert r.status_code == 200
        for token, reason in (
            (confused, "the access token must be signed with RS256\n"),
            (
                embedded,
                "the access token's signature is not valid for its issuer 'https://issuer.example'\n",
            ),
        ):
            r = httpx.get(frontend.hub, params={"match": "a"}, headers=bearer(token), timeout=10)
            assert (r.status_code, r.text) == (401, reason)
            assert r.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
            sent = {**FORM, **bearer(token)}
            r = httpx.post(frontend.hub, content="topic=a&data=x", headers=sent, timeout=10)
            assert (r.status_code, r.text) == (401, reason)
    finally:
        frontend.stop()


def test_partial_authorization_details_publish_nothing(hub: Frontend) -> None:
    good = {"type": DETAIL, "actions": ["publish"], "topics": [{"match": "partial"}]}
    claims = {
        "iss": "https://issuer.example",
        "aud": ENV["SSEHUB_RESOURCE"],
        "exp": int(time.time()) + 60,
        "authorization_details": [good, {**good, "topics": [{"match": "x", "match_type": "re"}]}],
    }
    partial = jwt.encode(claims, ENV["SSEHUB_JWT_KEY"], headers={"typ": "at+jwt"})
    with stream(hub, [("match", "partial")]) as s:
        sent = {**FORM, **bearer(partial)}
        r = httpx.post(hub.hub, content="topic=partial&data=forged", headers=sent, timeout=10)
        assert r.status_code == 401
        assert "unsupported match_type 're'" in r.text
        assert r.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
        publish(hub, "partial", "after")
        assert [e.data for e in s.take(1)] == ["after"]  # the forged update never went out


def test_replayed_private_updates_are_checked_against_the_token_of_the_reconnection(
    hub: Frontend,
) -> None:
    topic = "https://example.com/replay/1"
    writer = access_token(["publish"], [{"match": topic}])
    before = publish(hub, topic, "before", auth=writer)
    publish(hub, topic, "secret", ("private", "on"), auth=writer)
    publish(hub, topic, "public", auth=writer)
    reader = access_token(["subscribe"], [{"match": topic}])
    other = access_token(["subscribe"], [{"match": "https://example.com/replay/2"}])
    cases: tuple[tuple[dict[str, str], list[str]], ...] = (
        ({}, ["public"]),
        (bearer(other), ["public"]),
        (bearer(reader), ["secret", "public"]),
    )
    for headers, expected in cases:
        with stream(hub, [("match", topic), ("last_event_id", before)], headers) as s:
            assert s.response.headers["mercure-last-event-id"] == before
            got = s.take(len(expected))
            assert [e.data for e in got] == expected
            assert all(e.id for e in got)  # every dispatched event has an id
    # with a 0.x token on a 0.x request, the same rule
    old = jwt.encode({"mercure": {"subscribe": [topic]}}, ENV["SSEHUB_JWT_KEY"])
    with stream(hub, [("topic", topic), ("lastEventID", before)], bearer(old)) as s:
        assert [e.data for e in s.take(2)] == ["secret", "public"]


def test_earliest_replays_the_whole_history_and_says_earliest(hub: Frontend) -> None:
    ids = [publish(hub, "from-the-start", str(i)) for i in range(3)]
    with stream(hub, [("match", "from-the-start"), ("last_event_id", "earliest")]) as s:
        assert s.response.headers["mercure-last-event-id"] == "earliest"
        got = s.take(3)
        assert [(e.id, e.data) for e in got] == list(zip(ids, "012", strict=True))
    with stream(hub, [("match", "from-the-start")], {"Last-Event-ID": "earliest"}) as s:
        assert s.response.headers["mercure-last-event-id"] == "earliest"
        assert [e.data for e in s.take(3)] == ["0", "1", "2"]
