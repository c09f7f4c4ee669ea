"""The Mercure 1.0 draft's Token Validation, Authorization Details, Topic
Matcher List and Matcher Types MUSTs, and the attacks its Security
Considerations list, against the sans-IO layer: algorithm confusion, key
material in the token's header, tokens from another issuer, partial
authorization details, oversized tokens."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ssehub.hub import Hub, Matcher
from ssehub.mercure import (
    METADATA_PATH,
    JWTAuth,
    Mercure,
    MercureConfig,
    Publish,
    Request,
    Response,
    Subscribe,
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

PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = (
    PRIVATE.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
RS256 = dataclasses.replace(
    TOKENS, auth=JWTAuth(publisher_key=PUBLIC_PEM, subscriber_key=PUBLIC_PEM, algorithm="RS256")
)


def claims(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "iss": ISSUER,
        "aud": RESOURCE,
        "exp": int(time.time()) + 60,
        "authorization_details": [
            {"type": DETAIL, "actions": ["subscribe", "publish"], "topics": [{"match": "*"}]}
        ],
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hs256_by_hand(header: dict[str, object], body: dict[str, object], secret: bytes) -> str:
    """An HS256 JWT signed with any bytes (PyJWT refuses a PEM as a secret)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def decide(config: MercureConfig, token: str, method: str = "GET") -> object:
    sent = {b"authorization": f"Bearer {token}".encode()}
    if method == "GET":
        return Mercure(config, Hub()).decide(
            Request("GET", "/.well-known/mercure", b"match=a", sent)
        )
    request = Request("POST", "/.well-known/mercure", b"", {**FORM, **sent}, b"topic=a&data=x")
    return Mercure(config, Hub()).decide(request)


# -- Token Validation: the algorithm -------------------------------------------------


def test_alg_confusion_the_rs256_public_key_as_an_hmac_secret_is_refused() -> None:
    genuine = jwt.encode(claims(), PRIVATE, algorithm="RS256", headers={"typ": "at+jwt"})
    assert isinstance(decide(RS256, genuine), Subscribe)
    assert isinstance(decide(RS256, genuine, "POST"), Publish)
    # the attack: sign HS256 with the hub's public key, hoping it is used as the secret
    forged = hs256_by_hand({"alg": "HS256", "typ": "at+jwt"}, claims(), PUBLIC_PEM.encode())
    for method in ("GET", "POST"):
        refused(decide(RS256, forged, method), 401, "must be signed with RS256", "invalid_token")


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "RS512", "PS256", "HS256"])
def test_only_the_configured_algorithm_is_accepted_never_none(alg: str) -> None:
    header = b64(json.dumps({"alg": alg, "typ": "at+jwt"}).encode())
    body = b64(json.dumps(claims()).encode())
    for signature in ("", b64(b"whatever")):
        token = f"{header}.{body}.{signature}"
        refused(decide(RS256, token), 401, "must be signed with RS256", "invalid_token")


def test_a_key_that_does_not_fit_the_algorithm_is_refused_at_start_in_one_line() -> None:
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    for key, algorithm, expected in (
        (ec_pem, "RS256", "needs an RSA PEM public key (got an ECPublicKey)"),
        (PUBLIC_PEM, "ES256", "needs an EC PEM public key (got an RSAPublicKey)"),
        (PUBLIC_PEM, "HS256", "needs an HMAC secret"),
    ):
        with pytest.raises(ValueError, match="does not fit") as raised:
            JWTAuth(publisher_key=key, algorithm=algorithm)
        message = str(raised.value)
        assert message.startswith(
            f"the publisher JWT key does not fit {algorithm}, which {expected}"
        )
        assert "\n" not in message
        assert "<" not in message  # (PyJWT's own words name a generator object)


# -- Token Validation: the key comes from the hub, never from the token ----------------


def test_jwk_jku_x5u_x5c_and_kid_header_keys_are_ignored() -> None:
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(attacker.public_key()))
    attacker_pem = attacker.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for extra in (
        {"jwk": jwk},
        {"jku": "https://evil.example/jwks.json"},
        {"x5u": "https://evil.example/cert.pem"},
        {"x5c": [b64(attacker_pem)]},
        {"kid": "attacker", "jwk": jwk},
    ):
        token = jwt.encode(
            claims(), attacker, algorithm="RS256", headers={"typ": "at+jwt", **extra}
        )
        refused(decide(RS256, token), 401, "signature is not valid", "invalid_token")
        refused(decide(RS256, token, "POST"), 401, "signature is not valid", "invalid_token")
    # a kid is at most a hint among the hub's keys: a genuine token with one passes
    hinted = jwt.encode(claims(), PRIVATE, algorithm="RS256", headers={"typ": "at+jwt", "kid": "x"})
    assert isinstance(decide(RS256, hinted), Subscribe)


