"""A `Response` on the wire: the status line and the framing headers
(`Content-Type`, `Content-Length`, `Connection: close` when the connection
ends after it) before the body, in one bytes object for one write."""

from __future__ import annotations

import functools

from ssehub.mercure import Response

__all__ = ("CONTINUE", "frame")

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

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


def frame(response: Response, keep_alive: bool) -> bytes:
    """The whole answer, head and body. The head around `Content-Length`
    is built once per kind of answer (status, type, headers, framing)."""
    body = response.body
    before, after = _head(response.status, response.content_type, response.headers, keep_alive)
    return b"".join((before, b"%d" % len(body), after, body))


@functools.lru_cache(maxsize=256)  # a pure function of a few kinds of answers
def _head(
    status: int, content_type: str, headers: tuple[tuple[str, str], ...], keep_alive: bool
) -> tuple[bytes, bytes]:
    """The head before the body's length and after it."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", f"Content-Type: {content_type}"]
    before = "\r\n".join(lines) + "\r\nContent-Length: "
    rest = [f"{k}: {v}" for k, v in headers]
    if not keep_alive:
        rest.append("Connection: close")
    after = "".join(f"\r\n{line}" for line in rest) + "\r\n\r\n"
    return before.encode(), after.encode()
