"""The hub: the public face over fan-out, replay, the feed and statistics.

The hot path lives in `_fanout.py`: encode once, a group's pending bytes
joined once per loop iteration, one write per subscriber, no per-subscriber
allocation. This module ties it to the backend: publishing (stored, then
fanned out, whatever happens to the caller), paged replays with no gap and
no duplicate at the seam with live events, heartbeats and shutdown.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
import math
import time
from collections.abc import Callable, Coroutine, Iterable
from types import TracebackType
from typing import Any

from ssehub.backends import (
    Backend,
    MemoryBackend,
    OrderedSharedBackend,
    PresenceBackend,
    Record,
    SharedBackend,
)
from ssehub.protocol import Event, encode_comment, encode_event

from ._clock import Clock, SystemClock
from ._config import HubConfig
from ._fanout import FanOut
from ._feed import Feed
from ._ids import IdGenerator
from ._policies import SubscriberLimitError, TopicPolicies
from ._presence import Presence
from ._replay import ReplayPages, Replays
from ._selectors import Matcher, _is_template, validate_selector
from ._stats import Counters, HubStatistics, State
from ._subscription import (
    CloseReason,
    EventSubscription,
    Resume,
    Selection,
    StreamSubscription,
    Subscription,
)
from ._tags import Tags
from ._tasks import cancel_and_wait
from ._waiters import Waiters

__all__ = (
    "GAP_EVENT",
    "LIVE_EVENT",
    "SUBSCRIBER_LIMIT_RETRY",
    "Hub",
    "HubClosedError",
    "WatchCallback",
)

GAP_EVENT = "ssehub-gap"
"""Type of the event a subscriber gets first when it asked to resume from an
id no longer in history. Its data is JSON: `{"lastEventID": "<asked id>"}`.
It has no id, so it does not move the client's last event ID."""

LIVE_EVENT = "ssehub-live"
"""Type of the event a subscriber gets once a replay it asked for is over
(`last_event_id` or `newest`), before the first live event. Its data is
JSON: `{"replayed": <events replayed>}`. It has no id, so it does not move
the client's last event ID. Not sent when no replay was asked."""

WatchCallback = Callable[[str, bool], object]
"""`callback(topic, watching)`: `topic` gained its first subscriber (True)
or lost its last (False)."""

SUBSCRIBER_LIMIT_RETRY = 10
"""Seconds a subscription refused by a topic's `max_subscribers` is told to
wait (`SubscriberLimitError.retry_after`, HTTP `Retry-After`)."""

_HEARTBEAT = encode_comment()
_SELECTIONS = 256  # distinct validated selector lists kept (each bounded by its request)
log = logging.getLogger("ssehub.hub")


class HubClosedError(RuntimeError):
    """The hub is not running (not started yet, draining or closed)."""


def _topic_tuple(topics: str | Iterable[str]) -> tuple[str, ...]:
    items = (topics,) if isinstance(topics, str) else tuple(topics)
    if not items:
        raise ValueError("at least one topic is required")
    for topic in items:
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"a topic must be a non-empty str, not {topic!r}")
        if not topic.isascii():
            try:  # a lone surrogate (`os.fsdecode` of a non-UTF-8 name) cannot be stored:
                topic.encode()  # refused here, not in a store's batch with others' events
            except UnicodeEncodeError:
                raise ValueError(f"a topic must be valid Unicode text, not {topic!r}") from None
    return tuple(dict.fromkeys(items))


def _selectors(
    selectors: str | Iterable[str], matchers: Iterable[Matcher] = ()
) -> tuple[str | Matcher, ...]:
    extra = tuple(dict.fromkeys(matchers))
    for matcher in extra:
        if not isinstance(matcher, Matcher):
            raise ValueError(f"matchers must be Matcher objects, not {matcher!r}")
    given = selectors if isinstance(selectors, str) else tuple(selectors)
    if extra and not given:
        return extra  # matchers only (a Mercure 1.0 subscription)
    items = _topic_tuple(given)
    for selector in items:
        validate_selector(selector)
    return (*items, *extra)


