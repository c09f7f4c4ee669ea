"""Requests answered eagerly (in `data_received`, up to their first
suspension) over real sockets: no task when the answer is ready at once, a
real task for whatever suspends or needs one (a store using
`asyncio.timeout`, the authorization callback), pipelined answers in order
whichever way each went, a client leaving while its request is suspended,
and `HubServer.drain` waiting for a suspended request."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import struct
import time
from collections.abc import AsyncIterator, Collection, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from ssehub.backends import (
    Backend,
    History,
    HistoryLimits,
    MemoryBackend,
    Record,
    SQLiteBackend,
    TopicLimits,
)
from ssehub.hub import Hub
from ssehub.mercure import AuthorizeConfig
from ssehub.server import HubServer
from tests.support.eager import publish_request as _publish
from tests.support.eager import tasks_made as _tasks_made
from tests.support.helpers import subscribe
from tests.support.hooks import allow, app
from tests.support.servers import run, serving, until

MERCURE = "/.well-known/mercure"


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def _answers(sock: socket.socket, n: int) -> list[tuple[int, bytes]]:
    """Read `n` answers with a body (`Content-Length`) off a blocking socket."""
    buffer = b""
    answers: list[tuple[int, bytes]] = []
    while len(answers) < n:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError(f"closed after {len(answers)} answers")
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length")
        )
        while len(buffer) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError("closed in a body")
            buffer += chunk
        answers.append((int(lines[0].split()[1]), buffer[:length]))
        buffer = buffer[length:]
    return answers


def _exchange(port: int, request: bytes, n: int) -> list[tuple[int, bytes]]:
    """Send `request` (one or several pipelined) in one write; read `n` answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return _answers(sock, n)


def _subscribe_heads(port: int, topic: str, n: int) -> list[bytes]:
    """Open `n` streams on `topic` one after another; their status lines."""
    heads = []
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(_get(f"{MERCURE}?topic={topic}"))
            buffer = b""
            while b"\r\n\r\n" not in buffer:
                buffer += sock.recv(65536)
            heads.append(buffer.split(b"\r\n", 1)[0])
    return heads


# -- no task when the answer is ready at once ----------------------------------------


def test_a_memory_store_answers_publishes_and_subscribes_with_no_task() -> None:
    async def body() -> None:
        async with serving(anonymous_publish=True) as (hub, _, port):
            watcher = await subscribe(port, "t")
            await until(lambda: hub.statistics().subscribers == 1)
            with _tasks_made() as made:
                one_by_one = [
                    await asyncio.to_thread(_exchange, port, _publish("t", str(i), f"a{i}"), 1)
                    for i in range(5)
                ]
                pipelined = await asyncio.to_thread(
                    _exchange,
                    port,
                    b"".join(_publish("t", str(i), f"b{i}") for i in range(5)) + _get("/healthz"),
                    6,
                )
                heads = await asyncio.to_thread(_subscribe_heads, port, "t", 5)
            assert made == []  # eleven requests, five subscribes: not one task
            assert [answer for [answer] in one_by_one] == [
                (200, f"a{i}".encode()) for i in range(5)
            ]
            assert pipelined == [*((200, f"b{i}".encode()) for i in range(5)), (200, b"ok\n")]
            assert heads == [b"HTTP/1.1 200 OK"] * 5
            events = await watcher.next_events(10)
            assert [e.id for e in events] == [f"{p}{i}" for p in "ab" for i in range(5)]
            watcher.close()

    run(body)


# -- what needs a task gets one -------------------------------------------------------


