"""One HTTP/1.1 connection: parses requests with httptools, answers them in
order through the server's routes, and becomes a bare stream (no task, no
parser) once it subscribes."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Literal, cast
from urllib.parse import unquote

import httptools

from ssehub.hub import StreamSubscription

if TYPE_CHECKING:
    from ._http import HubServer

__all__ = ("Connection", "HTTPError", "Outcome", "Request", "log", "loggable")

log = logging.getLogger("ssehub.server")

Outcome = Literal["keep", "close", "stream"]


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


_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


class HTTPError(Exception):
    """A refusal: status code and a one-line reason for the client."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


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
        url = httptools.parse_url(target)
        self.raw_path = url.path.decode("utf-8", "replace")
        self.path = unquote(self.raw_path)
        self.query = (url.query or b"").decode("utf-8", "replace")
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("utf-8", "replace")


class Connection(asyncio.Protocol):
    """One client connection: parses requests, answers them in order, and
    becomes a bare stream (no task, no parser) once it subscribes."""

    __slots__ = (
        "_body",
        "_head_bytes",
        "_headers",
        "_idle",
        "_opened_at",
        "_parser",
        "_requests",
        "_server",
        "_task",
        "_too_large",
        "_url",
        "stream",
        "subscriber",
        "transport",
    )

    def __init__(self, server: HubServer) -> None:
        self._server = server
        self.transport: asyncio.Transport | None = None
        self._parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self._requests: list[Request] = []  # an empty deque costs ~600 B
        self._task: asyncio.Task[None] | None = None
        self.stream: StreamSubscription | None = None
        self.subscriber: str | None = None  # its id, when subscription events are on
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._head_bytes = 0
        self._too_large: HTTPError | None = None
        self._opened_at = 0.0
        self._idle: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        server = self._server
        if len(server._connections) >= server.max_connections:
            limit = server.max_connections
            self._refuse(HTTPError(503, f"the hub is at its connection limit ({limit})"))
            return
        server._connections.add(self)
        self._arm_idle()

    def _arm_idle(self) -> None:
        """Close a connection that is not a stream after idle_timeout."""
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(self._server.config.idle_timeout, self._idle_out)

    def _idle_out(self) -> None:
        self._idle = None
        if self.stream is None and self._task is None and self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:
            return  # a subscribed client has nothing more to say
        if self._idle is not None and not self._requests and self._task is None:
            self._arm_idle()  # it is talking: idle time starts again
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(HTTPError(400, "protocol upgrades are not supported"))
        except Exception:
            self._refuse(self._too_large or HTTPError(400, "malformed HTTP request"))
        if len(self._requests) > 8:
            self.transport.pause_reading()  # type: ignore[union-attr]

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._server._connections.discard(self)
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        self._parser = None
        stream = self.stream
        if stream is not None:
            stream.connection_lost()
            registry = self._server.subscriptions
            if registry is not None and self.subscriber is not None:
                registry.closed(self.subscriber)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "stream closed peer=%s topics=%s reason=%s seconds=%.1f",
                    self._peer(),
                    loggable(",".join(stream.topics)),
                    stream.reason,
                    time.monotonic() - self._opened_at,
                )
        if self._task is not None:
            self._task.cancel()

    def pause_writing(self) -> None:
        if self.stream is not None:
            self.stream.pause_writing()

    def resume_writing(self) -> None:
        if self.stream is not None:
            self.stream.resume_writing()

    # -- httptools callbacks ------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value))
        self._headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        size = sum(len(b) for b in self._body)
        if size > self._server.config.max_body_bytes:
            limit = self._server.config.max_body_bytes
            self._too_large = HTTPError(413, f"request body is larger than {limit} bytes")
            raise self._too_large

    def on_message_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        request = Request(
            parser.get_method().decode("ascii", "replace"),
            self._url,
            self._headers,
            b"".join(self._body),
            parser.should_keep_alive(),
        )
        self._body = []
        self._requests.append(request)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._serve())

    def _peer(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "-"

    def _become_stream(self) -> None:
        """Drop everything request-shaped: an idle stream should cost little."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        self._parser = None
        self._url = b""
        self._headers = {}
        self._body = []

    def _count_head(self, n: int) -> None:
        self._head_bytes += n
        limit = self._server.config.max_head_bytes
        if self._head_bytes > limit:
            self._too_large = HTTPError(431, f"request head is larger than {limit} bytes")
            raise self._too_large

    # -- answering ----------------------------------------------------------------------

    async def _serve(self) -> None:
        transport = self.transport
        assert transport is not None
        try:
            while self._requests and not transport.is_closing():
                request = self._requests.pop(0)
                try:
                    outcome = await self._server._handle(self, request)
                except HTTPError as error:
                    log.info(
                        "refused peer=%s %s %s status=%d reason=%s",
                        self._peer(),
                        loggable(request.method),
                        loggable(request.path),
                        error.status,
                        loggable(error.reason),
                    )
                    self.respond(error.status, error.reason + "\n", keep_alive=request.keep_alive)
                    outcome = "keep" if request.keep_alive else "close"
                except Exception as error:  # a bug or a failing store: answer, do not hang
                    log.exception(
                        "request failed: %s %s", loggable(request.method), loggable(request.path)
                    )
                    if self.stream is None or not self.stream.resume:
                        self.stream = None
                        reason = f"the hub could not answer ({type(error).__name__})"
                        self.respond(503, reason + "\n", keep_alive=False)
                    outcome = "close"
                if outcome == "stream":
                    self._requests.clear()
                    return
                if outcome == "close":
                    transport.close()
                    return
                transport.resume_reading()
        finally:
            self._task = None
            if self.stream is None and not transport.is_closing():
                self._arm_idle()

    def respond(
        self,
        status: int,
        body: str | bytes,
        *,
        content_type: str = "text/plain; charset=utf-8",
        keep_alive: bool = True,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        payload = body.encode() if isinstance(body, str) else body
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(payload)}",
        ]
        lines.extend(f"{k}: {v}" for k, v in headers)
        if not keep_alive:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        assert self.transport is not None
        self.transport.write(head + payload)

    def _refuse(self, error: HTTPError) -> None:
        self._parser = None
        if self.transport is not None and not self.transport.is_closing():
            self.respond(error.status, error.reason + "\n", keep_alive=False)
            self.transport.close()
