"""One `HubApp` stream: the hub writes to it as it writes to a socket of the
standalone server, through ASGI `send`.

`SendTransport` is the write end of a hub `StreamSubscription`
(`Hub.subscribe_stream`): the fan-out hands it the group's one bytes object
and it sends that as one `http.response.body` message at once, from the
fan-out pass itself, by running `send` inline up to its first suspension
(as `Hub.publish` runs its store): with uvicorn, hypercorn and an unpaused
socket the send completes there, so an event wakes no task and allocates one
message per stream. Only a send that suspends (the peer's buffer is full) is
finished by a task of the stream's, bounded by `send_timeout`; meanwhile the
subscription is paused and the hub buffers (bounded in events and bytes, the
slow-client policy) as it does for a paused socket, and a stream paused for
two heartbeats is dropped as stalled. Heartbeats are the hub's ticks.

The request's own task (`HubApp.__call__`) waits for the client's
disconnect (`receive`) and does nothing else: no producer task, no listener
task, no timer per stream. When the stream has to end otherwise (a drain, the
token expired, the hub shut down, the subscriber was dropped), the request
task is woken by cancelling it (`woken` tells ours from the server's), and it
sends the last words (a `retry:` hint) and the end of the body, bounded by a
second (`finish`).

The code of a `send` before its first suspension runs in the fan-out pass,
not in the request's task, in a copy of the request's context variables.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Generator
from typing import Any, Literal

from ssehub.hub import StreamSubscription

from ._types import Message, Send

__all__ = ("SendTransport",)

log = logging.getLogger("ssehub.asgi")
_BYE = b"retry: 1000\n\n"  # drained, or cancelled by the server: come back soon
_BYE_TIMEOUT = 1.0  # for the last words of a stream: a shutdown waits on it
Ending = Literal["", "close", "abort", "gone"]
Held = tuple[str | None, str | None, asyncio.TimerHandle | None]


class SendTransport(asyncio.WriteTransport):
    """The hub's view of an ASGI response: `write`, `close`, `abort`."""

    __slots__ = (
        "_context",
        "_ending",
        "_finisher",
        "_inside",
        "_outbox",
        "_send",
        "_task",
        "_timeout",
        "_waking",
        "held",
        "sub",
    )

    def __init__(self, send: Send, send_timeout: float | None) -> None:
        super().__init__(_NO_EXTRA)  # (not a new empty dict per stream)
        self._send = send
        self._timeout = send_timeout
        self._context = contextvars.copy_context()  # the request's: sends run in it
        self._inside = False  # running in `_context` now (a finisher)
        self._outbox: list[Message] | None = None  # what came meanwhile (a page at most)
        # finishes a send that suspended: while it runs, what comes is queued
        self._finisher: asyncio.Task[None] | None = None
        self._task: asyncio.Task[Any] | None = None  # the request's, while it waits
        self._waking = False  # we cancelled it, to end the stream
        self._ending: Ending = ""
        self.sub: StreamSubscription | None = None
        # the app's own per-stream state, when there is any (`HubApp`: the
        # subscriber id, the webhooks' id, the token's expiry timer)
        self.held: Held | None = None

    # -- the transport the hub writes to -------------------------------------

    def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """Queue the response head (before the first `write`)."""
        self._push({"type": "http.response.start", "status": status, "headers": headers})

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._ending:
            return
        self._push({"type": "http.response.body", "body": data, "more_body": True})

    def is_closing(self) -> bool:
        return bool(self._ending)

    def close(self) -> None:
        """The hub is done with it (shutdown: its `retry:` hint is written):
        send what is queued and end the body."""
        self._end("close")

    def abort(self) -> None:
        """Dropped (slow, stalled) or cut at the end of a drain's grace."""
        self._end("abort")

    def end(self, last_words: bytes) -> None:
        """End the stream from the app's side (a drain, an expired token):
        no more events; `last_words` and the end of the body."""
        if self._ending:
            return
        if self.sub is not None:
            self.sub.close()
        self.write(last_words)
        self._end("close")

    def __call__(self) -> None:
        """What a `Streams` drain calls (the stream is its own member there,
        not a bound method per stream): end with a `retry:` hint."""
        self.end(_BYE)

    # -- sending ---------------------------------------------------------------

    def _push(self, message: Message) -> None:
        if self._finisher is not None:  # a send is under way (suspended)
            if self._outbox is None:
                self._outbox = []
            self._outbox.append(message)
            return
        step = self._step(message)
        if step is not _DONE:
            self._finisher = asyncio.get_running_loop().create_task(
                self._finish(step), context=self._context
            )
            if self.sub is not None:
                self.sub.pause_writing()  # the hub holds what comes, bounded

    def _step(self, message: Message) -> Any:
        """Run `send(message)` up to its first suspension: `_DONE` when it
        completed, else (the iterator, what it waits for)."""
        try:
            it = self._send(message).__await__()
            step = it.send(None) if self._inside else self._context.run(it.send, None)
        except StopIteration:
            return _DONE
        except OSError:
            self._lost()
            return _DONE
        except Exception:  # the server's or a middleware's: not the fan-out's problem
            log.exception("ASGI send failed; ending the stream")
            self._lost()
            return _DONE
        return it, step

    async def _finish(self, first: tuple[Generator[Any, None, Any], Any]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await _Continued(*first)
                while self._outbox and self._ending != "abort":
                    messages, self._outbox = self._outbox, None
                    for message in _coalesced(messages):
                        await self._send(message)
        except (TimeoutError, OSError):
            self._lost()
            return
        except Exception:
            log.exception("ASGI send failed; ending the stream")
            self._lost()
            return
        finally:
            self._finisher = None
        if self._ending:
            self._wake()  # the request task sends the end
        elif self.sub is not None:
            self._inside = True
            try:
                self.sub.resume_writing()  # the hub writes its backlog now
            finally:
                self._inside = False

    def _lost(self) -> None:
        """The peer took nothing in time, or the connection is gone."""
        self._end("gone")

    # -- ending ------------------------------------------------------------------

    def _end(self, how: Ending) -> None:
        if self._ending and not (how == "abort" and self._ending == "close"):
            return
        self._ending = how
        if how != "close" and self._finisher is not None:
            self._finisher.cancel()
        # The subscription is not closed here: this may run inside a fan-out
        # pass (a send that failed), which closing would disturb. The hub
        # closed it already (close, abort), or the request task does it now.
        self._wake()

    def _wake(self) -> None:
        task = self._task
        if task is not None and not self._waking and not task.done():
            if self._finisher is not None and self._ending == "close":
                return  # the finisher sends what is left first, then wakes us
            self._waking = True
            task.cancel()

    # -- the request task's side (`HubApp` waits in `receive()` between these)

    def waiting(self) -> None:
        """The request task waits for the disconnect now: ending the stream
        otherwise wakes it (by cancelling it, see `woken`)."""
        self._task = asyncio.current_task()

    def left(self) -> None:
        """The client disconnected: nothing more is sent."""
        if not self._ending:
            self._ending = "gone"

    def woken(self, bye: bytes) -> None:
        """The waiting request task was cancelled: by us (the stream ends),
        or by the server (its graceful timeout ran out): then the stream ends
        with `bye`, a `retry:` hint, and the request returns instead of
        raising (a CancelledError would only be a traceback in its log)."""
        task, self._task = self._task, None  # not woken again
        assert task is not None
        if self._waking:
            self._waking = False
            task.uncancel()
        if task.cancelling() > 0:
            task.uncancel()
            self.end(bye)

    async def finish(self) -> None:
        """The last words: what is queued, then the end of the body (unless
        the client left), bounded by a second; then the hub forgets it."""
        self._task = None
        await self._last_words()

    async def _last_words(self) -> None:
        finisher = self._finisher
        if finisher is not None:
            if self._ending == "close":
                await asyncio.wait((finisher,), timeout=_BYE_TIMEOUT)
            finisher.cancel()
            await asyncio.gather(finisher, return_exceptions=True)
        messages, self._outbox = self._outbox or [], None
        sub = self.sub
        if self._ending != "gone":
            messages.append({"type": "http.response.body", "body": b"", "more_body": False})
            try:
                async with asyncio.timeout(_BYE_TIMEOUT):
                    for message in _coalesced(messages):
                        await self._send(message)
            except (TimeoutError, OSError):
                pass
        if sub is not None:
            sub.connection_lost()  # what a drain waits for


_DONE = object()
_NO_EXTRA: dict[str, Any] = {}  # `get_extra_info()` has nothing to tell


def _coalesced(messages: list[Message]) -> list[Message]:
    """Consecutive body parts joined into one message."""
    out: list[Message] = []
    for message in messages:
        last = out[-1] if out else None
        if (
            last is not None
            and message["type"] == last["type"] == "http.response.body"
            and last.get("more_body", False)
        ):
            body = bytes(last["body"]) + bytes(message["body"])
            out[-1] = {**message, "body": body}
        else:
            out.append(message)
    return out


class _Continued:
    """Awaiting it goes on with an iterator that already ran up to its first
    suspension (`step`: what it waits for), as `yield from` would have."""

    __slots__ = ("_it", "_step")

    def __init__(self, it: Generator[Any, None, Any], step: Any) -> None:
        self._it = it
        self._step = step

    def __await__(self) -> Generator[Any, None, None]:
        it, step = self._it, self._step
        while True:
            try:
                yield step
            except BaseException as error:  # cancelled: let the send see it
                try:
                    step = it.throw(error)
                except StopIteration:
                    return
                continue
            try:
                step = it.send(None)
            except StopIteration:
                return
