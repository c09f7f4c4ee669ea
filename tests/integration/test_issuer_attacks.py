"""Attacks on issuer-bound keys (Mercure 1.0, `--jwt-issuer-key`) over real
sockets to a hub server in the test's loop: each holds (docs/security.md)."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import jwt
import pytest

from ssehub.mercure import IssuerKey
from tests.support.helpers import request, subscribe
from tests.support.servers import run, serving

RESOURCE = "https://hub.example/.well-known/mercure"
KEY_A = "the key of issuer A, long enough for HS256 and for HS512 as well!!"
KEY_B = "the key of issuer B, long enough for HS256 and for HS512 as well!!"
TOPIC = "https://example.com/t"


def _token(iss: Any, key: str, algorithm: str = "HS256") -> str:
    claims = {
        "iss": iss,
        "aud": RESOURCE,
        "exp": int(time.time()) + 600,
        "authorization_details": [
            {
                "type": "https://mercure.rocks/authorization-detail",
                "actions": ["subscribe"],
                "topics": [{"match": TOPIC}],
            }
        ],
    }
    # signed as is: PyJWT's `jwt.encode` refuses a non-string `iss`
    payload = json.dumps(claims).encode()
    return jwt.api_jws.encode(payload, key, algorithm=algorithm, headers={"typ": "at+jwt"})


@pytest.mark.parametrize(
    ("token", "why"),
    [
        (_token("https://b.example", KEY_A), "signature is not valid for its issuer"),
        (_token(42, KEY_A), "is not trusted"),
        (_token(["https://a.example"], KEY_A), "is not trusted"),
        (_token({"iss": "https://a.example"}, KEY_A), "is not trusted"),
        (_token("https://a.example/" + "x" * 5000, KEY_A), "is not trusted"),
        (_token("https://a.example", KEY_A, "HS512"), "must be signed with HS256"),
    ],
    ids=["B-signed-by-A", "number", "list", "object", "huge", "other-alg"],
)
def test_a_token_is_verified_with_the_keys_of_its_own_string_issuer_only(
    token: str, why: str
) -> None:
    async def body() -> None:
        keys = (IssuerKey("https://a.example", KEY_A), IssuerKey("https://b.example", KEY_B))
        async with serving(issuer_keys=keys, resource=RESOURCE) as (_, _, port):
            path = f"/.well-known/mercure?match={quote(TOPIC, safe='')}"
            answer = await request(port, "GET", path, headers={"Authorization": f"Bearer {token}"})
            assert answer.status == 401, answer.text
            assert why in answer.text
            assert len(answer.text) < 400  # a huge iss is not echoed back
            good = _token("https://b.example", KEY_B)
            stream = await subscribe(
                port, extra_query={"match": TOPIC}, headers={"Authorization": f"Bearer {good}"}
            )
            stream.close()
            assert stream.status == 200

    run(body)
