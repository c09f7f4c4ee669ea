"""The SQLite backend: durable history in one file, for the standalone hub.

Every append is committed before it is acknowledged (WAL journal). Appends
that arrive together are committed together (group commit), on one writer
thread, so publishing is not one fsync per event. After a crash — `kill -9`
included — every acknowledged event is there.

Reads (replays, resumes) run on a thread and a connection of their own:
under WAL a reader never blocks the writer, and each page of a replay is one
short statement, so a storm of replays does not hold up publishing.

Schema: `events` (seq = publish order, id UNIQUE, time, the event's fields,
its topics as JSON) and `event_topics` (topic, seq), so "what came after id X
on these topics" is two index lookups, not a scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import os
import sqlite3
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from json.encoder import encode_basestring_ascii
from typing import Any, ClassVar, Literal, TypeVar

from ssehub.protocol import Event, encode_event

from ._base import (
    DuplicateEventIdError,
    History,
    HistoryLimits,
    Record,
    StoreRefusedError,
    TopicLimits,
    check_newest,
    check_page,
    payload_digest,
)

__all__ = ("SQLiteBackend",)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    id     TEXT    NOT NULL UNIQUE,
    time   REAL    NOT NULL,
    topics TEXT    NOT NULL,
    event  TEXT    NOT NULL,
    data   TEXT    NOT NULL,
    retry  INTEGER,
    private INTEGER NOT NULL DEFAULT 0
);
DROP INDEX IF EXISTS events_time;
CREATE TABLE IF NOT EXISTS event_topics (
    topic TEXT    NOT NULL,
    seq   INTEGER NOT NULL,
    PRIMARY KEY (topic, seq)
) WITHOUT ROWID;
DROP INDEX IF EXISTS event_topics_seq;
"""
_INSERT_EVENTS = "INSERT INTO events (seq, id, time, topics, event, data, retry, private) VALUES "
_INSERT_LINKS = "INSERT INTO event_topics (topic, seq) VALUES "
_ROWS = 200  # rows per INSERT statement at most (SQLite takes 32,766 parameters)
# a link of event `e` still there: its topics (JSON) looked up in the
# (topic, seq) key (no index on seq alone: one b-tree less per insert,
# per delete and per commit)
_LINKED = (
    "SELECT 1 FROM json_each(e.topics) j, event_topics t WHERE t.topic = j.value AND t.seq = e.seq"
)
_COLUMNS = "e.seq, e.id, e.time, e.topics, e.event, e.data, e.retry, e.private"
Row = tuple[int, str, float, str, str, str, int | None, int]
_WAL_WAIT = 5.0  # seconds a new file's WAL switch is retried (sqlite3.connect's busy timeout)
_LOW_DISK = 1 << 20  # free bytes below which `check_writable` calls the disk full
_AGE_SWEEP = 1000  # topics of a shorter age than the longest, swept per second at most
_CACHE = 20_000  # recent records kept decoded: a resume storm reads them, not rows
# ... and at most this many bytes of frames (a record holds its data again:
# about twice that in all). The count alone let publishers of big events keep
# 20,000 of them in memory, rows the history had dropped long before (1 MB
# bodies: 40 GB); small events (frames under 1.6 kB) are held to the count.
_CACHE_BYTES = 32 << 20
_T = TypeVar("_T")
_Shared = History | str | None  # what a shared read answers (`_SharedRead`)


def _topics_json(topics: tuple[str, ...]) -> str:
    """`json.dumps(list(topics))`, the same text, without building a JSON
    encoder per event (a list of strings needs only the string escaper)."""
    return "[" + ", ".join(map(encode_basestring_ascii, topics)) + "]"


def _record(row: Row) -> Record:
    _, event_id, stamp, topics, event_type, data, retry, private = row
    ev = Event(data, event_type, event_id, retry)
    return Record(tuple(json.loads(topics)), ev, stamp, encode_event(ev), bool(private))


_FULL = "the store is full (disk or database)"


