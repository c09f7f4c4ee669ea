"""What one group commit costs the SQLite backend: a batch is a handful of
statements whatever its size (each statement is one hand-off of the GIL by
the writer thread), and the only index on the links is their (topic, seq)
key, in new files and in files an older version made."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from ssehub.backends import HistoryLimits, Record, SQLiteBackend
from ssehub.protocol import Event, encode_event
from tests.support.servers import run
from tests.support.sqlite import trace_sqlite


def _record(event_id: str, topics: tuple[str, ...] = ("t",)) -> Record:
    event = Event(event_id, id=event_id)
    return Record(topics, event, time.time(), encode_event(event))


def _writes(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith(("INSERT", "DELETE"))]


def test_a_batch_of_appends_is_a_few_statements_not_a_few_per_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    trace_sqlite(monkeypatch, statements.append)

    async def body() -> None:
        # two topics at their bound: every batch also drops as many events
        backend = SQLiteBackend(tmp_path / "hub.db", HistoryLimits(max_events=100))
        await backend.start()
        try:
            topics = ("t", "u")
            for i in range(0, 100, 20):
                await asyncio.gather(
                    *(backend.append(_record(f"w{j:03}", topics)) for j in range(i, i + 20))
                )
            statements.clear()
            ids = [f"e{i:03}" for i in range(64)]
            outcomes = await asyncio.gather(*(backend.append(_record(e, topics)) for e in ids))
            assert outcomes == [True] * 64
            writes = _writes(statements)
            commits = statements.count("COMMIT")
            assert 0 < commits < 8, "64 concurrent appends were not grouped"
            # a batch: the events, their links; per topic the events only it
            # held, then its links (not a statement per event, nor per link)
            assert len(writes) <= commits * (2 + 2 * len(topics)), writes
            page = await backend.history(["t"], None)
            assert [r.id for r in page.records] == [f"w{i:03}" for i in range(64, 100)] + ids
            assert [r.id for r in (await backend.history(["u"], None)).records] == [
                r.id for r in page.records
            ]
        finally:
            await backend.aclose()

    run(body)


def test_links_are_keyed_by_topic_only_and_an_older_file_loses_its_seq_index(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hub.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE event_topics (topic TEXT NOT NULL, seq INTEGER NOT NULL,"
        " PRIMARY KEY (topic, seq)) WITHOUT ROWID;"
        "CREATE INDEX event_topics_seq ON event_topics (seq);"
    )
    old.close()

    async def body() -> None:
        # an event on two topics, one of which drops it by count: it stays
        # for the other; dropped by both, it is gone, row and all
        backend = SQLiteBackend(path, HistoryLimits(max_events=2))
        await backend.start()
        try:
            assert await backend.append(_record("both", ("a", "b"))) is True
            for i in range(2):
                assert await backend.append(_record(f"a{i}", ("a",))) is True
            assert [r.id for r in (await backend.history(["b"], None)).records] == ["both"]
            assert (await backend.history(["a"], None)).records[0].id == "a0"
            resumed = await backend.history(["b"], "both")
            assert resumed.found
            assert resumed.records == []
            for i in range(2):
                assert await backend.append(_record(f"b{i}", ("b",))) is True
            gone = await backend.history(["a", "b"], "both")
            assert not gone.found
        finally:
            await backend.aclose()
        db = sqlite3.connect(path)
        try:
            indexes = {name for (name,) in db.execute("SELECT name FROM sqlite_master"
                                                       " WHERE type = 'index'")}  # fmt: skip
            assert "event_topics_seq" not in indexes
            (rows,) = db.execute("SELECT COUNT(*) FROM events WHERE id = 'both'").fetchone()
            assert rows == 0
        finally:
            db.close()

    run(body)


def test_a_build_with_a_lower_parameter_limit_takes_a_large_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite builds compiled with SQLITE_MAX_VARIABLE_NUMBER=999 (the
    default before 3.32) still store a batch larger than 999 parameters:
    the multi-row INSERTs are cut to the connection's own limit."""
    connect = sqlite3.connect

    def old_build(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db: sqlite3.Connection = connect(*args, **kwargs)
        db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
        return db

    monkeypatch.setattr(sqlite3, "connect", old_build)

    async def body() -> None:
        backend = SQLiteBackend(tmp_path / "hub.db")
        await backend.start()
        try:
            ids = [f"e{i:03}" for i in range(300)]  # 2,400 event parameters in one batch
            outcomes = await asyncio.gather(*(backend.append(_record(e)) for e in ids))
            assert outcomes == [True] * 300
            assert [r.id for r in (await backend.history(["t"], None)).records] == ids
        finally:
            await backend.aclose()

    run(body)


def test_a_file_of_its_own_reads_the_last_position_once_not_per_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only this process appends to a file of its own, and AUTOINCREMENT
    never gives a position twice: the last one is read at the first batch
    and after a failed one, then kept. A shared file reads it every batch."""
    statements: list[str] = []
    trace_sqlite(monkeypatch, statements.append)

    def reads_of_the_last_position() -> int:
        return len([s for s in statements if "sqlite_sequence" in s])

    counts: list[int] = []

    async def body(backend: SQLiteBackend) -> None:
        counts.clear()
        await backend.start()
        try:
            for i in range(5):
                assert await backend.append(_record(f"e{i}"))
                counts.append(reads_of_the_last_position())
            with pytest.raises(UnicodeEncodeError):  # a batch fails: read again after it
                await backend.append(_record("bad", ("t", "\ud800")))
            assert await backend.append(_record("e5"))
            counts.append(reads_of_the_last_position())
            page = await backend.history(None, None)
            assert [r.id for r in page.records] == [f"e{i}" for i in range(6)]
        finally:
            await backend.aclose()

    from ssehub.backends import SharedSQLiteBackend

    run(lambda: body(SQLiteBackend(tmp_path / "own.db")))
    assert counts == [1, 1, 1, 1, 1, 2]
    statements.clear()
    run(lambda: body(SharedSQLiteBackend(tmp_path / "shared.db")))
    assert counts == [1, 2, 3, 4, 5, 7]


def test_a_store_started_again_reads_the_last_position_afresh(tmp_path: Path) -> None:
    """A store closed and started again (the same object, a hub restarted
    in the process) does not take its old last position for the file's:
    while it was closed another store may have appended."""

    async def body() -> None:
        path = tmp_path / "h.db"
        store = SQLiteBackend(path)
        await store.start()
        assert await store.append(_record("e0"))
        await store.aclose()
        other = SQLiteBackend(path)  # the file's writer meanwhile
        await other.start()
        assert await other.append(_record("e1"))
        await other.aclose()
        await store.start()
        try:
            assert await store.append(_record("e2"))  # main: UNIQUE constraint failed
            page = await store.history(None, None)
            assert [r.id for r in page.records] == ["e0", "e1", "e2"]
            assert await store.last_id() == "e2"
        finally:
            await store.aclose()

    run(body)
