"""Fan-out: which subscriber groups an event goes to, and delivering it.

For each published event: append the record to the pending list of every
group whose selectors match (a group is all subscribers with the same
selectors and private rights); once per loop iteration, join each group's
pending bytes once and hand that one bytes object to every subscriber of the
group. No task wakes and nothing is allocated per subscriber per event.
Selectors are compiled once, when a group is made.

A group larger than `SLICE` is written a turn at a time (`_Pass`): the
loop reads and answers publishes between turns, and what they publish
joins the pass under way, so an event waits at most one pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from itertools import islice

from ssehub.backends import Record

from ._selectors import Matcher, PatternIndex, SelectorSet
from ._stats import Counters
from ._subscription import CloseReason, Subscription
from ._tags import Tags

__all__ = ("FanOut", "Group")

GroupKey = tuple[frozenset[str | Matcher], frozenset[str | Matcher], bool]
log = logging.getLogger("ssehub.hub")

SLICE = 512
"""Subscribers written per turn of the loop (a few milliseconds here): a
pass over a larger group takes several turns, and the publishes read
between them join the pass under way."""


class Group:
    """Subscribers with the same selectors, private rights and tagging: they
    get the same bytes. `selectors`, `rights` and `tags` are compiled once,
    here."""

    __slots__ = ("key", "pending", "rights", "selectors", "subscribers", "tags", "topics")

    def __init__(self, key: GroupKey, topics: tuple[str, ...]) -> None:
        self.key = key
        self.topics = topics  # its first subscriber's, shared with those that name the same
        self.selectors = SelectorSet(key[0])
        # a token's claim: a malformed selector there matches nothing
        self.rights = SelectorSet(key[1], strict=False)
        self.tags = Tags(key[0]) if key[2] else None  # a tagged stream's lines
        # each subscriber's first batch not yet written to it (`_Pass`)
        self.subscribers: dict[Subscription, int | None] = {}
        self.pending: list[Record] = []


class _Pass:
    """A pass over one group's subscribers under way, a turn at a time.

    The records come in numbered batches. Each subscriber's value in
    `group.subscribers` is the number of the first batch it has not been
    written (None: attached since the last batch was taken, it needs only
    later ones; those are always the dict's last entries). A subscriber the
    pass reaches gets, in one write, every batch from its number on, and
    its number moves past the last: a batch taken mid-pass goes to the rest
    of this pass with what it carries, and to those already passed in the
    next pass. One attached mid-pass joins the end of this pass when the
    first batch after it is taken. So each gets every batch once, in order,
    and waits at most one pass. `catch_up` writes one subscriber what it is
    owed at once (a replay's seam).
    """

    __slots__ = ("batches", "cache", "group", "order", "pos")

    def __init__(self, group: Group) -> None:
        self.group = group
        self.order = _numbered(group.subscribers)  # the rest join at `take`
        self.pos = 0
        self.batches: list[tuple[int, list[Record]]] = []
        # (bytes, records) by first batch: the same bytes for all who start there
        self.cache: dict[int, tuple[bytes, list[Record]]] = {}

    def take(self, number: int, records: list[Record]) -> None:
        """Batch `number`, for everyone attached now."""
        subs = self.group.subscribers
        fresh = 0
        for sub in reversed(subs):  # attached since the last batch: at the end
            if subs[sub] is not None:
                break
            subs[sub] = number
            fresh += 1
        if fresh:  # not in the order yet: they join the end of this pass
            tail = list(islice(reversed(subs), fresh))
            tail.reverse()
            self.order += tail
        self.batches.append((number, records))
        self.cache.clear()

    def write(self, fanout: FanOut, budget: int | None) -> tuple[int, int, int]:
        """Write to the next `budget` subscribers of the pass (None: all):
        (subscribers visited, events delivered, bytes delivered)."""
        subs = self.group.subscribers
        last = self.batches[-1][0]
        after = last + 1
        order, pos, cache = self.order, self.pos, self.cache
        stop = len(order) if budget is None else min(len(order), pos + budget)
        events = nbytes = 0
        # no Python call but the write per subscriber: the bytes change only
        # where the first batch does (counted per run of equal ones)
        records: list[Record] = []
        start, data, run = 0, b"", 0
        for sub in order[pos:stop]:
            try:
                first = subs[sub]
            except KeyError:  # gone
                continue
            if first is None or first > last:  # has it all
                continue
            if first != start:
                events += run * len(records)
                nbytes += run * len(data)
                got = cache.get(first)
                if got is None:
                    got = cache[first] = self._since(fanout, first)
                start, (data, records), run = first, got, 0
            subs[sub] = after  # before the write: a close inside it removes the entry
            sub._deliver(data, records)
            run += 1
        events += run * len(records)
        nbytes += run * len(data)
        self.pos = stop
        return stop - pos, events, nbytes

    def write_one(self, fanout: FanOut, sub: Subscription) -> None:
        """Write `sub` now every batch it has not been written: when the
        pass reaches it, it has them all."""
        subs = self.group.subscribers
        first = subs.get(sub)
        last = self.batches[-1][0]
        if first is None or first > last:  # gone, or has it all
            return
        got = self.cache.get(first)
        if got is None:
            got = self.cache[first] = self._since(fanout, first)
        data, records = got
        subs[sub] = last + 1  # before the write: a close inside it removes the entry
        sub._deliver(data, records)
        counters = fanout._counters
        counters.delivered += len(records)
        counters.delivered_bytes += len(data)

    def _since(self, fanout: FanOut, first: int) -> tuple[bytes, list[Record]]:
        records = [r for number, batch in self.batches if number >= first for r in batch]
        return fanout._join(self.group, records), records

    def at_end(self) -> bool:
        return self.pos >= len(self.order)

    def restart(self) -> bool:
        """Forget the batches everyone has; start the next pass if someone
        still needs one (taken after the pass had passed it)."""
        subs = self.group.subscribers
        # the lowest first batch anyone still needs (batches count from 1:
        # `filter(None, ...)` drops only the None of those attached since)
        low = min(filter(None, subs.values()), default=None)
        if low is None:
            return False
        batches = self.batches = [b for b in self.batches if b[0] >= low]
        if not batches:
            return False
        self.order = _numbered(subs)
        self.pos = 0
        self.cache.clear()
        return True


def _numbered(subs: dict[Subscription, int | None]) -> list[Subscription]:
    """The subscribers that have a batch number: all but those attached
    since the last batch was taken (the last entries), which `take` adds."""
    order = list(subs)
    if order and subs[order[0]] is None:  # none has one yet (the group's first pass)
        return []
    end = len(order)
    while end and subs[order[end - 1]] is None:
        end -= 1
    del order[end:]
    return order


class FanOut:
    """The groups, indexed by exact topic and by pattern, the pending
    records of each and the passes under way, a turn per loop iteration."""

    __slots__ = (
        "_batch",
        "_by_topic",
        "_counters",
        "_dirty",
        "_doomed",
        "_flush_handle",
        "_groups",
        "_loop",
        "_now",
        "_passes",
        "_patterns",
        "named",
        "tracker",
        "watchers",
    )

    def __init__(self, counters: Counters, now: Callable[[], float]) -> None:
        self._counters = counters
        self._now = now
        self._loop: asyncio.AbstractEventLoop | None = None
        self._groups: dict[GroupKey, Group] = {}
        self._by_topic: dict[str, list[Group]] = {}
        self._patterns: PatternIndex[Group] = PatternIndex()  # `*` and URI templates
        self._dirty: list[Group] = []
        self._flush_handle: asyncio.Handle | None = None
        # the groups whose pass is under way (a turn at a time), oldest first,
        # and the number of the next batch of records taken into a pass
        self._passes: dict[Group, _Pass] = {}
        self._batch = 1
        self._doomed: list[tuple[Subscription, CloseReason]] = []
        # subscriptions that name each topic exactly, and who wants to know
        # when one gains its first or loses its last
        self.named: dict[str, int] = {}
        self.watchers: list[Callable[[str, bool], object]] = []
        # With presence shared by several hubs: told of every attach and
        # detach (selectors, +1/-1, the topics named exactly), and then the
        # first/last of a topic is the store's to tell (`tell`), not ours.
        self.tracker: Callable[[frozenset[str | Matcher], int, list[str]], None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def __len__(self) -> int:
        return len(self._groups)

    def groups(self) -> Iterator[Group]:
        return iter(self._groups.values())

    def subscriptions(self) -> list[Subscription]:
        return [sub for group in self._groups.values() for sub in group.subscribers]

    # -- membership ------------------------------------------------------------

    def attach(self, sub: Subscription) -> Group:
        key = sub.group_key
        try:
            group = self._groups[key]
        except KeyError:
            group = self._groups[key] = Group(key, sub.topics)
            if group.selectors.has_patterns:
                self._patterns.add(group, group.selectors)
            else:  # (exact topics: the strings and the exact matchers)
                for topic in group.selectors.exact:
                    self._by_topic.setdefault(topic, []).append(group)
        else:  # share the group's equal objects: its own are dropped (idle bytes)
            sub.group_key = group.key
            if sub.topics == group.topics:
                sub.topics = group.topics
            if group.pending:  # queued before it came: for the others only
                self._settle(group)
        group.subscribers[sub] = None
        named = self.named
        exact = group.selectors.exact
        tracker = self.tracker
        for topic in sub.topics:  # in the subscription's order: callbacks are too
            if topic in exact:
                if topic in named:
                    named[topic] += 1
                else:
                    named[topic] = 1
                    if tracker is None:
                        self.tell(topic, True)
        if tracker is not None:
            tracker(sub.key, 1, [topic for topic in sub.topics if topic in exact])
        return group

    def tags_of(self, sub: Subscription) -> Tags | None:
        """The `matched:` lines of `sub`'s group (None: it is not tagged)."""
        if not sub.tagged:
            return None
        group = self._groups.get(sub.group_key)
        return Tags(sub.group_key[0]) if group is None or group.tags is None else group.tags

    def detach(self, sub: Subscription) -> None:
        group = self._groups.get(sub.group_key)
        if group is None or sub not in group.subscribers:
            return
        del group.subscribers[sub]
        named = self.named
        exact = group.selectors.exact
        names = [topic for topic in sub.topics if topic in exact]
        for topic in names:
            count = named[topic] - 1
            if count:
                named[topic] = count
            else:
                del named[topic]
                if self.tracker is None:
                    self.tell(topic, False)
        if self.tracker is not None:
            self.tracker(sub.key, -1, names)
        if group.subscribers:
            return
        del self._groups[sub.group_key]
        if group.selectors.has_patterns:
            self._patterns.discard(group)
        else:
            for topic in group.selectors.exact:
                groups = self._by_topic[topic]
                groups.remove(group)
                if not groups:
                    del self._by_topic[topic]

    def count(self, topic: str) -> int:
        """Subscriptions whose selectors match `topic`."""
        total = sum(len(group.subscribers) for group in self._by_topic.get(topic, ()))
        if self._patterns:
            total += sum(len(group.subscribers) for group in self._patterns.matching((topic,)))
        return total

    def tell(self, topic: str, watching: bool) -> None:
        """Call the watchers soon (never inside the fan-out)."""
        if self.watchers:
            assert self._loop is not None
            self._loop.call_soon(self._tell, topic, watching)

    def _tell(self, topic: str, watching: bool) -> None:
        for callback in tuple(self.watchers):
            try:
                callback(topic, watching)
            except Exception:  # the app's bug must not stop the hub
                log.exception("watch callback %r failed for %r", callback, topic)

    # -- the hot path -------------------------------------------------------------

    def fanout(self, record: Record) -> None:
        topics = record.topics
        if len(topics) == 1:
            for group in self._by_topic.get(topics[0], ()):
                self._queue(group, record)
        else:
            seen: set[Group] = set()
            for topic in topics:
                for group in self._by_topic.get(topic, ()):
                    if group not in seen:
                        seen.add(group)
                        self._queue(group, record)
        if self._patterns:
            for group in self._patterns.matching(topics):
                self._queue(group, record)

    def _queue(self, group: Group, record: Record) -> None:
        if record.private and not group.rights.matches(record.topics):
            return
        if not group.pending:
            self._dirty.append(group)
        group.pending.append(record)
        if self._flush_handle is None:
            assert self._loop is not None
            self._flush_handle = self._loop.call_soon(self._step)

    def flush(self) -> None:
        """Deliver everything pending now, to the end of every pass (the
        hub's drain: no turn is given to the loop)."""
        handle, self._flush_handle = self._flush_handle, None
        if handle is not None:
            handle.cancel()
        while self._dirty or self._passes:
            self._slice(None)
        if self._doomed:
            self.reap()

    def _step(self) -> None:
        """One turn of fan-out (what `_queue` schedules): at most `SLICE`
        subscribers, then the loop's other work (publishes read meanwhile
        join the passes under way) and the next turn."""
        self._flush_handle = None
        self._slice(SLICE)
        if self._passes or self._dirty:
            assert self._loop is not None
            self._flush_handle = self._loop.call_soon(self._step)
        if self._doomed:
            self.reap()

    def _slice(self, budget: int | None) -> None:
        """Take what is pending into batches, then write to up to `budget`
        subscribers (None: all)."""
        dirty, self._dirty = self._dirty, []
        passes = self._passes
        delivered = nbytes = 0
        for group in dirty:
            records, group.pending = group.pending, []
            if not records:  # taken already (`catch_up`)
                continue
            if group not in passes and (budget is None or len(group.subscribers) <= SLICE):
                # small enough for this turn: written now, no pass kept
                written = self._write_all(group, records)
                if budget is not None:
                    budget -= written
                continue
            self._take(group, records)
        while passes and (budget is None or budget > 0):
            group, run = next(iter(passes.items()))
            visited, count, size = run.write(self, budget)
            delivered += count
            nbytes += size
            if budget is not None:
                budget -= visited
            if run.at_end():
                del passes[group]
                if run.restart():  # some still need what came during the pass
                    passes[group] = run
        counters = self._counters
        counters.delivered += delivered
        counters.delivered_bytes += nbytes

    def catch_up(self, sub: Subscription, group: Group) -> None:
        """Deliver to `sub` now everything queued so far that its group
        (`group`) still owes it: what is pending (to the whole group when
        it is small enough for one turn; taken into its pass otherwise) and
        the batches of a pass under way it has not been written. A replay
        calls it at each page, so the live copy of every record the page
        holds is held by then, and cancelled by the page's."""
        subs = group.subscribers
        if sub not in subs:
            return
        run = self._passes.get(group)
        records = group.pending
        if records:  # (the group stays in `_dirty`: `_slice` skips it)
            group.pending = []
            if run is None and len(subs) <= SLICE:  # the direct path, early
                self._write_all(group, records)
                return
            run = self._take(group, records)
        if run is not None:
            run.write_one(self, sub)

    def _settle(self, group: Group) -> None:
        """Take what is pending for `group` into its pass now, as a batch
        for the subscribers it has, before one attaches (who then needs only
        later batches). A record queued before it subscribed was stored
        before, so its replay has it if it asked for it; a live copy too
        would repeat the one it resumed from, or an older one. Nothing is
        written here: the pass writes at the next turn, each subscriber
        every batch it is owed in one write, so subscribers joining between
        publishes cost no write each (the group stays in `_dirty`)."""
        records, group.pending = group.pending, []
        self._take(group, records)

    def _write_all(self, group: Group, records: list[Record]) -> int:
        """The direct path: `records` written to every subscriber of `group`
        now, no pass kept, and counted. Returns how many subscribers."""
        data = self._join(group, records)
        subscribers = group.subscribers
        for sub in subscribers:
            sub._deliver(data, records)
        count = len(subscribers)
        counters = self._counters
        counters.delivered += len(records) * count
        counters.delivered_bytes += len(data) * count
        return count

    def _take(self, group: Group, records: list[Record]) -> _Pass:
        """`records` taken into `group`'s pass (begun if none is under way)
        as its next batch."""
        passes = self._passes
        run = passes.get(group)
        if run is None:
            run = passes[group] = _Pass(group)
        run.take(self._batch, records)
        self._batch += 1
        return run

    @staticmethod
    def _join(group: Group, records: list[Record]) -> bytes:
        """`records` encoded for `group`: one bytes object for all of them."""
        tags = group.tags
        if tags is not None:
            return tags.encode(records, once=True)
        if len(records) == 1:
            return records[0].frame
        return b"".join([r.frame for r in records])

    # -- dropping subscribers ------------------------------------------------------

    def doom(self, sub: Subscription, reason: CloseReason) -> None:
        """Close `sub` once the current fan-out pass is over (closing it now
        would change the dict being iterated)."""
        if not self._doomed:
            assert self._loop is not None
            self._loop.call_soon(self.reap)
        self._doomed.append((sub, reason))

    def reap(self) -> None:
        doomed, self._doomed = self._doomed, []
        for sub, reason in doomed:
            if not sub.closed:
                self._counters.count_drop(self._now(), reason, sub.topics)
                sub.close(reason)
