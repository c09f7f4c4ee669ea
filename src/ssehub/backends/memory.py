"""The in-memory backend: the default for embedded hubs.

History lives in this process: it survives a server restart inside the same
process (`BackgroundHub` can be started again on the same backend) but not a
process restart. Use the SQLite backend for that.
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator

from ._base import (
    DuplicateEventIdError,
    History,
    HistoryLimits,
    Record,
    TopicLimits,
    check_newest,
    check_page,
)

__all__ = ("MemoryBackend",)

_SWEEP = 1000  # topics whose aged events are dropped per second, taking turns


class _Slot:
    __slots__ = ("record", "refs", "seq")

    def __init__(self, record: Record, seq: int) -> None:
        self.record = record
        self.seq = seq
        self.refs = len(record.topics)


def _seq(slot: _Slot) -> int:
    return slot.seq


class MemoryBackend:
    """Bounded per-topic history in dicts and deques.

    Resuming is a dict lookup of the id plus a binary search per topic;
    appending and pruning are O(1) per topic. `clock` gives Unix seconds
    (injectable so age limits are testable without sleeping).
    """

    def __init__(
        self,
        limits: HistoryLimits | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._limits = limits or HistoryLimits()
        self._clock = clock
        self._topics: dict[str, deque[_Slot]] = {}
        self._index: dict[str, _Slot] = {}
        # every slot in publish order, for `*` reads: released ones are
        # skipped, and swept out once they are half of it
        self._log: list[_Slot] = []
        self._dead = 0
        self._seq = 0
        self._newest: _Slot | None = None
        self._swept = 0.0

    @property
    def limits(self) -> HistoryLimits:
        return self._limits

    def limit_topics(self, topics: TopicLimits | None) -> None:
        self._limits = dataclasses.replace(self._limits, topics=topics)

    def __len__(self) -> int:
        """Records held (an event on several topics counts once)."""
        return len(self._index)

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def append(self, record: Record) -> bool:
        return self.append_nowait(record)

    def append_nowait(self, record: Record) -> bool:
        """`append` without a coroutine (this store never waits): what the
        hub calls when the class's `append` is this one."""
        event_id = record.event.id  # (`record.id`, without the property's call)
        assert event_id is not None
        index = self._index
        held = index.get(event_id)
        if held is not None:
            if held.record.digest() == record.digest():
                return False  # the same event again: an idempotent retry
            raise DuplicateEventIdError(event_id)
        self._seq += 1
        slot = _Slot(record, self._seq)
        index[event_id] = slot
        self._log.append(slot)
        self._newest = slot
        limits = self._limits
        # no per-topic bounds (the usual hub): the same bounds for every topic
        of = None if limits.topics is None else limits.of
        max_events, max_age = limits.max_events, limits.max_age
        now = self._clock()
        if now - self._swept >= 1.0 or now < self._swept:
            self._sweep_turn(now)
        topics = self._topics
        for topic in record.topics:
            if of is not None:
                max_events, max_age = of(topic)
            slots = topics.get(topic)
            if slots is None:
                slots = topics[topic] = deque()
            elif slots and slots[0].record.time < now - max_age:  # (`_prune`'s test first)
                self._prune(slots, now - max_age)
            slots.append(slot)
            while len(slots) > max_events:
                self._release(slots.popleft())
        return True

    async def history(
        self,
        topics: Collection[str] | None,
        after: str | None,
        *,
        limit: int | None = None,
        after_position: int | None = None,
    ) -> History:
        check_page(after, limit, after_position)
        now = self._sweep()
        limits = self._limits
        start, found = 0, True
        if after_position is not None:
            start = after_position
        elif after is not None:
            slot = self._index.get(after)
            if slot is None:
                found = False
            else:
                start = slot.seq
        if topics is None:
            log = self._log
            first = bisect.bisect_right(log, start, key=_seq)
            merged: Iterable[_Slot] = (
                slot
                for i in range(first, len(log))
                if (slot := log[i]).refs and self._alive(slot.record, now)
            )
        else:
            queues = []
            for topic in topics:
                slots = self._topics.get(topic)
                if slots is not None and self._prune(slots, now - limits.of(topic)[1]):
                    queues.append(slots)
            merged = heapq.merge(*(self._after(q, start) for q in queues), key=_seq)
        records: list[Record] = []
        last = -1
        cursor = None
        for slot in merged:
            if slot.seq != last:  # an event on several of the topics, once
                if limit is not None and len(records) == limit:
                    cursor = last
                    break
                records.append(slot.record)
                last = slot.seq
        return History(records, found, cursor=cursor)

    async def newest(self, topics: Collection[str] | None, n: int) -> History:
        check_newest(n)
        now = self._sweep()
        cutoff = now - self._limits.longest_age
        slots: list[_Slot] = []
        if topics is None:
            log = self._log
            for i in range(len(log) - 1, -1, -1):  # released slots are at most half
                slot = log[i]
                if slot.record.time < cutoff or len(slots) == n:
                    break
                if slot.refs and self._alive(slot.record, now):
                    slots.append(slot)
            slots.reverse()
        else:
            taken: dict[int, _Slot] = {}
            for topic in dict.fromkeys(topics):
                queue = self._topics.get(topic)
                if queue is None or not self._prune(queue, now - self._limits.of(topic)[1]):
                    continue
                for i in range(max(0, len(queue) - n), len(queue)):
                    taken[queue[i].seq] = queue[i]
            slots = sorted(taken.values(), key=_seq)
        return History([slot.record for slot in slots], True)

    async def last_id(self) -> str | None:
        newest = self._newest
        cutoff = self._sweep() - self._limits.longest_age
        if newest is None or newest.refs == 0 or newest.record.time < cutoff:
            return None
        return newest.record.id

    def _alive(self, record: Record, now: float) -> bool:
        """Young enough for one of its topics."""
        return record.time >= now - self._limits.age_of(record.topics)

    @staticmethod
    def _after(slots: deque[_Slot], seq: int) -> Iterator[_Slot]:
        first = bisect.bisect_right(slots, seq, key=_seq)
        for i in range(first, len(slots)):
            yield slots[i]

    def _release(self, slot: _Slot) -> None:
        slot.refs -= 1
        if slot.refs == 0:
            del self._index[slot.record.id]
            self._dead += 1
            if self._dead > 1024 and self._dead * 2 > len(self._log):
                self._log = [s for s in self._log if s.refs]
                self._dead = 0

    def _prune(self, slots: deque[_Slot], cutoff: float) -> bool:
        """Drop events older than `cutoff`; True if any are left."""
        while slots and slots[0].record.time < cutoff:
            self._release(slots.popleft())
        return bool(slots)

    def _sweep(self) -> float:
        """The time now; at most once a second, also drop aged events of
        up to `_SWEEP` topics, taking turns (each swept topic that keeps
        events goes to the back), so quiet topics free their memory too and
        no publish pays for every topic at once. (Reads apply the ages.)"""
        now = self._clock()
        if now - self._swept >= 1.0 or now < self._swept:
            self._sweep_turn(now)
        return now

    def _sweep_turn(self, now: float) -> None:
        """One turn of `_sweep`'s (due at `now`)."""
        self._swept = now
        of = self._limits.of
        topics = self._topics
        turn = list(itertools.islice(topics.items(), _SWEEP))
        for topic, slots in turn:
            del topics[topic]
            if self._prune(slots, now - of(topic)[1]):
                topics[topic] = slots  # kept: to the back of the turns
