"""Presence across hubs: this hub's subscriptions written to a shared store
(a `PresenceBackend`, e.g. Redis), the other hubs' read back, so that
`subscribers(topic)`, `on_watch` and the subscriptions API see every hub.

This hub's entry holds absolute counts, written as they change — whatever
changed while the previous write was under way goes in the next one, so a
burst of subscriptions costs a few round trips, not one each — and
refreshed every `interval`; it lives `3 * interval`, so a hub killed outright
vanishes within that (the next write of any hub removes it). `on_watch` is
told by the store's answer: a topic gained its first subscriber on all the
live hubs together, or lost its last (also when a dead hub is removed), so
each change is told once, by the hub whose write made it. The other hubs'
subscription groups are read at most once a `POLL` and only when the store's
version moved; `subscribers(topic)` adds them to this hub's own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import uuid
from collections.abc import Callable

from ssehub.backends import PresenceBackend, PresenceSync

from ._clock import Clock
from ._selectors import Matcher, SelectorSet
from ._stats import PresenceStatistics
from ._tasks import cancel_and_wait

__all__ = ("POLL", "Presence", "decode_selectors", "encode_selectors")

POLL = 1.0
"""Seconds between checks of the other hubs' presence (one cheap read when
nothing changed)."""
TTL_INTERVALS = 3
"""A hub's entry lives this many refresh intervals."""
BATCH = 1000
"""Fields of each kind one write carries at most (a Lua script holds Redis
while it runs: 20-50 ms for 1,000 topics and groups here)."""

log = logging.getLogger("ssehub.hub")


def encode_selectors(selectors: frozenset[str | Matcher]) -> str:
    """A subscription's selector set as one canonical string."""
    items = sorted(
        json.dumps(s if isinstance(s, str) else [s.kind, s.value, s.base]) for s in selectors
    )
    return "[" + ",".join(items) + "]"


def decode_selectors(encoded: str) -> SelectorSet | None:
    """`encode_selectors` undone and compiled; None if it is malformed."""
    try:
        items = json.loads(encoded)
        selectors: list[str | Matcher] = []
        for item in items:
            if isinstance(item, str):
                selectors.append(item)
                continue
            kind, value, base = item
            if kind == "urlpattern":
                selectors.append(Matcher.urlpattern(value, base=base))
            elif kind == "template":
                selectors.append(Matcher.template(value))
            else:
                selectors.append(Matcher.exact(value))
        return SelectorSet(selectors, strict=False)
    except (ValueError, TypeError):
        return None


