"""Replays: a subscription's history, read a page at a time, with no gap and
no duplicate at the seam with live events.

Identical resumers share work: a full page read after a position is reused
for a moment (`_FULL_PAGE_REUSE`), a page is filtered and encoded once per
group (`SharedPage`), and replay writes take turns with the loop's other
work (`Turns`), so a storm of resumers cannot hold the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ssehub.backends import Backend, History, Record

from ._config import HubConfig
from ._fanout import FanOut, Group
from ._feed import Feed
from ._stats import Counters
from ._subscription import Subscription
from ._turns import Turns

__all__ = ("ReplayPages", "Replays", "SharedPage")

_SHARED_PAGES = 16  # pages kept for identical replays (each about a page of bytes)
_FULL_PAGE_REUSE = 1.0  # seconds a full page (not the first) is reused by later replays
_REPLAY_TURN_BYTES = 256 * 1024  # replay bytes written per loop iteration, at most


class SharedPage:
    """A page of history as every subscriber of one group gets it: the
    backend's answer (shared by identical reads), filtered once for the
    group, encoded once for all of them (`frame`, made when first needed)."""

    __slots__ = ("frame", "group", "history", "records")

    def __init__(self, history: History, group: Group, records: list[Record]) -> None:
        self.history = history  # held: the key is its identity
        self.group = group
        self.records = records
        self.frame: bytes | None = None


class Replays:
    """A hub's replay side: the pages shared by identical resumers (the
    newest few, by the identity of the backend's answer and the group),
    full pages after the first (by topics and position, for a moment), and
    the turns replay writes take with the loop's other work. `settled`
    waits until every publish started so far is fanned out."""

    __slots__ = (
        "_backend",
        "_config",
        "_counters",
        "_fanout",
        "_feed",
        "_full_pages",
        "_settled",
        "_shared_pages",
        "turns",
    )

    def __init__(
        self,
        backend: Backend,
        config: HubConfig,
        fanout: FanOut,
        counters: Counters,
        feed: Feed | None,
        settled: Callable[[], Awaitable[None]],
    ) -> None:
        self._backend = backend
        self._config = config
        self._fanout = fanout
        self._counters = counters
        self._feed = feed
        self._settled = settled
        self._shared_pages: dict[tuple[int, int], SharedPage] = {}
        self._full_pages: dict[
            tuple[tuple[str, ...] | None, int | None], tuple[History, float]
        ] = {}
        self.turns = Turns(_REPLAY_TURN_BYTES)

    def pages(
        self,
        sub: Subscription,
        group: Group,
        topics: tuple[str, ...] | None,
        first: History | None,
        newest: int = 0,
    ) -> ReplayPages:
        """`sub`'s replay (of `group`): `first` is its first page, read
        already; `topics` None reads every topic, filtered for the group;
        `newest` > 0: the first page is the newest N, the only page."""
        return ReplayPages(self, sub, group, topics, first, newest)

    def _full_page(self, topics: tuple[str, ...] | None, cursor: int | None) -> History | None:
        """A full page read after `cursor` less than `_FULL_PAGE_REUSE` s ago:
        what a new read would give, but for events pruned since (positions
        only grow, so a full page gains nothing)."""
        kept = self._full_pages.get((topics, cursor))
        if kept is None:
            return None
        page, until = kept
        if asyncio.get_running_loop().time() > until:
            del self._full_pages[(topics, cursor)]
            return None
        return page

    def _keep_full_page(
        self, topics: tuple[str, ...] | None, cursor: int | None, page: History
    ) -> None:
        if page.cursor is None:  # a last page grows with every publish: never kept
            return
        until = asyncio.get_running_loop().time() + _FULL_PAGE_REUSE
        self._full_pages[(topics, cursor)] = (page, until)
        if len(self._full_pages) > _SHARED_PAGES:  # the oldest goes
            del self._full_pages[next(iter(self._full_pages))]

    def _shared_page(self, history: History, group: Group, exact: bool) -> SharedPage:
        """`history`'s records for `group` (all of them when its topics were
        read exactly), filtered once for every replay given the same answer."""
        key = (id(history), id(group))
        shared = self._shared_pages.get(key)
        if shared is not None:
            return shared
        records = [
            r
            for r in history.records
            if (exact or group.selectors.matches(r.topics))
            and (not r.private or group.rights.matches(r.topics))
        ]
        shared = self._shared_pages[key] = SharedPage(history, group, records)
        if len(self._shared_pages) > _SHARED_PAGES:  # the oldest goes
            del self._shared_pages[next(iter(self._shared_pages))]
        return shared


class ReplayPages:
    """One subscription's replay, read from the backend a page at a time."""

    __slots__ = ("_cursor", "_first", "_group", "_last", "_newest", "_replays", "_shared",
                 "_sub", "_topics")  # fmt: skip

    def __init__(
        self,
        replays: Replays,
        sub: Subscription,
        group: Group,
        topics: tuple[str, ...] | None,
        first: History | None,
        newest: int = 0,
    ) -> None:
        self._replays = replays
        self._sub = sub
        self._group = group
        self._topics = topics  # None: every topic, filtered here
        self._first = first
        self._newest = newest  # the first page is the newest N: the only page
        self._cursor: int | None = None
        self._last = first is None  # no replay asked
        self._shared: SharedPage | None = None  # the page `next()` gave last

    @property
    def read(self) -> bool:
        return self._last

    async def next(self) -> list[Record] | None:
        if self._last:
            return None
        replays = self._replays
        page = self._first
        if page is None:
            await asyncio.sleep(0)  # a backend that answers at once: let others run
            page = replays._full_page(self._topics, self._cursor)
            if page is None:
                page = await replays._backend.history(
                    self._topics,
                    None,
                    limit=replays._config.replay_page,
                    after_position=self._cursor,
                )
                replays._keep_full_page(self._topics, self._cursor, page)
        self._first = None
        self._cursor = page.cursor
        self._last = page.cursor is None or self._newest > 0
        # A publish stored before this read may not be fanned out yet: wait
        # until it is (the same for records of other processes that the
        # feed has not brought yet). Fanned out is only queued: a pass over
        # a large group writes it a turn at a time, a small group at the
        # end of the loop iteration. So then the fan-out writes this
        # subscriber at once what it still owes it: the live copy of every
        # record of the page is held by the time the page is delivered, and
        # the page's copy cancels it. Nothing waits for a pass.
        await replays._settled()
        if page.position is not None and replays._feed is not None:
            await replays._feed.reached(page.position)
        replays._fanout.catch_up(self._sub, self._group)
        exact = self._topics is not None
        shared = self._shared = replays._shared_page(page, self._group, exact)
        records = shared.records
        if self._newest and not exact and len(records) > self._newest:
            self._shared = None  # its own cut: its own bytes
            # the newest N matching ones, and any that are held as live too:
            # dropping those would lose them, sending them later reorder them
            start = len(records) - self._newest
            holds = self._sub.holds
            start = next((i for i in range(start) if holds(records[i].id)), start)
            records = records[start:]
        replays._counters.replayed += len(records)
        return records

    def encoded(self, page: list[Record]) -> bytes:
        shared = self._shared
        if shared is None or shared.records is not page:
            return self._sub._encode(page)
        if shared.frame is None:
            shared.frame = self._sub._encode(page)  # the group's tags: the same for all
        return shared.frame