# -- Token Validation: typ, iss, aud, exp, nbf ---------------------------------------------


@pytest.mark.parametrize("typ", [None, "JWT", "id_token+jwt", "at+jwt2", "application/jwt"])
def test_tokens_for_other_purposes_are_refused_by_their_typ(typ: str | None) -> None:
    headers: dict[str, Any] = {} if typ is None else {"typ": typ}
    token = jwt.encode(claims(), SECRET, headers=headers)
    refused(subscribe_with(token), 401, "typ must be at+jwt", "invalid_token")


@pytest.mark.parametrize(
    "issuer",
    [
        "https://evil.example",
        f"{ISSUER}/",  # exactly, not a prefix or a normalization of it
        ISSUER.upper(),
        "",
        [ISSUER],
        7,
    ],
)
def test_tokens_from_another_issuer_are_refused(issuer: object) -> None:
    header: dict[str, object] = {"alg": "HS256", "typ": "at+jwt"}  # (PyJWT signs only a string iss)
    token = hs256_by_hand(header, claims(iss=issuer), SECRET.encode())
    refused(subscribe_with(token), 401, "is not trusted", "invalid_token")
    refused(publish_with(token), 401, "is not trusted", "invalid_token")


def test_tokens_for_another_audience_are_refused_and_aud_may_be_a_string() -> None:
    assert isinstance(subscribe_with(access_token(aud=RESOURCE)), Subscribe)
    for aud, reason in (
        (None, "has no 'aud' claim"),
        (f"{RESOURCE}/", "aud does not contain"),
        ("https://hub.example", "aud does not contain"),
        (["https://other.example"], "aud does not contain"),
    ):
        refused(subscribe_with(access_token(aud=aud)), 401, reason, "invalid_token")


def test_exp_must_be_a_number_in_the_future_and_nbf_in_the_past() -> None:
    for exp in ("tomorrow", [1]):
        refused(subscribe_with(access_token(exp=exp)), 401, "exp", "invalid_token")
    past = int(time.time()) - 5
    assert isinstance(subscribe_with(access_token(nbf=past)), Subscribe)
    refused(
        publish_with(access_token(nbf=int(time.time()) + 30)), 401, "not valid yet", "invalid_token"
    )


def test_a_token_header_that_does_not_parse_names_the_problem() -> None:
    # an unknown critical extension (RFC 7515 section 4.1.11) must be refused
    token = access_token(headers={"crit": ["urn:example:ext"], "urn:example:ext": 1})
    refused(subscribe_with(token), 401, "the access token's header is not valid", "invalid_token")


# -- Resource Limits: oversized tokens ---------------------------------------------------


def test_an_oversized_token_is_refused_before_it_is_parsed_in_both_dialects() -> None:
    big = access_token(topics=[{"match": "x" * 500}] * 20)  # a well-formed, signed 1.0 token
    assert len(big) > 8192
    refused(subscribe_with(big), 401, "the token is longer than 8192 bytes", "invalid_token")
    refused(publish_with(big), 401, "the token is longer than 8192 bytes", "invalid_token")
    old = jwt.encode({"mercure": {"subscribe": ["x" * 9000]}}, SECRET)
    for query, headers in (
        (b"topic=a", {b"authorization": f"Bearer {old}".encode()}),
        (f"topic=a&authorization={old}".encode(), {}),
        (b"topic=a", {b"cookie": f"mercureAuthorization={old}".encode()}),
        (b"match=a", {b"cookie": f"__Secure-mercure_access_token={big}".encode()}),
    ):
        request = Request("GET", "/.well-known/mercure", query, headers)
        refused(
            Mercure(TOKENS, Hub()).decide(request), 401, "longer than 8192 bytes", "invalid_token"
        )


# -- Authorization Details: all or nothing -------------------------------------------------

