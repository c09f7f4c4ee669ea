"""What the layer answers: a `Response` to send as is, and `HTTPError`, the
one refusal type (a status and a one-line reason) that becomes one."""

from __future__ import annotations

from dataclasses import dataclass

from ssehub.protocol._slots import slot_setters

__all__ = ("HTTPError", "Response", "bearer_error")

PLAIN = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True, init=False)
class Response:
    """A complete answer: status, body, content type and extra headers (the
    front end adds framing: Content-Length, Connection)."""

    status: int
    body: bytes = b""
    content_type: str = PLAIN
    headers: tuple[tuple[str, str], ...] = ()

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = PLAIN,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        # the dataclass's fields, each set through its slot (`_slots.py`)
        _STATUS(self, status)
        _BODY(self, body)
        _CONTENT_TYPE(self, content_type)
        _HEADERS(self, headers)

    @classmethod
    def text(cls, status: int, text: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
        """A plain-text answer; a line end is added."""
        return cls(status, (text + "\n").encode(), PLAIN, headers)


_STATUS, _BODY, _CONTENT_TYPE, _HEADERS = slot_setters(
    Response, "status", "body", "content_type", "headers"
)


class HTTPError(Exception):
    """A refusal: an HTTP status, a one-line reason for the client, and the
    headers it needs (CORS, `WWW-Authenticate`)."""

    def __init__(self, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers

    def response(self) -> Response:
        return Response.text(self.status, self.reason, self.headers)


def bearer_error(status: int, reason: str, error: str | None = "invalid_token") -> HTTPError:
    """An RFC 6750 refusal: the reason in the body, the code in the
    challenge (no code when no token was presented)."""
    challenge = "Bearer"
    if error is not None:
        description = reason.replace("\\", "\\\\").replace('"', '\\"')
        challenge = f'Bearer error="{error}", error_description="{description}"'
    return HTTPError(status, reason, (("WWW-Authenticate", challenge),))
