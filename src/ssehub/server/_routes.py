"""The route table: which handler answers which path, and whether it may
answer eagerly (with no task of its own: the rule is in `_answer.py`)."""

from __future__ import annotations

from collections.abc import Sequence

from ssehub.mercure import HTTPError, Response

from ._handler import Handler, Request, Streaming

__all__ = ("GetOnly", "Route", "Routes")


class Route:
    """A handler, and whether what it runs before its first suspension
    needs no current task (`eager`; False unless said: such a handler is
    answered in a task, as any handler may need one)."""

    __slots__ = ("eager", "handler")

    def __init__(self, handler: Handler, *, eager: bool = False) -> None:
        self.handler = handler
        self.eager = eager


class Routes:
    """`(path, route)` pairs, tried in order: a path ending in `/` matches
    every path below it (and itself without the slash); any other matches
    exactly. Unmatched paths go to `fallback` (404 without)."""

    __slots__ = ("_exact", "_fallback", "_prefixes")

    def __init__(self, routes: Sequence[tuple[str, Route]], fallback: Route | None = None):
        self._exact = {path: route for path, route in routes if not path.endswith("/")}
        self._prefixes = [(path, route) for path, route in routes if path.endswith("/")]
        self._fallback = fallback or _NOT_FOUND
        # a prefix's own path without its slash (`/.well-known/mercure`, what
        # subscribers ask for) found in one lookup, as the prefixes find it
        for prefix, _ in self._prefixes:
            self._exact.setdefault(prefix[:-1], self.find(prefix[:-1]))

    def find(self, path: str) -> Route:
        """The route of `path` (a 404 route when none matches)."""
        route = self._exact.get(path)
        if route is not None:
            return route
        for prefix, candidate in self._prefixes:
            if path.startswith(prefix) or path == prefix[:-1]:
                return candidate
        return self._fallback


async def _not_found(request: Request) -> Response:
    raise HTTPError(404, f"not found: {request.path}")


_NOT_FOUND = Route(_not_found, eager=True)


class GetOnly:
    """`handler`, for GET only (405 otherwise)."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    async def __call__(self, request: Request) -> Response | Streaming:
        if request.method != "GET":
            raise HTTPError(405, f"method {request.method} not allowed on {request.path}")
        return await self._handler(request)
