"""One HTTP/1.1 connection: feeds its bytes to a `RequestReader`, answers
the requests it reads in order with the handlers of its host's routes, and
becomes a bare stream (no task, no reader) once it subscribes. A handler
takes a `Request` and returns a `Response` (written here, with the
connection's keep-alive framing) or a `Streaming`, which turns the
connection into a stream; it raises `HTTPError` to refuse.

Requests are answered eagerly: `_serve` runs inside `data_received` up to
its first suspension, and only if it suspends does a task (`answering`)
carry it on; before a route that is not `eager` it asks for that task
first. The rule, and what may run with no task, is in `_answer.py`.

The connection keeps the deadlines the reader names, filed on its
server's `Deadlines` (one loop timer for all connections, to 1/32 s; moved
lazily: a later deadline waits for the earlier one to pass), stops
reading while the queue of requests waiting for their answers is full or the
client does not read them (and parses more only once the queue is answered,
letting the loop go round every `_TURN` answers: pipelining cannot hold the
loop), answers a half-closed client before closing, and
lingers after a refusal so that the answer is not lost to a reset.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Callable, Sequence

from ssehub.hub import StreamSubscription
from ssehub.mercure import HTTPError

from ._answer import answer, answer_eagerly, to_task
from ._config import ServerConfig
from ._framing import CONTINUE, frame
from ._handler import Request
from ._log import answered, peer, refused, stream_closed
from ._reader import MAX_QUEUED, RequestReader
from ._routes import Routes

__all__ = ("Connection", "Host")

_LINGER = 2.0  # seconds a refused client may go on sending before the hub closes
_EARLY = 0.001  # a timer may fire this much before its deadline (the loop's clock is in ms)
# answers after which a connection lets the loop go round before it parses
# more of what its client pipelined (else one sending tiny requests as fast
# as they are answered would keep the loop in its `data_received`)
_TURN = MAX_QUEUED
_TICKS = 32  # deadlines per second the `Deadlines` tell apart: one fires up to 1/32 s late


class Due(dict["Connection", None]):
    """The connections whose deadlines fall in one tick (`Deadlines`)."""

    __slots__ = ("tick",)  # (set by `Deadlines.file`: no `__init__` in Python to call)
    tick: int


class Deadlines:
    """The deadlines of one server's connections, on one loop timer.

    A connection is filed under the tick (1/32 s) its deadline falls in,
    rounded up, so it never fires early; one loop timer is set for the
    earliest tick that has connections, and when it fires each connection
    filed there is told (`Connection._time_out`). Filing and taking out
    (`unfile`) are a dict operation each: a loop timer per connection
    (a uvloop handle, a libuv timer, its cancel and its close) cost several
    times that per connect."""

    __slots__ = ("_at", "_loop", "_queued", "_ticks", "_timer", "_when")

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ticks: dict[int, Due] = {}  # the connections due at each tick
        self._when: list[int] = []  # the ticks to fire at, a heap (some may have none left)
        self._queued: set[int] = set()  # the ticks in `_when`
        self._timer: asyncio.TimerHandle | None = None
        self._at = 0  # the tick `_timer` is set for

    def file(self, conn: Connection, at: float) -> Due:
        """File `conn` for its deadline `at` (loop time): where it is filed."""
        tick = math.ceil(at * _TICKS)
        due = self._ticks.get(tick)
        if due is None:
            due = self._ticks[tick] = Due()
            due.tick = tick
            if tick not in self._queued:
                self._queued.add(tick)
                heapq.heappush(self._when, tick)
                if self._timer is None or tick < self._at:
                    self._set(tick)
        due[conn] = None
        return due

    def unfile(self, conn: Connection, due: Due) -> None:
        """Take `conn` out of `due`, where it is filed. An emptied `due` is
        dropped (a dict keeps its size); its tick stays queued, and the
        timer finds nothing there."""
        del due[conn]
        if not due and self._ticks.get(due.tick) is due:
            del self._ticks[due.tick]

    def close(self) -> None:
        """Drop every deadline and the timer (the server is closing)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._ticks.clear()
        self._when.clear()
        self._queued.clear()
        self._loop = None

    def _set(self, tick: int) -> None:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        if self._timer is not None:
            self._timer.cancel()
        self._at = tick
        self._timer = loop.call_at(tick / _TICKS, self._fire)

    def _fire(self) -> None:
        self._timer = None
        loop = self._loop
        assert loop is not None
        now = (loop.time() + _EARLY) * _TICKS  # (the loop's timers may fire 1 ms early)
        when, ticks = self._when, self._ticks
        try:
            while when and when[0] <= now:
                tick = heapq.heappop(when)
                self._queued.discard(tick)
                due = ticks.pop(tick, None)
                if due is None:
                    continue  # (all taken out)
                for conn in list(due):  # (each may file itself anew, under a later tick)
                    if conn._filed is not due:
                        continue  # (taken out meanwhile)
                    conn._filed = None
                    try:
                        conn._time_out()
                    except Exception as error:  # not the others' deadlines too
                        loop.call_exception_handler(
                            {"message": "a connection's deadline failed", "exception": error}
                        )
                due.clear()
        finally:
            self._next()

    def _next(self) -> None:
        """Set the timer for the earliest tick left, unless it is set for it."""
        when = self._when
        if when and (self._timer is None or when[0] < self._at):
            self._set(when[0])


