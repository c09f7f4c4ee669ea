"""Tagged streams (`tagged=1`, an ssehub extension), on both front ends: each
event carries a `matched:` line per selector of the request that matched it,
and nothing else about its topics."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import jwt
import pytest

from ssehub.protocol import EventStreamParser
from tests.support.frontends import FRONTENDS, Frontend
from tests.support.helpers import free_port
from tests.support.mercure10 import SECRET, opened, publish

ENV = {
    "SSEHUB_JWT_KEY": SECRET,
    "SSEHUB_ANONYMOUS": "1",
    "SSEHUB_RESOURCE": "https://hub.example/.well-known/mercure",
    "SSEHUB_JWT_ISSUER": "https://issuer.example",
}


@pytest.fixture(scope="module", params=FRONTENDS)
def hub(request: pytest.FixtureRequest) -> Iterator[Frontend]:
    frontend = Frontend(request.param, ENV, free_port())
    yield frontend
    frontend.stop()


class Raw:
    """A stream's event blocks, as bytes."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.chunks = response.iter_raw()
        self.buffer = b""

    def blocks(self, n: int) -> list[str]:
        """The next `n` blocks that carry data (comments skipped)."""
        found: list[str] = []
        while len(found) < n:
            while b"\n\n" not in self.buffer:
                self.buffer += next(self.chunks)
            block, self.buffer = self.buffer.split(b"\n\n", 1)
            if b"data:" in block:
                found.append(block.decode())
        return found


@contextmanager
def raw(hub: Frontend, params: list[tuple[str, str]],
        headers: dict[str, str] | None = None) -> Iterator[Raw]:  # fmt: skip
    with opened(hub, params, headers) as r:
        yield Raw(r)


def tags(block: str) -> list[str]:
    return re.findall(r"^matched: (.*)$", block, re.MULTILINE)


def data(block: str) -> str:
    (event,) = EventStreamParser().feed(block.encode() + b"\n\n")
    return event.data


def test_each_event_names_the_selectors_it_matched_and_no_topic(hub: Frontend) -> None:
    params = [("topic", "t/a"), ("topic", "t/books/{id}"), ("topic", "*"), ("tagged", "1")]
    with raw(hub, params) as tagged, raw(hub, [("topic", "t/a"), ("topic", "*")]) as plain:
        publish(hub, ["t/a"], "a")
        publish(hub, ["t/books/1", "t/users/kevin/books/1"], "book")
        publish(hub, ["t/other"], "other")
        blocks = tagged.blocks(3)
        assert [data(b) for b in blocks] == ["a", "book", "other"]
        assert [tags(b) for b in blocks] == [
            ["topic=*", "topic=t/a"],
            ["topic=*", "topic=t/books/{id}"],
            ["topic=*"],
        ]
        # the alternate topic and what the template matched are not shown
        assert "kevin" not in "".join(blocks)
        assert "t/books/1" not in "".join(blocks)
        # a subscriber that did not ask gets the bytes it always got
        assert [tags(b) for b in plain.blocks(3)] == [[], [], []]


def test_replayed_events_are_tagged_too(hub: Frontend) -> None:
    first = publish(hub, ["r/x"], "0")
    publish(hub, ["r/x"], "1")
    publish(hub, ["r/y"], "2")
    query = [("topic", "r/x"), ("topic", "r/y"), ("tagged", "1"), ("lastEventID", first)]
    with raw(hub, query) as s:
        blocks = s.blocks(3)
        publish(hub, ["r/y"], "3")
        blocks += s.blocks(1)
    assert [data(b) for b in blocks] == ["1", "2", '{"replayed": 2}', "3"]
    assert [tags(b) for b in blocks] == [["topic=r/x"], ["topic=r/y"], [], ["topic=r/y"]]
    assert "event: ssehub-live" in blocks[2]


def test_private_updates_are_tagged_only_for_those_who_may_see_them(hub: Frontend) -> None:
    reader = jwt.encode({"mercure": {"subscribe": ["p/{x}"]}}, SECRET, algorithm="HS256")
    auth = {"Authorization": f"Bearer {reader}"}
    query = [("topic", "p/{x}"), ("topic", "q/{x}"), ("tagged", "1")]
    with raw(hub, query, auth) as allowed, raw(hub, query) as anonymous:
        publish(hub, ["q/1", "p/1"], "secret", ("private", "on"))
        publish(hub, ["q/2"], "public")
        got = allowed.blocks(2)
        assert [(data(b), tags(b)) for b in got] == [
            ("secret", ["topic=p/{x}", "topic=q/{x}"]),
            ("public", ["topic=q/{x}"]),
        ]
        (only,) = anonymous.blocks(1)
        assert (data(only), tags(only)) == ("public", ["topic=q/{x}"])


def test_mercure_1_0_matchers_are_tagged_by_their_parameter(hub: Frontend) -> None:
    query = [("match", "https://e.com/a"), ("match_urlpattern", "https://e.com/b/:id"),
             ("tagged", "1")]  # fmt: skip
    with raw(hub, query) as s:
        publish(hub, ["https://e.com/a"], "a")
        publish(hub, ["https://e.com/b/7"], "b")
        blocks = s.blocks(2)
    assert [tags(b) for b in blocks] == [
        ["match=https://e.com/a"],
        ["match_urlpattern=https://e.com/b/:id"],
    ]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("topic=a&tagged=yes", "'tagged' must be given once, as tagged=1"),
        ("topic=a&tagged=1&tagged=1", "'tagged' must be given once, as tagged=1"),
        ("topic=a%0Aid:%20x&tagged=1", "CR, LF or NUL"),
    ],
)
def test_bad_tagged_requests_get_a_400_naming_the_problem(
    hub: Frontend, query: str, reason: str
) -> None:
    r = httpx.get(f"{hub.hub}?{query}", timeout=10)
    assert r.status_code == 400
    assert reason in r.text
