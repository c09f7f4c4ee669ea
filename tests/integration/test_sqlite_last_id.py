"""The SQLite store's `last_id()` without a read: it answers from what the
commits said so far, the same as the file would (the newest row younger
than the longest age), through publishes, per-topic age sweeps, a reopen
and a store shared by several processes; and a subscribe on the SQLite
store is answered in `data_received`, with no task, over a real socket."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from ssehub.backends import HistoryLimits, Record, SQLiteBackend
from ssehub.backends._sqlite_shared import SharedSQLiteBackend
from ssehub.hub import Hub
from ssehub.hub._ids import IdGenerator
from ssehub.protocol import Event, encode_event
from tests.support.eager import publish_request as _publish
from tests.support.eager import tasks_made as _tasks_made
from tests.support.servers import run, serving

MERCURE = "/.well-known/mercure"


class _Ages:
    """Topic `short` keeps events 10 s, the others the backend's 100 s."""

    longest_age = 100.0
    most_events = None

    def bounds(self, topic: str) -> tuple[int | None, float | None]:
        return (None, 10.0) if topic == "short" else (None, None)


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _record(topic: str, event_id: str, stamp: float) -> Record:
    ev = Event(event_id, id=event_id)
    return Record((topic,), ev, stamp, encode_event(ev))


def test_last_id_answers_as_the_file_does_without_a_read(tmp_path: Path) -> None:
    async def body() -> None:
        clock = _Clock()
        store = SQLiteBackend(tmp_path / "h.db", HistoryLimits(max_age=100.0), clock=clock)
        store.limit_topics(_Ages())
        await store.start()

        async def check(expected: str | None) -> None:
            on_file = await store._read(store._last_id)  # the read it spares
            coro = store.last_id()
            with pytest.raises(StopIteration) as done:  # answered without suspending
                coro.send(None)
            coro.close()
            assert done.value.value == on_file == expected

        await check(None)  # empty
        await store.append(_record("long", "l1", clock.now))
        await check("l1")
        clock.now += 5
        await store.append(_record("short", "s1", clock.now))
        await check("s1")
        clock.now += 20  # s1 is past its topic's 10 s: the next write's sweep drops it
        await store.append(_record("long", "l2", clock.now - 30))  # an older stamp, newest row
        await check("l2")
        clock.now += 2
        await store.append(_record("short", "s2", clock.now))
        await check("s2")
        clock.now += 15  # s2 is swept by this write's sweep: l3 is the newest
        await store.append(_record("long", "l3", clock.now))
        await check("l3")
        clock.now += 200  # older than any topic keeps: None, before and after a sweep
        await check(None)
        await store.aclose()

        reopened = SQLiteBackend(tmp_path / "h.db", HistoryLimits(max_age=100.0), clock=clock)
        await reopened.start()
        clock.now -= 200
        assert await reopened.last_id() == "l3"  # read once at start
        await reopened.aclose()

    run(body)


def test_a_shared_file_still_reads_what_peers_appended(tmp_path: Path) -> None:
    async def body() -> None:
        one = SharedSQLiteBackend(tmp_path / "h.db", wake=False)
        two = SharedSQLiteBackend(tmp_path / "h.db", wake=False)
        await one.start()
        await two.start()
        try:
            await one.append(_record("t", "from-one", 1e12))
            assert await two.last_id() == "from-one"
            await two.append(_record("t", "from-two", 1e12))
            assert await one.last_id() == "from-two"
        finally:
            await one.aclose()
            await two.aclose()

    run(body)


def test_a_subscribe_on_the_sqlite_store_gets_no_task(tmp_path: Path) -> None:
    async def body() -> None:
        store = SQLiteBackend(tmp_path / "h.db")
        async with serving(backend=store, anonymous_publish=True) as (hub, _, port):
            ids = IdGenerator()
            first, second = ids(), ids()
            for event_id in (first, second):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(_publish("t", "x", event_id, close=True))
                assert (await reader.readline()).startswith(b"HTTP/1.1 200")
                writer.close()
            with _tasks_made() as made:
                heads, starts = await asyncio.to_thread(_heads, port, 3, hub)
            assert made == []  # three subscribes: not one task
            assert all(head.startswith(b"HTTP/1.1 200 OK\r\n") for head in heads)
            assert starts == [second] * 3  # each started after the newest stored event

    run(body)


def _heads(port: int, n: int, hub: Hub) -> tuple[list[bytes], list[str]]:
    """Open `n` streams on `t` at once; their heads, and where each started
    (`Subscription.resume`: what the subscriptions API says of it)."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(n)]
    try:
        heads = []
        for sock in socks:
            sock.sendall(f"GET {MERCURE}?topic=t HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            buffer = b""
            while b"\r\n\r\n" not in buffer:
                buffer += sock.recv(65536)
            heads.append(buffer.partition(b"\r\n\r\n")[0] + b"\r\n")
        subs = hub._fanout.subscriptions()
        starts = [sub.resume.last_event_id for sub in subs if sub.resume is not None]
        return heads, starts
    finally:
        for sock in socks:
            sock.close()