def _refusal(error: Exception) -> Exception:
    """A write's failure, said plainly when the store refuses writes."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:
        return error
    if code & 0xFF == sqlite3.SQLITE_FULL:
        return StoreRefusedError(_FULL)
    if code & 0xFF == sqlite3.SQLITE_READONLY:
        return StoreRefusedError(f"the store is read-only ({error})")
    return error


class SQLiteBackend:
    """History in a SQLite file (created if missing), bounded per topic by
    `limits` like every backend.

    `synchronous="NORMAL"` (the default) with WAL survives a crash of the
    process; `"FULL"` also survives a power cut, at the cost of an fsync per
    commit. `clock` gives Unix seconds (injectable for age tests).
    """

    # whether the writer thread starts on an append at once, or once the
    # loop has run what is ready (a bigger first batch, a turn later)
    _at_once: ClassVar[bool] = False
    # whether only this process appends: the newest row is then known from
    # its commits (else `last_id` reads the file)
    _tracks_newest: ClassVar[bool] = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        limits: HistoryLimits | None = None,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        self.path = os.fspath(path)
        self._limits = limits or HistoryLimits()
        self._synchronous = synchronous
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        # reads: their own thread and connection (WAL: they never hold the writer)
        self._reader: ThreadPoolExecutor | None = None
        self._rdb: sqlite3.Connection | None = None
        # appends waiting for the writer thread, and whether it is draining
        # them (both under `_lock`): a batch is what arrived during the
        # previous commit, so it grows with concurrency and is one when idle
        self._lock = threading.Lock()
        self._pending: list[tuple[Record, asyncio.Future[bool]]] = []
        self._draining = False
        # history reads queued for the reader thread and not begun, by what
        # they ask: an identical resume joins one instead of reading again
        self._queued: dict[tuple[Any, ...], _SharedRead] = {}
        self._swept = 0.0
        self._age_turn = 0  # where the next sweep of per-topic ages starts
        # on the database thread only:
        self._counts: dict[str, int] = {}  # rows per topic, loaded on first use
        # seq -> record, the most recent ones, oldest first (an OrderedDict:
        # dropping the oldest of a dict, `next(iter(d))`, walks the holes
        # the earlier drops left, ~15 us an append once it is full)
        self._cache: OrderedDict[int, Record] = OrderedDict()
        self._cache_bytes = 0  # the cached records' frames, in bytes
        self._full_at: tuple[int, int] | None = None  # `_room()` when a write found it full
        # the last position this process's commits gave (AUTOINCREMENT never
        # gives one again), while only it appends: one statement less a batch
        self._seq: int | None = None
        # The newest stored row (id, time; None: none), kept on the writer
        # thread (`_tip`) and handed to the loop with each batch's answers
        # (`_answered_tip`), so `last_id()` needs no read: the loop's copy moves in
        # commit order, when the batch's publishers are answered. A file
        # other processes append to (`_tracks_newest` False) is read instead.
        self._tip: tuple[str, float] | None = None
        self._answered_tip: tuple[str, float] | None = None
        self._tip_known = False

    @property
    def limits(self) -> HistoryLimits:
        return self._limits

    def limit_topics(self, topics: TopicLimits | None) -> None:
        self._limits = dataclasses.replace(self._limits, topics=topics)

    async def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ssehub-sqlite")
        await self._run(self._open)
        if self._tracks_newest:  # (the writer is idle: nothing was appended yet)
            self._answered_tip, self._tip_known = self._tip, True
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ssehub-sqlite-read")
        await self._read(self._open_reader)

    async def aclose(self) -> None:
        if self._reader is not None:
            await self._read(self._close_reader)
            self._reader.shutdown(wait=True)
            self._reader = None
        if self._executor is not None:
            await self._run(self._close)
            self._executor.shutdown(wait=True)
            self._executor = None

    async def append(self, record: Record) -> bool:
        executor = self._executor
        if executor is None:
            raise RuntimeError("SQLiteBackend is not started")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()
        with self._lock:
            self._pending.append((record, done))
            start, self._draining = not self._draining, True
        if start and self._at_once:
            executor.submit(self._drain, loop)
        elif start:  # once the loop has run what is ready: its publishes join this batch
            loop.call_soon(executor.submit, self._drain, loop)
        return await done

    async def history(
        self,
        topics: Collection[str] | None,
        after: str | None,
        *,
        limit: int | None = None,
        after_position: int | None = None,
    ) -> History:
        check_page(after, limit, after_position)
        topic_list = None if topics is None else list(topics)
        key = (None if topic_list is None else tuple(topic_list), after, limit, after_position)
        answer = await self._shared(
            key, lambda: self._history(topic_list, after, limit, after_position)
        )
        assert isinstance(answer, History)
        return answer

    async def newest(self, topics: Collection[str] | None, n: int) -> History:
        check_newest(n)
        topic_list = None if topics is None else list(dict.fromkeys(topics))
        return await self._read(lambda: self._newest(topic_list, n))

    async def last_id(self) -> str | None:
        if self._tip_known:  # no read: what the commits answered so far say
            return self._young(self._answered_tip)
        # a storm of subscribers asks at once: one read for those queued together
        answer = await self._shared(("last_id",), self._last_id)
        assert answer is None or isinstance(answer, str)
        return answer

    async def check_writable(self) -> None:
        """A cheap probe for `/readyz`: `StoreRefusedError` when the file is
        read-only, the database is at its page limit or the disk is (nearly)
        full."""
        await self._run(self._check_writable)

    # -- on the loop -------------------------------------------------------------

    async def _run(self, work: Callable[[], _T]) -> _T:
        if self._executor is None:
            raise RuntimeError("SQLiteBackend is not started")
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def _shared(self, key: tuple[Any, ...], work: Callable[[], _Shared]) -> _Shared:
        """`work()` on the reader thread, or the answer of an identical
        read (`key`) queued and not begun: it sees what this one would."""
        shared = self._queued.get(key)
        if shared is not None:
            with self._lock:
                joined = not shared.started
            if joined:
                return await shared.join()
        if self._reader is None:
            raise RuntimeError("SQLiteBackend is not started")
        read = _SharedRead()

        def begin() -> _Shared:
            with self._lock:
                read.started = True
            return work()

        answer = asyncio.get_running_loop().run_in_executor(self._reader, begin)
        self._queued[key] = read

        def done(answer: asyncio.Future[_Shared]) -> None:
            if self._queued.get(key) is read:
                del self._queued[key]
            read.settle(answer)

        answer.add_done_callback(done)
        return await read.join()

    async def _read(self, work: Callable[[], _T]) -> _T:
        if self._reader is None:
            raise RuntimeError("SQLiteBackend is not started")
        return await asyncio.get_running_loop().run_in_executor(self._reader, work)

    # -- on the database thread ------------------------------------------------

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commit what is pending, batch after batch (group commit), and
        answer each batch's publishers with one wake-up of the loop."""
        while True:
            with self._lock:
                batch, self._pending = self._pending, []
                if not batch:
                    self._draining = False
                    return
            outcomes: list[DuplicateEventIdError | bool] | Exception
            try:
                outcomes = self._write([record for record, _ in batch])
            except Exception as error:  # the commit failed: so does every publish in it
                outcomes = _refusal(error)
            try:
                loop.call_soon_threadsafe(self._answer, batch, outcomes, self._tip)
            except RuntimeError:  # the loop is closed: nobody waits for an answer
                pass

    def _answer(
        self,
        batch: list[tuple[Record, asyncio.Future[bool]]],
        outcomes: list[DuplicateEventIdError | bool] | Exception,
        tip: tuple[str, float] | None,
    ) -> None:
        """On the loop: the newest row after the batch, then its answers."""
        self._answered_tip = tip
        _settle(batch, outcomes)

    def _open(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        _wal(db)
        db.execute(f"PRAGMA synchronous={self._synchronous}")
        db.executescript(_SCHEMA)
        self._db = db
        self._tip = self._read_tip(db) if self._tracks_newest else None
        # started again: another store may have appended while this one was closed
        self._seq = None

    @staticmethod
    def _read_tip(db: sqlite3.Connection) -> tuple[str, float] | None:
        """The newest row's id and time: one step down the primary key."""
        row = db.execute("SELECT id, time FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else (str(row[0]), float(row[1]))

    def _open_reader(self) -> None:
        self._rdb = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)

    def _close_reader(self) -> None:
        if self._rdb is not None:
            self._rdb.close()
            self._rdb = None

    def _reading(self) -> sqlite3.Connection:
        if self._rdb is None:
            raise RuntimeError("SQLiteBackend is closed")
        return self._rdb

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("SQLiteBackend is closed")
        return self._db

    def _write(self, records: Sequence[Record]) -> list[DuplicateEventIdError | bool]:
        """One transaction: each record stored (True), an idempotent retry
        of a stored one (False), or refused (the error). Positions follow
        the batch's order; if the commit fails, nothing of it is stored."""
        db = self._conn()
        outcomes: list[DuplicateEventIdError | bool] = []
        events: list[Any] = []  # the rows' values, flat: one multi-row INSERT
        links: list[Any] = []
        added: Counter[str] = Counter()
        fresh: list[tuple[int, Record]] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            stored = self._stored(db, [record.id for record in records])
            seq = self._seq if self._tracks_newest else None
            if seq is None:
                (last,) = db.execute(
                    "SELECT coalesce(max(seq), 0) FROM"
                    " (SELECT seq FROM sqlite_sequence WHERE name = 'events'"
                    "  UNION ALL SELECT max(seq) FROM events)"
                ).fetchone()
                seq = int(last)
            batch: dict[str, Record] = {}  # id -> the record this batch stores under it
            for record in records:
                earlier = batch.get(record.id)
                if earlier is not None:  # twice in one batch: a retry or a conflict
                    same = earlier.digest() == record.digest()
                    outcomes.append(False if same else DuplicateEventIdError(record.id))
                    continue
                row = stored.get(record.id)
                if row is not None:
                    outcomes.append(_same(row, record))
                    continue
                seq += 1
                ev = record.event
                events += (seq, record.id, record.time, _topics_json(record.topics), ev.event,
                           ev.data, ev.retry, int(record.private))  # fmt: skip
                for topic in record.topics:
                    links += (topic, seq)
                added.update(record.topics)
                batch[record.id] = record
                fresh.append((seq, record))
                outcomes.append(True)
            counts = {topic: self._count(db, topic) for topic in added}
            _insert(db, _INSERT_EVENTS, 8, events)
            _insert(db, _INSERT_LINKS, 2, links)
            for topic, n in added.items():
                self._counts[topic] = counts[topic] + n
            self._prune_count(db, set(added))
            db.execute("COMMIT")
            self._seq = seq
            self._full_at = None
        except BaseException as error:
            if db.in_transaction:  # SQLite already rolled back after SQLITE_FULL
                db.execute("ROLLBACK")
            if getattr(error, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_FULL:
                self._full_at = self._room(db)
            self._counts.clear()  # reloaded from the database when next needed
            self._seq = None  # and the last position
            raise
        for seq, record in fresh:
            self._remember(seq, record)
        if fresh and self._tracks_newest:  # never pruned by count (every topic keeps >= 1)
            self._tip = (fresh[-1][1].id, fresh[-1][1].time)
        try:
            self._prune_age(db)
        except sqlite3.Error:  # committed all the same: the sweep is tried again later
            if db.in_transaction:
                db.execute("ROLLBACK")
        return outcomes

    @staticmethod
    def _stored(db: sqlite3.Connection, ids: list[str]) -> dict[str, Any]:
        """The stored rows of those of `ids` that are taken (usually none):
        one indexed statement per 500 ids."""
        found: dict[str, Any] = {}
        unique = list(dict.fromkeys(ids))
        for i in range(0, len(unique), 500):
            chunk = unique[i : i + 500]
            marks = ", ".join("?" * len(chunk))
            for row in db.execute(
                f"SELECT id, topics, event, data, retry, private FROM events WHERE id IN ({marks})",
                chunk,
            ):
                found[row[0]] = row
        return found

    def _check_writable(self) -> None:
        db = self._conn()
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
        except sqlite3.Error as error:
            raise _refusal(error) from None
        room = self._room(db)
        if room[0] <= 0 or room[1] < _LOW_DISK:
            raise StoreRefusedError(_FULL)
        # the last write found it full: until a write succeeds, it still is,
        # unless there is more room than then (space freed, a higher limit)
        full_at = self._full_at
        if full_at is not None and room[0] <= full_at[0] and room[1] <= full_at[1]:
            raise StoreRefusedError(_FULL)

    def _room(self, db: sqlite3.Connection) -> tuple[int, int]:
        """Pages the database may still grow by, and free bytes on its disk."""
        (pages,) = db.execute("PRAGMA page_count").fetchone()
        (most,) = db.execute("PRAGMA max_page_count").fetchone()
        (free,) = db.execute("PRAGMA freelist_count").fetchone()
        disk = 1 << 62
        if self.path != ":memory:" and hasattr(os, "statvfs"):
            stat = os.statvfs(os.path.dirname(os.path.abspath(self.path)))
            disk = stat.f_bavail * stat.f_frsize
        return int(most) - int(pages) + int(free), disk

    def _count(self, db: sqlite3.Connection, topic: str) -> int:
        """Rows of `topic`."""
        count = self._counts.get(topic)
        if count is None:
            (count,) = db.execute(
                "SELECT COUNT(*) FROM event_topics WHERE topic = ?", (topic,)
            ).fetchone()
            count = int(count)
        return count

    def _prune_count(self, db: sqlite3.Connection, topics: set[str]) -> None:
        """Drop the oldest rows of each topic past its `max_events`: a small
        delete of what is in excess, not a scan; two statements a topic
        (the events only it still holds, then its links), whatever the
        excess."""
        of = self._limits.of
        for topic in topics:
            excess = self._count(db, topic) - of(topic)[0]
            if excess <= 0:
                continue
            oldest = "SELECT seq FROM event_topics WHERE topic = ? ORDER BY seq LIMIT ?"
            db.execute(
                f"DELETE FROM events AS e WHERE seq IN ({oldest})"
                f" AND NOT EXISTS ({_LINKED} AND j.value <> ?)",
                (topic, excess, topic),
            )
            dropped = db.execute(
                f"DELETE FROM event_topics WHERE topic = ? AND seq IN ({oldest})",
                (topic, topic, excess),
            ).rowcount
            self._counts[topic] -= dropped

    def _remember(self, seq: int, record: Record) -> None:
        cache = self._cache
        cache[seq] = record
        size = self._cache_bytes + len(record.frame)
        if len(cache) > _CACHE:
            size -= len(cache.popitem(last=False)[1].frame)
        while size > _CACHE_BYTES:  # (a record over it alone is not kept either)
            size -= len(cache.popitem(last=False)[1].frame)
        self._cache_bytes = size

    @staticmethod
    def _drop_orphans(db: sqlite3.Connection, seqs: list[int]) -> None:
        """Delete the events of `seqs` that no topic holds any more: one
        statement per 500."""
        for i in range(0, len(seqs), 500):
            chunk = seqs[i : i + 500]
            db.execute(
                f"DELETE FROM events AS e WHERE seq IN ({', '.join('?' * len(chunk))})"
                f" AND NOT EXISTS ({_LINKED})",
                chunk,
            )

    def _prune_age(self, db: sqlite3.Connection) -> None:
        """At most once a second: drop what is older than any topic keeps,
        in bounded steps, then what the topics written since the start keep
        for less long. (Reads apply each topic's cutoff themselves, so this
        only frees space.)"""
        now = self._clock()
        if now - self._swept < 1.0 and now >= self._swept:
            return
        self._swept = now
        limits = self._limits
        try:
            self._prune_all(db, now - limits.longest_age)
            if limits.topics is not None:
                # at most _AGE_SWEEP topics a second, taking turns
                topics = list(self._counts)
                first = self._age_turn % len(topics) if len(topics) > _AGE_SWEEP else 0
                turn = (topics[first:] + topics[:first])[:_AGE_SWEEP]
                self._age_turn = first + len(turn)
                for topic in turn:
                    age = limits.of(topic)[1]
                    if age < limits.longest_age:
                        self._prune_topic_age(db, topic, now - age)
        finally:  # the newest row may be gone (a topic of a shorter age): read it again
            if self._tracks_newest:
                with contextlib.suppress(sqlite3.Error):
                    if db.in_transaction:  # a step that failed: what it deleted is not
                        db.execute("ROLLBACK")
                    self._tip = self._read_tip(db)

    def _prune_topic_age(self, db: sqlite3.Connection, topic: str, cutoff: float) -> None:
        """Drop `topic`'s oldest rows while they are older than `cutoff`
        (as the memory backend's `_prune`), a page at a time; a topic with
        nothing to drop costs one indexed lookup."""
        page = 1
        while True:
            rows = db.execute(
                "SELECT t.seq, e.time FROM event_topics t JOIN events e ON e.seq = t.seq"
                " WHERE t.topic = ? ORDER BY t.seq LIMIT ?",
                (topic, page),
            ).fetchall()
            old = []
            for seq, stamp in rows:
                if stamp >= cutoff:
                    break
                old.append(seq)
            if not old:
                return
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "DELETE FROM event_topics WHERE topic = ? AND seq = ?", [(topic, s) for s in old]
            )
            self._drop_orphans(db, old)
            db.execute("COMMIT")
            if topic in self._counts:
                self._counts[topic] -= len(old)
            if len(old) < page:
                return
            page = 256

    def _prune_all(self, db: sqlite3.Connection, cutoff: float) -> None:
        """Drop the oldest events while they are older than `cutoff`, 1000
        a transaction, walking the primary key from its start (no index on
        `time`: one b-tree less per insert and per delete). Nothing to drop
        costs one step down the key; a row behind a younger one (clocks of
        several writers, a clock set back) waits for that one, and reads
        apply the cutoff themselves."""
        while True:
            first = db.execute("SELECT time FROM events ORDER BY seq LIMIT 1").fetchone()
            if first is None or first[0] >= cutoff:
                return
            db.execute("BEGIN IMMEDIATE")
            rows = db.execute("SELECT seq, time FROM events ORDER BY seq LIMIT 1000").fetchall()
            seqs = [seq for seq, _ in itertools.takewhile(lambda row: row[1] < cutoff, rows)]
            if seqs:  # their links (found through their topics), then them
                for (topic,) in db.execute(
                    "DELETE FROM event_topics WHERE (topic, seq) IN"
                    " (SELECT j.value, e.seq FROM events e, json_each(e.topics) j"
                    "  WHERE e.seq <= ?) RETURNING topic",
                    (seqs[-1],),
                ).fetchall():
                    if topic in self._counts:
                        self._counts[topic] -= 1
                db.execute("DELETE FROM events WHERE seq <= ?", (seqs[-1],))
            db.execute("COMMIT")
            if len(seqs) < 1000:
                return

    def _history(
        self,
        topics: list[str] | None,
        after: str | None,
        limit: int | None,
        after_position: int | None,
    ) -> History:
        """On the reader thread: each statement is its own short read
        transaction, and a page reads about `limit` rows."""
        db = self._reading()
        limits = self._limits
        now = self._clock()
        cutoff = now - limits.longest_age
        start, found = after_position or 0, True
        if after is not None:
            row = db.execute(
                "SELECT e.seq, e.time, e.topics FROM events e WHERE e.id = ? AND e.time >= ?"
                f" AND EXISTS ({_LINKED})",
                (after, cutoff),
            ).fetchone()
            if row is None or row[1] < now - limits.age_of(json.loads(row[2])):
                found = False
            else:
                start = row[0]
        cursor = None
        if topics is None:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM events e WHERE e.seq > ? ORDER BY e.seq LIMIT ?",
                (start, -1 if limit is None else limit),
            ).fetchall()
            if limit is not None and len(rows) == limit:
                cursor = rows[-1][0]
            rows = [row for row in rows if self._alive(row, now)]
        else:
            # the first `limit` positions of each topic (the (topic, seq) key
            # is ordered), merged: a page costs topics x limit, not history;
            # each kept if young enough for a topic that listed it
            seqs: set[int] = set()
            alive: set[int] = set()
            for topic in topics:
                count = -1 if limit is None else limit
                if limits.topics is None:  # one age for all: `_rows_of` applies it
                    seqs.update(
                        seq
                        for (seq,) in db.execute(
                            "SELECT seq FROM event_topics WHERE topic = ? AND seq > ?"
                            " ORDER BY seq LIMIT ?",
                            (topic, start, count),
                        )
                    )
                    alive = seqs
                    continue
                topic_cutoff = now - limits.of(topic)[1]
                for seq, stamp in db.execute(
                    "SELECT t.seq, e.time FROM event_topics t JOIN events e ON e.seq = t.seq"
                    " WHERE t.topic = ? AND t.seq > ? ORDER BY t.seq LIMIT ?",
                    (topic, start, count),
                ):
                    seqs.add(seq)
                    if stamp >= topic_cutoff:
                        alive.add(seq)
            page = sorted(seqs)
            if limit is not None and len(page) >= limit:
                page = page[:limit]
                cursor = page[-1]
            kept = [seq for seq in page if seq in alive]
            return History(self._records_of(db, kept, cutoff), found, cursor=cursor)
        records = self._records(rows)
        return History(records, found, cursor=cursor)

    def _alive(self, row: Row, now: float) -> bool:
        """Young enough for one of its topics."""
        limits = self._limits
        if limits.topics is None:
            return row[2] >= now - limits.max_age
        return row[2] >= now - limits.age_of(json.loads(row[3]))

    def _records(self, rows: list[Any]) -> list[Record]:
        """The rows as records: the writer's decoded copy where it has one."""
        cache = self._cache  # filled by the writer; only read here
        return [cache.get(row[0]) or _record(row) for row in rows]

    def _records_of(self, db: sqlite3.Connection, seqs: list[int], cutoff: float) -> list[Record]:
        """The records of `seqs` (sorted) not older than `cutoff`: the
        writer's decoded copies, and rows read only for those it has not
        (a storm of resumes reads recent events: no row is read at all)."""
        cache = self._cache  # filled by the writer; only read here
        found = {seq: cache.get(seq) for seq in seqs}
        missing = [seq for seq, record in found.items() if record is None]
        if missing:
            for row in _rows_of(db, missing, cutoff):
                found[row[0]] = _record(row)
        return [r for r in found.values() if r is not None and r.time >= cutoff]

    def _newest(self, topics: list[str] | None, n: int) -> History:
        """On the reader thread: the (topic, seq) key read backwards, `n`
        rows per topic."""
        db = self._reading()
        limits = self._limits
        now = self._clock()
        cutoff = now - limits.longest_age
        if topics is None:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM events e ORDER BY e.seq DESC LIMIT ?", (n,)
            ).fetchall()
            rows.reverse()
            rows = [row for row in rows if self._alive(row, now)]
        else:
            seqs: set[int] = set()
            for topic in topics:
                topic_cutoff = now - limits.of(topic)[1]
                seqs.update(
                    seq
                    for seq, stamp in db.execute(
                        "SELECT t.seq, e.time FROM event_topics t JOIN events e ON e.seq = t.seq"
                        " WHERE t.topic = ? ORDER BY t.seq DESC LIMIT ?",
                        (topic, n),
                    )
                    if stamp >= topic_cutoff
                )
            page = sorted(seqs)
            return History(self._records_of(db, page, cutoff), True)
        records = self._records(rows)
        return History(records, True)

    def _last_id(self) -> str | None:
        # The newest row by seq, then its age: one step down the primary key
        # (a `WHERE time >= ?` would let SQLite sort the whole time index).
        return self._young(self._read_tip(self._reading()))

    def _young(self, tip: tuple[str, float] | None) -> str | None:
        """The id of `tip`, the newest row, unless it is older than any
        topic keeps (then, as every older row, it is no longer history)."""
        if tip is None or tip[1] < self._clock() - self._limits.longest_age:
            return None
        return tip[0]


