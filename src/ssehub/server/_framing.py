"""A `Response` on the wire: the status line and the framing headers
(`Content-Type`, `Content-Length`, `Connection: close` when the connection
ends after it) before the body, in one bytes object for one write."""

from __future__ import annotations

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
    """The whole answer, head and body."""
    body = response.body
    lines = [
        f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Error')}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(body)}",
    ]
    lines.extend(f"{k}: {v}" for k, v in response.headers)
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
