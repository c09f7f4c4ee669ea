"""The hub: topics, fan-out, replay, heartbeats, bounded buffers, shutdown.

The hot path, for each published event: encode once; append the record to
the pending list of every subscriber group whose selectors match (a group is
all subscribers with the same selectors); once per loop iteration, join each
group's pending bytes once and hand that one bytes object to every
subscriber of the group. No task wakes and nothing is allocated per
subscriber per event.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

from ssehub.backends import Backend, MemoryBackend, Record
from ssehub.protocol import Event, encode_comment, encode_event

from ._clock import Clock, SystemClock
from ._config import HubConfig
from ._ids import IdGenerator
from ._selectors import selectors_match, validate_selector
from ._subscription import (
    CloseReason,
    EventSubscription,
    Resume,
    StreamSubscription,
    Subscription,
)

__all__ = ("GAP_EVENT", "Hub", "HubClosedError", "HubStatistics")

GAP_EVENT = "ssehub-gap"
"""Type of the event a subscriber gets first when it asked to resume from an
id no longer in history. Its data is JSON: `{"lastEventID": "<asked id>"}`.
It has no id, so it does not move the client's last event ID."""

_HEARTBEAT = encode_comment()
_TOPIC_COUNTERS = 10_000

State = Literal["new", "running", "draining", "closed"]


class HubClosedError(RuntimeError):
    """The hub is not running (not started yet, draining or closed)."""


@dataclass(frozen=True, slots=True)
class HubStatistics:
    """A snapshot of the hub's state and counters since it started."""

    state: State
    subscribers: int
    subscribers_by_topic: dict[str, int] = field(default_factory=dict)
    events_published: int = 0
    events_delivered: int = 0
    bytes_delivered: int = 0
    replays: int = 0
    events_replayed: int = 0
    gaps: int = 0
    disconnects_slow: int = 0
    disconnects_stalled: int = 0
    events_from_peers: int = 0
    """Events other hub processes published, fanned out here (shared backend)."""
    events_by_topic: dict[str, int] = field(default_factory=dict)
    recent_disconnects: tuple[tuple[float, str, tuple[str, ...]], ...] = ()
    """The last slow or stalled disconnects: (Unix time, reason, topics)."""


class _Group:
    """Subscribers with the same selectors and private rights: they get the
    same bytes."""

    __slots__ = ("key", "pattern", "pending", "private_topics", "subscribers")

    def __init__(self, key: frozenset[str], private_topics: frozenset[str]) -> None:
        self.key = key
        # selectors beyond exact topics: matched per event, not indexed
        self.pattern = "*" in key or any("{" in s or "}" in s for s in key)
        self.private_topics = private_topics
        self.subscribers: dict[Subscription, None] = {}
        self.pending: list[Record] = []

    def may_see(self, record: Record) -> bool:
        return not record.private or selectors_match(self.private_topics, record.topics)


