"""What the twins share: configuration and the request they send."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from ._policy import Reconnect, RetryPolicy

__all__ = ("BaseEventSource",)

DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024
_BODY_LIMIT = 4096
# httpx errors that no reconnect can cure
_FATAL = (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL)


class BaseEventSource:
    """Configuration and state of an event source; `EventSource` and
    `AsyncEventSource` add only the I/O."""

    def __init__(
        self,
        url: str | httpx.URL,
        *,
        method: str = "GET",
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        cookies: Any = None,
        content: bytes | str | None = None,
        data: Mapping[str, Any] | None = None,
        json: Any = None,
        last_event_id: str | None = None,
        retry: float = 3.0,
        max_retries: int = 10,
        retry_forever: bool = False,
        max_delay: float = 60.0,
        idle_timeout: float | None = 45.0,
        timeout: float = 10.0,
        max_line_bytes: int | None = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        self.url = url
        self.method = method
        self.policy = RetryPolicy(
            retry=retry,
            max_delay=max(max_delay, retry),
            max_retries=None if retry_forever else max_retries,
            idle_timeout=idle_timeout,
        )
        self._reconnect = Reconnect(
            self.policy, last_event_id=last_event_id, max_line_bytes=max_line_bytes
        )
        self._headers = dict(headers or {})
        self._request: dict[str, Any] = {
            "params": params,
            "cookies": cookies,
            "content": content,
            "data": data,
            "json": json,
        }
        self._timeout = timeout
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once `close()` / `aclose()` was called."""
        return self._closed

    def _stopped(self) -> bool:
        # a call, not the property: close() may run while we await
        return self._closed

    @property
    def last_event_id(self) -> str:
        """The last event ID seen; sent as `Last-Event-ID` on reconnection."""
        return self._reconnect.last_event_id

    @property
    def retry_ms(self) -> int | None:
        """The reconnection time the server asked for with `retry:`."""
        return self._reconnect.retry_ms

    def _request_kwargs(self, read_timeout: float | None) -> dict[str, Any]:
        headers = {**self._headers, **self._reconnect.headers()}
        timeout = httpx.Timeout(self._timeout, read=read_timeout)
        kwargs = {k: v for k, v in self._request.items() if v is not None}
        return {"headers": headers, "timeout": timeout, **kwargs}
