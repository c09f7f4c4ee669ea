"""ssehub's browser files at `/_ssehub/`: `ssehub.js` for every page, and
the live dashboard (its page, and `stats`, the hub's statistics as an event
a second), guarded by `ServerConfig.dashboard` and `dashboard_token`."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from ssehub.hub import Hub
from ssehub.mercure import CACHE_CONTROL, HTTPError, Response
from ssehub.mercure import Request as MercureRequest
from ssehub.protocol import Event, encode_event

from ._config import LOOPBACK_HOSTS, ServerConfig
from ._files import ASSETS, file_response
from ._handler import Request, Streaming, StreamTarget

__all__ = ("ASSETS_PATH", "Assets", "FeedStatistics", "Feeds")

ASSETS_PATH = "/_ssehub/"
# the browser helper, and the icon the built-in pages name (`<link rel="icon">`,
# so no browser asks for `/favicon.ico`, a `static_dir`'s); the rest is the dashboard's
_PUBLIC = ("ssehub.js", "ssehub.mjs", "favicon.ico")
_HEAD = (
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    f"Cache-Control: {CACHE_CONTROL}\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n:\n\n"
).encode()


class Assets:
    def __init__(self, config: ServerConfig, feeds: Feeds) -> None:
        self.config = config
        self.feeds = feeds

    async def __call__(self, request: Request) -> Response | Streaming:
        name = request.path[len(ASSETS_PATH) :]
        if name not in _PUBLIC:
            self._check(request)
            if name == "stats":
                return _Stats(self.feeds)
        return file_response(ASSETS, name)

    def _check(self, request: Request) -> None:
        config = self.config
        if not config.dashboard_enabled:
            raise HTTPError(404, "the dashboard is off (start the hub with --dashboard)")
        expected = config.dashboard_token
        if expected is None:
            if config.dashboard is None and not _loopback_host(request.header(b"host")):
                # on by default on loopback means for loopback names only: a
                # page of another site reaching 127.0.0.1 by DNS rebinding
                # sends its own name as Host
                raise HTTPError(403, "the dashboard answers loopback Host names only")
            return
        given = parse_qs(request.query).get("token", [None])[0]
        if given is None:
            given = MercureRequest("GET", "/", headers=request.headers).cookie("ssehubDashboard")
        if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
            raise HTTPError(401, "the dashboard needs its token (?token=...)")


def _loopback_host(host: str | None) -> bool:
    if host is None:
        return False
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    return name in LOOPBACK_HOSTS


@dataclass(frozen=True, slots=True)
class FeedStatistics:
    """`Feeds.statistics()`: the dashboard's feeds, as `/metrics` shows them."""

    feeds: int
    """Open `/_ssehub/stats` feeds."""
    snapshots: int
    """Snapshots built (one a second while any feed is open, however many)."""
    dropped: int
    """Feeds closed because their client stopped reading."""


class Feeds:
    """Every open `/_ssehub/stats` feed, and the one owned task that builds
    a snapshot a second, encodes it once and writes the same bytes to each
    feed. The task starts with the first feed and ends with the last.

    A feed is dropped like a slow subscriber: when it holds more than the
    hub's `max_buffer_bytes` unsent, or has not emptied its write buffer for
    `stall` seconds (its client does not read)."""

    def __init__(
        self,
        hub: Hub,
        connections: Callable[[], int],
        *,
        interval: float = 1.0,
        stall: float = 3.0,
        dialects: str = "both",
    ) -> None:
        self.hub = hub
        self.dialects = dialects  # the Mercure the hub speaks: the dashboard's tail speaks it too
        self.since = time.time()  # the counters count from about here
        self.connections = connections
        self.interval = interval
        self.stall = stall
        self._feeds: dict[asyncio.Transport, _Feed] = {}
        self._task: asyncio.Task[None] | None = None
        self._snapshots = 0
        self._dropped = 0

    def statistics(self) -> FeedStatistics:
        return FeedStatistics(len(self._feeds), self._snapshots, self._dropped)

    async def aclose(self) -> None:
        """End every feed and the task (the server's `aclose`)."""
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def serve(self, transport: asyncio.Transport) -> None:
        """Feed `transport` until it closes (or is dropped)."""
        transport.write(_HEAD)
        feed = _Feed(asyncio.get_running_loop().create_future(), time.monotonic())
        self._feeds[transport] = feed
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._tick())
        try:
            await feed.done
        finally:
            self._feeds.pop(transport, None)

    async def _tick(self) -> None:
        try:
            while self._feeds and self.hub.state == "running":
                self._send(encode_event(Event(json.dumps(self._snapshot()), "stats")))
                await asyncio.sleep(self.interval)
        finally:
            self._task = None
            for feed in self._feeds.values():
                if not feed.done.done():
                    feed.done.set_result(None)

    def _send(self, data: bytes) -> None:
        self._snapshots += 1
        now = time.monotonic()
        limit = self.hub.config.max_buffer_bytes
        for transport, feed in list(self._feeds.items()):
            if transport.is_closing():
                self._end(transport, feed)
                continue
            pending = transport.get_write_buffer_size()
            if pending == 0:
                feed.emptied = now
            elif pending > limit or now - feed.emptied >= self.stall:
                self._dropped += 1
                transport.abort()
                self._end(transport, feed)
                continue
            transport.write(data)

    def _end(self, transport: asyncio.Transport, feed: _Feed) -> None:
        self._feeds.pop(transport, None)
        if not feed.done.done():
            feed.done.set_result(None)

    def _snapshot(self) -> dict[str, object]:
        stats = self.hub.statistics()
        return {
            "time": time.time(),
            "state": stats.state,
            "pid": os.getpid(),  # with --workers N, whose numbers these are
            "mercure_dialects": self.dialects,
            "since": self.since,
            "connections": self.connections(),
            "subscribers": stats.subscribers,
            "subscribers_by_topic": stats.subscribers_by_topic,
            "events_by_topic": stats.events_by_topic,
            "events_published": stats.events_published,
            "events_delivered": stats.events_delivered,
            "bytes_delivered": stats.bytes_delivered,
            "replays": stats.replays,
            "gaps": stats.gaps,
            "disconnects": {"slow": stats.disconnects_slow, "stalled": stats.disconnects_stalled},
            "recent_disconnects": [
                {"time": t, "reason": r, "topics": list(ts)}
                for t, r, ts in stats.recent_disconnects
            ],
        }


@dataclass(slots=True)
class _Feed:
    done: asyncio.Future[None]
    emptied: float  # when its write buffer was last seen empty (monotonic)


class _Stats:
    """One request for the feed: the connection's own task waits in
    `Feeds.serve` until the client leaves."""

    def __init__(self, feeds: Feeds) -> None:
        self.feeds = feeds

    async def run(self, conn: StreamTarget) -> None:
        transport = conn.transport
        assert transport is not None
        await self.feeds.serve(transport)
