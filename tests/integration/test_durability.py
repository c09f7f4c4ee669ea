"""Durable history: a hub on SQLite killed with SIGKILL loses no acknowledged
event, and a client resumes after the restart with no gap and no duplicate."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ssehub import Hub
from ssehub.backends import SQLiteBackend, backend_from_url
from ssehub.client import EventSource
from tests.support.helpers import free_port
from tests.support.processes import start_hub
from tests.support.sqlite import count_sqlite_work


def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    port = free_port()
    store = f"sqlite:///{tmp_path}/hub.db"
    hub = start_hub(port, store)
    url = f"http://127.0.0.1:{port}/.well-known/mercure"
    acknowledged: list[str] = []
    try:
        with httpx.Client(timeout=10) as client:
            for i in range(300):
                response = client.post(url, data={"topic": "orders", "data": f"order {i}"})
                assert response.status_code == 200
                acknowledged.append(response.text)
    finally:
        hub.send_signal(signal.SIGKILL)  # no shutdown, no flush
        hub.communicate(timeout=10)
    hub = start_hub(port, store)
    try:
        events = []
        with EventSource(
            f"{url}?topic=orders", last_event_id=acknowledged[0], retry=0.05
        ) as source:
            for event in source:
                events.append(event)
                if len(events) == len(acknowledged) - 1:
                    break
        assert [e.id for e in events] == acknowledged[1:]  # in order, once
        assert [e.data for e in events] == [f"order {i}" for i in range(1, 300)]
    finally:
        hub.send_signal(signal.SIGTERM)
        hub.communicate(timeout=15)


def test_resume_from_a_million_stored_events_is_an_index_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Build 1,000,000 events straight into the file, then resume near the end
    on a hub that opens it: correct, and not a scan — counted in SQLite's own
    instructions (a scan of the events or of the topic's rows is millions)."""
    import sqlite3

    path = tmp_path / "big.db"

    async def init() -> None:
        backend = SQLiteBackend(path)
        await backend.start()
        await backend.aclose()

    asyncio.run(init())
    now = time.time()
    db = sqlite3.connect(path)
    with db:
        db.executemany(
            "INSERT INTO events (seq, id, time, topics, event, data, retry)"
            " VALUES (?, ?, ?, '[\"t\"]', 'message', ?, NULL)",
            ((i, f"e{i}", now, f"d{i}") for i in range(1, 1_000_001)),
        )
        db.executemany("INSERT INTO event_topics (topic, seq) VALUES ('t', ?)",
                       ((i,) for i in range(1, 1_000_001)))  # fmt: skip
    db.close()

    work = count_sqlite_work(monkeypatch)  # from here on: the hub's start and the resume

    async def resume() -> None:
        from ssehub.backends import HistoryLimits

        backend = SQLiteBackend(path, HistoryLimits(max_events=2_000_000))
        async with Hub(backend=backend) as hub:
            async with hub.subscribe("t", last_event_id="e999997") as sub:
                got = [await anext(sub) for _ in range(3)]
            assert [e.id for e in got] == ["e999998", "e999999", "e1000000"]

    asyncio.run(resume())
    print(f"opening and resuming: {work.instructions()} SQLite instructions")
    assert 0 < work.instructions() < 20_000, "SQLite did work in proportion to the rows: a scan?"


def test_store_urls() -> None:
    assert type(backend_from_url("memory:")).__name__ == "MemoryBackend"
    backend = backend_from_url("sqlite:///tmp/x.db")
    assert isinstance(backend, SQLiteBackend)
    assert backend.path == "/tmp/x.db"
    with pytest.raises(ValueError, match="unknown store URL"):
        backend_from_url("postgres://x")
    redis_store = backend_from_url("redis://127.0.0.1:6379/3?prefix=app:")
    assert (type(redis_store).__name__, redis_store.prefix) == ("RedisBackend", "app:")  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="does not exist"):
        backend_from_url("sqlite:///no/such/folder/hub.db")


@contextlib.contextmanager
def two_hubs_on_redis() -> Iterator[tuple[subprocess.Popen[str], str, subprocess.Popen[str], str]]:
    """Two `ssehub serve` processes sharing one Redis (a key prefix of their
    own, removed after): each process and its subscribe/publish URL."""
    from tests.support.redis import REDIS_URL, drop_keys, redis_or_skip

    redis_or_skip()
    prefix = f"ssehub-test:{time.time_ns()}:"
    store = f"{REDIS_URL}?prefix={prefix}"
    port_a, port_b = free_port(), free_port()
    hub_a, hub_b = start_hub(port_a, store), start_hub(port_b, store)
    try:
        yield (
            hub_a,
            f"http://127.0.0.1:{port_a}/.well-known/mercure",
            hub_b,
            f"http://127.0.0.1:{port_b}/.well-known/mercure",
        )
    finally:
        for hub in (hub_a, hub_b):
            if hub.poll() is None:
                hub.send_signal(signal.SIGTERM)
            hub.communicate(timeout=15)
        drop_keys(prefix)


def take_ids(url: str, last_event_id: str, n: int) -> list[str | None]:
    ids: list[str | None] = []
    with EventSource(f"{url}?topic=t", last_event_id=last_event_id, retry=0.05) as source:
        for event in source:
            ids.append(event.id)
            if len(ids) == n:
                break
    return ids


def test_resume_on_another_hub_sharing_redis() -> None:
    """A client that got events from hub A resumes on hub B with no gap."""
    with two_hubs_on_redis() as (_, url_a, _, url_b), httpx.Client(timeout=10) as client:
        sent = [client.post(url_a, data={"topic": "t", "data": f"n{i}"}).text for i in range(5)]
        seen_on_a = take_ids(url_a, "earliest", 1)  # then this client moves to hub B
        assert seen_on_a + take_ids(url_b, str(seen_on_a[-1]), 4) == sent


def test_a_hub_killed_with_sigkill_its_clients_resume_on_another() -> None:
    with two_hubs_on_redis() as (hub_a, url_a, _, url_b), httpx.Client(timeout=10) as client:
        before = [client.post(url_a, data={"topic": "t", "data": f"a{i}"}).text for i in range(3)]
        seen = take_ids(url_a, "earliest", 1)
        hub_a.send_signal(signal.SIGKILL)  # a worker dies
        hub_a.communicate(timeout=10)
        after = [client.post(url_b, data={"topic": "t", "data": f"b{i}"}).text for i in range(3)]
        assert seen + take_ids(url_b, str(seen[-1]), 5) == before + after  # nothing lost or twice
