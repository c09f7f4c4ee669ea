"""One SQLite file shared by several hub processes on one machine
(`ssehub serve --workers N`): no broker, the database is the log.

Every process appends to the one file (WAL: one writer at a time across
processes, each waits its turn with SQLite's busy timeout; transactions are
short). `seq` is assigned under the write lock, so commits are in `seq`
order and a reader never sees a later row without the earlier ones: `seq`
is one total order. Each process follows the table — after its own
commits, when a peer wakes it (`_wake.py`), and on a slow safety timer —
reading the rows past the last it saw, and its hub fans out every one of
them, its own included: every process delivers every event once, in `seq`
order. Resuming on any process is a lookup by id, as with one process.

After its own commit a process reads the new rows at once, on the writer
thread and connection, and hands them to the follower with the commit's
answer: its own publishes reach its feed without a second thread hop or a
loop iteration more than with one process. Peers' rows are read by the
follower thread, which waits on the wake socket itself (and the timer):
woken, it reads while the loop goes on with its pass, and the rows are
ready for the feed at the loop's next turn — the feed never waits for a
read, so its own rows are never held behind a peer's. Rows from both
reads are merged by `seq` (each read is every committed row past a
point), so none is handed twice or skipped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, TypeVar

from ._base import DuplicateEventIdError, History, HistoryLimits, Record
from ._wake import Wake
from .sqlite import _COLUMNS, SQLiteBackend

__all__ = ("SharedSQLiteBackend",)

log = logging.getLogger("ssehub.backends.sqlite")
_PAGE = 1000  # rows a follow read takes at most
_T = TypeVar("_T")


class SharedSQLiteBackend(SQLiteBackend):
    """A `SQLiteBackend` that several processes share: an
    `OrderedSharedBackend`. Each follows the rows all of them append.

    `poll`: seconds between the safety reads that catch what a lost wake-up
    missed (a wake-up is normally at once). The wake sockets live in the
    folder `<path>.wake`; `wake=False` leaves them out (the timer alone).
    """

    _tracks_newest = False  # the others append too: `last_id` reads the file
    # The writer thread starts on an append at once, not a loop turn later:
    # under load a turn is a fan-out pass (tens of ms), and a worker's
    # publish already waits a turn more than on a file of its own (its feed
    # passes its row). What arrives meanwhile is the next batch.
    _at_once = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        limits: HistoryLimits | None = None,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        clock: Callable[[], float] = time.time,
        poll: float = 0.2,
        wake: bool = True,
    ) -> None:
        super().__init__(path, limits, synchronous=synchronous, clock=clock)
        if not poll > 0:
            raise ValueError(f"poll must be > 0 seconds, not {poll!r}")
        self.poll = poll
        self._woken = _Signal()  # on the loop: rows are ahead for `follow()`
        self._wake = Wake(os.path.abspath(self.path) + ".wake") if wake else None
        self._poked = threading.Event()  # the follower's wake-up without a wake socket
        self._appended = 0  # written on the database thread, after a commit
        self._follower: ThreadPoolExecutor | None = None
        self._following: asyncio.Future[None] | None = None  # the follower thread's loop
        self._stopping = False
        self._fdb: sqlite3.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Rows read for `follow()` and not yet handed out, and the newest
        # `seq` read (None: nobody follows), under `_rows_lock`: the writer
        # thread (after its commits) and the follower thread both read.
        self._rows_lock = threading.Lock()
        self._ahead: list[tuple[int, Record]] = []
        self._read_to: int | None = None

    # -- the shared-backend protocol --------------------------------------------

    @property
    def appended_position(self) -> int:
        return self._appended

    async def newest_position(self) -> int:
        return await self._read(self._newest_seq)

    async def follow(self, after: int) -> AsyncIterator[tuple[int, Record]]:
        """Every row past `after`, in `seq` order, whoever appended it: this
        process's own as they commit (read on the writer thread), the
        others' when woken (coalesced: many commits, one read) or every
        `poll` seconds (read on the follower thread). A failing read is
        retried; nothing stored is skipped. One follower at a time."""
        with self._rows_lock:
            if self._read_to is not None:
                raise RuntimeError("SharedSQLiteBackend is followed already")
            self._read_to, self._ahead = after, []
        self._poke()  # the first read: what is there already
        try:
            while True:
                self._woken.clear()  # rows from here on: look again after this turn
                with self._rows_lock:
                    rows, self._ahead = self._ahead, []
                if len(rows) >= _PAGE:  # the follower held back: there may be more
                    self._poke()
                for row in rows:
                    yield row
                if not self._ahead:
                    await self._woken.wait(self.poll)
        finally:
            with self._rows_lock:
                self._read_to, self._ahead = None, []

    # -- life cycle --------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await super().start()
        self._follower = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ssehub-follow")
        self._fdb = await self._on_follower(
            lambda: sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        )
        if self._wake is not None:
            try:
                self._wake.open(asyncio.get_running_loop())
            except (OSError, NotImplementedError) as error:  # the timer alone: slower, not lossy
                log.warning(
                    "no wake-up socket in %s (%s): workers see each other's events within"
                    " %.1f s", self.path + ".wake", error, self.poll,
                )  # fmt: skip
                self._wake = None
        self._stopping = False
        # a daemon thread of its own, not the executor's: a process that ends
        # without `aclose()` must not wait at exit for a loop that never ends
        loop = asyncio.get_running_loop()
        following: asyncio.Future[None] = loop.create_future()
        following.add_done_callback(_ended)
        threading.Thread(
            target=self._follow_thread, args=(loop, following), name="ssehub-follow", daemon=True
        ).start()
        self._following = following

    async def aclose(self) -> None:
        if self._follower is not None:
            following, self._following = self._following, None
            if following is not None:
                self._stopping = True
                self._poke()
                await asyncio.wait([following])  # (a failure of it is logged already)
            fdb, self._fdb = self._fdb, None
            if fdb is not None:
                await self._on_follower(fdb.close)
            self._follower.shutdown(wait=True)
            self._follower = None
        await super().aclose()
        if self._wake is not None:  # after the writer and follower threads, which use it
            self._wake.close()

    async def append(self, record: Record) -> bool:
        try:
            return await super().append(record)
        except BaseException:  # perhaps stored all the same: look again, all of us
            self._poke()
            if self._wake is not None:
                self._wake.notify()
            raise

    def _poke(self) -> None:
        """Have the follower thread read now (from any thread)."""
        if self._wake is not None:
            self._wake.poke()
        else:
            self._poked.set()

    # -- on the loop -------------------------------------------------------------

    async def _on_follower(self, work: Callable[[], _T]) -> _T:
        if self._follower is None:
            raise RuntimeError("SharedSQLiteBackend is not started")
        return await asyncio.get_running_loop().run_in_executor(self._follower, work)

    def _woke(self) -> None:
        """On the loop: rows are ahead."""
        self._woken.set()

    # -- on the database threads -----------------------------------------------

    def _follow_thread(
        self, loop: asyncio.AbstractEventLoop, following: asyncio.Future[None]
    ) -> None:
        """The follower thread, until `aclose()`; `following` (on `loop`)
        gets its outcome."""
        error: BaseException | None = None
        try:
            self._follow_rows()
        except BaseException as failed:  # handed to the loop, which logs it
            error = failed
        try:
            loop.call_soon_threadsafe(_outcome, following, error)
        except RuntimeError:  # the loop is closed: nobody waits for it
            pass

    def _follow_rows(self) -> None:
        """Wait for a peer's wake-up, a poke or the safety timer, then read
        the rows past the newest read and hand them to the loop. A full
        page is followed by the next at once, unless a page is waiting for
        the feed still (it pokes when it takes it): the rows read ahead stay
        bounded. A failing read (the file locked past the timeout, disk
        trouble) is retried."""
        delay = 0.1
        while not self._stopping:
            with self._rows_lock:
                behind = self._read_to is not None and len(self._ahead) < _PAGE
            more = False
            if behind:
                try:
                    more = self._read_past()
                except Exception as error:
                    log.warning("following the SQLite store failed (%s); retrying", error)
                    self._wait(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                delay = 0.1
            if not more:
                self._wait(self.poll)

    def _wait(self, seconds: float) -> None:
        if self._wake is not None:
            self._wake.wait(seconds)
        else:
            self._poked.wait(seconds)
            self._poked.clear()

    def _read_past(self, db: sqlite3.Connection | None = None) -> bool:
        """On the follower thread (or the writer's, with its `db`): the rows
        past the newest read, one page, kept for the feed, whose loop is
        told (`_woke`). True for a full page: there may be more."""
        with self._rows_lock:
            after = self._read_to
        if after is None:
            return False
        if db is None:
            db = self._fdb
            if db is None:
                raise RuntimeError("SharedSQLiteBackend is closed")
        rows = db.execute(
            f"SELECT {_COLUMNS} FROM events e WHERE e.seq > ? ORDER BY e.seq LIMIT ?",
            (after, _PAGE),
        ).fetchall()
        if not rows:
            return False
        records = self._records(rows)
        with self._rows_lock:
            newest = self._read_to
            if newest is None:  # nobody follows any more
                return False
            # each read is every committed row past its `after`: past what
            # another read kept meanwhile, this one's are the next in order
            fresh = [(row[0], r) for row, r in zip(rows, records, strict=True) if row[0] > newest]
            if fresh:
                self._ahead += fresh
                self._read_to = fresh[-1][0]
        loop = self._loop
        if fresh and loop is not None:
            try:
                loop.call_soon_threadsafe(self._woke)
            except RuntimeError:  # the loop is closed
                pass
        return len(rows) == _PAGE

    def _write(self, records: Sequence[Record]) -> list[DuplicateEventIdError | bool]:
        # Other processes wrote too: the counts per topic are read afresh
        # under this transaction's lock, not taken from this process's cache.
        self._counts.clear()
        outcomes = super()._write(records)
        db = self._conn()
        if self._wake is not None:  # the peers read while this process goes on
            self._wake.send()
        # committed: the newest row now is at or past this batch's rows
        self._appended = max(self._appended, self._newest_seq(db))
        # and the feed gets them with the answer, not a read later (the
        # loop is told before the publishers' answer: the feed passes them first)
        try:
            if self._read_past(db):
                self._poke()  # a full page: the follower reads the rest
        except Exception:  # committed all the same: the follower reads them on its thread
            self._poke()
        return outcomes

    def _history(
        self,
        topics: list[str] | None,
        after: str | None,
        limit: int | None,
        after_position: int | None,
    ) -> History:
        page = super()._history(topics, after, limit, after_position)
        # read after the page: at or past every row it holds (for the feed)
        return dataclasses.replace(page, position=self._newest_seq(self._reading()))

    def _newest(self, topics: list[str] | None, n: int) -> History:
        page = super()._newest(topics, n)
        return dataclasses.replace(page, position=self._newest_seq(self._reading()))

    def _newest_seq(self, db: sqlite3.Connection | None = None) -> int:
        (seq,) = (db or self._reading()).execute("SELECT MAX(seq) FROM events").fetchone()
        return int(seq or 0)


def _outcome(following: asyncio.Future[None], error: BaseException | None) -> None:
    if following.done():
        return
    if error is None:
        following.set_result(None)
    else:
        following.set_exception(error)


def _ended(following: asyncio.Future[None]) -> None:
    """The follower thread stopped: said if it failed (peers' rows then come
    only with this process's own commits)."""
    if not following.cancelled() and following.exception() is not None:
        log.error("the SQLite follower thread stopped", exc_info=following.exception())


class _Signal:
    """A flag "look again", set on the loop: an `asyncio.Event` whose `wait`
    takes a timeout without a task of its own (`wait_for` adds one, and the
    waiter would wake a loop turn after the code that set it)."""

    __slots__ = ("_set", "_waiter")

    def __init__(self) -> None:
        self._set = False
        self._waiter: asyncio.Future[bool] | None = None

    def set(self) -> None:
        self._set = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    def clear(self) -> None:
        self._set = False

    async def wait(self, seconds: float) -> bool:
        """True once set, False if `seconds` passed first."""
        if self._set:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiter = waiter
        timer = loop.call_later(seconds, _expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)
