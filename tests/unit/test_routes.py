"""The server's route table: tried in order, a path ending in `/` matches
every path below it and itself without the slash, any other matches
exactly; what matches none goes to the fallback."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from ssehub.mercure import Response
from ssehub.server._handler import Request, Streaming
from ssehub.server._routes import Route, Routes


def _route() -> Route:
    async def handler(request: Request) -> Response | Streaming:
        await asyncio.sleep(0)
        return Response.text(200, "x")

    return Route(handler, eager=True)


TABLE = [(path, _route()) for path in ("/a/", "/a/b/", "/a/b", "/c", "/c/", "/", "/d/")]


def _by_the_rule(table: list[tuple[str, Route]], fallback: Route, path: str) -> Route:
    exact = [route for p, route in table if not p.endswith("/") and p == path]
    if exact:
        return exact[0]
    for p, route in table:
        if p.endswith("/") and (path.startswith(p) or path == p[:-1]):
            return route
    return fallback


@given(st.lists(st.sampled_from(["/", "a", "b", "c", "d", "/a", "/a/b", "x"]), max_size=5))
def test_every_path_finds_the_route_the_rule_gives(pieces: list[str]) -> None:
    path = "".join(pieces)
    fallback = _route()
    for table in (TABLE, TABLE[::-1], TABLE[1:], [t for t in TABLE if t[0] != "/"]):
        routes = Routes(table, fallback=fallback)
        assert routes.find(path) is _by_the_rule(table, fallback, path), (path, table)


def test_a_prefix_without_its_slash_is_its_own_route_unless_an_earlier_one_matches() -> None:
    first, mercure = _route(), _route()
    assert Routes([("/.well-known/mercure/", mercure)]).find("/.well-known/mercure") is mercure
    table = [("/", first), ("/.well-known/mercure/", mercure)]
    assert Routes(table).find("/.well-known/mercure") is first
