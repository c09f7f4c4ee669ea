"""The reconnect policy, sans-IO: what both twins (`EventSource`,
`AsyncEventSource`) decide the same way, with no I/O and no clock."""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ssehub.protocol import Event, EventStreamParser

from ._errors import SSEConnectionError, SSEResponseError

__all__ = (
    "GAP_EVENT",
    "LIVE_EVENT",
    "Gap",
    "Live",
    "Reconnect",
    "Reconnecting",
    "RetryPolicy",
    "last_event_id_header",
)

GAP_EVENT = "ssehub-gap"
"""The type of an ssehub hub's gap notice (`ssehub.hub.GAP_EVENT`): the id a
client resumed from is no longer in history. The twins report it as a
`Gap`, never as an event."""

LIVE_EVENT = "ssehub-live"
"""The type of an ssehub hub's live marker (`ssehub.hub.LIVE_EVENT`): the
replay the client asked for (a resume, `newest=N`) is over, what follows is
live. The twins report it as `Live`, never as an event."""

_log = logging.getLogger("ssehub.client")
# what an HTTP/1.1 field value cannot hold (RFC 9110 section 5.5; h11 refuses them)
_UNSENDABLE = re.compile(rb"[\x00\r\n\x0b\x0c]")


def last_event_id_header(last_event_id: str) -> bytes | None:
    """The `Last-Event-ID` value a reconnection sends, as Chromium sends it:
    the id's UTF-8 bytes (the header is not Latin-1), with leading and
    trailing HTTP whitespace (space, tab) trimmed, which RFC 9110 does not
    allow there and every server strips anyway. None when the id holds a
    vertical tab or form feed, which no HTTP/1.1 header can carry."""
    value = last_event_id.strip(" \t").encode("utf-8", "replace")
    return None if _UNSENDABLE.search(value) else value


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """What an event source does next, passed to its `on_reconnect` hook
    before each wait: wait `delay` seconds, then connect to `url` again.

    `attempt` counts the failed attempts in a row (1 after the first
    failure); it is 0 when an open stream ended, which is no failure.
    `error` is what failed (None: the stream ended). `str()` is one line
    for a log: ``attempt 3 failed (ConnectError: ...); next attempt in 12 s
    at http://...``.
    """

    attempt: int
    error: BaseException | None
    delay: float
    url: str

    def __str__(self) -> str:
        if self.error is None:
            what = "the stream ended"
        else:
            name, text = type(self.error).__name__, str(self.error)
            what = f"attempt {self.attempt} failed ({f'{name}: {text}' if text else name})"
        return f"{what}; next attempt in {self.delay:.3g} s at {self.url}"


@dataclass(frozen=True, slots=True)
class Gap:
    """The hub no longer holds the events after `last_event_id` (the id the
    client resumed from): some events were missed. The events that follow
    are all the history it still holds, then live ones. Passed to an event
    source's `on_gap` hook; `str()` is one line for a log."""

    last_event_id: str | None
    url: str

    def __str__(self) -> str:
        return (
            f"gap: {self.url} no longer holds the events after {self.last_event_id!r};"
            " some events were missed"
        )


