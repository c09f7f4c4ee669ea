"""One request's answer, as its connection writes it: the handler's
`Response`, its refusal, or a 503 when it fails (a bug, a failing store:
answer, do not hang). A `Streaming` answer makes the connection a stream
before it runs."""

from __future__ import annotations

from typing import Protocol

from ssehub.mercure import HTTPError, Response

from ._handler import Handler, Request, StreamTarget
from ._log import log, loggable

__all__ = ("Streamable", "answer")


class Streamable(StreamTarget, Protocol):
    """The connection, as the answer sees it."""

    def become_stream(self) -> None:
        """Drop everything request-shaped: it reads no more requests."""


async def answer(
    handler: Handler, request: Request, conn: Streamable
) -> tuple[Response | None, bool]:
    """The response to write for `request` (None: nothing to write), and
    whether the connection may read another request after it. While a hub
    stream runs on the connection, `conn.stream` is set."""
    streaming = False
    try:
        outcome = await handler(request)
        if isinstance(outcome, Response):
            return outcome, request.keep_alive
        streaming = True
        conn.become_stream()
        await outcome.run(conn)
        return None, False  # a hub stream now, or it streamed and ended
    except HTTPError as error:
        return error.response(), request.keep_alive and not streaming
    except Exception as error:
        log.exception("request failed: %s %s", loggable(request.method), loggable(request.path))
        stream = conn.stream
        if stream is not None and stream.resume:  # its head went out: end it
            if conn.transport is not None:
                conn.transport.close()
            return None, False
        conn.stream = None
        return Response.text(503, f"the hub could not answer ({type(error).__name__})"), False