GOOD = {"type": DETAIL, "actions": ["publish", "subscribe"], "topics": [{"match": "a"}]}


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("not an object", "every authorization_details entry must be an object"),
        ({**GOOD, "actions": ["publish", 1]}, "detail 1: every action must be a string"),
        ({**GOOD, "actions": "publish"}, "detail 1: actions must be a non-empty array"),
        ({**GOOD, "topics": []}, "detail 1: topics must be a non-empty array"),
        ({**GOOD, "topics": [{"match": "b"}, ["c"]]}, "detail 1, topic 1: must be an object"),
        ({**GOOD, "topics": [{"match": 5}]}, "detail 1, topic 0: must be an object with a string"),
        ({**GOOD, "topics": [{"match": ""}]}, "detail 1, topic 0: match must be 1 to 1024"),
        ({**GOOD, "topics": [{"match": "b", "match_type": "Exact"}]}, "unsupported match_type"),
        ({**GOOD, "topics": [{"match": "b", "match_type": None}]}, "unsupported match_type"),
        ({**GOOD, "payload": ["not", "an", "object"]}, "detail 1: payload must be an object"),
    ],
)
def test_one_bad_entry_rejects_the_whole_token_for_publishing_and_subscribing(
    bad: object, reason: str
) -> None:
    token = access_token(authorization_details=[GOOD, bad])
    refused(publish_with(token), 401, reason, "invalid_token")
    refused(subscribe_with(token), 401, reason, "invalid_token")


def test_the_detail_type_is_compared_byte_by_byte_and_other_types_grant_nothing() -> None:
    for other in (f"{DETAIL}/", DETAIL.upper(), "https://example.com/other-detail"):
        token = access_token(authorization_details=[{**GOOD, "type": other}])
        refused(publish_with(token), 403, "does not allow publishing to 'a'", "insufficient_scope")
        decision = subscribe_with(token)
        assert isinstance(decision, Subscribe)
        assert decision.private_topics == frozenset()


def test_unknown_actions_grant_nothing_and_invalidate_nothing() -> None:
    token = access_token(["read", "write"], [{"match": "a"}])
    refused(publish_with(token), 403, "does not allow publishing", "insufficient_scope")
    decision = subscribe_with(token)
    assert isinstance(decision, Subscribe)
    assert decision.private_topics == frozenset()


def test_the_limits_are_inclusive() -> None:
    for details in (
        [GOOD] * 32,
        [{**GOOD, "topics": [{"match": f"t{n}"} for n in range(64)]}],
        [{**GOOD, "topics": [{"match": "/" + "a" * 1023, "match_type": "urlpattern"}]}],
    ):
        assert isinstance(subscribe_with(access_token(authorization_details=details)), Subscribe)


# -- Topic Matcher List and Matcher Types ----------------------------------------------------


def test_match_type_defaults_to_exact_and_star_is_the_wildcard_whatever_the_type() -> None:
    pattern = access_token(["publish"], [{"match": "https://e.com/b/:id"}])  # no match_type
    refused(
        publish_with(pattern, b"topic=https://e.com/b/1"),
        403,
        "does not allow publishing",
        "insufficient_scope",
    )
    assert isinstance(publish_with(pattern, b"topic=https://e.com/b/:id"), Publish)
    for kind in ("exact", "urlpattern"):
        star = access_token(["publish"], [{"match": "*", "match_type": kind}])
        assert isinstance(publish_with(star, b"topic=https://e.com/b/1&topic=b"), Publish)
    for query in (b"match=*", b"match_urlpattern=*", b"match_exact=*"):
        decision = subscribe_with(access_token(), query)
        assert isinstance(decision, Subscribe)
        (matcher,) = decision.matchers
        assert matcher.any
        assert matcher.matches("anything at all")


def test_exact_matching_is_byte_for_byte_never_resolved_or_normalized() -> None:
    async def main() -> list[str]:
        async with Hub() as hub:
            matchers = [Matcher.exact("https://e.com/B/caf\u00e9"), Matcher.exact("/b/1")]
            async with hub.subscribe((), matchers=matchers) as events:
                for topic in (
                    "https://e.com/b/caf\u00e9",  # case
                    "https://e.com/B/cafe\u0301",  # NFD, not NFC
                    "https://e.com/B/caf%C3%A9",  # percent-encoded
                    "https://hub.example/b/1",  # a relative value is not resolved
                    "https://e.com/B/caf\u00e9",
                    "/b/1",
                ):
                    await hub.publish(topic, topic)
                return [(await asyncio.wait_for(anext(events), 5)).data for _ in range(2)]

    assert asyncio.run(main()) == ["https://e.com/B/caf\u00e9", "/b/1"]


