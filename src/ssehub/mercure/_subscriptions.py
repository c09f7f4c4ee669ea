"""Mercure's subscription events and subscriptions API (opt-in).

When on, each stream gets a subscriber id, and the hub publishes a private
update on `/.well-known/mercure/subscriptions/{topic}/{subscriber}` when it
starts (`"active": true`) and ends (`"active": false`) — one per topic
selector — so apps can tell who is watching. The same documents are listed
at `GET /.well-known/mercure/subscriptions[/{topic}[/{subscriber}]]`, to
subscribers whose JWT allows that URL.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from ssehub.hub import Hub, HubClosedError

__all__ = ("SUBSCRIPTIONS_PATH", "Active", "Registry")

SUBSCRIPTIONS_PATH = "/.well-known/mercure/subscriptions"
_CONTEXT = "https://mercure.rocks/"


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


class Registry:
    """Who is subscribed now, and the events that say so."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._active: dict[str, Active] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def new_id(self) -> str:
        return f"urn:uuid:{uuid.uuid4()}"

    async def opened(self, active: Active) -> None:
        self._active[active.subscriber] = active
        await self._announce(active, True)

    def closed(self, subscriber: str) -> None:
        """A stream ended (called from `connection_lost`, so the event is
        published by a task the registry owns)."""
        active = self._active.pop(subscriber, None)
        if active is None:
            return
        task = asyncio.get_running_loop().create_task(self._announce(active, False))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _announce(self, active: Active, is_active: bool) -> None:
        for topic in active.topics:
            doc = {"@context": _CONTEXT, **document(topic, active, is_active=is_active)}
            try:
                await self.hub.publish(
                    resource(topic, active.subscriber), json.dumps(doc), private=True
                )
            except HubClosedError:
                return  # shutting down: the hub is not taking events any more

    async def listing(self, raw_rest: str) -> tuple[int, dict[str, Any] | str]:
        """The API's answer for the path after `/subscriptions` (still
        URL-encoded): a status and a JSON document or a reason."""
        parts = [unquote(p) for p in raw_rest.strip("/").split("/")] if raw_rest.strip("/") else []
        if len(parts) > 2:
            return 404, "not found: use /subscriptions[/{topic}[/{subscriber}]]"
        topic = parts[0] if parts else None
        subscriber = parts[1] if len(parts) == 2 else None
        docs = [
            document(t, a)
            for a in self._active.values()
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
