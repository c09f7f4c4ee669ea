"""Subscriptions: one per subscriber, owned by the hub.

A subscription is registered before its history is read and holds live
events until the replay is written, so the subscriber gets every event once,
in order: replay, then what arrived meanwhile (minus what the replay already
had), then live events. History is read in pages, each taken only when the
subscriber has room for it (a stream's transport is not paused, an event
consumer has emptied its queue); live events held meanwhile count against
the subscriber's buffer bounds like a backlog does.

A subscription talks to its hub through the small `Owner` protocol, never
to the hub's internals.

Two kinds share that life cycle: `StreamSubscription` writes bytes straight to
an asyncio transport (what a server uses: no task per subscriber, the same
bytes object for every subscriber), `EventSubscription` is an async iterator
of `Event`s for in-process consumers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Protocol

from ssehub.backends import Record
from ssehub.protocol import Event

from ._config import HubConfig
from ._selectors import Matcher
from ._tags import Tags, check_tags

__all__ = (
    "CloseReason",
    "EventSubscription",
    "Owner",
    "Pages",
    "Resume",
    "Selection",
    "SlowSubscriberError",
    "StreamSubscription",
    "Subscription",
)

CloseReason = Literal["closed", "slow", "stalled", "shutdown"]
"""Why a subscription ended: the subscriber left ("closed"), did not keep up
("slow"), took no bytes for two heartbeats ("stalled"), or the hub shut down."""


@dataclass(frozen=True, slots=True)
class Resume:
    """How a subscription started.

    `last_event_id` is the id the stream starts after (what Mercure sends as
    the `Last-Event-ID` response header; `"earliest"` when history is empty).
    `gap` is True when the subscriber asked to resume from an id that is not
    in history: it may have missed events, and got all retained history.
    `replayed` counts the events sent from history.
    """

    last_event_id: str
    gap: bool
    replayed: int


class Selection:
    """A subscription's selectors as the hub files them, validated once:
    `selectors` (topics, URI templates, `Matcher`s), `topics` (what it
    reads: the selectors, and the values of its matchers), `key` (its
    fan-out group's selectors: `*` alone when it reads all) and `tagged`.
    Immutable, so the hub shares one between the subscriptions that ask
    for equal selectors (`Hub._selection`). Raises `ValueError` if a tagged
    stream's selector cannot go in a `matched:` line."""

    __slots__ = ("key", "selectors", "tagged", "topics")

    def __init__(self, selectors: tuple[str | Matcher, ...], tagged: bool = False) -> None:
        self.selectors = selectors
        self.topics = tuple(t if isinstance(t, str) else t.value for t in selectors)
        if tagged:
            check_tags(selectors)
        self.tagged = tagged
        # a tagged stream names its selectors: `*` beside others is not all
        wildcard = "*" in self.topics and not tagged
        self.key: frozenset[str | Matcher] = frozenset(("*",)) if wildcard else frozenset(selectors)


class Pages(Protocol):
    """A replay being read: the pages of history a subscription asked for."""

    @property
    def read(self) -> bool:
        """Whether the last page has been read (`next()` gives None next)."""

    async def next(self) -> list[Record] | None:
        """The next page (the subscriber's records only, oldest first), or
        None at the end, once every event stored before is either in the
        replay or held as live."""

    def encoded(self, page: list[Record]) -> bytes:
        """The bytes of `page` (what `next()` gave last) for this
        subscriber: encoded once for every replay that shares the page."""


class Owner(Protocol):
    """What a subscription needs from its hub."""

    @property
    def config(self) -> HubConfig: ...

    @property
    def tick(self) -> int:
        """Heartbeats so far."""

    async def begin(
        self, sub: Subscription, last_event_id: str | None, newest: int
    ) -> tuple[Resume, Record | None, Pages | None]:
        """Register `sub` (live events are held for it from now on) and
        start its replay (after `last_event_id`, or else the `newest` N):
        how it resumes, the gap notice, the pages (None: no replay asked).
        Raises `HubClosedError` when the hub is not running."""

    def live_record(self, replayed: int) -> Record:
        """The marker written after a replay, before live events."""

    def tags_of(self, sub: Subscription) -> Tags | None:
        """The `matched:` lines of `sub`'s fan-out group (None: untagged)."""

    def replay_turn(self, nbytes: int) -> asyncio.Future[None] | None:
        """Write `nbytes` of replay to a stream now (None), or once the
        future is done: replays take turns with the loop's other work."""

    def release(self, sub: Subscription) -> None:
        """`sub` is closed: forget it."""

    def drop(self, sub: Subscription, reason: CloseReason) -> None:
        """Close `sub` for `reason` once the current fan-out pass is over."""


class SlowSubscriberError(Exception):
    """The subscription fell too far behind and was dropped. Subscribe again
    with `last_event_id` to resume from history."""

    def __init__(self, last_event_id: str | None) -> None:
        super().__init__(
            "subscriber was too slow and was disconnected; resume from "
            f"last_event_id={last_event_id!r}"
        )
        self.last_event_id = last_event_id


class Subscription:
    """What the hub knows of one subscriber. Created by `Hub.subscribe()` or
    `Hub.subscribe_stream()`, never directly."""

    __slots__ = (
        "_asked",
        "_held",
        "_hub",
        "_newest",
        "_opened",
        "_pending_bytes",
        "_pending_events",
        "_replayed",
        "group_key",
        "reason",
        "resume",
        "topics",
    )

    def __init__(
        self,
        hub: Owner,
        selection: Selection,
        last_event_id: str | None,
        private_topics: frozenset[str | Matcher] = frozenset(),
        newest: int = 0,
    ) -> None:
        self._hub = hub
        self.topics = selection.topics
        self._asked = last_event_id
        self._newest = newest
        self._opened = False
        # The fan-out group: subscribers with the same selectors, the same
        # private rights (the selectors of the private updates it may
        # receive: a JWT's claim) and the same tagging (each event carries
        # the selectors it matched, `ssehub.hub._tags`) get the same bytes.
        # The hub replaces it (and `topics`) with its group's equal one: a
        # subscriber of a topic that others read keeps no selector object
        # of its own.
        self.group_key: tuple[frozenset[str | Matcher], frozenset[str | Matcher], bool] = (
            selection.key,
            private_topics,
            selection.tagged,
        )
        self.reason: CloseReason | None = None
        self.resume: Resume | None = None
        self._held: dict[str, Record] | None = {}  # live events held during replay, by id
        self._replayed = 0
        self._pending_events = 0
        self._pending_bytes = 0

    @property
    def key(self) -> frozenset[str | Matcher]:
        """Its selectors, as the fan-out files it (`*` alone when it reads all)."""
        return self.group_key[0]

    @property
    def private_topics(self) -> frozenset[str | Matcher]:
        """The selectors of the private updates it may receive."""
        return self.group_key[1]

    @property
    def tagged(self) -> bool:
        """Whether each event carries the selectors it matched."""
        return self.group_key[2]

    @property
    def closed(self) -> bool:
        return self.reason is not None

    @property
    def replaying(self) -> bool:
        """Whether it is still replaying history (live events are held)."""
        return self._held is not None and self.reason is None

    def holds(self, record_id: str) -> bool:
        """Whether a live copy of that record is held (during the replay)."""
        held = self._held
        return held is not None and record_id in held

    @property
    def held_bytes(self) -> int:
        """Bytes the hub holds for this subscriber beyond its socket: live
        events held during the replay, a paused stream's backlog. Bounded
        by `HubConfig.max_buffer_bytes`."""
        return self._pending_bytes

    async def open(self, prefix: Callable[[Resume], bytes] | None = None) -> Resume:
        """Register with the hub and replay history, then go live.

        `prefix(resume)` gives the bytes a stream starts with (a server's
        response head), written before any event. A stream returns once its
        replay is written (page by page, as the transport takes it); an
        event subscription returns with the first page queued and reads the
        next ones as they are consumed (if history took more than one page,
        `replayed` is 0 in what `open` returns, and counted in `sub.resume`
        once the replay ends). Raises `HubClosedError` when the hub is not
        running.
        """
        if self._opened:
            raise RuntimeError("subscription already opened")
        self._opened = True
        resume, gap, pages = await self._hub.begin(self, self._asked, self._newest)
        self.resume = resume
        if self.reason is None:
            try:
                first = prefix(resume) if prefix else b""
                if pages is None:  # no replay asked: live at once
                    self._go_live(first)
                else:
                    await self._replay(first, gap, pages)
            except BaseException:
                self.close()
                raise
        return self.resume

    def close(self, reason: CloseReason = "closed") -> None:
        """End the subscription now; safe to call more than once."""
        if self.reason is None:
            self.reason = reason
            self._hub.release(self)
            self._closed()

    # -- called by the hub -------------------------------------------------

    def _deliver(self, data: bytes, records: list[Record]) -> None:
        """Take a batch of live events (`data` is their encoded bytes)."""
        raise NotImplementedError

    def _encode(self, records: list[Record]) -> bytes:
        """The bytes of `records` for this subscriber (tagged or not)."""
        if self.group_key[2]:  # tagged: its group's lines
            tags = self._hub.tags_of(self)
            if tags is not None:
                return tags.encode(records)
        return records[0].frame if len(records) == 1 else b"".join([r.frame for r in records])

    def _heartbeat(self, frame: bytes, tick: int) -> None:
        """A heartbeat tick."""

    async def _replay(self, prefix: bytes, gap: Record | None, pages: Pages) -> None:
        """Deliver `prefix` (bytes a stream starts with), the gap notice and
        the replay (all of it, or as it is consumed), then what was held,
        and go live."""
        raise NotImplementedError

    def _go_live(self, prefix: bytes) -> None:
        """Deliver `prefix`, then what was held since it registered, and go
        live: no replay was asked."""
        raise NotImplementedError

    def _closed(self) -> None:
        """Release the subscriber's side (transport, waiter)."""

    def _hold(self, records: list[Record], nbytes: int) -> None:
        held = self._held
        assert held is not None
        for record in records:
            held[record.id] = record
        self._count(len(records), nbytes)

    def _replaying(self, page: list[Record]) -> None:
        """`page` is being delivered from history: its held live copies are
        duplicates."""
        self._replayed += len(page)
        held = self._held
        if held:
            for record in page:
                if held.pop(record.id, None) is not None:
                    self._pending_events -= 1
                    self._pending_bytes -= len(record.frame)

    @property
    def _replays(self) -> bool:
        """Whether it asked for a replay (and gets the live marker after)."""
        return self._asked is not None or self._newest > 0

    def _count(self, events: int, nbytes: int) -> None:
        self._pending_events += events
        self._pending_bytes += nbytes
        config = self._hub.config
        if (
            self._pending_events > config.max_buffer_events
            or self._pending_bytes > config.max_buffer_bytes
        ):
            self._hub.drop(self, "slow")

    def _unheld(self) -> list[Record]:
        """The held live events the replay did not contain; going live."""
        held, self._held = self._held or {}, None
        self._pending_events = self._pending_bytes = 0
        resume = self.resume
        if resume is not None and resume.replayed != self._replayed:
            self.resume = dataclasses.replace(resume, replayed=self._replayed)
        return list(held.values())


class StreamSubscription(Subscription):
    """A subscriber behind an asyncio transport: the hub writes event bytes
    to it directly.

    The owner of the transport's protocol forwards `pause_writing()` and
    `resume_writing()` here. While the transport is paused the hub keeps
    what comes in a bounded backlog and drops the subscriber ("slow") when it
    overflows; a subscriber that stays paused for two heartbeats is dropped
    as "stalled".
    """

    __slots__ = ("_backlog", "_lost", "_paused_tick", "_room", "_transport", "_writable")

    def __init__(
        self,
        hub: Owner,
        selection: Selection,
        last_event_id: str | None,
        transport: asyncio.WriteTransport,
        private_topics: frozenset[str | Matcher] = frozenset(),
        newest: int = 0,
    ) -> None:
        super().__init__(hub, selection, last_event_id, private_topics, newest)
        self._lost: asyncio.Future[None] | None = None
        self._room: asyncio.Future[None] | None = None  # a paused replay waits here
        self._transport = transport
        self._writable = False
        self._paused_tick: int | None = None  # the heartbeat it paused at, while paused
        self._backlog: list[bytes] | None = None  # made only while paused

    @property
    def paused(self) -> bool:
        """Whether the transport is paused (its buffer above the high-water mark)."""
        return self._paused_tick is not None

    def _deliver(self, data: bytes, records: list[Record]) -> None:
        if self._writable:  # the hot path: one write, no allocation
            self._transport.write(data)
        elif self._held is not None:
            self._hold(records, len(data))
        else:
            backlog = self._backlog
            if backlog is None:
                self._backlog = [data]
            else:
                backlog.append(data)
            self._count(len(records), len(data))

    def _heartbeat(self, frame: bytes, tick: int) -> None:
        if self._writable:
            self._transport.write(frame)
        elif self._paused_tick is not None and tick - self._paused_tick >= 2:
            self._hub.drop(self, "stalled")

    async def _replay(self, prefix: bytes, gap: Record | None, pages: Pages) -> None:
        # nothing was written yet, so not paused
        self._transport.write(prefix + gap.frame if gap is not None else prefix)
        while not pages.read and (page := await pages.next()) is not None:
            if self.reason is not None:
                return
            if page:
                data = pages.encoded(page)
                turn = self._hub.replay_turn(len(data))
                if turn is not None:  # other work first: wait for its turn
                    await self._wait_room(turn)
                    if self.closed:
                        return
                self._replaying(page)
                self._transport.write(data)
            # the next page only once the transport has room for it: a
            # subscriber that does not read holds about one page here
            while self._paused_tick is not None and self.reason is None:
                await self._wait_room(asyncio.get_running_loop().create_future())
        if self.reason is not None:
            return
        unheld = self._unheld()
        if self._replays:  # the replay is over: the live marker, then live events
            unheld.insert(0, self._hub.live_record(self._replayed))
        self._writable = True  # before writing: the write may pause it again
        if unheld:
            self._transport.write(self._encode(unheld))

    def _go_live(self, prefix: bytes) -> None:
        held, self._held = self._held, None
        self._writable = True  # before writing: the write may pause it again
        if held:  # live events came while the hub registered it
            self._pending_events = self._pending_bytes = 0
            self._transport.write(prefix + self._encode(list(held.values())))
        else:
            self._transport.write(prefix)

    async def _wait_room(self, room: asyncio.Future[None]) -> None:
        """Wait for `room` (set done by `_make_room`, and when it closes)."""
        self._room = room
        try:
            await room
        finally:
            self._room = None

    def _make_room(self) -> None:
        room = self._room
        if room is not None and not room.done():
            room.set_result(None)

    def pause_writing(self) -> None:
        """The transport's buffer is above its high-water mark."""
        self._writable = False
        self._paused_tick = self._hub.tick

    def resume_writing(self) -> None:
        """The transport's buffer drained below its low-water mark."""
        self._paused_tick = None
        self._make_room()
        if self._held is not None or self.reason is not None:
            return
        backlog, self._backlog = self._backlog, None
        self._pending_events = self._pending_bytes = 0
        self._writable = True
        if backlog:
            self._transport.write(b"".join(backlog))

    def connection_lost(self) -> None:
        """The transport is gone (the protocol's `connection_lost`)."""
        self.close()
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    def _closing(self) -> asyncio.Future[None]:
        """A future done when the transport is gone (used by drain)."""
        if self._lost is None:
            self._lost = asyncio.get_running_loop().create_future()
        return self._lost

    def _abort(self) -> None:
        self._transport.abort()

    def _closed(self) -> None:
        self._writable = False
        self._make_room()
        backlog, self._backlog = self._backlog or [], None
        if self.reason in ("slow", "stalled"):
            self._transport.abort()  # its buffer is full: do not wait on it
        elif self.reason == "shutdown":
            retry = self._hub.config.shutdown_retry
            if retry is not None:  # come back soon, not all at once
                backlog.append(f"retry: {random.randint(retry, 2 * retry)}\n\n".encode())
            if backlog and self._held is None:
                self._transport.write(b"".join(backlog))
            self._transport.close()  # flush what is buffered, then FIN


class EventSubscription(Subscription):
    """An async iterator of the `Event`s of some topics, for in-process use::

        async with hub.subscribe("clock") as events:
            async for event in events:
                print(event.data)

    Iteration ends when the hub shuts down or `close()` is called; if the
    consumer falls behind the bounded buffer, it raises `SlowSubscriberError`
    (subscribe again with its `last_event_id` to resume).

    After a replay (`last_event_id` or `newest`), `live` turns True once
    every replayed event has been taken; `wait_live()` waits for it. The
    `LIVE_EVENT` marker is not yielded by iteration (data loops need not
    skip it); `frames()` includes its bytes, for a server to stream.
    """

    __slots__ = ("_live", "_live_waiter", "_marker", "_pages", "_queue", "_waiter",
                 "last_event_id")  # fmt: skip

    def __init__(
        self,
        hub: Owner,
        selection: Selection,
        last_event_id: str | None,
        private_topics: frozenset[str | Matcher] = frozenset(),
        newest: int = 0,
    ) -> None:
        super().__init__(hub, selection, last_event_id, private_topics, newest)
        self._live = not self._replays
        self._live_waiter: asyncio.Future[None] | None = None
        self._marker: Record | None = None  # queued where the replay ends
        self._pages: Pages | None = None  # the rest of the replay, read as consumed
        self._queue: list[Record] = []  # bounded; an empty deque would cost ~600 B
        self._waiter: asyncio.Future[None] | None = None
        self.last_event_id: str | None = last_event_id  # of the last event taken

    async def __aenter__(self) -> EventSubscription:
        if not self._opened:
            await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __aiter__(self) -> EventSubscription:
        return self

    @property
    def live(self) -> bool:
        """Whether every replayed event has been taken (True at once when no
        replay was asked): what comes next is live."""
        queue = self._queue
        return self._live or (bool(queue) and queue[0] is self._marker)

    async def wait_live(self) -> bool:
        """Open if needed and wait until `live` (iterate meanwhile when the
        replay is longer than a page). False if it ended before."""
        if not self._opened:
            await self.open()
        while not self.live and self.reason is None:
            waiter = self._live_waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._live_waiter = None
        return self.live

    def _went_live(self) -> None:
        waiter = self._live_waiter
        if waiter is not None and not waiter.done() and (self.live or self.reason is not None):
            waiter.set_result(None)

    async def __anext__(self) -> Event:
        while True:
            if not await self._wait():
                raise StopAsyncIteration
            record = self._queue.pop(0)
            if record is not self._marker:
                break
            self._live = True
        queue = self._queue
        if queue and queue[0] is self._marker:  # the last replayed one: live now
            queue.pop(0)
            self._live = True
            self._went_live()
        if self._held is None:  # while replaying, the counts are of the held events
            # Replayed events are not counted (history bounds them): clamp at 0.
            self._pending_events = max(0, self._pending_events - 1)
            self._pending_bytes = max(0, self._pending_bytes - len(record.frame))
        event = record.event
        if event.id is not None:
            self.last_event_id = event.id
        return event

    async def frames(self) -> AsyncIterator[bytes]:
        """The events' encoded bytes as they come: everything queued since
        the last step, joined into one bytes object (one write for a server
        that streams them). Ends and raises as iterating does."""
        while await self._wait():
            records, self._queue = self._queue, []
            if self._held is None:  # while replaying, the counts are of the held events
                self._pending_events = self._pending_bytes = 0
            if self._marker is not None and not self._live:
                self._live = any(record is self._marker for record in records)
                self._went_live()
            for record in reversed(records):
                if record.event.id is not None:
                    self.last_event_id = record.event.id
                    break
            yield self._encode(records)

    async def _wait(self) -> bool:
        """Open if needed, wait until something is queued; False at the end."""
        if not self._opened:
            await self.open()
        while not self._queue:
            if self.reason is not None:
                if self.reason in ("slow", "stalled"):
                    raise SlowSubscriberError(self.last_event_id)
                return False
            if self._pages is not None:  # the queue is empty: the next page
                try:
                    await self._next_page()
                except BaseException:
                    self.close()
                    raise
                continue
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return True

    def _deliver(self, data: bytes, records: list[Record]) -> None:
        if self._held is not None:
            self._hold(records, len(data))
        else:
            self._enqueue(records, len(data))

    def _enqueue(self, records: Iterable[Record], nbytes: int) -> None:
        before = len(self._queue)
        self._queue.extend(records)
        self._count(len(self._queue) - before, nbytes)
        self._wake()

    async def _replay(self, prefix: bytes, gap: Record | None, pages: Pages) -> None:
        if gap is not None:
            self._queue.append(gap)
        self._pages = pages
        await self._next_page()  # with all of history in one page, it goes live too

    def _go_live(self, prefix: bytes) -> None:
        unheld = self._unheld()
        self._enqueue(unheld, sum(len(r.frame) for r in unheld))

    async def _next_page(self) -> None:
        pages = self._pages
        assert pages is not None
        page = await pages.next()
        if self.reason is not None:
            self._pages = None
        elif page is None:
            self._pages = None
            unheld = self._unheld()
            if self._replays:  # the replay is over: the live marker, not counted
                marker = self._marker = self._hub.live_record(self._replayed)
                self._queue.append(marker)
                self._went_live()
            self._enqueue(unheld, sum(len(r.frame) for r in unheld))
        else:
            self._replaying(page)
            self._queue.extend(page)  # not counted: the consumer asked for it
            if pages.read:  # that was the last page: go live (the marker) now
                await self._next_page()

    def _closed(self) -> None:
        if self.reason in ("slow", "stalled"):
            self._queue.clear()
        self._wake()
        self._went_live()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
