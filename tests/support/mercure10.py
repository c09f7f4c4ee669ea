"""Mercure 1.0 test helpers shared by the integration tests of both front
ends: the hub's settings (`ENV`), 1.0 access tokens, publishing and reading
a stream over real sockets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import httpx
import jwt

from ssehub.protocol import Event, EventStreamParser
from tests.support.frontends import Frontend

SECRET = "!ChangeThisMercureHubJWTSecretKey!"
ENV = {
    "SSEHUB_JWT_KEY": SECRET,
    "SSEHUB_ANONYMOUS": "1",
    "SSEHUB_MAX_TOPICS": "3",
    "SSEHUB_RESOURCE": "https://hub.example/.well-known/mercure",
    "SSEHUB_JWT_ISSUER": "https://issuer.example,https://localhost",
    "SSEHUB_JWT_LEEWAY": "0",
}
DETAIL = "https://mercure.rocks/authorization-detail"


def access_token(actions: list[str], topics: list[dict[str, str]], *, seconds: int = 60,
                 iss: str = "https://issuer.example") -> str:  # fmt: skip
    claims = {
        "iss": iss,
        "aud": ENV["SSEHUB_RESOURCE"],
        "exp": int(time.time()) + seconds,
        "authorization_details": [{"type": DETAIL, "actions": actions, "topics": topics}],
    }
    return jwt.encode(claims, SECRET, algorithm="HS256", headers={"typ": "at+jwt"})


WRITER = jwt.encode({"mercure": {"publish": ["*"]}}, SECRET, algorithm="HS256")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def publish(hub: Frontend, topic: str | list[str], data: str, *fields: tuple[str, str],
            auth: str = WRITER) -> str:  # fmt: skip
    """Publish `data` to `topic` (or to each topic of a list, the first
    canonical); the event's id."""
    topics = [topic] if isinstance(topic, str) else topic
    body = urlencode([*(("topic", t) for t in topics), ("data", data), *fields])
    sent = {**FORM, "Authorization": f"Bearer {auth}"}
    r = httpx.post(hub.hub, content=body, headers=sent, timeout=10)
    assert r.status_code == 200, r.text
    return r.text


class Stream:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.chunks = response.iter_raw()
        self.parser = EventStreamParser()
        self.events: list[Event] = []

    def take(self, n: int) -> list[Event]:
        while len(self.events) < n:
            self.events += self.parser.feed(next(self.chunks))
        taken, self.events = self.events[:n], self.events[n:]
        return taken


@contextmanager
def opened(hub: Frontend, params: list[tuple[str, str]],
           headers: dict[str, str] | None = None) -> Iterator[httpx.Response]:  # fmt: skip
    """A subscription's response, asserted 200; closed after."""
    with (
        httpx.Client(timeout=10) as client,
        client.stream("GET", hub.hub, params=urlencode(params), headers=headers or {}) as r,
    ):
        assert r.status_code == 200, r.read()
        yield r


@contextmanager
def stream(hub: Frontend, params: list[tuple[str, str]],
           headers: dict[str, str] | None = None) -> Iterator[Stream]:  # fmt: skip
    with opened(hub, params, headers) as r:
        yield Stream(r)
