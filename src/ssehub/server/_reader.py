"""The request reader of one HTTP/1.1 connection: bytes in, parsed
`Request`s (or one refusal) out. No transport, task or clock: the
connection feeds it, takes the requests it queued, keeps the deadline it
names and writes the refusal it returns.

What a client can make it cost is bounded (docs/server.md, limits): a head
in bytes (also while a header is still incomplete: bytes fed with no
callback count) and in header fields, a body in bytes (counted as it comes,
so chunked bodies cost linear time), chunk framing and trailers in bytes.
At most `MAX_QUEUED` requests (and about one body's bytes) wait for their
answers: beyond, it holds what it was fed, unparsed, until `resume`.

Deadlines: `phase` is what the client is sending ("new": nothing yet,
"idle": between requests, "head", "body"); when a phase begins whose
deadline starts then, `due` is set to its seconds.
"""

from __future__ import annotations

from typing import NoReturn

import httptools

from ssehub.mercure import HTTPError

from ._config import ServerConfig
from ._handler import Request

__all__ = ("MAX_QUEUED", "SLICE", "RequestReader")

SLICE = 4096  # bytes fed to the parser at a time: the granularity of the bounds
MAX_QUEUED = 8  # pipelined requests read ahead of their answers


class RequestReader:
    """Parses one connection's requests into `requests`, in order."""

    __slots__ = (
        "_body",
        "_body_bytes",
        "_config",
        "_head_bytes",
        "_headers",
        "_parser",
        "_quiet",
        "_url",
        "continue_due",
        "due",
        "eof",
        "error",
        "phase",
        "reading",
        "requests",
        "unparsed",
    )

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self.requests: list[Request] = []  # read, not yet answered (an empty deque: ~600 B)
        self.phase = "new"
        self.due: float | None = None  # seconds the phase just begun has, until taken
        self.continue_due = False  # a `100 Continue` is due, unless an answer is on its way
        self.error: HTTPError | None = None  # the refusal: nothing more is read
        self.eof = False  # the client half-closed: answer what it sent, then close
        self._url: list[bytes] | None = None  # its pieces, while a head is read
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] | None = None  # its pieces, once a body comes
        self._head_bytes = 0
        self._body_bytes = 0
        self._quiet = 0  # bytes fed since the parser last gave us a piece
        self.reading = True  # it neither refused nor was closed
        # what it was fed and holds back, unparsed, until the queue has room
        self.unparsed: memoryview | None = None

    @property
    def pending(self) -> bool:
        """Whether it read requests not yet answered, or holds bytes back."""
        return bool(self.requests) or self.unparsed is not None

    def feed(self, data: bytes | memoryview, backlogged: bool) -> HTTPError | None:
        """Parse `data` (`backlogged`: the client does not read its answers,
        so read no further ahead); return the refusal if it ends in one."""
        parser = self._parser
        if parser is None:
            return None  # refused, or closed: nothing more to read
        if self.unparsed is not None:  # fed before the pause took effect
            self.unparsed = memoryview(self.unparsed.tobytes() + data)
            return None
        size = len(data)
        if size > SLICE and type(data) is not memoryview:
            data = memoryview(data)  # sliced below: no copies
        requests = self.requests
        limit = self._config.max_head_bytes
        start = 0
        while start < size:
            if (backlogged or requests) and self._queue_full(backlogged):
                self.unparsed = memoryview(data)[start:]
                return None
            piece = data if size <= SLICE else data[start : start + SLICE]
            start += SLICE
            self._quiet += len(piece)
            try:
                parser.feed_data(piece)
            except httptools.HttpParserUpgrade:
                return self._refused(HTTPError(400, "protocol upgrades are not supported"))
            except Exception:
                return self._refused(self.error or HTTPError(400, "malformed HTTP request"))
            if self._quiet > limit and self.phase in ("head", "body"):
                # a header (or trailer, or chunk extension) that does not end
                # is held by the parser, where no callback counts it
                what = "head" if self.phase == "head" else "trailers or chunk framing"
                return self._refused(HTTPError(431, f"request {what} larger than {limit} bytes"))
            parser = self._parser
            if parser is None:
                return None
        return None

    def resume(self, backlogged: bool) -> HTTPError | None:
        """Parse what was held back, if the queue has room now."""
        unparsed = self.unparsed
        if unparsed is None or self._queue_full(backlogged):
            return None
        self.unparsed = None
        return self.feed(unparsed, backlogged)

    def refuse(self, error: HTTPError) -> None:
        """Read no more: `error` is the answer to what the client sent."""
        self.error = error
        self.close()

    def close(self) -> None:
        """Drop the parser (and with it the parser's reference to us)."""
        self._parser = None
        self.reading = False
        self.unparsed = None

    def deadline(self) -> float:
        """The seconds the client has for what it sends next."""
        config = self._config
        if self.phase == "head":
            return config.head_timeout
        if self.phase == "body":
            return config.body_timeout
        return config.idle_timeout

    def late(self, seconds: float) -> HTTPError | None:
        """The refusal once the deadline of `seconds` passed: None when the
        client owes nothing (before or between requests: close silently)."""
        if self.phase in ("new", "idle"):
            return None
        return HTTPError(408, f"request {self.phase} not received within {seconds:g} s")

    def _refused(self, error: HTTPError) -> HTTPError:
        self.refuse(error)
        return error

    def _queue_full(self, backlogged: bool) -> bool:
        """Whether to read no further ahead: the client is not reading its
        answers, or enough requests (or request bodies) wait for theirs."""
        requests = self.requests
        if backlogged or len(requests) >= MAX_QUEUED:
            return True
        return bool(requests) and sum(len(r.body) for r in requests) >= self._config.max_body_bytes

    def _fail(self, status: int, reason: str) -> NoReturn:
        """Refuse from a parser callback: the parser raises it on."""
        self.error = HTTPError(status, reason)
        raise self.error

    # -- httptools callbacks ------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = []
        self._headers = {}
        self._body = None
        self._head_bytes = 0
        self._body_bytes = 0
        self._quiet = 0
        if self.phase == "idle":  # "new": the deadline of the connection's start runs on
            self.due = self._config.head_timeout
        self.phase = "head"

    def on_url(self, url: bytes) -> None:
        self._quiet = 0
        pieces = self._url
        assert pieces is not None
        pieces.append(url)
        self._head_bytes += len(url)
        if self._head_bytes > self._config.max_head_bytes:
            self._head_too_large()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.phase == "body":
            return  # a trailer: never merged into the head (RFC 9110 6.5.1)
        self._quiet = 0
        config = self._config
        size = self._head_bytes = self._head_bytes + len(name) + len(value)
        if size > config.max_head_bytes:
            self._head_too_large()
        headers = self._headers
        key = name.lower()
        if key in headers:  # a repeated field is one list (RFC 9110 5.3)
            headers[key] += b", " + value
        elif len(headers) < config.max_header_fields:
            headers[key] = value
        else:
            self._fail(431, f"more than {config.max_header_fields} header fields")

    def on_headers_complete(self) -> None:
        headers = self._headers
        length = headers.get(b"content-length")
        if length in (None, b"0") and b"transfer-encoding" not in headers:
            return  # no body: the message is complete
        config = self._config
        if length is not None and int(length) > config.max_body_bytes:  # llhttp checked it
            self._fail(413, f"request body is larger than {config.max_body_bytes} bytes")
        self.phase = "body"
        self.due = config.body_timeout
        expect = headers.get(b"expect")
        if expect is not None and expect.lower() == b"100-continue":
            parser = self._parser
            in_order = not self.requests  # no answer is due before it
            if in_order and parser is not None and parser.get_http_version() == "1.1":
                self.continue_due = True

    def on_body(self, body: bytes) -> None:
        self._quiet = 0
        self._body_bytes += len(body)
        limit = self._config.max_body_bytes
        if self._body_bytes > limit:
            self._fail(413, f"request body is larger than {limit} bytes")
        pieces = self._body
        if pieces is None:
            self._body = [body]
        else:
            pieces.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        self.requests.append(
            Request(
                parser.get_method().decode("ascii", "replace"),
                b"".join(self._url or ()),
                self._headers,
                b"" if self._body is None else b"".join(self._body),
                parser.should_keep_alive(),
            )
        )
        self._url = None
        self._body = None
        self.phase = "idle"

    def _head_too_large(self) -> NoReturn:
        self._fail(431, f"request head is larger than {self._config.max_head_bytes} bytes")