class Host:
    """What a connection needs from its server: the limits, the routes,
    the set of open connections (and how many may be), their deadlines, and
    the loop they run on (set when the server starts:
    `asyncio.get_running_loop()` costs a `getpid` system call each time)."""

    __slots__ = (
        "config",
        "connections",
        "deadlines",
        "first_deadline",
        "loop",
        "max_connections",
        "routes",
    )

    def __init__(self, config: ServerConfig, routes: Routes, max_connections: int) -> None:
        self.config = config
        # like nginx's client_header_timeout: the first head is due from the start
        self.first_deadline = min(config.idle_timeout, config.head_timeout)
        self.routes = routes
        self.loop: asyncio.AbstractEventLoop | None = None
        self.max_connections = max_connections
        self.connections: set[Connection] = set()
        self.deadlines = Deadlines()


class Connection(asyncio.Protocol):
    """One client connection: reads requests, answers them in order, and
    becomes a bare stream (no task, no reader) once it subscribes."""

    __slots__ = (
        "_backlogged",
        "_drained",
        "_due",
        "_filed",
        "_reader",
        "_server",
        "_task",
        "on_lost",
        "opened_at",
        "stream",
        "transport",
    )

    def __init__(self, server: Host) -> None:
        self._server = server
        self.transport: asyncio.Transport | None = None
        # None once it is a stream, refused or lost: it reads no more
        self._reader: RequestReader | None = RequestReader(server.config)
        # carrying `_serve` on once it suspended; None while `_serve` runs
        # eagerly too, but then only `_serve` itself calls in (`serving=True`)
        self._task: asyncio.Task[None] | None = None
        self.stream: StreamSubscription | None = None
        self.on_lost: Callable[[], None] | None = None  # a stream's cleanup, if it has one
        self.opened_at = 0.0  # when it became a stream (monotonic)
        self._filed: Due | None = None  # where its deadline is filed (`Deadlines`)
        self._due: tuple[float, float] | None = None  # the deadline (loop time) and its seconds
        self._backlogged = False  # the client does not read its answers
        self._drained: asyncio.Future[None] | None = None  # `_serve` waits on it then

    @property
    def answering(self) -> asyncio.Task[None] | None:
        """The task answering the requests read, while there is one (a
        request answered at once, eagerly, has none)."""
        return self._task

    @property
    def _requests(self) -> Sequence[Request]:
        """The requests read and not yet answered."""
        reader = self._reader
        return () if reader is None else reader.requests

    def peer(self) -> str:
        return peer(self.transport)

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        server = self._server
        if len(server.connections) >= server.max_connections:
            limit = server.max_connections
            self._refuse(HTTPError(503, f"the hub is at its connection limit ({limit})"))
            return
        server.connections.add(self)
        self._arm(server.first_deadline)

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        if reader is not None and reader.reading:  # else: nothing more to say
            self._read(reader, reader.feed(data, self._backlogged))

    def eof_received(self) -> bool:
        transport = self.transport
        reader = self._reader
        pending = self._task is not None or (reader is not None and reader.pending)
        if not pending or self.stream is not None or transport is None:
            return False  # close our side too
        if transport.get_extra_info("sslcontext") is not None:
            return False  # TLS cannot half-close
        if reader is not None:
            reader.eof = True  # a half-close: answer what was asked, then close
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        self._stop_reading()
        stream = self.stream
        if stream is not None:
            stream.connection_lost()
            on_lost, self.on_lost = self.on_lost, None
            if on_lost is not None:
                on_lost()
            stream_closed(self.transport, stream, self.opened_at)
        if self._task is not None:
            self._task.cancel()

    def pause_writing(self) -> None:
        if self.stream is not None:
            self.stream.pause_writing()
        else:
            self._backlogged = True  # the reader now reads no further ahead

    def resume_writing(self) -> None:
        if self.stream is not None:
            self.stream.resume_writing()
        elif self._backlogged:
            self._backlogged = False
            if self._drained is not None and not self._drained.done():
                self._drained.set_result(None)
            self._resume_reading()

    # -- reading ------------------------------------------------------------------

    def _read(
        self, reader: RequestReader, refusal: HTTPError | None, serving: bool = False
    ) -> None:
        """Carry out what the reader made of the bytes it was fed (`serving`:
        called from `_serve`, which may be running eagerly, with no task)."""
        answering = serving or self._task is not None
        transport = self.transport
        assert transport is not None
        if reader.due is not None:  # a head or body began: its deadline runs from now
            if reader.phase != "idle" or not reader.requests:
                self._arm(reader.due)  # (else it is read whole: the answer re-arms)
            reader.due = None
        if reader.continue_due:
            reader.continue_due = False
            if not answering:  # no answer is due before the one it waits for
                transport.write(CONTINUE)
        if refusal is not None:
            # before the answers it follows start: they may all be given
            # here, and the last one's `_ready_for_more` then lingers on it
            self._reject(refusal, serving)
        elif reader.unparsed is not None:  # its queue is full: read no more for now
            transport.pause_reading()
        if reader.requests and not answering:
            self._task = answer_eagerly(self._serve())

    def _resume_reading(self, serving: bool = False) -> None:
        """Parse what was held back, then read again (as `_serve` answers:
        `serving`)."""
        reader = self._reader
        if reader is None:
            return
        if reader.unparsed is not None:
            self._read(reader, reader.resume(self._backlogged), serving)
        if reader.unparsed is None and reader.reading and not reader.eof:
            assert self.transport is not None
            self.transport.resume_reading()

    def _stop_reading(self) -> None:
        """Read no more requests: drop the reader and its deadline (a
        stream, a refusal answered, a lost connection)."""
        filed = self._filed
        if filed is not None:
            self._filed = None
            self._server.deadlines.unfile(self, filed)
        self._due = None
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    # -- deadlines ----------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        """Set the connection's deadline `seconds` from now. It is filed
        again only when it moves earlier: filed no later, it stays, and when
        that passes it files itself for what is left (so a keep-alive
        client's requests, each moving the deadline twice, are filed once)."""
        server = self._server
        at = (server.loop or asyncio.get_running_loop()).time() + seconds
        self._due = (at, seconds)
        filed = self._filed
        if filed is not None:
            if filed.tick < at * _TICKS + 1:  # filed no later than its tick (`ceil(at * _TICKS)`)
                return
            server.deadlines.unfile(self, filed)
        self._filed = server.deadlines.file(self, at)

    def _time_out(self) -> None:
        """Its deadline's tick has come (`Deadlines`: it is filed no more)."""
        due = self._due
        if due is None:
            return
        at, seconds = due
        server = self._server
        if (server.loop or asyncio.get_running_loop()).time() < at - _EARLY:
            self._filed = server.deadlines.file(self, at)  # it moved on since it was filed
            return
        self._due = None
        transport = self.transport
        if transport is not None and self._backlogged and self.stream is None:
            transport.abort()  # it has read none of its answers for `seconds`
            return
        if self.stream is not None or self._task is not None or transport is None:
            return  # a stream has no deadline; the hub answering is no client's fault
        refusal = None if self._reader is None else self._reader.late(seconds)
        if refusal is None:
            self._close()  # it said nothing (or was told why): close without a word
        else:
            self._reject(refusal)

    def _close(self) -> None:
        """Close, at once if the client has not even read what we sent."""
        transport = self.transport
        if transport is not None:
            if self._backlogged:
                transport.abort()
            else:
                transport.close()

    # -- refusing -----------------------------------------------------------------

    def _reject(self, error: HTTPError, serving: bool = False) -> None:
        """Refuse what the client sent: read no more, answer the requests
        before it in order, then this refusal, then close."""
        reader = self._reader
        if reader is not None:
            reader.refuse(error)
        refused(self.transport, error.status, error.reason)
        if not serving and self._task is None and not self._requests:
            self._ready_for_more()
        elif self.transport is not None:
            self.transport.pause_reading()

    def _refuse_and_linger(self, error: HTTPError) -> None:
        """Answer the refusal and close our side, but read (and drop) what the
        client still sends for a while: closing with unread bytes would send
        a reset that can destroy the answer before the client reads it."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._backlogged:
            transport.abort()  # it reads nothing: no answer would reach it
            return
        if not transport.can_write_eof():  # TLS
            self._refuse(error)
            return
        self._stop_reading()
        transport.write(frame(error.response(), keep_alive=False))
        transport.write_eof()
        self._arm(_LINGER)
        transport.resume_reading()

    def _refuse(self, error: HTTPError) -> None:
        self._stop_reading()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(frame(error.response(), keep_alive=False))
            transport.close()

    def _ready_for_more(self) -> None:
        """Every request read so far is answered (and none became a stream)."""
        reader = self._reader
        if reader is None:
            self._close()
        elif reader.error is not None:
            self._refuse_and_linger(reader.error)
        elif reader.eof:
            self._close()
        else:  # the deadline of what it sends next starts now (dropped if it never reads)
            self._arm(self._server.config.idle_timeout if self._backlogged else reader.deadline())

    # -- answering ----------------------------------------------------------------

    async def _writable(self) -> None:
        """Until the client has read enough of its answers for the next one
        (closed by the idle timer if it never does)."""
        loop = asyncio.get_running_loop()
        self._drained = loop.create_future()
        self._arm(self._server.config.idle_timeout)
        try:
            await self._drained
        finally:
            self._drained = None

    async def _serve(self) -> None:
        transport = self.transport
        reader = self._reader
        assert transport is not None
        assert reader is not None
        requests = reader.requests
        routes = self._server.routes
        served = 0  # answers since the loop last went round
        try:
            while requests and not transport.is_closing():
                if self._backlogged:
                    await self._writable()
                    continue
                request = requests.pop(0)
                route = routes.find(request.path)
                if not route.eager and self._task is None:
                    await to_task()  # its handler may need a current task: on in one
                response, keep_alive = await answer(route.handler, request, self)
                served += 1
                if self.stream is not None:
                    return  # a stream: the hub writes to it from now on
                if response is not None:
                    answered(transport, request, response)
                    transport.write(frame(response, keep_alive))
                if not keep_alive:
                    transport.close()
                    return
                if reader.unparsed is not None and not requests:  # (else reading was not paused)
                    # what was read is answered: parse on, but after a turn's
                    # worth of answers only once everyone else had a turn
                    if served >= _TURN:
                        served = 0
                        await to_task()
                        if transport.is_closing():
                            return
                    self._resume_reading(serving=True)
        finally:
            self._task = None
            if self.stream is None and not transport.is_closing():
                self._ready_for_more()

    # Drop everything request-shaped: an idle stream should cost little.
    become_stream = _stop_reading
