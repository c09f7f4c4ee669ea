"""Group commit in the SQLite backend: concurrent appends share one
transaction on the writer thread, each answered once the commit holding it
is done; a lone append commits at once; positions follow the commit order; a
failed commit fails exactly its own appends; an idempotent retry inside a
batch is still a retry; and a `kill -9` of a real `ssehub serve` under 16
concurrent publishers loses no acknowledged publish."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from ssehub.backends import DuplicateEventIdError, Record, SQLiteBackend, StoreRefusedError
from ssehub.protocol import Event, encode_event
from tests.support.helpers import free_port
from tests.support.processes import start_hub
from tests.support.servers import run
from tests.support.sqlite import trace_sqlite


def _record(event_id: str, data: str = "", topics: tuple[str, ...] = ("t",)) -> Record:
    event = Event(data or event_id, id=event_id)
    return Record(topics, event, time.time(), encode_event(event))


class Commits:
    """Counts the commits that stored events, on every SQLite connection
    opened from now on (the age sweep's own commits are not counted)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self._inserted = False
        trace_sqlite(monkeypatch, self._statement)

    def _statement(self, sql: str) -> None:
        if sql.startswith("INSERT INTO events"):
            self._inserted = True
        elif sql.strip().upper() == "COMMIT" and self._inserted:
            self.count, self._inserted = self.count + 1, False


async def _ids_in_store(backend: SQLiteBackend) -> list[str]:
    return [record.id for record in (await backend.history(None, None)).records]


def test_concurrent_appends_share_a_commit_in_their_order_and_a_lone_one_commits_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits = Commits(monkeypatch)

    async def body() -> None:
        backend = SQLiteBackend(tmp_path / "hub.db")
        await backend.start()
        try:
            before = commits.count
            assert await backend.append(_record("alone")) is True  # no batch to wait for
            assert commits.count == before + 1
            before = commits.count
            ids = [f"e{i:03}" for i in range(64)]
            outcomes = await asyncio.gather(*(backend.append(_record(i)) for i in ids))
            assert outcomes == [True] * 64
            assert commits.count - before < 8, "64 concurrent appends were not grouped"
            assert await _ids_in_store(backend) == ["alone", *ids]  # positions = commit order
        finally:
            await backend.aclose()

    run(body)


def test_two_identical_appends_in_one_batch_store_the_event_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits = Commits(monkeypatch)

    async def body() -> None:
        backend = SQLiteBackend(tmp_path / "hub.db")
        await backend.start()
        try:
            before = commits.count
            outcomes = await asyncio.gather(
                backend.append(_record("a", "one")),
                backend.append(_record("b")),
                backend.append(_record("a", "one")),  # a retry of the first, same batch
                backend.append(_record("a", "another")),  # the same id, another event
                return_exceptions=True,
            )
            assert commits.count == before + 1  # one batch
            assert list(outcomes[:3]) == [True, True, False]
            assert isinstance(outcomes[3], DuplicateEventIdError)
            history = (await backend.history(None, None)).records
            assert [(r.id, r.event.data) for r in history] == [("a", "one"), ("b", "b")]
            # and a retry in a later batch is one too
            assert await backend.append(_record("a", "one")) is False
            assert await _ids_in_store(backend) == ["a", "b"]
        finally:
            await backend.aclose()

    run(body)


def test_a_failed_commit_fails_exactly_the_appends_in_it(tmp_path: Path) -> None:
    async def body() -> None:
        backend = SQLiteBackend(tmp_path / "hub.db")
        await backend.start()
        try:
            assert await backend.append(_record("kept")) is True

            def limit(extra: int) -> None:
                db = backend._db  # the writer's connection: a real "database full"
                assert db is not None
                (pages,) = db.execute("PRAGMA page_count").fetchone()
                db.execute(f"PRAGMA max_page_count = {pages + extra}")

            await backend._run(lambda: limit(2))
            # one batch: a small event that would fit alone, then big ones that do not
            batch = [_record("small"), *(_record(f"big{i}", "x" * 20_000) for i in range(3))]
            outcomes = await asyncio.gather(
                *(backend.append(r) for r in batch), return_exceptions=True
            )
            assert all(isinstance(o, StoreRefusedError) for o in outcomes), outcomes
            assert await _ids_in_store(backend) == ["kept"]  # nothing of the batch
            await backend._run(lambda: limit(10_000))
            assert await backend.append(_record("after")) is True
            assert await backend.append(_record("small")) is True  # it was never stored
            assert await _ids_in_store(backend) == ["kept", "after", "small"]
        finally:
            await backend.aclose()

    run(body)


def test_kill_9_under_16_concurrent_publishers_loses_no_acknowledged_publish(
    tmp_path: Path,
) -> None:
    port = free_port()
    store = f"sqlite:///{tmp_path}/hub.db"
    url = f"http://127.0.0.1:{port}/.well-known/mercure"
    hub = start_hub(port, store)
    acknowledged: list[list[str]] = [[] for _ in range(16)]
    stop = threading.Event()

    def publisher(n: int) -> None:
        with httpx.Client(timeout=10) as client:
            for i in range(100_000):
                if stop.is_set():
                    return
                try:
                    response = client.post(url, data={"topic": "orders", "data": f"{n}:{i}"})
                except httpx.TransportError:
                    return  # the hub is gone: this one was not acknowledged
                if response.status_code != 200:
                    return
                acknowledged[n].append(response.text)

    threads = [threading.Thread(target=publisher, args=(n,)) for n in range(16)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while sum(map(len, acknowledged)) < 400 and time.monotonic() < deadline:
            time.sleep(0.01)
        hub.send_signal(signal.SIGKILL)  # mid-stream: no shutdown, no flush
    finally:
        if hub.poll() is None:
            hub.kill()
        hub.communicate(timeout=10)
        stop.set()
        for thread in threads:
            thread.join(30)
    acked = [event_id for ids in acknowledged for event_id in ids]
    assert len(acked) >= 400, "the publishers did not get going"
    assert len(acked) < 1000  # all still within the default history bound
    hub = start_hub(port, store)  # it opens the file the crash left
    hub.send_signal(signal.SIGTERM)
    hub.communicate(timeout=15)

    async def stored() -> list[str]:
        backend = SQLiteBackend(tmp_path / "hub.db")
        await backend.start()
        try:
            return await _ids_in_store(backend)
        finally:
            await backend.aclose()

    ids = asyncio.run(stored())
    assert set(acked) <= set(ids), f"{len(set(acked) - set(ids))} acknowledged publishes lost"
    position = {event_id: i for i, event_id in enumerate(ids)}
    for mine in acknowledged:  # each publisher's events in the order it was answered
        assert [position[event_id] for event_id in mine] == sorted(position[e] for e in mine)


def test_a_storm_of_identical_resumes_shares_reads_and_reads_no_cached_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    trace_sqlite(monkeypatch, statements.append)

    async def body() -> None:
        backend = SQLiteBackend(tmp_path / "hub.db")
        await backend.start()
        try:
            ids = [f"e{i:03}" for i in range(300)]
            for i in range(0, 300, 50):
                await asyncio.gather(*(backend.append(_record(e)) for e in ids[i : i + 50]))
            statements.clear()
            pages = await asyncio.gather(
                *(backend.history(["t"], "e000", limit=100) for _ in range(200))
            )
            assert all([r.id for r in p.records] == ids[1:101] for p in pages)
            assert len({p.cursor for p in pages}) == 1
            page_reads = [s for s in statements if s.startswith("SELECT seq FROM event_topics")]
            assert 0 < len(page_reads) < 20, f"{len(page_reads)} reads for 200 identical resumes"
            row_reads = [s for s in statements if "e.data" in s and "IN (" in s]
            assert row_reads == []  # the writer's decoded records, not rows again
        finally:
            await backend.aclose()

    run(body)