class _Waiters:
    """Coroutines waiting for a counter (a publish ticket, a feed position)
    to reach their target."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []

    def __bool__(self) -> bool:
        return bool(self._waiting)

    async def wait(self, target: int) -> None:
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((target, future))
        await future

    def release(self, reached: float) -> None:
        """Wake every waiter whose target is at most `reached`."""
        waiting = []
        for target, future in self._waiting:
            if target <= reached:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((target, future))
        self._waiting = waiting


def _topic_tuple(topics: str | Iterable[str]) -> tuple[str, ...]:
    items = (topics,) if isinstance(topics, str) else tuple(topics)
    if not items:
        raise ValueError("at least one topic is required")
    for topic in items:
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"a topic must be a non-empty str, not {topic!r}")
    return tuple(dict.fromkeys(items))


def _selectors(selectors: str | Iterable[str]) -> tuple[str, ...]:
    items = _topic_tuple(selectors)
    for selector in items:
        validate_selector(selector)
    return items


class Hub:
    """Topics, history, replay and fan-out, on one asyncio loop.

    Use it as an async context manager (`async with Hub() as hub:`), or call
    `start()` and later `drain()` / `aclose()`. `publish()` is a coroutine of
    the hub's loop; `publish_threadsafe()` is for other threads.
    """

    def __init__(
        self,
        config: HubConfig | None = None,
        *,
        backend: Backend | None = None,
        clock: Clock | None = None,
        ids: Callable[[], str] | None = None,
    ) -> None:
        self.config = config or HubConfig()
        self.backend: Backend = backend if backend is not None else MemoryBackend()
        self._clock: Clock = clock or SystemClock()
        self._ids = ids or IdGenerator()
        self._state: State = "new"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._tick = 0
        self._groups: dict[tuple[frozenset[str], frozenset[str]], _Group] = {}
        self._by_topic: dict[str, list[_Group]] = {}
        self._patterns: list[_Group] = []  # groups with `*` or URI templates
        self._dirty: list[_Group] = []
        self._flush_handle: asyncio.Handle | None = None
        self._doomed: list[tuple[Subscription, CloseReason]] = []
        # With a backend shared by several hub processes: the feed of records
        # appended anywhere, how far it has got, this process's own appends
        # (fanned out already, skipped when they come back), and
        # subscriptions waiting for the feed to reach their replay.
        self._follow_task: asyncio.Task[None] | None = None
        self._feed_position = 0
        self._own: set[str] = set()
        self._own_order: deque[str] = deque()
        self._feed_waiters = _Waiters()
        # Publishes between "stored" and "fanned out" (a durable backend's
        # append suspends), and subscriptions waiting for them to finish.
        self._ticket = 0
        self._inflight: set[int] = set()
        self._settle_waiters = _Waiters()
        self._published = 0
        self._delivered = 0
        self._delivered_bytes = 0
        self._replays = 0
        self._replayed = 0
        self._gaps = 0
        self._slow = 0
        self._stalled = 0
        self._remote = 0
        self._by_topic_count: dict[str, int] = {}
        self._recent_drops: deque[tuple[float, str, tuple[str, ...]]] = deque(maxlen=20)

    # -- life cycle ----------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    async def start(self) -> None:
        """Open the backend and start heartbeats on the running loop."""
        if self._state != "new":
            raise RuntimeError(f"Hub.start() on a hub that is {self._state}")
        self._loop = asyncio.get_running_loop()
        await self.backend.start()
        self._heartbeat_task = self._loop.create_task(self._heartbeats(), name="ssehub-heartbeat")
        follow = getattr(self.backend, "follow", None)
        if follow is not None:  # a backend shared with other hub processes
            self._feed_position = await self.backend.newest_position()  # type: ignore[attr-defined]
            self._follow_task = self._loop.create_task(
                self._follow(follow(self._feed_position)), name="ssehub-follow"
            )
        self._state = "running"

    async def __aenter__(self) -> Hub:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def drain(self, grace: float = 5.0) -> None:
        """Stop taking publishes and subscribers, deliver what is pending, and
        end every subscription. Streams get up to `grace` seconds to flush
        what their sockets still hold, then they are cut. Event subscriptions
        end after their consumers take what is queued."""
        if self._state != "running":
            return
        self._state = "draining"
        self._flush()
        streams: list[StreamSubscription] = []
        for group in list(self._groups.values()):
            for sub in list(group.subscribers):
                if isinstance(sub, StreamSubscription):
                    streams.append(sub)
                sub.close("shutdown")
        waiting = [s._closing() for s in streams]
        if waiting and grace > 0:
            await asyncio.wait(waiting, timeout=grace)
        for sub, lost in zip(streams, waiting, strict=True):
            if not lost.done():
                sub._abort()

    async def aclose(self) -> None:
        """Shut down: `drain(0)` if not drained yet, stop heartbeats, close
        the backend. Safe to call more than once."""
        if self._state == "closed":
            return
        if self._state == "running":
            await self.drain(0)
        self._state = "closed"
        for task in (self._heartbeat_task, self._follow_task):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    if not task.cancelled():  # our own cancellation, not the task's
                        raise
        self._heartbeat_task = self._follow_task = None
        await self.backend.aclose()

    # -- publishing -------------------------------------------------------------

    async def publish(
        self,
        topics: str | Iterable[str],
        data: str = "",
        *,
        event: str = "message",
        id: str | None = None,
        retry: int | None = None,
        private: bool = False,
    ) -> str:
        """Store an event and send it to every subscriber of its topics.

        `topics`: one topic or several (the first is canonical; a subscriber
        of several of them gets the event once). `id`: a custom id (default:
        a new time-ordered UUID); it must not be in history yet. `private`:
        only subscribers allowed one of its topics (`private_topics`) get it.
        Returns the
        event's id once it is stored. Raises `LocalProtocolError` (a
        `ValueError`) naming a bad field, `DuplicateEventIdError`, or
        `HubClosedError`.
        """
        if self._state != "running":
            raise HubClosedError(f"cannot publish: the hub is {self._state}")
        topic_tuple = _topic_tuple(topics)
        if id is None:
            id = self._ids()
        elif id == "earliest":
            raise ValueError("event id 'earliest' is reserved (it asks for all history)")
        ev = Event(data, event, id, retry)
        record = Record(topic_tuple, ev, self._clock.time(), encode_event(ev), private)
        if self._follow_task is not None:
            self._remember_own(id)
        self._ticket += 1
        ticket = self._ticket
        self._inflight.add(ticket)
        try:
            try:
                await self.backend.append(record)
            except BaseException:
                # not acknowledged; if it was stored all the same, the feed
                # must bring it here too
                self._own.discard(id)
                raise
            self._published += 1
            counts = self._by_topic_count
            for topic in topic_tuple:
                if topic in counts or len(counts) < _TOPIC_COUNTERS:
                    counts[topic] = counts.get(topic, 0) + 1
                else:  # bounded: a hub with a topic per user must not grow here
                    counts["(other topics)"] = counts.get("(other topics)", 0) + 1
            self._fanout(record)
        finally:
            self._inflight.discard(ticket)
            if self._settle_waiters:
                # every publish up to just before the oldest in flight is done
                oldest = min(self._inflight, default=None)
                self._settle_waiters.release(math.inf if oldest is None else oldest - 1)
        return id

    def publish_threadsafe(
        self,
        topics: str | Iterable[str],
        data: str = "",
        *,
        event: str = "message",
        id: str | None = None,
        retry: int | None = None,
        private: bool = False,
    ) -> concurrent.futures.Future[str]:
        """`publish()` from any thread: returns a future of the event's id."""
        loop = self._loop
        if loop is None or self._state != "running":
            raise HubClosedError(f"cannot publish: the hub is {self._state}")
        coro = self.publish(topics, data, event=event, id=id, retry=retry, private=private)
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def _fanout(self, record: Record) -> None:
        topics = record.topics
        if len(topics) == 1:
            for group in self._by_topic.get(topics[0], ()):
                self._queue(group, record)
        else:
            seen: set[_Group] = set()
            for topic in topics:
                for group in self._by_topic.get(topic, ()):
                    if group not in seen:
                        seen.add(group)
                        self._queue(group, record)
        for group in self._patterns:
            if selectors_match(group.key, topics):
                self._queue(group, record)

    def _queue(self, group: _Group, record: Record) -> None:
        if record.private and not group.may_see(record):
            return
        if not group.pending:
            self._dirty.append(group)
        group.pending.append(record)
        if self._flush_handle is None:
            assert self._loop is not None
            self._flush_handle = self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Deliver what is pending: one bytes object per group, written to
        each of its subscribers."""
        handle, self._flush_handle = self._flush_handle, None
        if handle is not None:
            handle.cancel()
        dirty, self._dirty = self._dirty, []
        delivered = nbytes = 0
        for group in dirty:
            records, group.pending = group.pending, []
            data = records[0].frame if len(records) == 1 else b"".join([r.frame for r in records])
            subscribers = group.subscribers
            for sub in subscribers:
                sub._deliver(data, records)
            delivered += len(records) * len(subscribers)
            nbytes += len(data) * len(subscribers)
        self._delivered += delivered
        self._delivered_bytes += nbytes
        if self._doomed:
            self._reap()

    # -- subscribing -------------------------------------------------------------

    def subscribe(
        self,
        topics: str | Iterable[str],
        *,
        last_event_id: str | None = None,
        private_topics: Iterable[str] = (),
    ) -> EventSubscription:
        """An async iterator of the events of `topics` (`"*"`: all topics).

        With `last_event_id`, it first replays what history holds after that
        event (`"earliest"`: all history); if that id is not in history, the
        first event is a `GAP_EVENT` notice and all retained history follows.
        Private updates reach it only for topics matched by `private_topics`
        (a JWT's `mercure.subscribe` claim; `"*"`: all).
        Use it as `async with hub.subscribe(...) as events: async for ...`.
        """
        return EventSubscription(
            self, _selectors(topics), self._checked_id(last_event_id), frozenset(private_topics)
        )

    def subscribe_stream(
        self,
        transport: asyncio.WriteTransport,
        topics: str | Iterable[str],
        *,
        last_event_id: str | None = None,
        private_topics: Iterable[str] = (),
    ) -> StreamSubscription:
        """A subscription that writes the encoded events of `topics` straight
        to `transport` (for servers). Open it with `await sub.open(prefix)`;
        forward the protocol's `pause_writing`, `resume_writing` and
        `connection_lost` to it."""
        return StreamSubscription(
            self,
            _selectors(topics),
            self._checked_id(last_event_id),
            transport,
            frozenset(private_topics),
        )

    def _checked_id(self, last_event_id: str | None) -> str | None:
        limit = self.config.max_last_event_id
        if last_event_id is not None and len(last_event_id) > limit:
            raise ValueError(f"Last-Event-ID is longer than {limit} characters")
        return last_event_id

    async def _open(
        self,
        sub: Subscription,
        last_event_id: str | None,
        prefix: Callable[[Resume], bytes] | None,
    ) -> Resume:
        if self._state != "running":
            raise HubClosedError(f"cannot subscribe: the hub is {self._state}")
        self._attach(sub)  # from now on live events are held for it
        try:
            records: list[Record] = []
            gap = False
            if last_event_id is not None:
                after = None if last_event_id == "earliest" else last_event_id
                exact = not any("{" in s or "}" in s or s == "*" for s in sub.key)
                history = await self.backend.history(sub.topics if exact else None, after)
                gap = not history.found
                records = [
                    r
                    for r in history.records
                    if (exact or selectors_match(sub.key, r.topics))
                    and (not r.private or selectors_match(sub.private_topics, r.topics))
                ]
            newest = await self.backend.last_id()
            # A publish stored before the history read may not be fanned out
            # yet: stay in holding mode until it is, so its live copy lands
            # in the held list, where the replay's copy cancels it. The same
            # for records of other processes that the feed has not brought.
            await self._settled()
            if last_event_id is not None and history.position is not None:
                await self._feed_reached(history.position)
        except BaseException:
            sub.close()
            raise
        resume = Resume(newest or "earliest", gap, len(records))
        sub.resume = resume
        if sub.closed:  # the subscriber left while history was read
            return resume
        if last_event_id is not None:
            self._replays += 1
            self._replayed += len(records)
        gap_record = None
        if gap:
            self._gaps += 1
            gap_record = self._gap_record(last_event_id)
        sub._start(prefix(resume) if prefix else b"", gap_record, records)
        if self._doomed:
            self._reap()
        return resume

    def _remember_own(self, event_id: str) -> None:
        self._own.add(event_id)
        self._own_order.append(event_id)
        if len(self._own_order) > 100_000:  # bounded, even if some never come back
            self._own.discard(self._own_order.popleft())

    async def _follow(self, feed: AsyncIterator[tuple[int, Record]]) -> None:
        """Fan out what other processes publish (the shared backend's feed)."""
        async for position, record in feed:
            self._feed_position = position
            if record.id in self._own:
                self._own.discard(record.id)  # published here: fanned out already
            else:
                self._remote += 1
                self._fanout(record)
            if self._feed_waiters:
                self._feed_waiters.release(position)

    async def _feed_reached(self, position: int) -> None:
        """Wait until the feed has passed `position` (what a replay read), so
        a record both replayed and fed is held, then dropped as a duplicate."""
        if self._follow_task is None or self._feed_position >= position:
            return
        await self._feed_waiters.wait(position)

    async def _settled(self) -> None:
        """Wait until every publish started so far has been fanned out (or
        failed). Later publishes are not waited for, so this cannot starve."""
        if not self._inflight:
            return
        await self._settle_waiters.wait(self._ticket)

    def _gap_record(self, last_event_id: str | None) -> Record:
        ev = Event(json.dumps({"lastEventID": last_event_id}), GAP_EVENT)
        return Record((), ev, self._clock.time(), encode_event(ev))

    def _attach(self, sub: Subscription) -> None:
        group = self._groups.get(sub.group_key)
        if group is None:
            group = self._groups[sub.group_key] = _Group(sub.key, sub.private_topics)
            if group.pattern:
                self._patterns.append(group)
            else:
                for topic in sub.key:
                    self._by_topic.setdefault(topic, []).append(group)
        group.subscribers[sub] = None

    def _detach(self, sub: Subscription) -> None:
        group = self._groups.get(sub.group_key)
        if group is None or sub not in group.subscribers:
            return
        del group.subscribers[sub]
        if group.subscribers:
            return
        del self._groups[sub.group_key]
        if group.pattern:
            self._patterns.remove(group)
        else:
            for topic in sub.key:
                groups = self._by_topic[topic]
                groups.remove(group)
                if not groups:
                    del self._by_topic[topic]

    def _doom(self, sub: Subscription, reason: CloseReason) -> None:
        """Close `sub` once the current fan-out pass is over (closing it now
        would change the dict being iterated)."""
        if not self._doomed:
            assert self._loop is not None
            self._loop.call_soon(self._reap)
        self._doomed.append((sub, reason))

    def _reap(self) -> None:
        doomed, self._doomed = self._doomed, []
        for sub, reason in doomed:
            if not sub.closed:
                if reason == "slow":
                    self._slow += 1
                elif reason == "stalled":
                    self._stalled += 1
                self._recent_drops.append((self._clock.time(), reason, sub.topics))
                sub.close(reason)

    # -- heartbeats ------------------------------------------------------------

    async def _heartbeats(self) -> None:
        interval = self.config.heartbeat
        while True:
            await self._clock.sleep(interval)
            self._tick += 1
            tick = self._tick
            for group in self._groups.values():
                for sub in group.subscribers:
                    sub._heartbeat(_HEARTBEAT, tick)
            if self._doomed:
                self._reap()

    # -- introspection -----------------------------------------------------------

    def statistics(self) -> HubStatistics:
        by_topic: dict[str, int] = {}
        total = 0
        for group in self._groups.values():
            n = len(group.subscribers)
            total += n
            for topic in group.key:
                by_topic[topic] = by_topic.get(topic, 0) + n
        return HubStatistics(
            state=self._state,
            subscribers=total,
            subscribers_by_topic=by_topic,
            events_published=self._published,
            events_delivered=self._delivered,
            bytes_delivered=self._delivered_bytes,
            replays=self._replays,
            events_replayed=self._replayed,
            gaps=self._gaps,
            disconnects_slow=self._slow,
            disconnects_stalled=self._stalled,
            events_from_peers=self._remote,
            events_by_topic=dict(self._by_topic_count),
            recent_disconnects=tuple(self._recent_drops),
        )