@dataclass(frozen=True, slots=True)
class Live:
    """The hub has sent the `replayed` events of history this connection
    asked for (a resume, `newest=N`); the events that follow are live.
    Passed to an event source's `on_live` hook."""

    replayed: int
    url: str

    def __str__(self) -> str:
        return f"live: {self.url} replayed {self.replayed} events; live events follow"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to reconnect, and when to give up.

    - `retry`: seconds to wait before reconnecting when the server has not
      set a reconnection time with `retry:` (browsers use about 3 s);
    - after the first failure in a row the wait doubles per failure up to
      `max_delay`, less a random fraction up to `jitter` (so a crowd of
      clients does not come back in step);
    - `max_retries`: failed attempts in a row before `SSEConnectionError`
      (`None`: retry forever). A successful connection resets the count;
    - `idle_timeout`: seconds without a single byte (not even a heartbeat)
      after which the stream counts as dead and is reconnected (`None`:
      wait forever). The default is three 15-second heartbeats.
    """

    retry: float = 3.0
    max_delay: float = 60.0
    max_retries: int | None = 10
    jitter: float = 0.5
    idle_timeout: float | None = 45.0

    def __post_init__(self) -> None:
        if not self.retry >= 0:
            raise ValueError(f"retry must be >= 0 seconds, not {self.retry!r}")
        if not self.max_delay >= self.retry:
            raise ValueError(f"max_delay must be >= retry, not {self.max_delay!r}")
        if self.max_retries is not None and self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0 or None, not {self.max_retries!r}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be within 0..1, not {self.jitter!r}")
        if self.idle_timeout is not None and not self.idle_timeout > 0:
            raise ValueError(f"idle_timeout must be > 0 or None, not {self.idle_timeout!r}")


class Reconnect:
    """The state of one event source across its connections: the last event
    ID, the server's reconnection time, the failures in a row."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        last_event_id: str | None = None,
        max_line_bytes: int | None = None,
        random: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy
        if last_event_id and (
            "\0" in last_event_id or "\r" in last_event_id or "\n" in last_event_id
        ):
            # no stream can set such an id, and no header can carry it
            raise ValueError(f"last_event_id must not contain CR, LF or NUL: {last_event_id!r}")
        self.last_event_id = last_event_id or ""
        self.retry_ms: int | None = None
        self.failures = 0
        self.max_line_bytes = max_line_bytes
        self._random = random
        self._resumed_from = self.last_event_id

    def headers(self) -> dict[str, bytes]:
        """Headers every (re)connection sends; `Last-Event-ID` as
        `last_event_id_header` encodes it."""
        headers = {"Accept": b"text/event-stream", "Cache-Control": b"no-cache"}
        if self.last_event_id:
            value = last_event_id_header(self.last_event_id)
            if value is None:
                _log.warning(
                    "the last event ID %r cannot be sent in an HTTP header;"
                    " reconnecting without Last-Event-ID",
                    self.last_event_id,
                )
            else:
                headers["Last-Event-ID"] = value
        return headers

    def refusal(self, status_code: int, headers: Mapping[str, str]) -> str | None:
        """Why a response is not a stream to read (fatal), or None."""
        if status_code == 204:
            return "the server asked the client to stop reconnecting (204 No Content)"
        if status_code != 200:
            return "the server did not answer 200"
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "text/event-stream":
            return f"the content type is {ctype or 'missing'!r}, not 'text/event-stream'"
        return None

    def refuse(self, status_code: int, headers: Mapping[str, str], body: bytes, why: str) -> None:
        raise SSEResponseError(status_code, headers, body, why)

    def opened(self) -> EventStreamParser:
        """A 200 event stream: reset the failures, start a parser that
        continues the last event ID."""
        self.failures = 0
        self._resumed_from = self.last_event_id
        return EventStreamParser(
            max_line_bytes=self.max_line_bytes, last_event_id=self.last_event_id
        )

    def progressed(self, parser: EventStreamParser) -> None:
        """Remember what the parser learned (after the events were taken)."""
        self.last_event_id = parser.last_event_id
        if parser.retry is not None:
            self.retry_ms = parser.retry

    def gap(self, event: Event, url: str) -> Gap | None:
        """A `Gap` if `event` is a hub's gap notice (data
        `{"lastEventID": ...}`), else None."""
        if event.event != GAP_EVENT:
            return None
        asked: str | None = self._resumed_from or None
        try:
            notice = json.loads(event.data)
        except ValueError:
            notice = None
        if isinstance(notice, dict) and isinstance(notice.get("lastEventID"), str):
            asked = notice["lastEventID"]
        return Gap(asked, url)

    def live(self, event: Event, url: str) -> Live | None:
        """A `Live` if `event` is a hub's live marker (data
        `{"replayed": N}`), else None."""
        if event.event != LIVE_EVENT:
            return None
        try:
            notice = json.loads(event.data)
        except ValueError:
            return None
        replayed = notice.get("replayed") if isinstance(notice, dict) else None
        if type(replayed) is not int:
            return None
        return Live(replayed, url)

    def delay(self, error: BaseException | None) -> float:
        """Seconds to wait before reconnecting after a stream ended (`error`
        None: the server closed it) or an attempt failed. Raises
        `SSEConnectionError` when the failures in a row pass `max_retries`."""
        if error is not None:
            self.failures += 1
            limit = self.policy.max_retries
            if limit is not None and self.failures > limit:
                raise SSEConnectionError(self.failures, error) from error
        base = self.retry_ms / 1000 if self.retry_ms is not None else self.policy.retry
        if self.failures <= 1:
            return base
        # the exponent is capped: 2.0 ** 1024 overflows (a day of failures)
        backoff = min(self.policy.max_delay, base * 2.0 ** min(self.failures - 1, 64))
        return backoff * (1 - self.policy.jitter * self._random())
