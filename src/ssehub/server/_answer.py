"""How a connection's requests are answered: eagerly, and in a task only
when one is needed.

`answer_eagerly(coro)` runs the connection's answering coroutine at once,
inside `data_received`, up to its first suspension. When the answer is
ready then (a memory-store publish, a subscribe with no replay on the
memory or SQLite store, `/healthz`; a SQLite publish waits for its commit,
so it suspends), the request cost no task and no loop iteration. When it
suspends, a real `asyncio.Task` carries on from exactly there (`_Resumed`):
the future it waits for, a cancellation, an exception and its end are what
they would be had a task run it from the start; the connection owns that
task (`Connection.answering`: `connection_lost` cancels it, `HubServer.drain`
waits for it).

The rule: code that runs before a request's first suspension runs with no
current task (`asyncio.current_task()` is None), so it must not need one:
no `asyncio.timeout` / `timeout_at`, `TaskGroup`, `asyncio.current_task()`,
`wait_for` (which uses `timeout` from Python 3.12), anyio, and no setting
of context variables (they would outlive the request). A route says whether
it obeys that: `Route(handler, eager=True)` (`_routes.py`); a route that
does not say so is answered in a task of its own. The answering coroutine
asks for one before such a route's handler runs (`to_task()`), so that the
handler's very first line already has its task. Each route's `eager` is
decided once, when `HubServer` builds its table (`_http.py`): the Mercure
route is eager only without an authorization callback (httpx and
`asyncio.timeout`) and with a store known to need no task (ssehub's memory
and SQLite stores, by exact type: a subclass may override a method with one
that needs a task); any other store, Redis or a third-party backend written
against the `Backend` protocol, gets a task per request as before.

`answer(handler, request, conn)` is one request's answer: the handler's
`Response`, its refusal, or a 503 when it fails (a bug, a failing store:
answer, do not hang). A `Streaming` answer makes the connection a stream
before it runs.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Coroutine, Generator
from typing import Any, Protocol

from ssehub.mercure import HTTPError, Response

from ._handler import Handler, Request, StreamTarget
from ._log import log, loggable

__all__ = ("Streamable", "answer", "answer_eagerly", "to_task")


class Streamable(StreamTarget, Protocol):
    """The connection, as the answer sees it."""

    def become_stream(self) -> None:
        """Drop everything request-shaped: it reads no more requests."""


def answer_eagerly(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run `coro` here, up to its first suspension: None when it ended
    there, else the task that carries it on from where it stopped."""
    try:
        # `next` with a default: a coroutine that ends raises no StopIteration
        # to catch here (`send` makes one, an exception object, per request)
        step = next(coro.__await__(), _ENDED)
    except asyncio.CancelledError:
        return None  # it cancelled itself: a task would have ended so, silently
    if step is _ENDED:
        return None
    return asyncio.get_running_loop().create_task(_Resumed(coro, step))


_ENDED: Any = object()


@types.coroutine
def to_task() -> Generator[None, None, None]:
    """Go on in a task: a bare yield, which `answer_eagerly` takes as the
    first suspension (and `_Resumed` skips: the task's first step is
    already a later loop iteration). In a task, it lets the loop run once."""
    yield


_STARTED: Any = object()


class _Resumed(Coroutine[Any, Any, None]):
    """A coroutine that has run up to its first suspension (`step`, what it
    yielded: the future it waits for, or None), as a task's coroutine: the
    task's first step hands the task that future (so the task waits for it,
    and cancelling the task cancels it, as if the task had run the
    coroutine from its start); every later step goes to the coroutine."""

    __slots__ = ("_coro", "_step")

    def __init__(self, coro: Coroutine[Any, Any, None], step: Any) -> None:
        self._coro = coro
        self._step: Any = step  # `_STARTED` once the task took it

    def send(self, value: Any) -> Any:
        step = self._step
        if step is _STARTED:
            return self._coro.send(value)
        self._step = _STARTED
        if step is not None:
            return step  # the task now waits for the future the coroutine waits for
        return self._coro.send(None)  # a bare yield: this is the loop's next turn

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        step = self._step
        if step is not _STARTED:  # cancelled before its first step: so is what it waits for
            self._step = _STARTED
            if step is not None:
                step.cancel()
        if val is None and tb is None:
            return self._coro.throw(typ)
        return self._coro.throw(typ, val, tb)  # pragma: no cover - tasks throw one exception

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, None]:  # pragma: no cover - only a task drives it
        raise TypeError("a resumed answer is driven by its task only")


async def answer(
    handler: Handler, request: Request, conn: Streamable
) -> tuple[Response | None, bool]:
    """The response to write for `request` (None: nothing to write), and
    whether the connection may read another request after it. While a hub
    stream runs on the connection, `conn.stream` is set."""
    streaming = False
    try:
        outcome = await handler(request)
        if isinstance(outcome, Response):
            return outcome, request.keep_alive
        streaming = True
        conn.become_stream()
        await outcome.run(conn)
        return None, False  # a hub stream now, or it streamed and ended
    except HTTPError as error:
        return error.response(), request.keep_alive and not streaming
    except Exception as error:
        log.exception("request failed: %s %s", loggable(request.method), loggable(request.path))
        stream = conn.stream
        if stream is not None and stream.resume:  # its head went out: end it
            if conn.transport is not None:
                conn.transport.close()
            return None, False
        conn.stream = None
        return Response.text(503, f"the hub could not answer ({type(error).__name__})"), False
