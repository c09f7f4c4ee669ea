"""Mercure 1.0: keys bound to their issuer ("Token Validation") and the
publication constraints ("Publication", "Reserved Hub Namespace")."""

from __future__ import annotations

import re
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ssehub.hub import Hub
from ssehub.mercure import IssuerKey, JWTAuth, Mercure, MercureConfig, Publish, Response, Subscribe
from ssehub.mercure import Request as HTTPRequest

RESOURCE = "https://hub.example/.well-known/mercure"
DETAIL = "https://mercure.rocks/authorization-detail"
SHARED = "the hub's shared key, long enough for HS256"
B_SECRET = "issuer B's own secret: long enough for HS256, HS384 and HS512 keys"
FORM = {b"content-type": b"application/x-www-form-urlencoded"}
A_PRIVATE = ec.generate_private_key(ec.SECP256R1())
A_PUBLIC = (
    A_PRIVATE.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
CONFIG = MercureConfig(
    auth=JWTAuth(publisher_key=SHARED, subscriber_key=SHARED),
    issuers=("https://c.example", "https://b.example"),  # B: its own key wins
    issuer_keys=(
        IssuerKey("https://a.example", A_PUBLIC, ("ES256",)),
        IssuerKey("https://b.example", B_SECRET),
    ),
    resource=RESOURCE,
)


def access_token(issuer: str, key: object, algorithm: str = "HS256") -> str:
    claims = {
        "iss": issuer,
        "aud": RESOURCE,
        "exp": int(time.time()) + 60,
        "sub": "s",
        "authorization_details": [
            {"type": DETAIL, "actions": ["publish", "subscribe"], "topics": [{"match": "*"}]}
        ],
    }
    return jwt.encode(claims, key, algorithm=algorithm, headers={"typ": "at+jwt"})  # type: ignore[arg-type]


def decide(
    token: str | None,
    *,
    publish: bytes | None = None,
    query: bytes = b"match=t",
    config: MercureConfig = CONFIG,
) -> object:
    headers = {} if token is None else {b"authorization": f"Bearer {token}".encode()}
    if publish is None:
        request = HTTPRequest("GET", "/.well-known/mercure", query, headers)
    else:
        request = HTTPRequest("POST", "/.well-known/mercure", b"", {**FORM, **headers}, publish)
    return Mercure(config, Hub()).decide(request)


def reason(decision: object, status: int) -> str:
    assert isinstance(decision, Response), decision
    assert decision.status == status, decision.body
    return decision.body.decode()


def test_each_issuer_is_verified_with_its_own_keys_only() -> None:
    good = [
        access_token("https://a.example", A_PRIVATE, "ES256"),
        access_token("https://b.example", B_SECRET),
        access_token("https://c.example", SHARED),  # --jwt-issuer: the shared key
    ]
    for token in good:
        assert isinstance(decide(token), Subscribe)
        assert isinstance(decide(token, publish=b"topic=t&data=x"), Publish)
    # a token signed by one trusted issuer's key, claiming another issuer
    forged = {
        ("https://b.example", SHARED, "HS256"): "signature is not valid for its issuer",
        ("https://c.example", B_SECRET, "HS256"): "signature is not valid for its issuer",
        ("https://b.example", A_PRIVATE, "ES256"): "must be signed with HS256",
        ("https://a.example", B_SECRET, "HS256"): "must be signed with ES256",
        ("https://a.example", SHARED, "HS256"): "must be signed with ES256",
    }
    for (issuer, key, algorithm), why in forged.items():
        token = access_token(issuer, key, algorithm)
        for decision in (decide(token), decide(token, publish=b"topic=t&data=x")):
            assert why in reason(decision, 401)
            assert isinstance(decision, Response)
            challenge = dict(decision.headers)["WWW-Authenticate"]
            assert challenge.startswith('Bearer error="invalid_token"')


def test_an_issuer_may_have_several_keys_and_algorithms() -> None:
    other = "issuer B's next secret: long enough for HS256, HS384 and HS512 keys"
    config = MercureConfig(
        issuer_keys=(
            IssuerKey("https://b.example", B_SECRET),
            IssuerKey("https://b.example", other, ("HS256", "HS512")),
        ),
        resource=RESOURCE,
    )
    for key, algorithm in ((B_SECRET, "HS256"), (other, "HS256"), (other, "HS512")):
        token = access_token("https://b.example", key, algorithm)
        assert isinstance(decide(token, config=config), Subscribe), (key, algorithm)
    wrong = access_token("https://b.example", B_SECRET, "HS512")  # B_SECRET: HS256 only
    assert "signature is not valid" in reason(decide(wrong, config=config), 401)


def test_a_hub_with_issuer_keys_only_speaks_1_0_tokens() -> None:
    config = MercureConfig(
        issuer_keys=(IssuerKey("https://b.example", B_SECRET),), resource=RESOURCE
    )
    token = access_token("https://b.example", B_SECRET)
    assert isinstance(decide(token, publish=b"topic=t&data=x", config=config), Publish)
    assert "requires an access token" in reason(decide(None, config=config), 401)
    old = jwt.encode({"mercure": {"publish": ["*"]}}, B_SECRET)
    refused = decide(old, publish=b"topic=t&data=x", config=config)
    assert "no key for 0.x JWTs" in reason(refused, 401)
    zero = decide(None, query=b"topic=t", config=config)
    assert "requires a Mercure 1.0 access token" in reason(zero, 401)
    open_hub = MercureConfig(issuer_keys=config.issuer_keys, resource=RESOURCE, anonymous=True)
    assert isinstance(decide(None, query=b"topic=t", config=open_hub), Subscribe)


def test_issuer_key_settings_and_their_variables(tmp_path: Path) -> None:
    (tmp_path / "a.pem").write_text(A_PUBLIC)
    config = MercureConfig.from_environ(
        {
            "SSEHUB_JWT_ISSUER_KEY": f"https://a.example=@{tmp_path / 'a.pem'},https://b=s3cr=t",
            "SSEHUB_JWT_ISSUER_ALGORITHM": "https://a.example=ES256",
        }
    )
    assert config.issuer_keys == (
        IssuerKey("https://a.example", A_PUBLIC, ("ES256",)),
        IssuerKey("https://b", "s3cr=t", ("HS256",)),
    )
    bad = {
        "https://a.example": "SSEHUB_JWT_ISSUER_KEY: expected ISSUER=KEY (or ISSUER=@FILE): "
        "no ISSUER= before it",
        f"https://a.example=@{tmp_path / 'a.pem'}": "SSEHUB_JWT_ISSUER_KEY: the key of "
        "https://a.example does not fit HS256 (which needs an HMAC secret; give its algorithm "
        "with SSEHUB_JWT_ISSUER_ALGORITHM https://a.example=ALG)",
        f"https://a.example=@{tmp_path / 'none'}": f"SSEHUB_JWT_ISSUER_KEY: cannot read "
        f"{tmp_path / 'none'}: No such file or directory",
    }
    for value, message in bad.items():
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            MercureConfig.from_environ({"SSEHUB_JWT_ISSUER_KEY": value})
    with pytest.raises(ValueError, match=r"^SSEHUB_JWT_ISSUER_ALGORITHM: https://x has no SSEHUB"):
        MercureConfig.from_environ({"SSEHUB_JWT_ISSUER_ALGORITHM": "https://x=RS256"})
    with pytest.raises(ValueError, match="does not fit RS256, which needs a PEM public key"):
        IssuerKey("https://b", B_SECRET, ("RS256",))
    with pytest.raises(ValueError, match="'none' is not one of"):
        IssuerKey("https://b", B_SECRET, ("none",))
    with pytest.raises(
        ValueError, match=r"^MercureConfig\.issuer_keys must be a tuple of IssuerKey"
    ):
        MercureConfig(issuer_keys=("https://b=k",))  # type: ignore[arg-type]


# -- the publication constraints -------------------------------------------------


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"topic=https://hub.example/.well-known/mercure/subscriptions/x", "reserved namespace"),
        (b"topic=t&topic=https://else.example/.well-known/mercure", "reserved namespace"),
        (b"topic=/.well-known/%256Dercure/subscriptions/x", "reserved namespace"),
        (b"topic=/.well-known/mercure/../mercure/x", "reserved namespace"),
        (b"topic=/a/%252e%252e/.well-known/mercure/x", "reserved namespace"),
        (b"topic=mercure/subscriptions", "reserved namespace"),  # relative to the hub's URL
        (b"topic=//evil.example/.well-known/mercure/x", "reserved namespace"),
        (b"topic=https:%5C%5Chub.example%5C.well-known%5Cmercure%5Cx", "reserved namespace"),
        (b"topic=t&type=mercure", "the type 'mercure' is reserved"),
        (b"topic=t&type=a%00b", "'type' contains the control or format character U+0000"),
        (b"topic=t&type=a%C2%85b", "'type' contains the control or format character U+0085"),
        (b"topic=t&id=a%E2%80%8Bb", "'id' contains the control or format character U+200B"),
        (b"topic=t&id=a%7Fb", "'id' contains the control or format character U+007F"),
        (b"topic=a%E2%80%AEb", "'topic' contains the control or format character U+202E"),
        (b"topic=t&topic=a%01b", "'topic' contains the control or format character U+0001"),
    ],
)
def test_a_1_0_publish_is_refused_what_the_hub_reserves(body: bytes, why: str) -> None:
    token = access_token("https://b.example", B_SECRET)
    decision = decide(token, publish=body + b"&data=x")
    assert why in reason(decision, 400)
    assert isinstance(decision, Response)
    assert "WWW-Authenticate" not in dict(decision.headers)  # whatever the token allows


@pytest.mark.parametrize(
    "topic",
    [
        b"https://hub.example/.well-known/mercurex",
        b"/.well-known/mercure%252Fx",  # an encoded slash is no path separator
        b"urn:uuid:1",
        b"books/1",
        b"http://[::1",  # no URL reference: names no hub path
        b"https://hub.example/.well-known/Mercure/x",
    ],
)
def test_topics_outside_the_namespace_and_0_x_publishes_are_accepted(topic: bytes) -> None:
    token = access_token("https://b.example", B_SECRET)
    assert isinstance(decide(token, publish=b"topic=" + topic + b"&type=t&data=x"), Publish)
    old = jwt.encode({"mercure": {"publish": ["*"]}}, SHARED)
    reserved = b"topic=/.well-known/mercure/subscriptions/x&type=mercure"
    assert isinstance(decide(old, publish=reserved), Publish)  # 0.x reserves neither
