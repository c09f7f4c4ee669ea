"""The backend contract (`ssehub.testing.BackendContract`), run against every
backend of ours, plus what only one backend can show."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ssehub.backends import (
    Backend,
    HistoryLimits,
    MemoryBackend,
    Record,
    SharedSQLiteBackend,
    SQLiteBackend,
)
from ssehub.backends.redis import RedisBackend
from ssehub.protocol import Event, encode_event
from ssehub.testing import BackendContract
from tests.support.redis import REDIS_URL, count_redis_reads, drop_keys, redis_or_skip
from tests.support.sqlite import count_sqlite_work


def _record(topics: tuple[str, ...], event_id: str, at: float) -> Record:
    event = Event(event_id, id=event_id)
    return Record(topics, event, at, encode_event(event))


class TestMemoryBackend(BackendContract):
    def make_backend(self, limits: HistoryLimits, clock: Callable[[], float]) -> Backend:
        return MemoryBackend(limits, clock=clock)


class TestSQLiteBackend(BackendContract):
    @pytest.fixture(autouse=True)
    def sqlite_file(self, tmp_path: Path) -> None:
        self.path = tmp_path / "history.db"

    def make_backend(self, limits: HistoryLimits, clock: Callable[[], float]) -> Backend:
        return SQLiteBackend(self.path, limits, clock=clock)


class TestSharedSQLiteBackend(BackendContract):
    """The file several workers share (`serve --workers N`)."""

    @pytest.fixture(autouse=True)
    def sqlite_file(self, tmp_path: Path) -> None:
        self.path = tmp_path / "history.db"

    def make_backend(self, limits: HistoryLimits, clock: Callable[[], float]) -> Backend:
        return SharedSQLiteBackend(self.path, limits, clock=clock)


class TestRedisBackend(BackendContract):
    @pytest.fixture(autouse=True)
    def redis_namespace(self) -> Iterator[None]:
        redis_or_skip()  # fails instead under CI=true
        self.prefix = f"ssehub-test:{uuid.uuid4().hex}:"  # a namespace of this test's own
        yield
        drop_keys(self.prefix)  # leave Redis as we found it

    def make_backend(self, limits: HistoryLimits, clock: Callable[[], float]) -> Backend:
        return RedisBackend(REDIS_URL, limits, prefix=self.prefix, clock=clock)


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_events"):
        HistoryLimits(max_events=0)
    with pytest.raises(ValueError, match="max_age"):
        HistoryLimits(max_age=0)


def test_the_contract_names_what_a_subclass_lacks() -> None:
    with pytest.raises(NotImplementedError, match=r"Incomplete must define make_backend"):
        type("Incomplete", (BackendContract,), {})().test_age_bound()


def test_sqlite_resume_and_last_id_read_a_few_rows_not_the_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted in SQLite's own instructions, so it fails on a scan of the
    events or of a topic's rows, however fast the machine."""
    work = count_sqlite_work(monkeypatch)
    stored = 20_000

    async def main() -> tuple[int, int, int, int]:
        backend = SQLiteBackend(tmp_path / "history.db", HistoryLimits(max_events=stored))
        await backend.start()
        try:
            now = time.time()
            await asyncio.gather(
                *(backend.append(_record((f"t{i % 4}",), f"e{i}", now)) for i in range(stored))
            )  # one group commit, in this order
            work.reset()
            h = await backend.history(["t1", "t2"], "e19990")
            resume = work.instructions()
            assert (h.found, [r.id for r in h.records]) == (
                True, ["e19993", "e19994", "e19997", "e19998"],
            )  # fmt: skip
            work.reset()
            assert await backend.last_id() == f"e{stored - 1}"
            answered = work.instructions()  # from what the commit said: no read
            work.reset()
            assert await backend._read(backend._last_id) == f"e{stored - 1}"
            newest = work.instructions()  # the read a shared file still takes
            work.reset()
            await backend.history(["t1"], "nope")  # not found: all 5,000 rows of t1
            return resume, answered, newest, work.instructions()
        finally:
            await backend.aclose()

    resume, answered, newest, read_topic = asyncio.run(main())
    print(f"resume: {resume}, last_id: {answered} (read: {newest}),"
          f" a topic's 5,000 rows: {read_topic} instructions")  # fmt: skip
    assert 0 < resume < 1_000, f"{resume} SQLite instructions to resume in {stored} rows: a scan?"
    assert answered == 0, f"{answered} SQLite instructions for last_id(): it read the file"
    assert 0 < newest < 1_000, f"{newest} SQLite instructions for the newest row: a scan?"
    assert read_topic > stored  # the counter does see a scan of a topic


