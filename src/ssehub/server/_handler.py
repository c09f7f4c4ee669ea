"""What a connection hands its handler and gets back: the parsed `Request`,
and the `Handler` that answers it with a `Response` (written by the
connection) or a `Streaming` (which makes the connection a stream)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import unquote

import httptools

from ssehub.hub import StreamSubscription
from ssehub.mercure import Response

__all__ = ("Handler", "Request", "StreamTarget", "Streaming")


class Request:
    __slots__ = ("body", "headers", "keep_alive", "method", "path", "query", "raw_path")

    def __init__(
        self,
        method: str,
        target: bytes,
        headers: dict[bytes, bytes],
        body: bytes,
        keep_alive: bool,
    ) -> None:
        self.method = method
        if target[:1] == b"/" and target.find(b"#") < 0:  # (`in` on bytes raises inside)
            # origin-form, no fragment: what `parse_url` gives, for less (the
            # reader's parser let through no byte that `parse_url` refuses)
            path, _, query = target.partition(b"?")
        else:
            url = httptools.parse_url(target)
            path, query = url.path, url.query or b""
        self.raw_path = raw_path = path.decode("utf-8", "replace")
        self.path = unquote(raw_path) if "%" in raw_path else raw_path
        self.query = query.decode("utf-8", "replace")
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("utf-8", "replace")


class StreamTarget(Protocol):
    """The connection, as a `Streaming` sees it."""

    transport: asyncio.Transport | None
    stream: StreamSubscription | None
    on_lost: Callable[[], None] | None
    opened_at: float

    def peer(self) -> str: ...


class Streaming(Protocol):
    """A handler's answer that makes the connection a stream: `run` is
    called once the connection dropped its parser. It sets `conn.stream` for
    a hub stream (the connection is then a bare transport), or streams for
    as long as it runs (the connection's own task) and returns; it raises
    `HTTPError` to refuse before writing anything."""

    async def run(self, conn: StreamTarget) -> None: ...


Handler = Callable[[Request], Awaitable[Response | Streaming]]
