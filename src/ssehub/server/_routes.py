"""The route table: which handler answers which path."""

from __future__ import annotations

from collections.abc import Sequence

from ssehub.mercure import HTTPError, Response

from ._handler import Handler, Request, Streaming

__all__ = ("GetOnly", "Routes")


class Routes:
    """A handler over `(path, handler)` pairs, tried in order: a path ending
    in `/` matches every path below it (and itself without the slash); any
    other matches exactly. Unmatched paths go to `fallback` (404 without)."""

    def __init__(self, routes: Sequence[tuple[str, Handler]], fallback: Handler | None = None):
        self._exact = {path: handler for path, handler in routes if not path.endswith("/")}
        self._prefixes = [(path, handler) for path, handler in routes if path.endswith("/")]
        self._fallback = fallback

    async def __call__(self, request: Request) -> Response | Streaming:
        path = request.path
        handler = self._exact.get(path)
        if handler is None:
            for prefix, candidate in self._prefixes:
                if path.startswith(prefix) or path == prefix[:-1]:
                    handler = candidate
                    break
            else:
                handler = self._fallback
        if handler is None:
            raise HTTPError(404, f"not found: {path}")
        return await handler(request)


class GetOnly:
    """`handler`, for GET only (405 otherwise)."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    async def __call__(self, request: Request) -> Response | Streaming:
        if request.method != "GET":
            raise HTTPError(405, f"method {request.method} not allowed on {request.path}")
        return await self._handler(request)