def _same(row: Any, record: Record) -> DuplicateEventIdError | bool:
    """`record`'s id is taken by the stored `row`: False if it is the same
    event (an idempotent retry), else the refusal."""
    _, topics, event_type, data, retry, private = row
    stored = Event(data, event_type, record.id, retry)
    if payload_digest(tuple(json.loads(topics)), stored, bool(private)) == record.digest():
        return False
    return DuplicateEventIdError(record.id)


class _SharedRead:
    """A read on the reader thread (history, the last id) that identical
    ones may join until it begins (`started`, under the backend's lock)."""

    __slots__ = ("started", "waiters")

    def __init__(self) -> None:
        self.started = False
        self.waiters: list[asyncio.Future[_Shared]] = []  # a future each: one that
        # leaves (cancelled) ends no one's read; cheaper than a shield each

    async def join(self) -> _Shared:
        waiter: asyncio.Future[_Shared] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        return await waiter

    def settle(self, answer: asyncio.Future[_Shared]) -> None:
        """The read is done: every waiter still there gets its answer."""
        error = None if answer.cancelled() else answer.exception()
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if waiter.done():
                continue
            if answer.cancelled():
                waiter.cancel()
            elif error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(answer.result())


def _settle(
    batch: list[tuple[Record, asyncio.Future[bool]]],
    outcomes: list[DuplicateEventIdError | bool] | Exception,
) -> None:
    """On the loop: answer each publisher of a committed (or failed) batch."""
    if isinstance(outcomes, Exception):
        for _, done in batch:
            if not done.done():
                done.set_exception(outcomes)
        return
    for (_, done), outcome in zip(batch, outcomes, strict=True):
        if done.done():
            continue
        if isinstance(outcome, bool):
            done.set_result(outcome)
        else:
            done.set_exception(outcome)


