"""`EventSourceResponse`: a pure-ASGI streaming response for SSE.

Its lifetime is a race of tasks it owns — the producer (your iterator,
encoded and sent), the disconnect listener, the heartbeat and, optionally,
the shutdown signal of a `Streams` handle. The first to finish cancels the
others and the response waits for them, so your generator's `finally` runs
before the response returns, and no task outlives it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any

from ssehub.hub import Clock, SystemClock, Timer
from ssehub.protocol import Event, encode_comment, encode_event

from ._types import Receive, Scope, Send

__all__ = ("EventLike", "EventSourceResponse", "Streams", "encode_item")

EventLike = Event | str | bytes | Mapping[str, Any]
"""What a producer may yield: an `Event`; a str (the data); bytes (UTF-8
data); or a dict with `data` (a str, or anything JSON-serializable),
`event`, `id`, `retry`, or only `comment`."""

_FIELDS = frozenset(("data", "event", "id", "retry", "comment"))
SSE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def encode_item(item: EventLike) -> bytes:
    """The wire bytes of one produced item; a bad item raises an error that
    names the problem (a newline in `id` is refused, never stripped)."""
    if isinstance(item, Event):
        return encode_event(item)
    if isinstance(item, str):
        return encode_event(Event(item))
    if isinstance(item, bytes | bytearray | memoryview):
        return encode_event(Event(bytes(item).decode("utf-8")))
    if isinstance(item, Mapping):
        unknown = set(item) - _FIELDS
        if unknown:
            raise ValueError(f"unknown event field(s) {sorted(unknown)}; use {sorted(_FIELDS)}")
        if "comment" in item and len(item) == 1:
            return encode_comment(str(item["comment"]))
        data = item.get("data", "")
        if not isinstance(data, str):
            data = json.dumps(data, separators=(",", ":"))
        return encode_event(
            Event(data, item.get("event") or "message", item.get("id"), item.get("retry"))
        )
    raise TypeError(
        f"cannot send a {type(item).__name__} as an event: yield an Event, str, bytes or dict"
    )


class Streams:
    """A handle on open `EventSourceResponse`s, to end them on demand::

        streams = Streams()
        EventSourceResponse(gen(), streams=streams)
        ...
        await streams.drain(grace=5.0)   # on deploy, from an admin route, ...

    `drain()` asks every open response (and every later one) to end: its
    producer is cancelled (its `finally` runs), the stream is closed, and
    `drain` returns once all have ended or `grace` has passed. Hand one to
    the responses of one app; there is no process-wide state.
    """

    def __init__(self) -> None:
        self._draining = False
        self._signals: set[asyncio.Future[None]] = set()
        self._ended: set[asyncio.Future[None]] = set()

    def __len__(self) -> int:
        """Responses streaming now."""
        return len(self._ended)

    @property
    def draining(self) -> bool:
        return self._draining

    async def drain(self, grace: float = 5.0) -> int:
        """End every stream; return how many were still open after `grace`."""
        self._draining = True
        for signal in self._signals:
            if not signal.done():
                signal.set_result(None)
        pending = {f for f in self._ended if not f.done()}
        if pending and grace > 0:
            await asyncio.wait(pending, timeout=grace)
        return sum(1 for f in pending if not f.done())

    def _enter(self) -> tuple[asyncio.Future[None], asyncio.Future[None]]:
        loop = asyncio.get_running_loop()
        signal: asyncio.Future[None] = loop.create_future()
        ended: asyncio.Future[None] = loop.create_future()
        if self._draining:
            signal.set_result(None)
        self._signals.add(signal)
        self._ended.add(ended)
        return signal, ended

    def _leave(self, signal: asyncio.Future[None], ended: asyncio.Future[None]) -> None:
        self._signals.discard(signal)
        self._ended.discard(ended)
        if not ended.done():
            ended.set_result(None)


class EventSourceResponse:
    """Stream `content` as Server-Sent Events, from any ASGI app::

        @app.get("/tokens")
        async def tokens() -> EventSourceResponse:
            async def gen():
                for token in model.generate():
                    yield {"event": "token", "data": token}
            return EventSourceResponse(gen())

    - encodes each item exactly (see `EventLike`); a bad item ends the
      stream and raises in the app, naming the field;
    - sends a comment at once, so buffering middleware and proxies pass the
      head on, then a heartbeat comment when nothing was sent for
      `heartbeat` seconds (None: never);
    - the client's disconnect cancels the producer at once; a `send` that
      does not complete in `send_timeout` seconds (a dead or stalled peer)
      ends the stream the same way;
    - `streams=` joins a `Streams` handle whose `drain()` ends it; when the
      server cancels the request (e.g. uvicorn's `--timeout-graceful-shutdown`)
      the producer is cancelled and cleaned up as well;
    - headers: `text/event-stream`, `Cache-Control: no-cache`,
      `X-Accel-Buffering: no`, never `Connection` (illegal in HTTP/2).
    """

    def __init__(
        self,
        content: AsyncIterable[EventLike],
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        heartbeat: float | None = 15.0,
        send_timeout: float | None = 30.0,
        retry: int | None = None,
        streams: Streams | None = None,
        clock: Clock | None = None,
    ) -> None:
        if heartbeat is not None and not heartbeat > 0:
            raise ValueError(f"heartbeat must be > 0 seconds or None, not {heartbeat!r}")
        if send_timeout is not None and not send_timeout > 0:
            raise ValueError(f"send_timeout must be > 0 seconds or None, not {send_timeout!r}")
        if retry is not None and (type(retry) is not int or retry < 0):
            raise ValueError(f"retry must be a non-negative int (milliseconds), not {retry!r}")
        self._frames = _encoded(content)
        self._content = content
        self.status_code = status_code
        self.raw_headers = list(SSE_HEADERS)  # the name Starlette's Response uses too
        for name, value in (headers or {}).items():
            if "\r" in name + value or "\n" in name + value:
                raise ValueError(f"header {name!r} must not contain CR or LF")
            self.raw_headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        self.heartbeat = heartbeat
        self.send_timeout = send_timeout
        self.first = encode_comment() if retry is None else f"retry: {retry}\n\n".encode()
        self.streams = streams
        self._clock: Clock = clock or SystemClock()
        self._last_send = 0.0
        self._asgi_send: Send | None = None
        self._sending = False
        self._beat_task: asyncio.Task[bool] | None = None
        self._timer: Timer | None = None

    @classmethod
    def _of_frames(cls, frames: AsyncIterator[bytes], **kwargs: Any) -> EventSourceResponse:
        """A response over already-encoded event bytes (ssehub's own hub)."""
        response = cls(_nothing(), **kwargs)
        response._frames = frames
        response._content = frames
        return response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._asgi_send is not None:
            raise RuntimeError("an EventSourceResponse serves one request")
        self._asgi_send = send
        signal = ended = None
        if self.streams is not None:
            signal, ended = self.streams._enter()
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            if not await self._send(self.first):
                return
            await self._race(receive, signal)
        finally:
            if self.streams is not None and signal is not None and ended is not None:
                self.streams._leave(signal, ended)

    async def _race(self, receive: Receive, signal: asyncio.Future[None] | None) -> None:
        # Two tasks per stream (producer, disconnect listener); heartbeats and
        # the drain signal are callbacks, so an idle stream costs little.
        loop = asyncio.get_running_loop()
        produce = loop.create_task(self._produce())
        listen = loop.create_task(_disconnected(receive))
        tasks = {produce, listen}
        drained = False

        def on_drain(_: asyncio.Future[None]) -> None:
            nonlocal drained
            drained = True
            produce.cancel()

        if signal is not None:
            signal.add_done_callback(on_drain)
        if self.heartbeat is not None:
            self._timer = self._clock.call_later(self.heartbeat, self._beat)
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if signal is not None:
                signal.remove_done_callback(on_drain)
            if self._timer is not None:
                self._timer.cancel()
            self.heartbeat = None  # and no beat reschedules itself
            if self._beat_task is not None:
                tasks.add(self._beat_task)
            for task in tasks:
                task.cancel()
            # wait for every task, the producer's cleanup included, even when
            # we are cancelled ourselves (the server's graceful timeout)
            await asyncio.gather(*tasks, return_exceptions=True)
        if produce in done and not produce.cancelled() and produce.exception() is not None:
            raise produce.exception()  # type: ignore[misc]
        ended = produce in done and not produce.cancelled() and produce.result()
        if ended or (drained and listen not in done):
            await self._send(b"", more=False)  # end the body: the peer is still there

    async def _produce(self) -> bool:
        """Send every item; True when the producer ended and the peer took
        everything, False when the peer went away."""
        frames = self._frames
        try:
            async for frame in frames:
                beat = self._beat_task
                if beat is not None and not beat.done():
                    await beat  # one send at a time
                if not await self._send(frame):
                    return False
            return True
        finally:
            # `async for` does not close what it iterates: close the encoder
            # and then your iterator, so its `finally` runs now, not at GC.
            for iterator in (frames, self._content):
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    await aclose()

    def _beat(self) -> None:
        """The heartbeat timer: if nothing was sent for a heartbeat and no
        send is under way, send a comment (a short-lived task)."""
        if self.heartbeat is None:
            return
        quiet = self._clock.time() - self._last_send >= self.heartbeat * 0.9
        beat = self._beat_task
        if quiet and not self._sending and (beat is None or beat.done()):
            self._beat_task = asyncio.get_running_loop().create_task(self._send(_COMMENT))
        self._timer = self._clock.call_later(self.heartbeat, self._beat)

    async def _send(self, body: bytes, *, more: bool = True) -> bool:
        """Send a body part; False if the peer is gone or did not take it in
        `send_timeout` seconds."""
        send = self._asgi_send
        assert send is not None
        message = {"type": "http.response.body", "body": body, "more_body": more}
        self._sending = True
        try:
            async with asyncio.timeout(self.send_timeout):
                await send(message)
        except (TimeoutError, OSError):
            return False
        finally:
            self._sending = False
        self._last_send = self._clock.time()
        return True


_COMMENT = encode_comment()


async def _encoded(content: AsyncIterable[EventLike]) -> AsyncIterator[bytes]:
    async for item in content:
        yield encode_item(item)


async def _nothing() -> AsyncIterator[EventLike]:
    return
    yield  # pragma: no cover


async def _disconnected(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
