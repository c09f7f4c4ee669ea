"""The server's log: `loggable` makes client text safe for one line, and
the connection's lines (a refusal, a stream's end) are written here, at
INFO, formatted only when INFO is on."""

from __future__ import annotations

import asyncio
import logging
import time

from ssehub.hub import StreamSubscription
from ssehub.mercure import Response

from ._handler import Request

__all__ = ("answered", "log", "loggable", "peer", "refused", "stream_closed")

log = logging.getLogger("ssehub.server")


def loggable(value: object) -> str:
    """`value` as text safe for one log line: CR, LF and every other
    non-printable character (and the backslash) are escaped as in a Python
    literal, so client text cannot forge or split log lines."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(
        c if c.isprintable() and c != "\\" else c.encode("unicode_escape").decode("ascii")
        for c in text
    )


def peer(transport: asyncio.BaseTransport | None) -> str:
    """The client's address as `host:port`, or `-`."""
    address = transport.get_extra_info("peername") if transport else None
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) else "-"


def refused(
    transport: asyncio.BaseTransport | None,
    status: int,
    reason: str | bytes,
    method: str = "-",
    path: str = "-",
) -> None:
    """A request (or what the client sent instead: `-` `-`) was refused."""
    if log.isEnabledFor(logging.INFO):
        if isinstance(reason, bytes):  # a response body: its start is the reason
            reason = reason[:200].decode("utf-8", "replace").strip()
        log.info(
            "refused peer=%s %s %s status=%d reason=%s",
            peer(transport),
            loggable(method),
            loggable(path),
            status,
            loggable(reason),
        )


def answered(transport: asyncio.BaseTransport | None, request: Request, response: Response) -> None:
    """`response` answers `request`: logged if it refuses."""
    if response.status >= 400:
        refused(transport, response.status, response.body, request.method, request.path)


def stream_closed(
    transport: asyncio.BaseTransport | None, stream: StreamSubscription, opened_at: float
) -> None:
    if log.isEnabledFor(logging.INFO):
        log.info(
            "stream closed peer=%s topics=%s reason=%s seconds=%.1f",
            peer(transport),
            loggable(",".join(stream.topics)),
            stream.reason,
            time.monotonic() - opened_at,
        )
