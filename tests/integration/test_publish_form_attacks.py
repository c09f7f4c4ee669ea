"""A publish's form is parsed only once its token checks out: a client
without a valid token (none, or a forged one) cannot make the hub parse a
body built to be slow (a megabyte of `%`, a third of a second of the loop
each); one with a valid token gets the form's refusals as before. Over real
sockets against a `HubServer`."""

from __future__ import annotations

import jwt

from ssehub.mercure import JWTAuth
from tests.support.helpers import request
from tests.support.servers import run, serving

SECRET = "!ChangeThisMercureHubJWTSecretKey!"
MERCURE = "/.well-known/mercure"
# not UTF-8 at its first field, then a megabyte's worth of bad escapes
BOMB = b"topic=a%FF&data=" + b"%" * 900_000


def _token(key: str = SECRET) -> str:
    return jwt.encode({"mercure": {"publish": ["*"]}}, key, algorithm="HS256")


async def _post(port: int, body: bytes, token: str | None) -> tuple[int, str]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    answer = await request(port, "POST", MERCURE, headers=headers, body=body)
    return answer.status, answer.text


def test_a_publish_without_a_valid_token_is_refused_before_its_form_is_parsed() -> None:
    async def body() -> None:
        async with serving(auth=JWTAuth(publisher_key=SECRET)) as (hub, _, port):
            assert await _post(port, BOMB, None) == (
                401,
                "publishing requires a JWT with a mercure.publish claim\n",
            )
            status, reason = await _post(
                port, BOMB, _token("another key, not the hub's own one, 32+")
            )
            assert status == 401, reason
            # a valid token: the form is read, and refused as it always was
            assert await _post(port, BOMB, _token()) == (
                400,
                "form field 'topic' is not valid UTF-8\n",
            )
            assert await _post(port, b"data=x", _token()) == (400, "missing 'topic' field\n")
            assert hub.statistics().events_published == 0

    run(body)
