"""What can end an event source for good."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ("SSEClientError", "SSEConnectionError", "SSEResponseError")

MAX_BODY_EXCERPT = 4096


class SSEClientError(Exception):
    """Base class of the client's errors."""


class SSEResponseError(SSEClientError):
    """The server answered, but not with an event stream: a 204, a status
    other than 200, or a content type other than `text/event-stream`. The
    spec says not to reconnect after this.

    Carries `status_code`, `headers` and at most 4 KiB of the `body`.
    """

    def __init__(self, status_code: int, headers: Mapping[str, str], body: bytes, why: str) -> None:
        excerpt = body[:200].decode("utf-8", "replace").strip()
        detail = f": {excerpt!r}" if excerpt else ""
        super().__init__(f"{why} (status {status_code}){detail}")
        self.status_code = status_code
        self.headers = dict(headers)
        self.body = body[:MAX_BODY_EXCERPT]


class SSEConnectionError(SSEClientError):
    """Reconnecting failed `max_retries` times in a row; `__cause__` is the
    last failure."""

    def __init__(self, attempts: int, last: BaseException | None) -> None:
        super().__init__(f"gave up after {attempts} failed attempts to connect: {last!r}")
        self.attempts = attempts
