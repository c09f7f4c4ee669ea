"""Hub settings: frozen and validated on construction."""

from __future__ import annotations

from dataclasses import dataclass

from ._policies import TopicPolicy

__all__ = ("HubConfig",)


@dataclass(frozen=True, slots=True)
class HubConfig:
    """How the hub treats its subscribers.

    - `heartbeat`: seconds between heartbeat comments on every stream (below
      the common 30 s proxy idle timeout). A stream whose peer has not taken
      any bytes for two heartbeats is closed (reason "stalled").
    - `max_buffer_events`, `max_buffer_bytes`: what the hub holds for one
      subscriber that is not keeping up, beyond the socket's own buffers.
      Past either bound the subscriber is disconnected (reason "slow"); it
      reconnects and resumes from history, so nothing is lost and memory
      stays bounded.
    - `max_last_event_id`: longest `Last-Event-ID` accepted (characters).
    - `replay_page`: events read from history at a time when a subscriber
      resumes; the next page is read only once the subscriber has taken
      this one, so a replay never holds more than about a page.
    - `shutdown_retry`: at shutdown each stream ends with `retry: N`, N
      drawn between this many milliseconds and twice as many, so clients
      come back soon (to the next instance) but not all at once. None: no
      hint.
    - `topics`: per-topic policies (`TopicPolicy`: history count and age,
      newest-N on open, maximum subscribers) for the topics their selectors
      match; the first that matches a topic wins, a topic none matches gets
      the defaults. The hub gives the history bounds to its backend.
    - `presence_interval`: with a store shared by several hubs that keeps
      presence (Redis), seconds between refreshes of this hub's entry
      there; the entry lives three intervals (a hub killed outright
      vanishes from the others' counts within that). Changes are written
      as they happen, not only at refreshes.
    """

    heartbeat: float = 15.0
    max_buffer_events: int = 1000
    max_buffer_bytes: int = 1024 * 1024
    max_last_event_id: int = 1024
    replay_page: int = 256
    shutdown_retry: int | None = 1000
    topics: tuple[TopicPolicy, ...] = ()
    presence_interval: float = 5.0

    def __post_init__(self) -> None:
        for name in ("heartbeat", "presence_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"HubConfig.{name} must be a number of seconds, not {value!r}")
        if not self.heartbeat > 0:
            raise ValueError(f"HubConfig.heartbeat must be > 0 seconds, not {self.heartbeat!r}")
        if not 0.05 <= self.presence_interval <= 3600:
            raise ValueError(
                "HubConfig.presence_interval must be from 0.05 to 3600 seconds,"
                f" not {self.presence_interval!r}"
            )
        for name in ("max_buffer_events", "max_buffer_bytes", "max_last_event_id", "replay_page"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"HubConfig.{name} must be an int >= 1, not {value!r}")
        retry = self.shutdown_retry
        if retry is not None and (type(retry) is not int or retry < 0):
            raise ValueError(f"HubConfig.shutdown_retry must be an int >= 0 or None, not {retry!r}")
        if not isinstance(self.topics, tuple) or not all(
            isinstance(p, TopicPolicy) for p in self.topics
        ):
            raise ValueError(
                f"HubConfig.topics must be a tuple of TopicPolicy objects, not {self.topics!r}"
            )