class Presence:
    """This hub's entry in a `PresenceBackend`, and its view of the others.
    `track` is called by the fan-out on every attach and detach."""

    def __init__(
        self,
        backend: PresenceBackend,
        named: dict[str, int],
        tell: Callable[[str, bool], None],
        clock: Clock,
        interval: float,
    ) -> None:
        self._backend = backend
        self._named = named  # the fan-out's: topic -> local subscriptions naming it
        self._tell = tell
        self._clock = clock
        self.interval = interval
        self.ttl = interval * TTL_INTERVALS
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._groups: dict[str, int] = {}
        self._docs: dict[str, str] = {}
        self._dirty_groups: set[str] = set()
        self._dirty_named: set[str] = set()
        self._dirty_docs: set[str] = set()
        self._full = True
        self._version = -1
        self._remote_exact: dict[str, int] = {}
        self._remote_patterns: list[tuple[SelectorSet, int]] = []
        self._compiled: dict[str, SelectorSet | None] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failing = False
        self._closing = False
        # what `statistics()` tells: bumped once per write or read, never per event
        self._writes = 0
        self._write_failures = 0
        self._lost = 0
        self._written: float | None = None  # the clock's time of the last answered write
        self._peers = 0
        self._peer_subscriptions = 0

    # -- what the hub tells it ------------------------------------------------

    def track(self, selectors: frozenset[str | Matcher], delta: int, named: list[str]) -> None:
        key = encode_selectors(selectors)
        count = self._groups.get(key, 0) + delta
        if count > 0:
            self._groups[key] = count
        else:
            self._groups.pop(key, None)
        self._dirty_groups.add(key)
        self._dirty_named.update(named)
        self._wake.set()

    def share(self, key: str, document: str) -> None:
        self._docs[key] = document
        self._dirty_docs.add(key)
        self._wake.set()

    def unshare(self, key: str) -> None:
        if self._docs.pop(key, None) is not None:
            self._dirty_docs.add(key)
            self._wake.set()

    # -- what it tells the hub --------------------------------------------------

    def count(self, topic: str) -> int:
        """The other hubs' subscriptions that get `topic`, as last read."""
        total = self._remote_exact.get(topic, 0)
        for selectors, n in self._remote_patterns:
            if selectors.matches((topic,)):
                total += n
        return total

    def statistics(self) -> PresenceStatistics:
        written = self._written
        return PresenceStatistics(
            writes=self._writes,
            write_failures=self._write_failures,
            lost=self._lost,
            peers=self._peers,
            peer_subscriptions=self._peer_subscriptions,
            refresh_age=None if written is None else max(0.0, self._clock.time() - written),
        )

    async def documents(self) -> list[str]:
        """The other live hubs' documents, read now."""
        return await self._backend.presence_documents(self.id)

    # -- life cycle ---------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._sync()
            await self._view()
        except Exception as error:  # the worker retries; the hub serves meanwhile
            log.warning("presence: the store did not answer (%s); retrying", error)
            self.failing = True
        self._task = asyncio.get_running_loop().create_task(self._run(), name="ssehub-presence")

    async def aclose(self) -> None:
        """Stop refreshing and remove this hub's entry at once."""
        task, self._task = self._task, None
        if task is None:
            return
        # let a write under way finish (what it tells would be lost if cut),
        # for at most an interval; then cut
        self._closing = True
        self._wake.set()
        done, _ = await asyncio.wait((task,), timeout=self.interval)
        if not done:
            await cancel_and_wait(task)
        try:
            unwatched = await self._backend.presence_leave(self.id)
        except Exception as error:  # the store is away: the entry expires by itself
            log.warning("presence: could not remove this hub's entry (%s); it expires", error)
            return
        for topic in unwatched:
            self._tell(topic, False)

    async def _run(self) -> None:
        next_refresh = self._clock.time() + self.interval
        next_view = self._clock.time() + POLL
        while True:
            await self._nap(min(POLL, self.interval))
            if self._closing:
                return
            now = self._clock.time()
            try:
                dirty = self._dirty_groups or self._dirty_named or self._dirty_docs
                if dirty or self._full or now >= next_refresh:
                    if now >= next_refresh:
                        next_refresh = now + self.interval
                    await self._sync()
                if now >= next_view:
                    next_view = now + POLL
                    await self._view()
            except Exception as error:  # the store is away: keep the state, retry
                if not self.failing:
                    log.warning("presence: the store did not answer (%s); retrying", error)
                self.failing = True
                await self._clock.sleep(min(POLL, self.interval))
                continue
            if self.failing:
                log.warning("presence: the store answers again")
                self.failing = False

    async def _nap(self, seconds: float) -> None:
        if not self._wake.is_set():
            timer = self._clock.call_later(seconds, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()
        self._wake.clear()

    async def _sync(self) -> None:
        full = self._full
        if full:
            groups = dict(self._groups)
            named = dict(self._named)
            docs: dict[str, str | None] = dict(self._docs)
            taken = (set(self._dirty_groups), set(self._dirty_named), set(self._dirty_docs))
            self._dirty_groups.clear()
            self._dirty_named.clear()
            self._dirty_docs.clear()
        else:  # at most BATCH fields of each kind a write: the script holds Redis
            taken = (_take(self._dirty_groups), _take(self._dirty_named), _take(self._dirty_docs))
            groups = {g: self._groups.get(g, 0) for g in taken[0]}
            named = {t: self._named.get(t, 0) for t in taken[1]}
            docs = {k: self._docs.get(k) for k in taken[2]}
        try:
            reply: PresenceSync = await self._backend.presence_sync(
                self.id, self.ttl, groups=groups, named=named, documents=docs, full=full
            )
        except BaseException as error:
            if isinstance(error, Exception):
                self._write_failures += 1
            self._dirty_groups |= taken[0]  # absolute counts: writing them again is safe
            self._dirty_named |= taken[1]
            self._dirty_docs |= taken[2]
            raise
        self._writes += 1
        self._written = self._clock.time()
        self._lost += reply.lost
        self._full = reply.lost
        for topic in reply.unwatched:
            self._tell(topic, False)
        for topic in reply.watched:
            self._tell(topic, True)
        if reply.lost:  # the others took this hub for dead: join again, whole
            log.warning("presence: this hub's entry had expired; writing it again")
            self._wake.set()
        elif self._dirty_groups or self._dirty_named or self._dirty_docs:
            self._wake.set()  # the rest of a big batch: at once

    async def _view(self) -> None:
        view = await self._backend.presence_view(self.id, self._version)
        if view is None:
            return
        self._version = view.version
        exact: dict[str, int] = {}
        patterns: list[tuple[SelectorSet, int]] = []
        compiled: dict[str, SelectorSet | None] = {}
        for encoded, count in view.groups.items():
            selectors = self._compiled.get(encoded) or decode_selectors(encoded)
            compiled[encoded] = selectors
            if selectors is None or count <= 0:
                continue
            if selectors.has_patterns:
                patterns.append((selectors, count))
            else:
                for topic in selectors.exact:
                    exact[topic] = exact.get(topic, 0) + count
        self._compiled = compiled  # only the groups that exist now: bounded
        self._remote_exact = exact
        self._remote_patterns = patterns
        self._peers = view.hubs
        self._peer_subscriptions = sum(n for n in view.groups.values() if n > 0)


def _take(dirty: set[str]) -> set[str]:
    """Up to `BATCH` items, removed from `dirty`."""
    if len(dirty) <= BATCH:
        taken = set(dirty)
        dirty.clear()
        return taken
    return {dirty.pop() for _ in range(BATCH)}
