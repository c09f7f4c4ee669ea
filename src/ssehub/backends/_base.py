"""The backend contract: storage of published events by topic.

A backend keeps bounded history and answers "what came after this id?". It
knows nothing of subscribers, buffers or HTTP; the hub owns those.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ssehub.protocol import Event

__all__ = (
    "Backend",
    "DuplicateEventIdError",
    "History",
    "HistoryLimits",
    "OrderedSharedBackend",
    "PresenceBackend",
    "PresenceSync",
    "PresenceView",
    "Record",
    "SharedBackend",
    "StoreRefusedError",
    "TopicLimits",
)


class TopicLimits(Protocol):
    """Per-topic history bounds over a backend's own (the hub's
    `TopicPolicies` is one): `bounds(topic)` is the topic's count and age,
    either None where the backend's `HistoryLimits` apply. Called for every
    topic of every publish and read: it must be cheap (cached) and safe
    from any thread."""

    @property
    def longest_age(self) -> float | None:
        """The longest age any topic is given (None: none is)."""

    @property
    def most_events(self) -> int | None:
        """The largest count any topic is given (None: none is)."""

    def bounds(self, topic: str) -> tuple[int | None, float | None]: ...


@dataclass(frozen=True, slots=True)
class HistoryLimits:
    """How much history a backend keeps, per topic.

    An event is dropped when its topic holds more than `max_events` newer
    events, or when it is older than `max_age` seconds, whichever comes
    first. Both bounds always apply: history is never unbounded.

    `topics` gives some topics bounds of their own (`TopicLimits`, the
    hub's `TopicPolicies`); the others keep these. A backend reads a
    topic's bounds with `of(topic)`.
    """

    max_events: int = 1000
    max_age: float = 3600.0
    topics: TopicLimits | None = field(default=None, compare=False, repr=False)

    def of(self, topic: str) -> tuple[int, float]:
        """`topic`'s count and age bounds."""
        if self.topics is None:
            return self.max_events, self.max_age
        count, age = self.topics.bounds(topic)
        return count or self.max_events, age or self.max_age

    def age_of(self, topics: Iterable[str]) -> float:
        """The longest age bound among `topics` (an event on several is in
        history while one of them keeps it)."""
        if self.topics is None:
            return self.max_age
        bounds = self.topics.bounds
        return max((age or self.max_age for _, age in map(bounds, topics)), default=self.max_age)

    @property
    def longest_age(self) -> float:
        """The longest age any topic is kept: what sweeps of all history keep."""
        longest = None if self.topics is None else self.topics.longest_age
        return max(self.max_age, longest or 0.0)

    @property
    def most_events(self) -> int:
        """The largest count any topic keeps (the bound of `newest=N`)."""
        most = None if self.topics is None else self.topics.most_events
        return max(self.max_events, most or 0)

    def __post_init__(self) -> None:
        if type(self.max_events) is not int or self.max_events < 1:
            raise ValueError(
                f"HistoryLimits.max_events must be an int >= 1, not {self.max_events!r}"
            )
        if not self.max_age > 0:
            raise ValueError(f"HistoryLimits.max_age must be > 0 seconds, not {self.max_age!r}")


@dataclass(frozen=True, slots=True, eq=False)
class Record:
    """One published event as stored: its topics (the first is canonical),
    the event (whose `id` is the record's id), the publish time (Unix
    seconds), the event's encoded bytes (made once and written as is to
    every subscriber), and whether it is private (only for subscribers
    authorized for one of its topics)."""

    topics: tuple[str, ...]
    event: Event
    time: float
    frame: bytes
    private: bool = False

    @property
    def id(self) -> str:
        assert self.event.id is not None
        return self.event.id

    def digest(self) -> str:
        """What makes this event the same event, whatever its id and time:
        its canonical (first) topic, the set of its topics (the order of the
        others does not matter), type, data, retry and private flag. A
        publish retried with the same id and digest is the same publish
        (idempotent); the same id with another digest is a conflict."""
        return payload_digest(self.topics, self.event, self.private)


def payload_digest(topics: tuple[str, ...], event: Event, private: bool) -> str:
    """`Record.digest()` of an event on `topics` (a backend that stores the
    fields apart recomputes it from them)."""
    canonical = [topics[0] if topics else "", sorted(set(topics))]
    fields = [canonical, event.event, event.data, event.retry, private]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class History:
    """The answer to a resume: the records after the asked id, oldest first.

    `found` is False when the id was given but is not in history (it aged
    out, or never existed here); `records` then holds all retained history
    of the topics, and the hub tells the subscriber there may be a gap.
    """

    records: list[Record]
    found: bool
    position: int | None = None
    """For a backend shared by several processes: the position of the newest
    record this read covered, in the order of `follow()`."""
    cursor: int | None = None
    """When `limit` cut the read short: pass it as `after_position` to read
    the next page. None when the read reached the end of history."""


def check_newest(n: int) -> None:
    """Raise `ValueError` for a count of newest records no backend accepts."""
    if type(n) is not int or n < 1:
        raise ValueError(f"newest: n must be an int >= 1, not {n!r}")


def check_page(after: str | None, limit: int | None, after_position: int | None) -> None:
    """Raise `ValueError` for paging arguments no backend accepts."""
    if limit is not None and (type(limit) is not int or limit < 1):
        raise ValueError(f"history limit must be an int >= 1 or None, not {limit!r}")
    if after_position is not None and after is not None:
        raise ValueError("history: give `after` or `after_position`, not both")


class DuplicateEventIdError(ValueError):
    """A publish asked for an event id that history already holds, for
    another event (another `Record.digest()`)."""

    def __init__(self, event_id: str) -> None:
        super().__init__(f"event id already used: {event_id!r}")
        self.event_id = event_id


class StoreRefusedError(OSError):
    """The store is there but refuses writes (a full disk or database, a
    read-only file): the message says which, for the publish answer, the
    log and `/readyz`."""


class Backend(Protocol):
    """What the hub needs from storage. Every backend passes the same
    conformance suite (`ssehub.testing.BackendContract`)."""

    @property
    def limits(self) -> HistoryLimits: ...

    def limit_topics(self, topics: TopicLimits | None) -> None:
        """Give some topics history bounds of their own (`limits` then
        carries them); called by the hub with its `TopicPolicies` before
        `start`. None: every topic gets `limits` again."""

    async def start(self) -> None:
        """Open connections and files; called once by the hub's start."""

    async def append(self, record: Record) -> bool:
        """Store `record`; return True once it is stored (for a durable
        backend, committed). If its id is in history already: return False
        when that record has the same `digest()` (an idempotent retry:
        nothing is stored, and the original is stored and acknowledged),
        else raise `DuplicateEventIdError`. The check and the store are one
        atomic step, even between processes sharing the backend."""

    async def history(
        self,
        topics: Collection[str] | None,
        after: str | None,
        *,
        limit: int | None = None,
        after_position: int | None = None,
    ) -> History:
        """Records of `topics` (None: every topic) published after the record
        with id `after` (None: all retained history), oldest first, each once
        even when it has several of the topics.

        Paged: at most `limit` records (None: all), and `History.cursor` to
        go on from. `after_position` (a previous page's cursor, with `after`
        None) reads the next page; records that aged out meanwhile are
        skipped, and `found` is True. A page costs about `limit` records of
        work, whatever the size of history."""

    async def newest(self, topics: Collection[str] | None, n: int) -> History:
        """The newest `n` records of each of `topics` (None: the newest `n`
        of all history), oldest first, each once even when it has several
        of the topics; within the history bounds. `found` is True;
        `position` as for `history()`. It costs about `n` records of work
        per topic, whatever the size of history."""

    async def last_id(self) -> str | None:
        """The id of the newest record in history, or None when empty.
        (With per-topic ages: the newest record younger than the longest
        age, `limits.longest_age`.)"""

    async def aclose(self) -> None:
        """Release what `start` opened."""


@runtime_checkable
class SharedBackend(Backend, Protocol):
    """A backend shared by several hub processes (Redis): each hub follows
    the records appended anywhere and fans out those of the others."""

    async def newest_position(self) -> int:
        """The position of the newest record (0 when there is none)."""

    def follow(self, after: int) -> AsyncIterator[tuple[int, Record]]:
        """Every record appended after position `after`, by any process, as
        it comes, with its position; it ends only when cancelled."""


@dataclass(frozen=True, slots=True)
class PresenceSync:
    """The answer to `PresenceBackend.presence_sync()`."""

    watched: tuple[str, ...]
    """Topics that had no subscriber on any live hub and have one now,
    because of this write."""
    unwatched: tuple[str, ...]
    """Topics that had subscribers and have none on any live hub now,
    because of this write or of the dead hubs it removed."""
    lost: bool
    """This hub's entry had expired (and was removed, with what it held):
    nothing was written; send the whole state again with `full=True`."""
    version: int
    """The presence version after this write (see `presence_view`)."""


@dataclass(frozen=True, slots=True)
class PresenceView:
    """The subscription groups of the other live hubs: encoded selector set
    -> subscriptions, summed over the hubs."""

    version: int
    groups: dict[str, int]
    hubs: int = 0
    """How many other live hubs there are."""


@runtime_checkable
class PresenceBackend(Protocol):
    """A shared backend that also keeps who is subscribed on each hub
    process (Redis): each hub writes its own entry, kept alive by a refresh,
    and reads the others'. An entry not refreshed within its `ttl` is dead:
    the next write of any hub removes it. Counts are absolute (a write
    repeated after a lost reply changes nothing); a count of 0 or a
    document of None removes the field. Costs: one round trip per write,
    whatever it holds; a refresh (empty write) is O(1) writes."""

    async def presence_sync(
        self,
        hub: str,
        ttl: float,
        *,
        groups: Mapping[str, int],
        named: Mapping[str, int],
        documents: Mapping[str, str | None],
        full: bool = False,
    ) -> PresenceSync:
        """Refresh `hub`'s entry for `ttl` more seconds, remove dead hubs,
        and set its `groups` (encoded selector set -> subscriptions), `named`
        (topic -> subscriptions naming it exactly) and `documents`
        (subscription id -> a document for the subscriptions API). `full`:
        these are the whole state (a hub's first write, or after `lost`)."""

    async def presence_view(self, hub: str, known: int) -> PresenceView | None:
        """The groups of the live hubs other than `hub`, or None when the
        presence version is still `known` (nothing changed)."""

    async def presence_documents(self, hub: str) -> list[str]:
        """The documents of the live hubs other than `hub`."""

    async def presence_leave(self, hub: str) -> tuple[str, ...]:
        """Remove `hub`'s entry at once (a clean stop); the topics that now
        have no subscriber on any hub."""


@runtime_checkable
class OrderedSharedBackend(SharedBackend, Protocol):
    """A shared backend whose `follow()` brings this process's own appends
    too (SQLite shared by `serve --workers N`): the hub fans out every record
    from its feed, in position order, so every process delivers the same
    events in the same order."""

    @property
    def appended_position(self) -> int:
        """A position at or past the newest record this process has appended
        (0 before any): once the feed has passed it, the record is fanned out."""