class _TimedMemory(MemoryBackend):
    """A memory store whose methods need a current task (as redis-py's do):
    a subclass of an eager store is not eager."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: list[asyncio.Task[Any] | None] = []

    async def append(self, record: Record) -> bool:
        self.tasks.append(asyncio.current_task())
        async with asyncio.timeout(5):
            return await super().append(record)

    async def history(
        self,
        topics: Collection[str] | None,
        after: str | None,
        *,
        limit: int | None = None,
        after_position: int | None = None,
    ) -> History:
        self.tasks.append(asyncio.current_task())
        async with asyncio.timeout(5):
            return await super().history(topics, after, limit=limit, after_position=after_position)

    async def last_id(self) -> str | None:
        self.tasks.append(asyncio.current_task())
        async with asyncio.timeout(5):
            return await super().last_id()


class _ThirdParty:
    """A backend written against the `Backend` protocol alone (no ssehub
    class), whose every read and write runs under `asyncio.timeout`."""

    def __init__(self) -> None:
        self._store = MemoryBackend()
        self.tasks: list[asyncio.Task[Any] | None] = []

    @property
    def limits(self) -> HistoryLimits:
        return self._store.limits

    def limit_topics(self, topics: TopicLimits | None) -> None:
        self._store.limit_topics(topics)

    async def start(self) -> None:
        await self._store.start()

    async def append(self, record: Record) -> bool:
        self.tasks.append(asyncio.current_task())
        async with asyncio.timeout(5):
            return await self._store.append(record)

    async def history(
        self,
        topics: Collection[str] | None,
        after: str | None,
        *,
        limit: int | None = None,
        after_position: int | None = None,
    ) -> History:
        self.tasks.append(asyncio.current_task())
        async with asyncio.timeout(5):
            return await self._store.history(
                topics, after, limit=limit, after_position=after_position
            )

    async def newest(self, topics: Collection[str] | None, n: int) -> History:
        async with asyncio.timeout(5):
            return await self._store.newest(topics, n)

    async def last_id(self) -> str | None:
        self.tasks.append(asyncio.current_task())
        async with asyncio.timeout(5):
            return await self._store.last_id()

    async def aclose(self) -> None:
        await self._store.aclose()


@pytest.mark.parametrize("kind", ["subclass of the memory store", "third-party backend"])
def test_a_store_that_needs_a_current_task_gets_one(kind: str) -> None:
    async def body() -> None:
        store = _TimedMemory() if kind.startswith("subclass") else _ThirdParty()
        backend: Backend = store
        async with serving(anonymous_publish=True, backend=backend) as (_, _, port):
            published = await asyncio.to_thread(
                _exchange, port, _publish("t", "x", "e1") + _publish("t", "y", "e2"), 2
            )
            assert published == [(200, b"e1"), (200, b"e2")]
            resumed = await subscribe(port, "t", last_event_id="e1")
            assert resumed.status == 200
            [event] = await resumed.next_events(1)
            assert (event.id, event.data) == ("e2", "y")
            resumed.close()
        assert len(store.tasks) >= 4  # two appends, a history read, a last_id
        assert all(task is not None for task in store.tasks)

    run(body)


# -- pipelining -----------------------------------------------------------------------


@asynccontextmanager
async def _store(kind: str, folder: Path) -> AsyncIterator[tuple[Hub, HubServer, int]]:
    backend = SQLiteBackend(folder / "events.db") if kind == "sqlite" else None
    async with serving(anonymous_publish=True, backend=backend) as served:
        yield served


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_pipelined_requests_are_answered_in_order_whichever_suspend(
    kind: str, tmp_path: Path
) -> None:
    # memory: publishes and /healthz eager, /readyz asks for a task first;
    # SQLite: each publish suspends (the writer thread) inside an eager route.
    # Forty requests in one write, about 12 KB: the reader holds back what
    # is past its queue's bound and parses it as answers go out.
    pad = "x" * 200

    def get(path: str) -> bytes:
        return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: {pad}\r\n\r\n".encode()

    batch: list[bytes] = []
    expected: list[tuple[int, bytes]] = []
    for n in range(8):
        batch += [_publish("t", pad, f"p{n}"), get("/healthz"), get("/readyz")]
        expected += [(200, f"p{n}".encode()), (200, b"ok\n"), (200, b"ready\n")]
        batch += [get("/healthz") if n % 2 else get("/nowhere"), _publish("t", "-", f"q{n}")]
        expected += [(200, b"ok\n") if n % 2 else (404, b"not found: /nowhere\n")]
        expected += [(200, f"q{n}".encode())]

    async def body() -> None:
        async with _store(kind, tmp_path) as (_, _, port):
            answers = await asyncio.to_thread(_exchange, port, b"".join(batch), len(batch))
            assert answers == expected

    run(body)


# -- a suspended request: its client leaves, the server drains ------------------------


@contextmanager
def _write_locked(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the database's write lock: the hub's
    writer waits for it (SQLite's busy timeout), so a publish suspends."""
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        yield blocker
    finally:
        if blocker.in_transaction:
            blocker.execute("COMMIT")
        blocker.close()


