"""`EventSource`: the synchronous twin."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import httpx

from ssehub.protocol import Event

from ._base import _BODY_LIMIT, _FATAL, BaseEventSource

__all__ = ("EventSource",)


class EventSource(BaseEventSource):
    """Iterate the events of an SSE endpoint, reconnecting as a browser does::

        with EventSource("http://127.0.0.1:8000/.well-known/mercure?topic=clock") as source:
            for event in source:
                print(event.id, event.data)

    After a dropped stream it waits the server's `retry:` time (or `retry`
    seconds), with capped exponential backoff and jitter on failures in a
    row, and resumes with `Last-Event-ID`. A 204, a status other than 200 or
    a content type other than `text/event-stream` raise `SSEResponseError`;
    `max_retries` failures in a row raise `SSEConnectionError`. A stream
    silent for `idle_timeout` seconds (no byte, not even a heartbeat) is
    reconnected. After a redirected stream it reconnects where the redirect
    led (`current_url`). Pass `client=` to use your own `httpx.Client` (it
    is not closed for you); `break` out of the loop closes the connection.

    The loop yields the stream's events only: a hub's gap notice goes to
    `on_gap(Gap)` (or, without it, a warning on the `ssehub.client`
    logger), and each wait before a reconnection to
    `on_reconnect(Reconnecting)`.
    """

    def __init__(
        self, url: str | httpx.URL, *, client: httpx.Client | None = None, **kwargs: Any
    ) -> None:
        super().__init__(url, **kwargs)
        self._owns_client = client is None
        self._client = client or httpx.Client(follow_redirects=True)
        self._wake = threading.Event()  # set by close(): ends a wait at once

    def __iter__(self) -> Iterator[Event]:
        reconnect = self._reconnect
        while not self.closed:
            error: BaseException | None = None
            try:
                request = self._build_request(self._client, self.policy.idle_timeout)
                response = self._client.send(request, stream=True)
                try:
                    why = reconnect.refusal(response.status_code, response.headers)
                    if why is not None:
                        reconnect.refuse(
                            response.status_code, response.headers, _read_some(response), why
                        )
                    self._opened(response)
                    parser = reconnect.opened()
                    for chunk in response.iter_bytes():
                        for event in parser.feed(chunk):
                            reconnect.last_event_id = event.id or ""
                            if not self._is_notice(event):
                                yield event
                        reconnect.progressed(parser)
                    yield from parser.close()
                    reconnect.progressed(parser)
                finally:
                    response.close()
            except _FATAL:
                raise
            except httpx.TransportError as exc:  # dropped, refused, idle too long
                error = exc
            if self._stopped():  # closed while we were reading
                return
            self._wait(self._next_delay(error))

    def _wait(self, delay: float) -> None:
        # any finite delay (a retry: of 2**64 - 1 ms is 584 million years),
        # in slices a lock can hold; close() from another thread ends it
        deadline = time.monotonic() + delay
        while not self._wake.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wake.wait(min(remaining, threading.TIMEOUT_MAX))

    def close(self) -> None:
        """Stop: the iteration ends (a wait before reconnecting ends at
        once, even from another thread), and an owned client is closed."""
        self._closed = True
        self._wake.set()
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> EventSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _read_some(response: httpx.Response) -> bytes:
    body = b""
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) >= _BODY_LIMIT:
            break
    return body[:_BODY_LIMIT]
