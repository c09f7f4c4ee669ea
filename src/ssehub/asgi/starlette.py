"""`EventSourceResponse` as a Starlette `Response`, for FastAPI routes.

FastAPI passes a route's return value through only if it is a Starlette
`Response`; this module (the one place in `ssehub.asgi` that imports a
framework) gives ssehub's response that type::

    from ssehub.asgi.starlette import EventSourceResponse

    @app.get("/tokens")
    async def tokens() -> EventSourceResponse:
        return EventSourceResponse(generate())

It behaves exactly as `ssehub.asgi.EventSourceResponse`, and runs FastAPI's
background tasks after the stream ends.
"""

from __future__ import annotations

from typing import Any

try:
    from starlette.background import BackgroundTask
    from starlette.responses import Response
except ImportError as error:  # pragma: no cover - depends on the install
    raise ImportError(
        "ssehub.asgi.starlette needs starlette (FastAPI brings it): pip install starlette"
    ) from error

from ._response import EventSourceResponse as _PureEventSourceResponse
from ._types import Receive, Scope, Send

__all__ = ("EventSourceResponse",)


class EventSourceResponse(_PureEventSourceResponse, Response):
    """`ssehub.asgi.EventSourceResponse` that is also a Starlette `Response`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _PureEventSourceResponse.__init__(self, *args, **kwargs)
        self.background: BackgroundTask | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _PureEventSourceResponse.__call__(self, scope, receive, send)
        if self.background is not None:
            await self.background()