def test_redis_resume_reads_a_few_entries_not_the_history(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted in stream entries Redis sends back, so it fails on a read of
    the log or of a whole topic, however fast the machine."""
    redis_or_skip()
    prefix = f"ssehub-test:{uuid.uuid4().hex}:"
    stored = 4_000

    async def main() -> tuple[int, int, int]:
        backend = RedisBackend(REDIS_URL, HistoryLimits(max_events=stored), prefix=prefix)
        await backend.start()
        try:
            now = time.time()
            for i in range(stored):
                await backend.append(_record((f"t{i % 4}",), f"e{i}", now))
            reads = count_redis_reads(monkeypatch)
            h = await backend.history(["t1", "t2"], f"e{stored - 10}")
            resume = reads.entries
            assert (h.found, [r.id for r in h.records]) == (
                True, [f"e{stored - n}" for n in (7, 6, 3, 2)],
            )  # fmt: skip
            reads.entries = 0
            assert await backend.last_id() == f"e{stored - 1}"
            newest = reads.entries
            reads.entries = 0
            await backend.history(["t1"], "nope")  # not found: all 1,000 entries of t1
            return resume, newest, reads.entries
        finally:
            await backend.aclose()
            drop_keys(prefix)

    resume, newest, read_topic = asyncio.run(main())
    assert resume < 20, f"{resume} stream entries read to resume in {stored}: a scan?"
    assert newest <= 1, f"{newest} stream entries read for last_id(): a scan?"
    assert read_topic >= stored // 4  # the counter does see a read of a whole topic


def test_sqlite_frees_a_topic_with_a_shorter_age_than_the_longest(tmp_path: Path) -> None:
    """Reads apply each topic's age; the sweep also frees its rows (within
    a second of a write), not only once they pass the longest age."""
    from ssehub.hub import TopicPolicies, TopicPolicy

    now = [1000.0]
    policies = TopicPolicies((TopicPolicy("archive", history_age=3600),))
    path = tmp_path / "history.db"

    async def main() -> None:
        limits = HistoryLimits(max_age=10, topics=policies)
        backend = SQLiteBackend(path, limits, clock=lambda: now[0])
        await backend.start()
        try:
            for i in range(300):  # more than a page of the sweep (256)
                await backend.append(_record(("brief",), f"b{i}", now[0]))
            await backend.append(_record(("archive",), "kept", now[0]))
            now[0] += 60
            await backend.append(_record(("brief",), "fresh", now[0]))  # a write sweeps
        finally:
            await backend.aclose()

    asyncio.run(main())
    import sqlite3

    db = sqlite3.connect(path)
    rows = dict(db.execute("SELECT topic, COUNT(*) FROM event_topics GROUP BY topic"))
    (events,) = db.execute("SELECT COUNT(*) FROM events").fetchone()
    db.close()
    assert rows == {"brief": 1, "archive": 1}
    assert events == 2


def test_sqlite_sweeps_shorter_ages_a_bounded_number_of_topics_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most `_AGE_SWEEP` topics a sweep, taking turns: every topic is
    freed in the end, however many there are."""
    import sqlite3

    from ssehub.backends import sqlite as sqlite_backend
    from ssehub.hub import TopicPolicies, TopicPolicy

    monkeypatch.setattr(sqlite_backend, "_AGE_SWEEP", 2)
    now = [1000.0]
    path = tmp_path / "history.db"
    policies = TopicPolicies((TopicPolicy("archive", history_age=3600),))
    freed = []

    async def main() -> None:
        limits = HistoryLimits(max_age=10, topics=policies)
        backend = SQLiteBackend(path, limits, clock=lambda: now[0])
        await backend.start()
        try:
            for topic in ("t1", "t2", "t3", "t4", "t5", "archive"):
                await backend.append(_record((topic,), f"{topic}-old", now[0]))
            now[0] += 60
            for i in range(4):  # a write a second: one sweep each
                await backend.append(_record(("archive",), f"new{i}", now[0]))
                now[0] += 1.5
                db = sqlite3.connect(path)
                (left,) = db.execute(
                    "SELECT COUNT(*) FROM event_topics WHERE topic LIKE 't%'"
                ).fetchone()
                db.close()
                freed.append(5 - left)
        finally:
            await backend.aclose()

    asyncio.run(main())
    assert freed[0] <= 2  # two topics swept at most by the first
    assert freed[-1] == 5  # and all of them in turn
