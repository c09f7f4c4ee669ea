"""One HTTP/1.1 connection: parses requests with httptools, answers them in
order with its host's handler, and becomes a bare stream (no task, no
parser) once it subscribes. A handler takes a `Request` and returns a
`Response` (written here, with the connection's keep-alive framing) or a
`Streaming`, which turns the connection into a stream; it raises `HTTPError`
to refuse.

What a client can make a connection cost is bounded (docs/server.md, limits):
a request head must end within `head_timeout` and its body within
`body_timeout`, however slowly it trickles; the head is bounded in bytes
(also while a header is still incomplete) and in header fields, the body in
bytes (counted as it comes, so chunked bodies cost linear time), chunk
framing and trailers in bytes; at most `_MAX_QUEUED` pipelined requests wait
for their answers, and reading pauses while the client does not read them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import cast

import httptools

from ssehub.hub import StreamSubscription
from ssehub.mercure import HTTPError, Response

from ._config import ServerConfig
from ._handler import Handler, Request

__all__ = ("Connection", "HTTPError", "Host", "log", "loggable")

log = logging.getLogger("ssehub.server")

_SLICE = 4096  # bytes fed to the parser at a time: the granularity of the bounds below
_MAX_QUEUED = 8  # pipelined requests read ahead of their answers
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_LINGER = 2.0  # seconds a refused client may go on sending before the hub closes


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
    408: "Request Timeout",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


class Host:
    """What a connection needs from its server: the limits, the handler,
    and the set of open connections (and how many may be)."""

    __slots__ = ("config", "connections", "handler", "max_connections")

    def __init__(self, config: ServerConfig, handler: Handler, max_connections: int) -> None:
        self.config = config
        self.handler = handler
        self.max_connections = max_connections
        self.connections: set[Connection] = set()


class Connection(asyncio.Protocol):
    """One client connection: parses requests, answers them in order, and
    becomes a bare stream (no task, no parser) once it subscribes."""

    __slots__ = (
        "_backlogged",
        "_body",
        "_body_bytes",
        "_drained",
        "_eof",
        "_error",
        "_head_bytes",
        "_headers",
        "_parser",
        "_phase",
        "_quiet",
        "_requests",
        "_server",
        "_task",
        "_timer",
        "_unparsed",
        "_url",
        "on_lost",
        "opened_at",
        "stream",
        "transport",
    )

    def __init__(self, server: Host) -> None:
        self._server = server
        self.transport: asyncio.Transport | None = None
        self._parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self._requests: list[Request] = []  # an empty deque costs ~600 B
        self._task: asyncio.Task[None] | None = None
        self.stream: StreamSubscription | None = None
        self.on_lost: Callable[[], None] | None = None  # a stream's cleanup, if it has one
        self._url: list[bytes] | None = None  # its pieces, while a head is read
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._head_bytes = 0
        self._body_bytes = 0
        self._error: HTTPError | None = None  # raised by a callback, or waiting its turn
        self.opened_at = 0.0  # when it became a stream (monotonic)
        self._timer: asyncio.TimerHandle | None = None
        # "new" (no request yet), "idle" (between requests), "head", "body",
        # "closing" (refused: waiting for the client to close)
        self._phase = "new"
        self._quiet = 0  # bytes fed since the parser last gave us a piece
        self._unparsed: memoryview | None = None  # read, not parsed: the queue is full
        self._eof = False  # the client half-closed: answer what it sent, then close
        self._backlogged = False  # the client does not read its answers
        self._drained: asyncio.Future[None] | None = None  # `_serve` waits on it then

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        server = self._server
        if len(server.connections) >= server.max_connections:
            limit = server.max_connections
            self._refuse(HTTPError(503, f"the hub is at its connection limit ({limit})"))
            return
        server.connections.add(self)
        config = server.config
        # like nginx's client_header_timeout: the first head is due from the start
        self._arm(min(config.idle_timeout, config.head_timeout))

    def _arm(self, seconds: float) -> None:
        """(Re)start the connection's one timer."""
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(seconds, self._time_out, seconds)

    def _time_out(self, seconds: float) -> None:
        self._timer = None
        transport = self.transport
        if transport is not None and self._backlogged and self.stream is None:
            transport.abort()  # it has read none of its answers for `seconds`
            return
        if self.stream is not None or self._task is not None or transport is None:
            return  # a stream has no deadline; the hub answering is no client's fault
        if self._phase in ("new", "idle", "closing"):
            self._close()  # it said nothing (or was told why): close without a word
        else:
            self._reject(HTTPError(408, f"request {self._phase} not received within {seconds:g} s"))

    def _close(self) -> None:
        """Close, at once if the client has not even read what we sent."""
        transport = self.transport
        if transport is not None:
            if self._backlogged:
                transport.abort()
            else:
                transport.close()

    def data_received(self, data: bytes) -> None:
        if self._parser is None:
            return  # a stream (or a refused request) has nothing more to say
        if self._unparsed is not None:  # read before the pause took effect
            self._unparsed = memoryview(self._unparsed.tobytes() + data)
            return
        self._feed(memoryview(data))

    def _feed(self, data: memoryview) -> None:
        """Parse `data` a slice at a time; keep the rest for later when the
        queue of requests waiting for their answers is full."""
        transport = self.transport
        assert transport is not None
        size = len(data)
        start = 0
        while start < size:
            parser = self._parser
            if parser is None:
                return
            if self._queue_full():
                self._unparsed = data[start:]
                transport.pause_reading()
                return
            piece = data[start : start + _SLICE]
            start += _SLICE
            self._quiet += len(piece)
            try:
                parser.feed_data(piece)
            except httptools.HttpParserUpgrade:
                self._reject(HTTPError(400, "protocol upgrades are not supported"))
                return
            except Exception:
                self._reject(self._error or HTTPError(400, "malformed HTTP request"))
                return
            limit = self._server.config.max_head_bytes
            if self._quiet > limit and self._phase in ("head", "body"):
                # a header (or trailer, or chunk extension) that does not end
                # is held by the parser, where no callback counts it
                what = "head" if self._phase == "head" else "trailers or chunk framing"
                self._reject(HTTPError(431, f"request {what} larger than {limit} bytes"))
                return

    def _queue_full(self) -> bool:
        """Whether to read no further ahead: the client is not reading its
        answers, or enough requests (or request bodies) wait for theirs."""
        requests = self._requests
        if self._backlogged or len(requests) >= _MAX_QUEUED:
            return True
        return bool(requests) and (
            sum(len(r.body) for r in requests) >= self._server.config.max_body_bytes
        )

    def _resume_reading(self) -> None:
        """Parse what was held back, then read again (as `_serve` answers)."""
        unparsed = self._unparsed
        if unparsed is not None:
            if self._queue_full():
                return
            self._unparsed = None
            self._feed(unparsed)
        transport = self.transport
        if self._unparsed is None and self._parser is not None and not self._eof:
            assert transport is not None
            transport.resume_reading()

    def eof_received(self) -> bool:
        transport = self.transport
        pending = self._task is not None or self._requests or self._unparsed is not None
        if not pending or self.stream is not None or transport is None:
            return False  # close our side too
        if transport.get_extra_info("sslcontext") is not None:
            return False  # TLS cannot half-close
        self._eof = True  # a half-close: answer what was asked, then close
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._parser = None
        self._unparsed = None
        stream = self.stream
        if stream is not None:
            stream.connection_lost()
            on_lost, self.on_lost = self.on_lost, None
            if on_lost is not None:
                on_lost()
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "stream closed peer=%s topics=%s reason=%s seconds=%.1f",
                    self.peer(),
                    loggable(",".join(stream.topics)),
                    stream.reason,
                    time.monotonic() - self.opened_at,
                )
        if self._task is not None:
            self._task.cancel()

    def pause_writing(self) -> None:
        if self.stream is not None:
            self.stream.pause_writing()
        else:
            self._backlogged = True  # `_queue_full` now stops reading ahead

    def resume_writing(self) -> None:
        if self.stream is not None:
            self.stream.resume_writing()
        elif self._backlogged:
            self._backlogged = False
            if self._drained is not None and not self._drained.done():
                self._drained.set_result(None)
            self._resume_reading()

    async def _writable(self) -> None:
        """Until the client has read enough of its answers for the next one
        (closed by the idle timer if it never does)."""
        loop = asyncio.get_running_loop()
        self._drained = loop.create_future()
        self._arm(self._server.config.idle_timeout)
        try:
            await self._drained
        finally:
            self._drained = None

    # -- httptools callbacks ------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = []
        self._headers = {}
        self._body = []
        self._head_bytes = 0
        self._body_bytes = 0
        self._quiet = 0
        if self._phase == "idle":  # "new": the deadline set at connection_made runs on
            self._arm(self._server.config.head_timeout)
        self._phase = "head"

    def on_url(self, url: bytes) -> None:
        self._quiet = 0
        pieces = self._url
        assert pieces is not None
        pieces.append(url)
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._phase == "body":
            return  # a trailer: never merged into the head (RFC 9110 6.5.1)
        self._quiet = 0
        self._count_head(len(name) + len(value))
        headers = self._headers
        key = name.lower()
        limit = self._server.config.max_header_fields
        if len(headers) >= limit and key not in headers:
            self._error = HTTPError(431, f"more than {limit} header fields")
            raise self._error
        previous = headers.get(key)  # a repeated field is one list (RFC 9110 5.3)
        headers[key] = value if previous is None else previous + b", " + value

    def on_headers_complete(self) -> None:
        headers = self._headers
        length = headers.get(b"content-length")
        if length in (None, b"0") and b"transfer-encoding" not in headers:
            return  # no body: the message is complete
        config = self._server.config
        if length is not None and int(length) > config.max_body_bytes:  # llhttp checked it
            self._error = HTTPError(
                413, f"request body is larger than {config.max_body_bytes} bytes"
            )
            raise self._error
        self._phase = "body"
        self._arm(config.body_timeout)
        expect = headers.get(b"expect")
        if expect is not None and expect.lower() == b"100-continue":
            parser = self._parser
            in_order = self._task is None and not self._requests  # no answer is due before it
            if in_order and parser is not None and parser.get_http_version() == "1.1":
                assert self.transport is not None
                self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._quiet = 0
        self._body_bytes += len(body)
        limit = self._server.config.max_body_bytes
        if self._body_bytes > limit:
            self._error = HTTPError(413, f"request body is larger than {limit} bytes")
            raise self._error
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        request = Request(
            parser.get_method().decode("ascii", "replace"),
            b"".join(self._url or ()),
            self._headers,
            b"".join(self._body),
            parser.should_keep_alive(),
        )
        self._url = None
        self._body = []
        self._phase = "idle"
        self._requests.append(request)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._serve())

    def peer(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "-"

    def _become_stream(self) -> None:
        """Drop everything request-shaped: an idle stream should cost little."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._parser = None
        self._unparsed = None
        self._url = None
        self._headers = {}
        self._body = []

    def _count_head(self, n: int) -> None:
        self._head_bytes += n
        limit = self._server.config.max_head_bytes
        if self._head_bytes > limit:
            self._error = HTTPError(431, f"request head is larger than {limit} bytes")
            raise self._error

    def _reject(self, error: HTTPError) -> None:
        """Refuse what the client sent: read no more, answer the requests
        before it in order, then this refusal, then close."""
        self._parser = None
        self._unparsed = None
        self._error = error
        if log.isEnabledFor(logging.INFO):
            log.info(
                "refused peer=%s - - status=%d reason=%s",
                self.peer(),
                error.status,
                loggable(error.reason),
            )
        if self._task is None and not self._requests:
            self._ready_for_more()
        elif self.transport is not None:
            self.transport.pause_reading()

    def _refuse_and_linger(self, error: HTTPError) -> None:
        """Answer the refusal and close our side, but read (and drop) what the
        client still sends for a while: closing with unread bytes would send
        a reset that can destroy the answer before the client reads it."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._backlogged:
            transport.abort()  # it reads nothing: no answer would reach it
            return
        if not transport.can_write_eof():  # TLS
            self._refuse(error)
            return
        self._parser = None
        self.respond(error.status, error.reason + "\n", keep_alive=False)
        transport.write_eof()
        self._phase = "closing"
        self._arm(_LINGER)
        transport.resume_reading()

    def _ready_for_more(self) -> None:
        """Every request read so far is answered (and none became a stream)."""
        if self._error is not None:
            self._refuse_and_linger(self._error)
        elif self._eof:
            self._close()
        else:  # the deadline of what it sends next starts now
            config = self._server.config
            phase = "idle" if self._backlogged else self._phase  # dropped if it never reads
            seconds = {"head": config.head_timeout, "body": config.body_timeout}
            self._arm(seconds.get(phase, config.idle_timeout))

    # -- answering ----------------------------------------------------------------------

    async def _serve(self) -> None:
        transport = self.transport
        assert transport is not None
        handler = self._server.handler
        try:
            while self._requests and not transport.is_closing():
                if self._backlogged:
                    await self._writable()
                    continue
                request = self._requests.pop(0)
                keep_alive = request.keep_alive
                response: Response | None
                try:
                    answer = await handler(request)
                    if isinstance(answer, Response):
                        response = answer
                    else:
                        self._become_stream()
                        keep_alive = False
                        await answer.run(self)
                        if self.stream is not None:
                            self._requests.clear()
                            return
                        response = None  # it streamed and ended
                except HTTPError as error:
                    response = error.response()
                except Exception as error:  # a bug or a failing store: answer, do not hang
                    log.exception(
                        "request failed: %s %s", loggable(request.method), loggable(request.path)
                    )
                    keep_alive = False
                    response = None
                    if self.stream is None or not self.stream.resume:
                        self.stream = None
                        reason = f"the hub could not answer ({type(error).__name__})"
                        response = Response.text(503, reason)
                if response is not None:
                    if response.status >= 400 and log.isEnabledFor(logging.INFO):
                        log.info(
                            "refused peer=%s %s %s status=%d reason=%s",
                            self.peer(),
                            loggable(request.method),
                            loggable(request.path),
                            response.status,
                            loggable(response.body[:200].decode("utf-8", "replace").strip()),
                        )
                    self.respond(
                        response.status,
                        response.body,
                        content_type=response.content_type,
                        keep_alive=keep_alive,
                        headers=response.headers,
                    )
                if not keep_alive:
                    transport.close()
                    return
                self._resume_reading()
        finally:
            self._task = None
            if self.stream is None and not transport.is_closing():
                self._ready_for_more()

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