def test_url_patterns_resolve_relatives_against_the_hub_keep_case_and_skip_unparsable_topics() -> (
    None
):
    books = Matcher.urlpattern("https://hub.example/Books/:id", base=RESOURCE)
    assert books.matches("/Books/1")  # a relative topic, resolved against the hub's URL
    assert books.matches("https://HUB.example/Books/1")  # hosts are case-insensitive
    assert not books.matches("https://hub.example/books/1")  # no ignoreCase
    relative = Matcher.urlpattern("/Books/:id", base=RESOURCE)
    assert relative.matches("https://hub.example/Books/2")
    assert not relative.matches("https://other.example/Books/2")
    anything = Matcher.urlpattern("*://*/*", base=RESOURCE)
    for unparsable in ("http://[::1", "https://e.com:99999/x", "https://exa mple.com/x"):
        assert not anything.matches(unparsable)


# -- Error Responses: a malformed presentation of the token ------------------------------


def test_a_malformed_token_presentation_is_a_bearer_challenge() -> None:
    request = Request(
        "GET", "/.well-known/mercure", b"match=a", {b"authorization": b"Bearer a, Bearer b"}
    )
    refused(Mercure(TOKENS, Hub()).decide(request), 400, "more than one", "invalid_request")
    for value in (b"Basic YTpi", b"Bearer ", b"Bearer"):
        request = Request("GET", "/.well-known/mercure", b"match=a", {b"authorization": value})
        refused(Mercure(TOKENS, Hub()).decide(request), 401, "must be 'Bearer <JWT>'", None)


def test_the_header_token_wins_over_the_cookie_and_the_scheme_is_case_insensitive() -> None:
    header = access_token(["subscribe"], [{"match": "from-header"}])
    cookie = access_token(["subscribe"], [{"match": "from-cookie"}])
    for scheme in ("Bearer", "bearer", "BEARER"):
        sent = {
            b"authorization": f"{scheme} {header}".encode(),
            b"cookie": f"__Secure-mercure_access_token={cookie}".encode(),
        }
        decision = Mercure(TOKENS, Hub()).decide(
            Request("GET", "/.well-known/mercure", b"match=a", sent)
        )
        assert isinstance(decision, Subscribe)
        assert decision.private_topics == {Matcher.exact("from-header")}


# -- Publication and Subscribers ------------------------------------------------------


def test_a_1_0_publish_private_by_presence_unknown_fields_ignored_answered_in_plain_text() -> None:
    async def main() -> list[tuple[bool, int, str]]:
        answers = []
        mercure = Mercure(TOKENS, Hub())
        async with mercure.hub:
            for body in (b"topic=a&private", b"topic=a&private=", b"topic=a&private=off",
                         b"topic=a&future-field=1"):  # fmt: skip
                sent = {**FORM, b"authorization": f"Bearer {access_token()}".encode()}
                request = Request("POST", "/.well-known/mercure", b"", sent, body)
                decision = mercure.decide(request)
                assert isinstance(decision, Publish)
                response = await mercure.publish(decision)
                assert response.body.decode().startswith("urn:uuid:")
                answers.append((decision.private, response.status, response.content_type))
        return answers

    text = "text/plain; charset=utf-8"
    assert asyncio.run(main()) == [(True, 200, text)] * 3 + [(False, 200, text)]
    closed = dataclasses.replace(TOKENS, dialects="1.0")
    request = Request("POST", "/.well-known/mercure", b"", FORM, b"topic=a")
    refused(Mercure(closed, Hub()).decide(request), 401, "requires an access token", None)


def test_a_private_update_reaches_a_subscriber_granted_only_its_alternate_topic() -> None:
    # the draft's example: routing by books/:id, reading granted on users/42/*
    books = Matcher.urlpattern("https://example.com/books/:id")
    own = Matcher.urlpattern("https://example.com/users/42/*")

    async def main() -> list[str]:
        async with (
            Hub() as hub,
            hub.subscribe((), matchers=[books], private_topics=[own]) as events,
        ):
            await hub.publish("https://example.com/books/1", "not granted", private=True)
            await hub.publish(
                ("https://example.com/books/1", "https://example.com/users/42/books/1"),
                "granted by the alternate topic",
                private=True,
            )
            return [(await asyncio.wait_for(anext(events), 5)).data]

    assert asyncio.run(main()) == ["granted by the alternate topic"]


def test_the_metadata_advertises_the_matcher_types_and_the_cookie() -> None:
    response = Mercure(TOKENS, Hub()).decide(Request("GET", METADATA_PATH))
    assert isinstance(response, Response)
    document = json.loads(response.body)
    assert document["mercure_matcher_types_supported"] == ["exact", "urlpattern"]
    assert document["mercure_cookie"] == "__Secure-mercure_access_token"
    assert document["resource"] == RESOURCE