async def _finish(coro: Coroutine[Any, Any, None], step: Any, answer: asyncio.Future[None]) -> None:
    """Drive `coro`, which has already run up to its first suspension
    (`step`: the future it waits for, or None for a bare yield), to its end,
    as a task would have had it started it (`Hub.publish` starts the store
    inline and hands the rest to a task of the hub's running this); then
    give its outcome to `answer`, the caller's, unless the caller cancelled
    it (its client left: the store went on all the same). The future is
    awaited as is: one loop pass from the store's answer to the caller's."""
    error: BaseException | None = None
    while True:
        thrown: BaseException | None = None
        try:
            if step is None:
                await asyncio.sleep(0)
            else:
                step._asyncio_future_blocking = False
                await step
        except BaseException as exc:
            if step is None or not step.done():  # this task was cancelled: the store sees it
                thrown = exc
            # else the future's own outcome, which the coroutine reads itself
        try:
            step = coro.send(None) if thrown is None else coro.throw(thrown)
        except StopIteration:
            break
        except BaseException as exc:
            error = exc
            break
    if not answer.done():  # else cancelled by the caller
        if error is None:
            answer.set_result(None)
        elif isinstance(error, asyncio.CancelledError):
            answer.cancel()
        else:
            answer.set_exception(error)
    if error is not None and not isinstance(error, Exception | asyncio.CancelledError):
        raise error  # KeyboardInterrupt, SystemExit


