"""Mercure's subscription events and subscriptions API (opt-in).

When on, each stream gets a subscriber id, and the hub publishes a private
update on `/.well-known/mercure/subscriptions/{topic}/{subscriber}` when it
starts (`"active": true`) and ends (`"active": false`) — one per topic
selector — so apps can tell who is watching. The same documents are listed
at `GET /.well-known/mercure/subscriptions[/{topic}[/{subscriber}]]`, to
subscribers whose JWT allows that URL. The events are published in order
and once by one worker from a bounded queue (see `Registry`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from ssehub.hub import Hub, HubClosedError

__all__ = ("SUBSCRIPTIONS_PATH", "Active", "Registry", "RegistryStatistics")

SUBSCRIPTIONS_PATH = "/.well-known/mercure/subscriptions"
_CONTEXT = "https://mercure.rocks/"
log = logging.getLogger("ssehub.mercure")


@dataclass(frozen=True, slots=True)
class Active:
    subscriber: str
    topics: tuple[str, ...]
    payload: Any


def resource(topic: str, subscriber: str | None = None) -> str:
    path = f"{SUBSCRIPTIONS_PATH}/{quote(topic, safe='')}"
    return path if subscriber is None else f"{path}/{quote(subscriber, safe='')}"


def document(topic: str, active: Active, *, is_active: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": resource(topic, active.subscriber),
        "type": "Subscription",
        "subscriber": active.subscriber,
        "topic": topic,
        "active": is_active,
    }
    if active.payload is not None:
        doc["payload"] = active.payload
    return doc


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
    each once (one update per topic selector, as the Mercure draft asks). A
    subscription that ends while its `true` is still queued is announced
    not at all (coalesced); past `max_pending` a new subscription is not
    announced, nor its end (dropped). Both are counted in `statistics()`."""

    def __init__(self, hub: Hub, *, max_pending: int = 10_000, batch: int = 64) -> None:
        self.hub = hub
        self.max_pending = max_pending
        self.batch = batch
        self._active: dict[str, Active] = {}
        # (subscriber, is_active) -> the subscription, in the order they happened
        self._pending: dict[tuple[str, bool], Active] = {}
        self._worker: asyncio.Task[None] | None = None
        self._coalesced = 0
        self._dropped = 0
        self._unannounced: set[str] = set()  # dropped opens: their close is dropped too

    def new_id(self) -> str:
        return f"urn:uuid:{uuid.uuid4()}"

    def statistics(self) -> RegistryStatistics:
        return RegistryStatistics(len(self._pending), self._coalesced, self._dropped)

    async def opened(self, active: Active) -> None:
        """A stream started: listed at once, announced by the worker (this
        never waits, so a client leaving meanwhile cannot cancel it)."""
        self._active[active.subscriber] = active
        self.hub.share_document(active.subscriber, _shared(active))
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
        if self._pending.pop((subscriber, True), None) is not None:
            self._coalesced += 1  # never announced: nothing to take back
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
        await asyncio.gather(
            *(
                self.hub.publish(
                    resource(topic, active.subscriber),
                    json.dumps(
                        {"@context": _CONTEXT, **document(topic, active, is_active=is_active)}
                    ),
                    private=True,
                )
                for topic in active.topics
            )
        )

    async def listing(self, raw_rest: str) -> tuple[int, dict[str, Any] | str]:
        """The API's answer for the path after `/subscriptions` (still
        URL-encoded): a status and a JSON document or a reason."""
        parts = [unquote(p) for p in raw_rest.strip("/").split("/")] if raw_rest.strip("/") else []
        if len(parts) > 2:
            return 404, "not found: use /subscriptions[/{topic}[/{subscriber}]]"
        topic = parts[0] if parts else None
        subscriber = parts[1] if len(parts) == 2 else None
        actives = [*self._active.values(), *_unshared(await self.hub.peer_documents())]
        docs = [
            document(t, a)
            for a in actives
            for t in a.topics
            if (topic is None or t == topic) and (subscriber is None or a.subscriber == subscriber)
        ]
        if subscriber is not None:
            if not docs:
                return 404, "no such subscription"
            return 200, {"@context": _CONTEXT, **docs[0]}
        last = await self.hub.backend.last_id()
        return 200, {
            "@context": _CONTEXT,
            "id": SUBSCRIPTIONS_PATH if topic is None else resource(topic),
            "type": "Subscriptions",
            "lastEventID": last or "earliest",
            "subscriptions": docs,
        }


def _shared(active: Active) -> str:
    """A subscription as the other hubs read it (`Hub.share_document`)."""
    return json.dumps([active.subscriber, active.topics, active.payload])


def _unshared(shared: list[str]) -> list[Active]:
    actives = []
    for text in shared:
        try:
            subscriber, topics, payload = json.loads(text)
            actives.append(Active(str(subscriber), tuple(map(str, topics)), payload))
        except (ValueError, TypeError):
            continue  # not one of ours: skip it
    return actives
