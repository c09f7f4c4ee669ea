"""Mercure's subscription events and subscriptions API (opt-in), in both
dialects, by one `Registry`.

When on, each stream gets a subscriber id (a random `urn:uuid:`, one per
connection, never derived from the token: it would disclose `sub` to every
watcher), and the hub publishes a private update when each of its
subscriptions starts (`"active": true`) and ends (`"active": false`). A
subscription is announced once, in the dialect the stream spoke:

- 0.x, one per topic selector: on
  `/.well-known/mercure/subscriptions/{topic}/{subscriber}`, a JSON-LD
  `Subscription` with the JWT's `mercure.payload`;
- 1.0 (draft 1.0.0-alpha.3, "Active Subscriptions"), one per matcher: on
  `/.well-known/mercure/subscriptions/{match_type}/{match}/{subscriber}`
  (each variable percent-encoded once), a `subscription` document with the
  payload of the first `subscribe` detail that matches the matcher, under
  the SSE event type `mercure`.

The two topic shapes differ in their number of segments, so the same
documents are listed at `GET /.well-known/mercure/subscriptions[...]` in the
dialect of the request's token (see `Mercure`). The events are published in
order and once by one worker from a bounded queue (see `Registry`).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from ssehub.hub import Hub, HubClosedError

__all__ = (
    "LISTING_PAGE",
    "SUBSCRIPTIONS_PATH",
    "Active",
    "Entry",
    "Page",
    "Registry",
    "RegistryStatistics",
)

SUBSCRIPTIONS_PATH = "/.well-known/mercure/subscriptions"
LISTING_PAGE = 1000
"""The most subscription documents in one 1.0 collection response (and the
largest `limit`); the `next` link continues after the last one."""
_CONTEXT = "https://mercure.rocks/"
log = logging.getLogger("ssehub.mercure")


@dataclass(frozen=True, slots=True)
class Entry:
    """One subscription of a stream: a 0.x topic selector (`match_type`
    None) or a 1.0 matcher (`exact`, `urlpattern`), and its payload."""

    match: str
    match_type: str | None = None
    payload: Any = None

    def resource(self, subscriber: str) -> str:
        """The topic of its events, and its URL in the API."""
        if self.match_type is None:
            return resource(self.match, subscriber)
        return f"{v1_resource(self.match_type, self.match)}/{quote(subscriber, safe='')}"

    def document(self, subscriber: str, *, is_active: bool = True) -> dict[str, Any]:
        doc: dict[str, Any]
        if self.match_type is None:
            doc = {
                "id": self.resource(subscriber),
                "type": "Subscription",
                "subscriber": subscriber,
                "topic": self.match,
                "active": is_active,
            }
        else:
            doc = {
                "id": self.resource(subscriber),
                "type": "subscription",
                "match_type": self.match_type,
                "match": self.match,
                "subscriber": subscriber,
                "active": is_active,
            }
        if self.payload is not None:
            doc["payload"] = self.payload
        return doc


@dataclass(frozen=True, slots=True)
class Active:
    """A stream's subscriptions, under its subscriber id; `seq` orders the
    listings (given by `Registry.opened`)."""

    subscriber: str
    entries: tuple[Entry, ...]
    seq: int = 0


def resource(topic: str, subscriber: str | None = None) -> str:
    """A 0.x subscription's URL (or its topic's collection)."""
    path = f"{SUBSCRIPTIONS_PATH}/{quote(topic, safe='')}"
    return path if subscriber is None else f"{path}/{quote(subscriber, safe='')}"


def v1_resource(match_type: str | None = None, match: str | None = None) -> str:
    """A 1.0 collection's URL: all, or one matcher's."""
    if match_type is None or match is None:
        return SUBSCRIPTIONS_PATH
    return f"{SUBSCRIPTIONS_PATH}/{match_type}/{quote(match, safe='')}"


@dataclass(frozen=True, slots=True)
class Page:
    """A 1.0 listing: the status and document (or a reason), the cursor
    after its last document when more follow, and the hub's last event id
    when it was taken (`earliest`: none yet)."""

    status: int
    answer: dict[str, Any] | str
    next: tuple[int, int] | None = None
    last_event_id: str = "earliest"


@dataclass(frozen=True, slots=True)
class RegistryStatistics:
    """`Registry.statistics()`: the subscription events still to publish, and
    the ones never published (see `Registry`)."""

    pending: int
    """State changes waiting for the worker."""
    coalesced: int
    """Subscriptions that ended before their `"active": true` was published:
    neither event is published (nobody was told it existed)."""
    dropped: int
    """State changes refused because `max_pending` were waiting."""


class Registry:
    """Who is subscribed now, and the events that say so.

    The events are published by one worker the registry owns, from a queue
    of at most `max_pending` state changes, in the order they happened:
    a subscription's `"active": true` always comes before its `false`, and
    each once (one update per topic selector or matcher, as the Mercure
    drafts ask). A subscription that ends while its `true` is still queued
    is announced not at all (coalesced) — unless a listing showed it
    meanwhile: then both are, so whoever read the listing learns it ended;
    past `max_pending` a new subscription is not announced, nor its end
    (dropped). Both are counted in `statistics()`."""

    def __init__(self, hub: Hub, *, max_pending: int = 10_000, batch: int = 64) -> None:
        self.hub = hub
        self.max_pending = max_pending
        self.batch = batch
        self._active: dict[str, Active] = {}
        # (match_type, match) -> its subscriptions, oldest first: a listing
        # of one topic or matcher costs its own subscriptions, not all
        self._by_match: dict[tuple[str | None, str], dict[str, Active]] = {}
        # every subscription by `seq`, those that ended dropped now and then:
        # a page after a cursor starts there (bisect), not after a scan
        self._order: list[Active] = []
        # (subscriber, is_active) -> the subscription, in the order they happened
        self._pending: dict[tuple[str, bool], Active] = {}
        self._worker: asyncio.Task[None] | None = None
        self._coalesced = 0
        self._dropped = 0
        self._unannounced: set[str] = set()  # dropped opens: their close is dropped too
        self._seq = 0
        self._salt = secrets.randbelow(1000)
        self._listed = 0  # the newest `seq` a listing may have shown

    def new_id(self) -> str:
        return f"urn:uuid:{uuid.uuid4()}"

    def statistics(self) -> RegistryStatistics:
        return RegistryStatistics(len(self._pending), self._coalesced, self._dropped)

    async def opened(self, active: Active) -> None:
        """A stream started: listed at once, announced by the worker (this
        never waits, so a client leaving meanwhile cannot cancel it)."""
        # ordered across hubs too (the listings of presence on Redis): the
        # time in ns, a salt of this registry's in the last three digits
        self._seq = max(self._seq + 1000, time.time_ns() // 1000 * 1000 + self._salt)
        active = Active(active.subscriber, active.entries, self._seq)
        self._active[active.subscriber] = active
        self.hub.share_document(active.subscriber, _shared(active))
        self._order.append(active)
        for entry in active.entries:
            self._by_match.setdefault((entry.match_type, entry.match), {})[active.subscriber] = (
                active
            )
        if len(self._pending) >= self.max_pending:
            self._dropped += 1
            self._unannounced.add(active.subscriber)
            return
        self._queue((active.subscriber, True), active)

    def closed(self, subscriber: str) -> None:
        """A stream ended (safe from `connection_lost`)."""
        active = self._active.pop(subscriber, None)
        if active is None:
            return
        self.hub.drop_document(subscriber)
        for entry in active.entries:
            key = (entry.match_type, entry.match)
            same = self._by_match.get(key)
            if same is not None:
                same.pop(subscriber, None)
                if not same:
                    del self._by_match[key]
        if len(self._order) > 2 * len(self._active) + 64:  # amortised: once per N closes
            self._order = [a for a in self._order if self._active.get(a.subscriber) is a]
        if active.seq > self._listed and self._pending.pop((subscriber, True), None) is not None:
            self._coalesced += 1  # never announced nor listed: nothing to take back
            return
        if subscriber in self._unannounced:
            self._unannounced.discard(subscriber)
            self._dropped += 1
            return
        self._queue((subscriber, False), active)

    def _queue(self, key: tuple[str, bool], active: Active) -> None:
        self._pending[key] = active
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(
                self._work(), name="ssehub-subscription-events"
            )

    async def aclose(self) -> None:
        """Wait for the events still queued."""
        if self._worker is not None:
            await asyncio.shield(self._worker)

    async def _work(self) -> None:
        try:
            while self._pending:
                # a batch of distinct subscribers, published together (one
                # store commit), each subscriber's changes still in order
                batch: list[tuple[Active, bool]] = []
                seen: set[str] = set()
                for subscriber, is_active in self._pending:
                    if subscriber in seen or len(batch) >= self.batch:
                        break
                    seen.add(subscriber)
                    batch.append((self._pending[subscriber, is_active], is_active))
                for active, is_active in batch:
                    del self._pending[active.subscriber, is_active]
                outcomes = await asyncio.gather(
                    *(self._announce(a, is_active) for a, is_active in batch),
                    return_exceptions=True,
                )
                if any(isinstance(o, HubClosedError) for o in outcomes):
                    self._pending.clear()  # shutting down: the hub takes no more events
                for outcome in outcomes:
                    if isinstance(outcome, Exception) and not isinstance(outcome, HubClosedError):
                        log.warning("subscription event not published: %r", outcome)
        finally:
            self._worker = None

    async def _announce(self, active: Active, is_active: bool) -> None:
        subscriber = active.subscriber
        await asyncio.gather(
            *(
                self.hub.publish(
                    entry.resource(subscriber),
                    json.dumps(_event_document(entry, subscriber, is_active)),
                    # 1.0: the reserved SSE type no publisher may send
                    event="message" if entry.match_type is None else "mercure",
                    private=True,
                )
                for entry in active.entries
            )
        )

    async def listing(self, raw_rest: str) -> tuple[int, dict[str, Any] | str]:
        """The 0.x API's answer for the path after `/subscriptions` (still
        URL-encoded): a status and a JSON document or a reason."""
        parts = [unquote(p) for p in raw_rest.strip("/").split("/")] if raw_rest.strip("/") else []
        if len(parts) > 2:
            return 404, "not found: use /subscriptions[/{topic}[/{subscriber}]]"
        topic = parts[0] if parts else None
        subscriber = parts[1] if len(parts) == 2 else None
        last = await self.hub.backend.last_id()  # first: see `v1_listing`
        self._listed = self._seq
        actives = self._active if topic is None else self._by_match.get((None, topic), {})
        docs = [
            e.document(a.subscriber)
            for a in [*actives.values(), *await self._peers()]
            for e in a.entries
            if e.match_type is None
            and (topic is None or e.match == topic)
            and (subscriber is None or a.subscriber == subscriber)
        ]
        if subscriber is not None:
            if not docs:
                return 404, "no such subscription"
            return 200, {"@context": _CONTEXT, **docs[0]}
        return 200, {
            "@context": _CONTEXT,
            "id": SUBSCRIPTIONS_PATH if topic is None else resource(topic),
            "type": "Subscriptions",
            "lastEventID": last or "earliest",
            "subscriptions": docs,
        }

    async def v1_listing(
        self,
        match_type: str | None,
        match: str | None,
        subscriber: str | None,
        *,
        limit: int = LISTING_PAGE,
        after: tuple[int, int] | None = None,
    ) -> Page:
        """The 1.0 API's answer: the subscription of `subscriber` to
        `match_type`/`match` (404 if none), or the collection (all, or one
        matcher's), at most `limit` documents after the cursor `after`,
        oldest first. The cursor (the hub's last event id) is read before
        the subscriptions: an event published in between is replayed to a
        client that resumes from it, never lost."""
        last = await self.hub.backend.last_id() or "earliest"
        self._listed = self._seq  # a subscription shown here is announced ending
        if subscriber is not None:
            active = self._active.get(subscriber) or next(
                (a for a in await self._peers() if a.subscriber == subscriber), None
            )
            for entry in () if active is None else active.entries:
                if (entry.match_type, entry.match) == (match_type, match):
                    return Page(200, entry.document(subscriber), None, last)
            return Page(404, "no such subscription", None, last)
        docs: list[dict[str, Any]] = []
        cursor: tuple[int, int] | None = None
        actives: Iterable[Active]
        if match is not None:
            actives = self._by_match.get((match_type, match), {}).values()
        elif after is None:
            actives = self._active.values()
        else:
            order = self._order
            start = bisect.bisect_left(order, after[0], key=lambda a: a.seq)
            alive = self._active
            picked = (order[i] for i in range(start, len(order)))  # (islice would walk to start)
            actives = (a for a in picked if alive.get(a.subscriber) is a)
        peers = await self._peers()
        if peers:  # other hubs' (presence on Redis): one order for every hub
            if match is not None:
                peers = [
                    p
                    for p in peers
                    if any((e.match_type, e.match) == (match_type, match) for e in p.entries)
                ]
            actives = sorted([*actives, *peers], key=lambda a: (a.seq, a.subscriber))
        for active in actives:
            if after is not None and active.seq < after[0]:
                continue
            for index, entry in enumerate(active.entries):
                if entry.match_type is None or (after is not None and (active.seq, index) <= after):
                    continue
                if match_type is not None and (entry.match_type, entry.match) != (
                    match_type,
                    match,
                ):
                    continue
                if len(docs) == limit:
                    return Page(200, _collection(match_type, match, last, docs), cursor, last)
                docs.append(entry.document(active.subscriber))
                cursor = (active.seq, index)
        return Page(200, _collection(match_type, match, last, docs), None, last)

    async def _peers(self) -> list[Active]:
        """The subscriptions other hubs on the store share (presence on
        Redis; `Hub.peer_documents`); none without such a store."""
        return _unshared(await self.hub.peer_documents())


def _event_document(entry: Entry, subscriber: str, is_active: bool) -> dict[str, Any]:
    doc = entry.document(subscriber, is_active=is_active)
    return doc if entry.match_type is not None else {"@context": _CONTEXT, **doc}


def _collection(
    match_type: str | None, match: str | None, last: str, docs: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": v1_resource(match_type, match),
        "type": "subscriptions",
        "last_event_id": last,
        "subscriptions": docs,
    }


def _shared(active: Active) -> str:
    """A subscription as the other hubs read it (`Hub.share_document`)."""
    entries = [[e.match, e.match_type, e.payload] for e in active.entries]
    return json.dumps([active.subscriber, active.seq, entries])


def _unshared(shared: list[str]) -> list[Active]:
    actives = []
    for text in shared:
        try:
            subscriber, seq, entries = json.loads(text)
            found = tuple(Entry(str(m), None if t is None else str(t), p) for m, t, p in entries)
            actives.append(Active(str(subscriber), found, int(seq)))
        except (ValueError, TypeError):
            continue  # not one of ours: skip it
    return actives
