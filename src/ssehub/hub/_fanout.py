"""Fan-out: which subscriber groups an event goes to, and delivering it.

For each published event: append the record to the pending list of every
group whose selectors match (a group is all subscribers with the same
selectors and private rights); once per loop iteration, join each group's
pending bytes once and hand that one bytes object to every subscriber of the
group. No task wakes and nothing is allocated per subscriber per event.
Selectors are compiled once, when a group is made.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

from ssehub.backends import Record

from ._selectors import Matcher, PatternIndex, SelectorSet
from ._stats import Counters
from ._subscription import CloseReason, Subscription
from ._tags import Tags

__all__ = ("FanOut", "Group")

GroupKey = tuple[frozenset[str | Matcher], frozenset[str | Matcher], bool]
log = logging.getLogger("ssehub.hub")


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
        self.subscribers: dict[Subscription, None] = {}
        self.pending: list[Record] = []


class FanOut:
    """The groups, indexed by exact topic and by pattern, and the pending
    records of each, flushed once per loop iteration."""

    __slots__ = (
        "_by_topic",
        "_counters",
        "_dirty",
        "_doomed",
        "_flush_handle",
        "_groups",
        "_loop",
        "_now",
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
            self._flush_handle = self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Deliver what is pending: one bytes object per group, written to
        each of its subscribers."""
        handle, self._flush_handle = self._flush_handle, None
        if handle is not None:
            handle.cancel()
        dirty, self._dirty = self._dirty, []
        delivered = nbytes = 0
        for group in dirty:
            records, group.pending = group.pending, []
            tags = group.tags
            if tags is not None:
                data = tags.encode(records, once=True)
            elif len(records) == 1:
                data = records[0].frame
            else:
                data = b"".join([r.frame for r in records])
            subscribers = group.subscribers
            for sub in subscribers:
                sub._deliver(data, records)
            delivered += len(records) * len(subscribers)
            nbytes += len(data) * len(subscribers)
        counters = self._counters
        counters.delivered += delivered
        counters.delivered_bytes += nbytes
        if self._doomed:
            self.reap()

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
