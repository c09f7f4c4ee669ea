"""`AsyncEventSource`: the asyncio twin."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import httpx

from ssehub.protocol import Event

from ._base import _BODY_LIMIT, _FATAL, BaseEventSource

__all__ = ("AsyncEventSource",)


class _IdleTimeoutError(Exception):
    """No byte arrived within idle_timeout."""


class AsyncEventSource(BaseEventSource):
    """The async twin of `EventSource`::

        async with AsyncEventSource(url) as source:
            async for event in source:
                ...

    Same reconnection, redirects, hooks, errors and options (the hooks are
    plain callables, called in the task that iterates). The idle timeout is enforced
    around each read, independent of httpx's timeouts. Use `async with` (or
    `await source.aclose()`) so leaving the loop closes the connection at
    once.
    """

    def __init__(
        self, url: str | httpx.URL, *, client: httpx.AsyncClient | None = None, **kwargs: Any
    ) -> None:
        super().__init__(url, **kwargs)
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(follow_redirects=True)
        self._response: httpx.Response | None = None
        self._wake = asyncio.Event()  # set by aclose(): ends a wait at once

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        reconnect = self._reconnect
        idle = self.policy.idle_timeout
        while not self.closed:
            error: BaseException | None = None
            try:
                request = self._build_request(self._client, None)
                response = self._response = await self._client.send(request, stream=True)
                try:
                    why = reconnect.refusal(response.status_code, response.headers)
                    if why is not None:
                        body = await _read_some(response)
                        reconnect.refuse(response.status_code, response.headers, body, why)
                    self._opened(response)
                    parser = reconnect.opened()
                    chunks = response.aiter_bytes()
                    while True:
                        try:
                            async with asyncio.timeout(idle):
                                chunk = await anext(chunks)
                        except StopAsyncIteration:
                            break
                        except TimeoutError:
                            raise _IdleTimeoutError(f"no data for {idle} s") from None
                        for event in parser.feed(chunk):
                            reconnect.last_event_id = event.id or ""
                            if not self._is_notice(event):
                                yield event
                        reconnect.progressed(parser)
                    for event in parser.close():
                        yield event
                    reconnect.progressed(parser)
                finally:
                    await response.aclose()
            except _FATAL:
                raise
            except (httpx.TransportError, _IdleTimeoutError) as exc:
                error = exc
            finally:
                self._response = None
            if self._stopped():  # closed while we were reading
                return
            await self._wait(self._next_delay(error))

    async def _wait(self, delay: float) -> None:
        # aclose() from another task ends the wait at once
        try:
            async with asyncio.timeout(delay):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def aclose(self) -> None:
        """Stop: close the current connection, end the iteration (a wait
        before reconnecting ends at once), and close an owned client."""
        self._closed = True
        self._wake.set()
        response = self._response
        if response is not None:
            await response.aclose()
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> AsyncEventSource:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def _read_some(response: httpx.Response) -> bytes:
    body = b""
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= _BODY_LIMIT:
            break
    return body[:_BODY_LIMIT]