class _Owner:
    """What subscriptions may ask of the hub (the `Owner` protocol)."""

    __slots__ = ("_hub", "begin")

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        # the hub's own method: one call less on every subscribe
        self.begin: Callable[
            [Subscription, str | None, int],
            Coroutine[Any, Any, tuple[Resume, Record | None, ReplayPages | None]],
        ] = hub._begin

    @property
    def config(self) -> HubConfig:
        return self._hub.config

    @property
    def tick(self) -> int:
        return self._hub._tick

    def live_record(self, replayed: int) -> Record:
        ev = Event(json.dumps({"replayed": replayed}), LIVE_EVENT)
        return Record((), ev, self._hub._clock.time(), encode_event(ev))

    def tags_of(self, sub: Subscription) -> Tags | None:
        return self._hub._fanout.tags_of(sub)

    def replay_turn(self, nbytes: int) -> asyncio.Future[None] | None:
        return self._hub._replays.turns.take(nbytes)

    def release(self, sub: Subscription) -> None:
        self._hub._fanout.detach(sub)

    def drop(self, sub: Subscription, reason: CloseReason) -> None:
        self._hub._fanout.doom(sub, reason)


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
        on_watch: WatchCallback | None = None,
    ) -> None:
        self.config = config or HubConfig()
        self.backend: Backend = backend if backend is not None else MemoryBackend()
        # per-topic policies: history bounds go to the backend's trimming
        self.policies = TopicPolicies(self.config.topics)
        if self.policies.bounds_history:
            self.backend.limit_topics(self.policies)
        self._clock: Clock = clock or SystemClock()
        # what stamps a publish: the system clock's `time.time` itself (no call of ours)
        self._now: Callable[[], float] = (
            time.time if type(self._clock) is SystemClock else self._clock.time
        )
        self._ids = ids or IdGenerator()
        self._state: State = "new"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._tick = 0
        self._counters = Counters()
        self._fanout = FanOut(self._counters, self._clock.time)
        if on_watch is not None:
            self._fanout.watchers.append(on_watch)
        self._owner = _Owner(self)
        # With a backend shared by several hub processes: the feed of what
        # the others publish (ordered: of every record, in the one order).
        self._feed: Feed | None = None
        self._ordered: OrderedSharedBackend | None = None
        if isinstance(self.backend, OrderedSharedBackend):
            self._ordered = self.backend
        if isinstance(self.backend, SharedBackend):
            self._feed = Feed(self.backend, self._fanout.fanout, ordered=self._ordered is not None)
        # Replays: shared pages and the turns their writes take
        self._replays = Replays(
            self.backend, self.config, self._fanout, self._counters, self._feed, self._settled
        )
        # With a backend that keeps presence (Redis): every hub's subscribers
        # count, and the first/last of a topic is global.
        self._presence: Presence | None = None
        if isinstance(self.backend, PresenceBackend):
            self._presence = Presence(
                self.backend,
                self._fanout.named,
                self._fanout.tell,
                self._clock,
                self.config.presence_interval,
            )
            self._fanout.tracker = self._presence.track
        # Publishes between "stored" and "fanned out" (a durable backend's
        # append suspends), and subscriptions waiting for them to finish.
        # Each runs as a task of the hub's, so a caller that is cancelled
        # (its client left) cannot tear a publish once the append started.
        self._ticket = 0
        self._inflight: set[int] = set()
        self._settle_waiters = Waiters()
        self._publishing: set[asyncio.Task[None]] = set()
        # Publishes with a caller's id, by id: a retry racing its original
        # waits for it, then the backend tells a retry from a conflict.
        self._custom: dict[str, asyncio.Task[None]] = {}
        self._resume = Resume("earliest", False, 0)  # the last one made without a gap
        # Selector lists validated lately, by (selectors, matchers, tagged):
        # the subscribers of one feed send the same ones (bounded; the
        # oldest goes first).
        self._selections: dict[
            tuple[str | tuple[str, ...], tuple[Matcher, ...], bool], Selection
        ] = {}
        # A store that never waits (the memory store, unless a subclass has
        # an append of its own): `publish` stores and fans out in place.
        self._append_nowait: Callable[[Record], bool] | None = None
        backend = self.backend
        if (
            isinstance(backend, MemoryBackend)
            and type(backend).append is MemoryBackend.append
            and self._feed is None
        ):
            self._append_nowait = backend.append_nowait

    # -- life cycle ----------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    async def start(self) -> None:
        """Open the backend and start heartbeats on the running loop."""
        if self._state != "new":
            raise RuntimeError(f"Hub.start() on a hub that is {self._state}")
        self._loop = asyncio.get_running_loop()
        self._fanout.start(self._loop)
        await self.backend.start()
        self._heartbeat_task = self._loop.create_task(self._heartbeats(), name="ssehub-heartbeat")
        if self._feed is not None:
            await self._feed.start()
        if self._presence is not None:
            await self._presence.start()
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
        """Stop taking publishes and subscribers, finish the publishes under
        way, deliver what is pending, and end every subscription. Streams
        get up to `grace` seconds to flush what their sockets still hold,
        then they are cut. Event subscriptions end after their consumers
        take what is queued."""
        if self._state != "running":
            return
        self._state = "draining"
        if self._publishing:
            await asyncio.wait(set(self._publishing), timeout=max(grace, 1.0))
        self._fanout.flush()
        streams: list[StreamSubscription] = []
        for sub in self._fanout.subscriptions():
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
        if self._publishing:  # a store under way finishes before the store closes
            await asyncio.wait(set(self._publishing))
        task, self._heartbeat_task = self._heartbeat_task, None
        if task is not None:
            await cancel_and_wait(task)
        if self._feed is not None:
            await self._feed.aclose()
        if self._presence is not None:
            await self._presence.aclose()
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
        a new time-ordered UUID). If history holds it already, the publish is
        a retry when the event is the same (same first topic, same set of
        topics, data, type, retry and private flag): it returns the id and
        stores and delivers nothing again (idempotent; counted in
        `statistics().publishes_replayed`); another event under that id
        raises `DuplicateEventIdError`. A retry that races its original
        waits for the original to be stored, then answers. `private`:
        only subscribers allowed one of its topics (`private_topics`) get it.
        Returns the event's id once it is stored. Once called, the store and
        the fan-out complete even if the caller is cancelled meanwhile (a
        server's client left): a stored event is always delivered live.
        Raises `LocalProtocolError` (a `ValueError`) naming a bad field,
        `DuplicateEventIdError`, or `HubClosedError`.

        This is the one definition of a publish: `publish_threadsafe()` and
        `BackgroundHub.publish()` take the same fields and delegate here.
        """
        if self._state != "running":
            raise HubClosedError(f"cannot publish: the hub is {self._state}")
        # one non-empty ASCII topic (what the front ends give) is checked in
        # place; anything else the long way
        if type(topics) is tuple and len(topics) == 1:
            topic = topics[0]
            ok = type(topic) is str and topic != "" and topic.isascii()
            topic_tuple: tuple[str, ...] = topics if ok else _topic_tuple(topics)
        elif type(topics) is str and topics != "" and topics.isascii():
            topic_tuple = (topics,)
        else:
            topic_tuple = _topic_tuple(topics)
        custom = id is not None
        if id is None:
            id = self._ids()
        elif id == "earliest":
            raise ValueError("event id 'earliest' is reserved (it asks for all history)")
        ev = Event(data, event, id, retry)
        record = Record(topic_tuple, ev, self._now(), encode_event(ev), private)
        if custom:
            while (earlier := self._custom.get(id)) is not None:
                await asyncio.wait((earlier,))  # its outcome decides ours: wait for it
            if self._state != "running":
                raise HubClosedError(f"cannot publish: the hub is {self._state}")
        append_nowait = self._append_nowait
        if append_nowait is not None:  # no coroutine, nothing in flight
            if append_nowait(record):
                self._counters.count_published(topic_tuple)
                self._fanout.fanout(record)
            else:  # the same event was stored already: a retry
                self._counters.publishes_replayed += 1
            return id
        assert self._loop is not None
        # Run the store inline up to its first suspension: with a backend
        # that answers at once (memory) the publish is done here, in this
        # loop iteration, and publishes of one iteration share one flush.
        # Only a store that suspends is handed to a task of the hub's.
        store = self._store(record)
        try:
            step = store.send(None)
        except StopIteration:
            return id
        answer: asyncio.Future[None] = self._loop.create_future()
        task = self._loop.create_task(_finish(store, step, answer))
        self._publishing.add(task)
        task.add_done_callback(self._stored)
        if custom:
            self._custom[id] = task
            task.add_done_callback(functools.partial(self._forget, id))
        await answer  # the caller may be cancelled here, never the task
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

    async def _store(self, record: Record) -> None:
        """Append, then fan out: a task of the hub's, never cancelled."""
        feed = self._feed
        if feed is not None:
            feed.own(record.id)
        self._ticket += 1
        ticket = self._ticket
        self._inflight.add(ticket)
        try:
            try:
                stored = await self.backend.append(record)
            except BaseException:
                # not acknowledged; if it was stored all the same, the feed
                # must bring it here too
                if feed is not None:
                    feed.disown(record.id)
                raise
            if stored is False:  # the same event was stored already: a retry
                self._counters.publishes_replayed += 1
                if feed is not None:
                    feed.replayed(record)
                return
            self._counters.count_published(record.topics)
            if self._ordered is not None and feed is not None:
                # fanned out by the feed, in the store's order: done once it passed
                await feed.reached(self._ordered.appended_position)
            else:
                self._fanout.fanout(record)
        finally:
            self._inflight.discard(ticket)
            if self._settle_waiters:
                # every publish up to just before the oldest in flight is done
                oldest = min(self._inflight, default=None)
                self._settle_waiters.release(math.inf if oldest is None else oldest - 1)

    def _forget(self, event_id: str, task: asyncio.Task[None]) -> None:
        if self._custom.get(event_id) is task:
            del self._custom[event_id]

    def _stored(self, task: asyncio.Task[None]) -> None:
        self._publishing.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved (only a KeyboardInterrupt or SystemExit gets there)

    # -- subscribing -------------------------------------------------------------

    def subscribe(
        self,
        topics: str | Iterable[str],
        *,
        last_event_id: str | None = None,
        newest: int = 0,
        private_topics: Iterable[str | Matcher] = (),
        matchers: Iterable[Matcher] = (),
        tagged: bool = False,
    ) -> EventSubscription:
        """An async iterator of the events of `topics` (`"*"`: all topics).

        With `last_event_id`, it first replays what history holds after that
        event (`"earliest"`: all history), a page at a time as it is
        consumed; if that id is not in history, the first event is a
        `GAP_EVENT` notice and all retained history follows.
        With `newest=N` (and no `last_event_id`, which wins), it first gets
        the newest N events of each topic named exactly, oldest first, each
        once: the current state. For `"*"` and URI templates, the newest N
        matching events among the hub's newest `max(N, replay_page)`.
        After a replay (either kind), `sub.live` turns True once every
        replayed event was taken (`await sub.wait_live()`); `frames()` carries
        a `LIVE_EVENT` marker there.
        Private updates reach it only for topics matched by `private_topics`
        (a JWT's `mercure.subscribe` claim, or 1.0 `Matcher`s; `"*"`: all).
        `matchers` adds `Matcher`s (Mercure 1.0) to `topics`, which may then
        be empty.
        A topic's `TopicPolicy` (`HubConfig.topics`) may give a subscription
        that asks for no replay its `newest`, and refuse one past its
        `max_subscribers` (`open()` raises `SubscriberLimitError`).
        `tagged=True`: `frames()` gives each event after one `matched:` line
        per selector of this subscription that matched it (`topic=<selector>`,
        `match=<topic>`, `match_urlpattern=<pattern>`; see
        `ssehub.hub._tags`), for a consumer that multiplexes several over one
        stream.
        Use it as `async with hub.subscribe(...) as events: async for ...`.
        """
        selection = self._selection(topics, matchers, tagged)
        return EventSubscription(
            self._owner,
            selection,
            self._checked_id(last_event_id),
            frozenset(private_topics),
            self._newest(selection.selectors, last_event_id, newest),
        )

    def subscribe_stream(
        self,
        transport: asyncio.WriteTransport,
        topics: str | Iterable[str],
        *,
        last_event_id: str | None = None,
        newest: int = 0,
        private_topics: Iterable[str | Matcher] = (),
        matchers: Iterable[Matcher] = (),
        tagged: bool = False,
    ) -> StreamSubscription:
        """A subscription that writes the encoded events of `topics` straight
        to `transport` (for servers). Open it with `await sub.open(prefix)`;
        forward the protocol's `pause_writing`, `resume_writing` and
        `connection_lost` to it. The replay is written a page at a time,
        each once the transport has room: a subscriber that does not read
        costs about one page, not its whole history. `newest` as in
        `subscribe()`; after a replay a `LIVE_EVENT` marker is written.
        Topic policies apply as in `subscribe()`; `tagged` as in `subscribe()`."""
        selection = self._selection(topics, matchers, tagged)
        if last_event_id is not None:
            self._checked_id(last_event_id)
        if type(newest) is not int or newest or (last_event_id is None and self.policies.watched):
            newest = self._newest(selection.selectors, last_event_id, newest)
        return StreamSubscription(
            self._owner, selection, last_event_id, transport, frozenset(private_topics), newest
        )

    def _selection(
        self, topics: str | Iterable[str], matchers: Iterable[Matcher], tagged: bool
    ) -> Selection:
        """`topics` and `matchers` validated (`ValueError` naming the
        problem) and filed as a subscription does, shared with earlier
        subscriptions that gave equal ones (as tuples)."""
        cache = self._selections
        tagged = bool(tagged)
        if (type(topics) is tuple or type(topics) is str) and type(matchers) is tuple:
            key = (topics, matchers, tagged)
            try:
                return cache[key]
            except KeyError:
                pass
            except TypeError:  # an unhashable item: refused below
                return Selection(_selectors(topics, matchers), tagged)
            selection = cache[key] = Selection(_selectors(topics, matchers), tagged)
            if len(cache) > _SELECTIONS:  # the oldest goes
                del cache[next(iter(cache))]
            return selection
        return Selection(_selectors(topics, matchers), tagged)

    def _checked_id(self, last_event_id: str | None) -> str | None:
        limit = self.config.max_last_event_id
        if last_event_id is not None and len(last_event_id) > limit:
            raise ValueError(f"Last-Event-ID is longer than {limit} characters")
        return last_event_id

    def _newest(
        self, selectors: tuple[str | Matcher, ...], last_event_id: str | None, newest: int
    ) -> int:
        """The newest-N asked, else (no replay asked) what the topics'
        policies give."""
        bound = self.backend.limits.most_events
        if type(newest) is not int or not 0 <= newest <= bound:
            raise ValueError(
                f"newest must be an int from 0 to {bound} (the history bound), not {newest!r}"
            )
        if newest == 0 and last_event_id is None and self.policies.watched:
            return self.policies.newest(selectors)
        return newest

    async def _begin(
        self, sub: Subscription, last_event_id: str | None, newest: int = 0
    ) -> tuple[Resume, Record | None, ReplayPages | None]:
        if self._state != "running":
            raise HubClosedError(f"cannot subscribe: the hub is {self._state}")
        replay = last_event_id is not None or newest > 0
        feed = self._feed
        if feed is not None and replay:
            # Another process's events may not have come through the feed
            # yet, the one resumed from included: let the feed catch up with
            # the store first, or they would be held as live and sent after
            # the replay, behind newer ones (the resumed one: twice).
            try:
                await feed.reached(await self._shared_position())
            except BaseException:  # the store did not answer: as a failed read below
                sub.close()
                raise
            if self._state != "running":
                raise HubClosedError(f"cannot subscribe: the hub is {self._state}")
        group = self._fanout.attach(sub)  # from now on live events are held for it
        if sub.reason is not None:  # it closed while the feed caught up: its release came first
            self._fanout.detach(sub)
        selectors = group.selectors
        topics = None if selectors.any or selectors.patterns else sub.topics
        if self.policies.watched:
            # the topics it names exactly, also beside a `*` or a template
            # (adding one must not take it past a topic's limit)
            exact: Iterable[str] = sub.topics if topics is not None else selectors.exact
            if "*" in sub.key:  # its group keeps the `*` alone
                exact = [t for t in sub.topics if t != "*" and not _is_template(t)]
            self._check_limits(sub, exact)
        try:
            first = None
            gap = False
            if last_event_id is not None:
                after = None if last_event_id == "earliest" else last_event_id
                first = await self.backend.history(topics, after, limit=self.config.replay_page)
                gap = not first.found
            elif newest:
                count = newest if topics is not None else max(newest, self.config.replay_page)
                first = await self.backend.newest(topics, count)
            last_id = await self.backend.last_id()
        except BaseException:
            sub.close()
            raise
        gap_record = None
        pages = None  # no replay asked: nothing to read
        if replay:
            if sub.reason is None:
                self._counters.replays += 1
                if gap:
                    self._counters.gaps += 1
                    gap_record = self._gap_record(last_event_id)
            pages = self._replays.pages(
                sub, group, topics, first, 0 if last_event_id is not None else newest
            )
        start = last_id or "earliest"
        resume = self._resume
        if gap or resume.last_event_id != start:
            resume = Resume(start, gap, 0)
            if not gap:  # frozen: subscribers that start at the same id share one
                self._resume = resume
        return resume, gap_record, pages

    def _check_limits(self, sub: Subscription, topics: Iterable[str]) -> None:
        """Refuse `sub` (attached) if it takes a topic past its policy's
        `max_subscribers`, counted as `subscribers(topic)` (with presence:
        every hub's)."""
        for topic in topics:
            policy = self.policies.policy(topic)
            limit = None if policy is None else policy.max_subscribers
            if limit is not None and self.subscribers(topic) > limit:
                self._counters.refused += 1
                sub.close()
                raise SubscriberLimitError(topic, limit, SUBSCRIBER_LIMIT_RETRY)

    async def _shared_position(self) -> int:
        backend = self.backend
        assert isinstance(backend, SharedBackend)
        return await backend.newest_position()

    async def _settled(self) -> None:
        """Wait until every publish started so far has been fanned out (or
        failed). Later publishes are not waited for, so this cannot starve.
        Fanned out is queued, not yet written: a replay then has the fan-out
        write its subscriber what it owes it (`FanOut.catch_up`)."""
        if not self._inflight:
            return
        await self._settle_waiters.wait(self._ticket)

    def _gap_record(self, last_event_id: str | None) -> Record:
        ev = Event(json.dumps({"lastEventID": last_event_id}), GAP_EVENT)
        return Record((), ev, self._clock.time(), encode_event(ev))

    # -- heartbeats ------------------------------------------------------------

    async def _heartbeats(self) -> None:
        interval = self.config.heartbeat
        fanout = self._fanout
        while True:
            await self._clock.sleep(interval)
            self._tick += 1
            tick = self._tick
            for group in fanout.groups():
                for sub in group.subscribers:
                    sub._heartbeat(_HEARTBEAT, tick)
            fanout.reap()

    # -- who is watching ------------------------------------------------------

    def subscribers(self, topic: str) -> int:
        """How many subscriptions get the events of `topic` now: those that
        name it (a topic, an exact `Matcher`), and those whose `*`, URI
        template or URL pattern matches it. With a
        store that keeps presence (Redis), those of every hub on it: this
        hub's now, the others' as last read (at most about a second old)."""
        count = self._fanout.count(topic)
        if self._presence is not None:
            count += self._presence.count(topic)
        return count

    def share_document(self, key: str, document: str) -> None:
        """Attach `document` (e.g. a subscription's JSON) to this hub's
        presence under `key`, until `drop_document(key)`: other hubs on a
        store that keeps presence see it in `peer_documents()`. Without
        such a store it goes nowhere (nothing to share with)."""
        if self._presence is not None:
            self._presence.share(key, document)

    def drop_document(self, key: str) -> None:
        """Withdraw what `share_document(key, ...)` shared."""
        if self._presence is not None:
            self._presence.unshare(key)

    async def peer_documents(self) -> list[str]:
        """The documents the other live hubs on this store share now (read
        from the store; empty without one that keeps presence)."""
        if self._presence is None:
            return []
        return await self._presence.documents()

    def on_watch(self, callback: WatchCallback) -> Callable[[], None]:
        """Call `callback(topic, watching)` when a topic that subscriptions
        name exactly gains its first (`True`) or loses its last (`False`),
        so the app can start and stop producing it. With a store that keeps
        presence (Redis), "first" and "last" are across every hub on it, and
        each change is told once, on the hub whose subscriber made it (a hub
        killed outright: by the hub that notices, within three
        `presence_interval`s). `*` and URI templates
        count in `subscribers()` but do not fire it (they name no topic).
        It runs on the hub's loop, soon after the change (never inside the
        fan-out); an exception it raises is logged. Returns a function that
        removes it. (Also `Hub(on_watch=callback)`.)"""
        watchers = self._fanout.watchers
        watchers.append(callback)

        def remove() -> None:
            if callback in watchers:
                watchers.remove(callback)

        return remove

    # -- introspection -----------------------------------------------------------

    def statistics(self) -> HubStatistics:
        by_topic: dict[str, int] = {}
        total = replaying = held = 0
        for group in self._fanout.groups():
            n = len(group.subscribers)
            total += n
            # its selectors: 0.x topics and templates, and 1.0 matchers by
            # their value (an exact matcher under its topic)
            selectors = group.selectors
            for topic in {*selectors.selectors, *(m.value for m in selectors.matchers)}:
                by_topic[topic] = by_topic.get(topic, 0) + n
            for sub in group.subscribers:
                replaying += sub.replaying
                held += sub.held_bytes
        c = self._counters
        return HubStatistics(
            state=self._state,
            subscribers=total,
            subscribers_by_topic=by_topic,
            events_published=c.published,
            events_delivered=c.delivered,
            bytes_delivered=c.delivered_bytes,
            replays=c.replays,
            events_replayed=c.replayed,
            gaps=c.gaps,
            disconnects_slow=c.slow,
            disconnects_stalled=c.stalled,
            events_from_peers=0 if self._feed is None else self._feed.remote,
            publishes_replayed=c.publishes_replayed,
            events_by_topic=dict(c.by_topic),
            recent_disconnects=tuple(c.recent_drops),
            groups=len(self._fanout),
            replaying=replaying,
            bytes_held=held,
            subscriptions_refused=c.refused,
            policy_cache=self.policies.cached(),
            presence=None if self._presence is None else self._presence.statistics(),
        )
