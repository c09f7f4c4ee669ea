"""The hub's counters and the snapshot `Hub.statistics()` gives of them."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

__all__ = ("Counters", "HubStatistics", "PresenceStatistics", "State")

State = Literal["new", "running", "draining", "closed"]

_TOPIC_COUNTERS = 10_000


@dataclass(frozen=True, slots=True)
class PresenceStatistics:
    """This hub's presence in a store that keeps it (Redis), since it started."""

    writes: int = 0
    """Writes of this hub's entry the store answered (changes and refreshes)."""
    write_failures: int = 0
    """Writes that failed (the store did not answer); retried."""
    lost: int = 0
    """Times the store had removed this hub's entry (taken for dead by the
    others: not refreshed within its TTL); each time written again, whole."""
    peers: int = 0
    """The other live hubs on the store, as last read."""
    peer_subscriptions: int = 0
    """The other hubs' subscriptions, as last read (what `subscribers()` adds)."""
    refresh_age: float | None = None
    """Seconds since the store last answered a write of this hub's entry;
    None before the first."""


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
    publishes_replayed: int = 0
    """Publishes answered from history: retries of an event stored already
    under the same id with the same payload (idempotent), stored and fanned
    out only the first time."""
    events_by_topic: dict[str, int] = field(default_factory=dict)
    recent_disconnects: tuple[tuple[float, str, tuple[str, ...]], ...] = ()
    """The last slow or stalled disconnects: (Unix time, reason, topics)."""
    groups: int = 0
    """Fan-out groups (subscribers with the same selectors and rights share one)."""
    replaying: int = 0
    """Subscriptions reading history now (paged, never all at once)."""
    bytes_held: int = 0
    """Bytes the hub holds for subscribers that are not keeping up (live
    events held during a replay, backlogs of paused streams), beyond what
    the sockets buffer; each subscriber's share is bounded by
    `HubConfig.max_buffer_bytes`."""
    subscriptions_refused: int = 0
    """Subscriptions refused because a topic had its policy's
    `max_subscribers` (`SubscriberLimitError`)."""
    policy_cache: int = 0
    """Topics whose policy (`HubConfig.topics`) is remembered (bounded)."""
    presence: PresenceStatistics | None = None
    """With a store that keeps presence (Redis); else None."""


class Counters:
    """What the hub counts: bumped on the hot path, read by `statistics()`."""

    __slots__ = (
        "by_topic",
        "delivered",
        "delivered_bytes",
        "gaps",
        "published",
        "publishes_replayed",
        "recent_drops",
        "refused",
        "remote",
        "replayed",
        "replays",
        "slow",
        "stalled",
    )

    def __init__(self) -> None:
        self.published = 0
        self.publishes_replayed = 0
        self.delivered = 0
        self.delivered_bytes = 0
        self.replays = 0
        self.replayed = 0
        self.gaps = 0
        self.slow = 0
        self.stalled = 0
        self.remote = 0
        self.refused = 0
        self.by_topic: dict[str, int] = {}
        self.recent_drops: deque[tuple[float, str, tuple[str, ...]]] = deque(maxlen=20)

    def count_published(self, topics: tuple[str, ...]) -> None:
        self.published += 1
        counts = self.by_topic
        for topic in topics:
            counted = counts.get(topic)
            if counted is not None:
                counts[topic] = counted + 1
            elif len(counts) < _TOPIC_COUNTERS:
                counts[topic] = 1
            else:  # bounded: a hub with a topic per user must not grow here
                counts["(other topics)"] = counts.get("(other topics)", 0) + 1

    def count_drop(self, when: float, reason: str, topics: tuple[str, ...]) -> None:
        if reason == "slow":
            self.slow += 1
        elif reason == "stalled":
            self.stalled += 1
        self.recent_drops.append((when, reason, topics))
