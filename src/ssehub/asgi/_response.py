"""`EventSourceResponse`: a pure-ASGI streaming response for SSE.

Its lifetime is a race of tasks it owns — the producer (your iterator,
encoded and sent), the disconnect listener, the heartbeat and, optionally,
the drain signal of `Streams` handles. The first to finish cancels the
others and the response waits for them, so your generator's `finally` runs
before the response returns, and no task outlives it.

Shutdown: ASGI tells a running request nothing when the server is asked to
stop (uvicorn, hypercorn and granian wait for it, then cancel it, and send
the lifespan `shutdown` only after). `Streams.lifespan` closes that gap
without touching the server: for its duration it chains a handler in front
of the server's own SIGINT/SIGTERM handler that drains the streams, and it
puts the handle in the lifespan state, so every response of the app joins
it. A response ended by a drain, or cancelled by the server, sends a
`retry:` hint and returns (no traceback in the server's log).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal as _signal
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from types import FrameType
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
_STATE_KEY = "ssehub.asgi.streams"
"""The lifespan-state key under which `Streams.lifespan` offers its handle."""
_SHUTDOWN_RETRY = 1000
"""The `retry:` hint (ms) of a stream ended by a drain or by the server,
when the response has no `retry` of its own."""
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
        app = FastAPI(lifespan=streams.lifespan)    # ends every stream at Ctrl-C
        ...
        EventSourceResponse(gen(), streams=streams)
        await streams.drain(grace=5.0)   # on deploy, from an admin route, ...

    `drain()` asks every open response (and every later one) to end: its
    producer is cancelled (its `finally` runs), a `retry:` hint is sent and
    the stream is closed, and `drain` returns once all have ended or `grace`
    has passed. Hand one to the responses of one app; there is no
    process-wide state (see `lifespan` for the one exception, signals, and
    how it is scoped).
    """

    def __init__(
        self, *, grace: float = 5.0, signals: Iterable[int] = (_signal.SIGINT, _signal.SIGTERM)
    ) -> None:
        if not grace >= 0:
            raise ValueError(f"grace must be >= 0 seconds, not {grace!r}")
        self.grace = grace
        self.signals = tuple(_signal.Signals(s) for s in signals)
        self._draining = False
        # each open response's "end now" callback: one dict entry per stream
        self._members: dict[Callable[[], object], None] = {}
        self._waiting: list[tuple[set[Callable[[], object]], asyncio.Future[None]]] = []

    def __len__(self) -> int:
        """Responses streaming now."""
        return len(self._members)

    @property
    def draining(self) -> bool:
        return self._draining

    def drain_nowait(self) -> None:
        """Ask every open response (and every later one) to end, at once;
        `drain()` also waits for them."""
        self._draining = True
        for end in list(self._members):
            end()

    async def drain(self, grace: float = 5.0) -> int:
        """End every stream; return how many were still open after `grace`."""
        self.drain_nowait()
        pending = set(self._members)
        if pending and grace > 0:
            entry = (pending, asyncio.get_running_loop().create_future())
            self._waiting.append(entry)
            try:
                await asyncio.wait((entry[1],), timeout=grace)
            finally:
                self._waiting.remove(entry)
        return len(pending.intersection(self._members))

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[dict[str, Streams]]:
        """For your app's `lifespan=`: end every stream of the app promptly
        when the server is told to stop, and at the lifespan's end.

        - It yields the lifespan state `{"ssehub.asgi.streams": self}`, so every
          `EventSourceResponse` of the app (`HubApp`'s included) joins this
          handle, whether or not it was given `streams=`.
        - While it runs it chains a handler for `signals` (SIGINT and SIGTERM)
          in front of the one installed — the server's: on a signal it calls
          `drain_nowait()` on the loop and then the server's handler, which
          goes on as before (it stops accepting and waits for the streams,
          which are ending). A signal whose handler is the default
          (`SIG_DFL`: the process dies) or not a Python one is left alone;
          one that is ignored (`SIG_IGN`, e.g. SIGINT in hypercorn's worker
          processes) only drains. Nothing is installed off the main thread.
          At exit the previous handlers are put back (in `finally`), unless
          someone replaced ours meanwhile; ours then only passes signals on.
        - At exit it drains with `grace` seconds, so the server's lifespan
          shutdown ends streams that are still open.
        """
        loop = asyncio.get_running_loop()
        active = True
        hooked: dict[_signal.Signals, Any] = {}

        def on_signal(previous: Any) -> Callable[[int, FrameType | None], None]:
            def handler(signum: int, frame: FrameType | None) -> None:
                if active and not loop.is_closed():
                    loop.call_soon_threadsafe(self.drain_nowait)
                if callable(previous):
                    previous(signum, frame)

            return handler

        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                previous = _signal.getsignal(sig)
                if previous is _signal.SIG_DFL or previous is None:
                    continue
                ours = on_signal(previous)
                _signal.signal(sig, ours)
                hooked[sig] = (previous, ours)
        try:
            yield {_STATE_KEY: self}
            await self.drain(self.grace)
        finally:
            active = False
            for sig, (previous, ours) in hooked.items():
                if _signal.getsignal(sig) is ours:
                    _signal.signal(sig, previous)

    def _join(self, end: Callable[[], object]) -> None:
        """A response is open: `end()` asks it to end (soon, if draining)."""
        self._members[end] = None
        if self._draining:
            asyncio.get_running_loop().call_soon(end)

    def _part(self, end: Callable[[], object]) -> None:
        """The response that joined with `end` is over."""
        if self._members.pop(end, 0) is None:
            for pending, done in self._waiting:
                pending.discard(end)
                if not pending and not done.done():
                    done.set_result(None)

    def _enter(self) -> tuple[asyncio.Future[None], Callable[[], object]]:
        """Join with a future done when asked to end."""
        signal: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def end() -> None:
            if not signal.done():
                signal.set_result(None)

        self._join(end)
        return signal, end


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
    - `streams=` joins a `Streams` handle whose `drain()` ends it, and so
      does the app's `Streams.lifespan` (found in the lifespan state): the
      producer is cancelled, a `retry:` hint sent (`retry`, or 1000 ms) and
      the body ended;
    - when the server cancels the request (its graceful timeout ran out)
      the producer is cancelled and cleaned up, the `retry:` hint sent if the
      peer takes it, and the response returns instead of raising, so the
      server logs no traceback;
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
        self._bye = f"retry: {_SHUTDOWN_RETRY if retry is None else retry}\n\n".encode()
        self.streams = streams
        self._clock: Clock = clock or SystemClock()
        self._last_send = 0.0
        self._asgi_send: Send | None = None
        self._sending = False
        self._body_ended = False
        self._beat_task: asyncio.Task[bool] | None = None
        self._timer: Timer | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._asgi_send is not None:
            raise RuntimeError("an EventSourceResponse serves one request")
        self._asgi_send = send
        handles = [self.streams] if self.streams is not None else []
        state = scope.get("state")
        app_streams = state.get(_STATE_KEY) if isinstance(state, Mapping) else None
        if isinstance(app_streams, Streams) and app_streams is not self.streams:
            handles.append(app_streams)  # the app's `Streams.lifespan`
        joined = [(handle, *handle._enter()) for handle in handles]
        started = False
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            started = True
            if not await self._send(self.first):
                return
            await self._race(receive, [signal for _, signal, _ in joined])
        except asyncio.CancelledError:
            # The server cancelled the request (its graceful timeout ran
            # out); the race's tasks are done and cleaned up. Say when to come
            # back and end the body, then return: the request is over, and a
            # CancelledError would only become a traceback in the server's log.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            if started:
                await self._send(self._bye, more=False, within=_BYE_TIMEOUT)
        finally:
            for handle, _, end in joined:
                handle._part(end)

    async def _race(self, receive: Receive, signals: list[asyncio.Future[None]]) -> None:
        # Two tasks per stream (producer, disconnect listener); heartbeats and
        # the drain signals are callbacks, so an idle stream costs little.
        loop = asyncio.get_running_loop()
        produce = loop.create_task(self._produce())
        listen = loop.create_task(_disconnected(receive))
        tasks = {produce, listen}
        drained = False

        def on_drain(_: asyncio.Future[None]) -> None:
            nonlocal drained
            drained = True
            produce.cancel()

        for signal in signals:
            signal.add_done_callback(on_drain)
        if self.heartbeat is not None:
            self._timer = self._clock.call_later(self.heartbeat, self._beat)
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for signal in signals:
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
        if ended:
            await self._send(b"", more=False)  # end the body: the peer is still there
        elif drained and listen not in done:
            await self._send(self._bye, more=False, within=_BYE_TIMEOUT)  # come back later

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

    async def _send(self, body: bytes, *, more: bool = True, within: float | None = None) -> bool:
        """Send a body part; False if the peer is gone or did not take it in
        `within` (default `send_timeout`) seconds."""
        send = self._asgi_send
        assert send is not None
        if self._body_ended:
            return False  # e.g. cancelled just after the last part: nothing may follow
        message = {"type": "http.response.body", "body": body, "more_body": more}
        self._sending = True
        try:
            async with asyncio.timeout(self.send_timeout if within is None else within):
                await send(message)
        except (TimeoutError, OSError):
            return False
        finally:
            self._sending = False
        self._last_send = self._clock.time()
        self._body_ended = not more
        return True


_COMMENT = encode_comment()
_BYE_TIMEOUT = 1.0  # for the last words of a drained or cancelled stream: shutdown waits on it


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