def _sent_then_reset(port: int, request: bytes) -> socket.socket:
    """A client that sent `request`; closing it resets the connection (a
    FIN alone would be a half-close, which the hub answers)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.sendall(request)
    return sock


def _answering(srv: HubServer) -> list[asyncio.Task[None]]:
    return [c.answering for c in srv.connections if c.answering is not None]


def test_a_client_leaving_while_its_publish_is_suspended_cancels_its_answer(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        path = tmp_path / "events.db"
        async with serving(anonymous_publish=True, backend=SQLiteBackend(path)) as (hub, srv, port):
            watcher = await subscribe(port, "t")
            await until(lambda: hub.statistics().subscribers == 1)
            with _write_locked(path):
                client = _sent_then_reset(port, _publish("t", "x", "left"))
                await until(lambda: len(_answering(srv)) == 1)
                [task] = _answering(srv)
                client.close()
                await until(task.done)  # while the store still waits for the lock
                assert task.cancelled()
                assert len(srv.connections) == 1  # the watcher's
            # the publish was not torn: stored and delivered all the same
            [event] = await watcher.next_events(1)
            assert (event.id, event.data) == ("left", "x")
            assert await hub.backend.last_id() == "left"
            watcher.close()

    run(body)


def test_a_client_leaving_while_the_app_is_asked_cancels_its_answer() -> None:
    async def body() -> None:
        with app(lambda _: (*allow()[:2], 2.0)) as callback:
            config = AuthorizeConfig(callback.url, timeout=10)
            async with serving(anonymous_publish=True, authorize=config) as (hub, srv, port):
                client = _sent_then_reset(port, _publish("t", "x", "asked"))
                await until(lambda: len(callback.requests) == 1)
                [task] = _answering(srv)
                client.close()
                await until(task.done)  # long before the app answers
                assert task.cancelled()
                assert srv.connections == set()
                assert hub.statistics().events_published == 0

    run(body)


@pytest.mark.parametrize("where", ["sqlite store", "authorization callback"])
def test_drain_waits_for_a_suspended_request(where: str, tmp_path: Path) -> None:
    async def body() -> None:
        path = tmp_path / "events.db"
        with app(lambda _: (*allow()[:2], 0.5)) as callback:
            if where == "sqlite store":
                served = serving(anonymous_publish=True, backend=SQLiteBackend(path))
            else:
                config = AuthorizeConfig(callback.url, timeout=10)
                served = serving(anonymous_publish=True, authorize=config)
            async with served as (_, srv, port):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                with _write_locked(path) if where == "sqlite store" else _no_lock() as lock:
                    writer.write(_publish("t", "x", "drained"))
                    await until(lambda: len(_answering(srv)) == 1)
                    if lock is not None:
                        asyncio.get_running_loop().call_later(0.5, lock.execute, "COMMIT")
                    await srv.drain(5.0)
                answer = await asyncio.wait_for(reader.read(), 10)
                if where == "sqlite store":  # stored before the hub drained: answered
                    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
                    assert answer.endswith(b"\r\n\r\ndrained")
                else:  # allowed once the hub drains: refused, but answered
                    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
                    assert answer.endswith(b"\r\n\r\nthe hub is shutting down\n")
                writer.close()

    run(body)


@contextmanager
def _no_lock() -> Iterator[None]:
    yield None


def _send_after_answers(port: int, sent: bytes) -> tuple[bytes, OSError | None]:
    """Send `sent`, read until the hub's FIN, then go on sending for a
    while: what was read, and the error a hub that closed (not lingered)
    causes (a reset, then a broken pipe)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(sent)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        try:
            for _ in range(6):  # well within the 2 s the hub lingers
                sock.sendall(b"x" * 1000)
                time.sleep(0.05)
        except OSError as error:
            return data, error
        return data, None


def test_a_refusal_after_an_eager_answer_in_the_same_read_lingers() -> None:
    """A request answered eagerly and a malformed one in the same read: both
    are answered, and the hub lingers on the refusal (reads and drops what
    the client still sends) instead of closing, whose reset could destroy
    the answers before the client reads them."""

    async def body() -> None:
        async with serving() as (_, _, port):
            sent = _get("/healthz") + b"\x01BAD / HTTP/1.1\r\n\r\n"
            data, error = await asyncio.to_thread(_send_after_answers, port, sent)
            assert data.startswith(b"HTTP/1.1 200 ")
            assert b"HTTP/1.1 400 " in data
            assert data.endswith(b"malformed HTTP request\n")
            assert error is None

    run(body)
