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
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import sqlite3
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
        self._woken = asyncio.Event()
        self._wake = Wake(os.path.abspath(self.path) + ".wake", self._woken.set) if wake else None
        self._appended = 0  # written on the database thread, after a commit
        self._follower: ThreadPoolExecutor | None = None
        self._fdb: sqlite3.Connection | None = None

    # -- the shared-backend protocol --------------------------------------------

    @property
    def appended_position(self) -> int:
        return self._appended

    async def newest_position(self) -> int:
        return await self._read(self._newest_seq)

    async def follow(self, after: int) -> AsyncIterator[tuple[int, Record]]:
        """Every row past `after`, in `seq` order, whoever appended it: read
        when woken (coalesced: many commits, one read) or every `poll`
        seconds. A failing read is retried; nothing stored is skipped."""
        last = after
        delay = 0.1
        while True:
            self._woken.clear()  # a wake-up during the read: read again after it
            try:
                rows = await self._follow_read(last)
            except Exception as error:  # locked past the timeout, disk trouble: retry
                log.warning("following the SQLite store failed (%s); retrying", error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            for seq, record in rows:
                last = seq
                yield seq, record
            if len(rows) < _PAGE:
                try:
                    await asyncio.wait_for(self._woken.wait(), self.poll)
                except TimeoutError:
                    pass

    # -- life cycle --------------------------------------------------------------

    async def start(self) -> None:
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

    async def aclose(self) -> None:
        if self._wake is not None:
            self._wake.close()
        if self._follower is not None:
            fdb, self._fdb = self._fdb, None
            if fdb is not None:
                await self._on_follower(fdb.close)
            self._follower.shutdown(wait=True)
            self._follower = None
        await super().aclose()

    async def append(self, record: Record) -> bool:
        try:
            return await super().append(record)
        finally:  # stored or not (a failure may have stored it): look again
            self._woken.set()
            if self._wake is not None:
                self._wake.notify()

    # -- on the loop -------------------------------------------------------------

    async def _on_follower(self, work: Callable[[], _T]) -> _T:
        if self._follower is None:
            raise RuntimeError("SharedSQLiteBackend is not started")
        return await asyncio.get_running_loop().run_in_executor(self._follower, work)

    async def _follow_read(self, after: int) -> list[tuple[int, Record]]:
        return await self._on_follower(lambda: self._since(after))

    # -- on the database threads -----------------------------------------------

    def _since(self, after: int) -> list[tuple[int, Record]]:
        """On the follower thread: the rows past `after`, one page."""
        if self._fdb is None:
            raise RuntimeError("SharedSQLiteBackend is closed")
        rows = self._fdb.execute(
            f"SELECT {_COLUMNS} FROM events e WHERE e.seq > ? ORDER BY e.seq LIMIT ?",
            (after, _PAGE),
        ).fetchall()
        return [(row[0], record) for row, record in zip(rows, self._records(rows), strict=True)]

    def _write(self, records: Sequence[Record]) -> list[DuplicateEventIdError | bool]:
        # Other processes wrote too: the counts per topic are read afresh
        # under this transaction's lock, not taken from this process's cache.
        self._counts.clear()
        outcomes = super()._write(records)
        # committed: the newest row now is at or past this batch's rows
        self._appended = max(self._appended, self._newest_seq(self._conn()))
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