def _wal(db: sqlite3.Connection) -> None:
    """Put the file in WAL mode. Two processes opening a new file at once
    (`serve --workers N`, or two `serve --reuse-port`) race for it, and
    SQLite answers the loser "database is locked" at once, without its busy
    timeout: try again for as long as that timeout would have waited."""
    deadline = time.monotonic() + _WAL_WAIT
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            busy = getattr(error, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def _insert(db: sqlite3.Connection, head: str, width: int, values: list[Any]) -> None:
    """Insert the rows of `width` columns in flat `values` with one
    statement per `_ROWS`: one step of SQLite for a batch, not one each
    (and on the writer thread, one hand-off of the GIL, not one a row)."""
    # (a build with a lower parameter limit than SQLite's default gets smaller statements)
    step = width * min(_ROWS, db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
    row = "(" + ", ".join("?" * width) + ")"
    for i in range(0, len(values), step):
        chunk = values[i : i + step]
        db.execute(head + ", ".join([row] * (len(chunk) // width)), chunk)


def _rows_of(db: sqlite3.Connection, seqs: list[int], cutoff: float) -> list[Any]:
    """The rows of `seqs` (sorted) not older than `cutoff`, in order, read
    in statements of at most 500 parameters."""
    rows: list[Any] = []
    for i in range(0, len(seqs), 500):
        chunk = seqs[i : i + 500]
        marks = ", ".join("?" * len(chunk))
        rows += db.execute(
            f"SELECT {_COLUMNS} FROM events e WHERE e.seq IN ({marks})"
            " AND e.time >= ? ORDER BY e.seq",
            (*chunk, cutoff),
        ).fetchall()
    return rows
