"""ssehub's browser files at `/_ssehub/`: `ssehub.js` for every page, and
the live dashboard (its page, and `stats`, the hub's statistics as an event
a second), guarded by `ServerConfig.dashboard` and `dashboard_token`."""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Callable
from urllib.parse import parse_qs

from ssehub.hub import Hub
from ssehub.mercure import CACHE_CONTROL, HTTPError, Response
from ssehub.mercure import Request as MercureRequest
from ssehub.protocol import Event, encode_event

from ._config import LOOPBACK_HOSTS, ServerConfig
from ._files import ASSETS, file_response
from ._handler import Request, Streaming, StreamTarget

__all__ = ("ASSETS_PATH", "Assets")

ASSETS_PATH = "/_ssehub/"
_PUBLIC = ("ssehub.js", "ssehub.mjs")  # the rest is the dashboard's
_HEAD = (
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    f"Cache-Control: {CACHE_CONTROL}\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n:\n\n"
).encode()


class Assets:
    def __init__(self, hub: Hub, config: ServerConfig, connections: Callable[[], int]) -> None:
        self.hub = hub
        self.config = config
        self.connections = connections

    async def __call__(self, request: Request) -> Response | Streaming:
        name = request.path[len(ASSETS_PATH) :]
        if name not in _PUBLIC:
            self._check(request)
            if name == "stats":
                return _Stats(self.hub, self.connections)
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


class _Stats:
    """The dashboard's feed, until the client leaves (the connection's own
    task runs it)."""

    def __init__(self, hub: Hub, connections: Callable[[], int]) -> None:
        self.hub = hub
        self.connections = connections

    async def run(self, conn: StreamTarget) -> None:
        transport = conn.transport
        assert transport is not None
        transport.write(_HEAD)
        while not transport.is_closing() and self.hub.state == "running":
            transport.write(encode_event(Event(json.dumps(self._snapshot()), "stats")))
            await asyncio.sleep(1.0)

    def _snapshot(self) -> dict[str, object]:
        stats = self.hub.statistics()
        return {
            "time": time.time(),
            "state": stats.state,
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
