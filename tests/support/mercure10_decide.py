"""Sans-IO helpers for the Mercure 1.0 unit tests: a hub configuration
that trusts one issuer (`TOKENS`), 1.0 access tokens, and deciding a
subscription or a publish with one."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import jwt

from ssehub.hub import Hub
from ssehub.mercure import JWTAuth, Mercure, MercureConfig, Request, Response

RESOURCE = "https://hub.example/.well-known/mercure"

SECRET = "!ChangeThisMercureHubJWTSecretKey!"
ISSUER = "https://issuer.example"
DETAIL = "https://mercure.rocks/authorization-detail"
TOKENS = MercureConfig(
    auth=JWTAuth(publisher_key=SECRET, subscriber_key=SECRET),
    issuers=(ISSUER,),
    resource=RESOURCE,
    anonymous=True,
)
FORM = {b"content-type": b"application/x-www-form-urlencoded"}


def access_token(
    actions: Sequence[object] | None = None,
    topics: Sequence[object] | None = None,
    *,
    key: str = SECRET,
    headers: Mapping[str, object] | None = None,
    algorithm: str = "HS256",
    **claims: object,
) -> str:
    detail: dict[str, object] = {"type": DETAIL}
    detail["actions"] = ["subscribe", "publish"] if actions is None else actions
    detail["topics"] = topics if topics is not None else [{"match": "*"}]
    body: dict[str, object] = {
        "iss": ISSUER,
        "aud": [RESOURCE, "https://other.example"],
        "exp": int(time.time()) + 60,
        "sub": "urn:uuid:s",
        "authorization_details": [detail],
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    sent = {"typ": "at+jwt", **(headers or {})}
    return jwt.encode(body, key, algorithm=algorithm, headers=sent)


def subscribe_with(token: str, query: bytes = b"match=a") -> object:
    sent = {b"authorization": f"Bearer {token}".encode()}
    return Mercure(TOKENS, Hub()).decide(Request("GET", "/.well-known/mercure", query, sent))


def publish_with(token: str, body: bytes = b"topic=a&data=x") -> object:
    sent = {**FORM, b"authorization": f"Bearer {token}".encode()}
    request = Request("POST", "/.well-known/mercure", b"", sent, body)
    return Mercure(TOKENS, Hub()).decide(request)


def refused(decision: object, status: int, reason: str, error: str | None) -> None:
    assert isinstance(decision, Response), decision
    assert (decision.status, reason in decision.body.decode()) == (status, True), decision.body
    challenge = dict(decision.headers).get("WWW-Authenticate")
    if error == "":  # a refusal that is not about the token
        assert challenge is None
    elif error is None:  # no token: no error code, only where the metadata is
        where = "https://hub.example/.well-known/oauth-protected-resource/.well-known/mercure"
        assert challenge == f'Bearer resource_metadata="{where}"'
    else:
        assert challenge is not None
        assert challenge.startswith(f'Bearer error="{error}", error_description="')
