"""`ThreadSubscription`: a hub subscription read from a plain thread."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from types import TracebackType
from typing import Any

from ssehub.hub import EventSubscription, HubClosedError
from ssehub.protocol import Event

__all__ = ("ThreadSubscription",)

_END = object()


class ThreadSubscription:
    """The events of some topics, for a plain thread (from
    `BackgroundHub.subscribe()`)::

        with hub.subscribe("commands") as commands:
            for event in commands:  # blocks until the next event
                handle(event.data)

    A pump on the hub's loop hands events over through a queue of at most
    `buffer` events: it takes the next event from the hub only once the
    thread has room, so a thread that falls behind meets the hub's own slow
    subscriber policy (`SlowSubscriberError`, raised here; resume with
    `last_event_id`). Iteration ends at `close()` or when the hub stops.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        subscription: EventSubscription,
        buffer: int,
        submit: Callable[[Coroutine[Any, Any, None]], Future[None]],
    ) -> None:
        if type(buffer) is not int or buffer < 1:
            raise ValueError(f"buffer must be an int >= 1, not {buffer!r}")
        self._loop = loop
        self._subscription = subscription
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._buffer = buffer
        self._room: asyncio.Semaphore | None = None
        self._opened = threading.Event()
        self._ended = False
        self._pump = submit(self._run())
        if not self._opened.wait(10.0):
            self._pump.cancel()
            raise HubClosedError("cannot subscribe: the hub's loop did not answer within 10 s")

    @property
    def last_event_id(self) -> str | None:
        """The id of the last event taken (resume from it)."""
        return self._subscription.last_event_id

    def __iter__(self) -> ThreadSubscription:
        return self

    def __next__(self) -> Event:
        event = self.get()
        if event is None:
            raise StopIteration
        return event

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event; None once the subscription ended. Raises
        `TimeoutError` if none came within `timeout` seconds."""
        if self._ended:
            return None
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no event within {timeout} s") from None
        if item is _END:
            self._ended = True
            return None
        if isinstance(item, BaseException):
            self._ended = True
            raise item
        self._call(self._release)
        assert isinstance(item, Event)
        return item

    def close(self) -> None:
        """End the subscription (safe from any thread, and twice)."""
        self._call(self._subscription.close)

    def __enter__(self) -> ThreadSubscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, function: Callable[[], None]) -> None:
        if self._loop.is_closed():
            return
        try:
            self._loop.call_soon_threadsafe(function)
        except RuntimeError:  # the loop closed meanwhile
            pass

    def _release(self) -> None:
        if self._room is not None:
            self._room.release()

    async def _run(self) -> None:
        room = self._room = asyncio.Semaphore(self._buffer)
        sub = self._subscription
        try:
            await sub.open()
            self._opened.set()
            while True:
                await room.acquire()
                try:
                    event = await anext(sub)
                except StopAsyncIteration:
                    break
                self._queue.put(event)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._queue.put(error)
        finally:
            sub.close()
            self._queue.put(_END)
            self._opened.set()
