"""What the twins share: configuration, the request they send and where,
and the hooks they report to."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from ssehub.protocol import Event

from ._policy import GAP_EVENT, LIVE_EVENT, Gap, Live, Reconnect, Reconnecting, RetryPolicy, _log

__all__ = ("BaseEventSource",)

DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024
_BODY_LIMIT = 4096
# httpx errors that no reconnect can cure
_FATAL = (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL)
_DEFAULT_POLICY = RetryPolicy()  # the one place the retry defaults are written


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
        newest: int = 0,
        retry: float = _DEFAULT_POLICY.retry,
        max_retries: int | None = _DEFAULT_POLICY.max_retries,
        retry_forever: bool = False,
        max_delay: float = _DEFAULT_POLICY.max_delay,
        idle_timeout: float | None = _DEFAULT_POLICY.idle_timeout,
        policy: RetryPolicy | None = None,
        timeout: float = 10.0,
        max_line_bytes: int | None = DEFAULT_MAX_LINE_BYTES,
        on_reconnect: Callable[[Reconnecting], object] | None = None,
        on_gap: Callable[[Gap], object] | None = None,
        on_live: Callable[[Live], object] | None = None,
    ) -> None:
        if type(newest) is not int or newest < 0:
            raise ValueError(f"newest must be an int >= 0, not {newest!r}")
        if newest:  # for good: a reconnection's Last-Event-ID wins at the hub
            url = httpx.URL(url).copy_merge_params({"newest": str(newest)})
        self.url = url
        self.method = method
        if policy is None:
            policy = RetryPolicy(
                retry=retry,
                max_delay=max(max_delay, retry),
                max_retries=None if retry_forever else max_retries,
                idle_timeout=idle_timeout,
                jitter=_DEFAULT_POLICY.jitter,
            )
        elif (retry, max_retries, retry_forever, max_delay, idle_timeout) != (
            _DEFAULT_POLICY.retry,
            _DEFAULT_POLICY.max_retries,
            False,
            _DEFAULT_POLICY.max_delay,
            _DEFAULT_POLICY.idle_timeout,
        ):
            raise TypeError(
                "give either policy=RetryPolicy(...) or retry/max_retries/retry_forever/"
                "max_delay/idle_timeout, not both"
            )
        self.policy = policy
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
        self._on_reconnect = on_reconnect
        self._on_gap = on_gap
        self._on_live = on_live
        self._live = False
        # the last request of a redirected stream: reconnections go there
        self._redirected: httpx.Request | None = None
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
    def live(self) -> bool:
        """True once the hub's live marker arrived on this connection: the
        replay asked for (a resume, `newest`) is over. False again on each
        reconnection until the next marker; stays False with a server that
        sends none (any server but an ssehub hub, or no replay asked)."""
        return self._live

    @property
    def retry_ms(self) -> int | None:
        """The reconnection time the server asked for with `retry:`."""
        return self._reconnect.retry_ms

    @property
    def current_url(self) -> str:
        """Where the next connection goes: `url`, or after a redirected
        stream the URL the redirect led to (as in Chromium)."""
        return str(self._redirected.url if self._redirected is not None else self.url)

    def _build_request(
        self, client: httpx.Client | httpx.AsyncClient, read_timeout: float | None
    ) -> httpx.Request:
        timeout = httpx.Timeout(self._timeout, read=read_timeout)
        ours = httpx.Headers([(k.encode(), v) for k, v in self._reconnect.headers().items()])
        final = self._redirected
        if final is None:
            headers = httpx.Headers(self._headers)
            headers.update(ours)
            kwargs = {k: v for k, v in self._request.items() if v is not None}
            return client.build_request(
                self.method, self.url, headers=headers, timeout=timeout, **kwargs
            )
        # Send again what httpx sent last, which already follows the
        # redirect rules: the method (a 303 makes a GET), the body, the
        # headers (no Authorization to another origin); cookies come from
        # the client's jar, as on a redirect.
        again = httpx.Headers(final.headers)
        for name in ("Last-Event-ID", "Cookie"):
            again.pop(name, None)
        again.update(ours)
        return httpx.Request(
            final.method,
            final.url,
            headers=again,
            cookies=client.cookies,
            stream=final.stream,
            extensions={"timeout": timeout.as_dict()},
        )

    def _opened(self, response: httpx.Response) -> None:
        """A 200 event stream: if redirects led here, reconnect here."""
        self._live = False
        if response.history:
            self._redirected = response.request

    def _is_notice(self, event: Event) -> bool:
        """Report a hub's gap notice to `on_gap` (or the `ssehub.client`
        logger) and its live marker to `live` / `on_live`; True if `event`
        was one and is not to be yielded."""
        kind = event.event
        if kind != GAP_EVENT:  # the per-event cost: one comparison (two for others)
            return kind == LIVE_EVENT and self._is_live(event)
        gap = self._reconnect.gap(event, self.current_url)
        if gap is None:
            return False
        if self._on_gap is None:
            _log.warning("%s", gap)
        else:
            self._on_gap(gap)
        return True

    def _is_live(self, event: Event) -> bool:
        live = self._reconnect.live(event, self.current_url)
        if live is None:
            return False
        self._live = True
        if self._on_live is not None:
            self._on_live(live)
        return True

    def _next_delay(self, error: BaseException | None) -> float:
        """Seconds to wait before the next attempt, reported to
        `on_reconnect`; raises `SSEConnectionError` past `max_retries`."""
        delay = self._reconnect.delay(error)
        if self._on_reconnect is not None:
            attempt = self._reconnect.failures if error is not None else 0
            self._on_reconnect(Reconnecting(attempt, error, delay, self.current_url))
        return delay
