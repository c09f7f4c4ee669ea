"""`HubServer`: the hub over HTTP/1.1, an asyncio protocol server with
httptools (connections in `_connection.py`, the route table built here).

Why not ASGI: ASGI gives every connection a task that awaits `send()`, so
each event wakes every subscriber's task. Here a subscribed connection has no
task at all; the hub writes the same bytes object to each transport
(docs/decisions/0001-server.md has the measurements).

Routes:
- `/.well-known/mercure` and below: Mercure (`_mercure.py` over
  `ssehub.mercure`): subscribe, publish, preflight, the subscriptions API;
- `GET /healthz` (alive), `GET /readyz` (running, store answers),
  `GET /metrics` (Prometheus) (`_ops.py`);
- `/_ssehub/`: ssehub's browser files and the dashboard (`_dashboard.py`);
- static files from `static_dir` (`_files.py`).
Every refusal is a 4xx/5xx with a one-line plain-text reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
import sys
from pathlib import Path

from ssehub.backends import MemoryBackend
from ssehub.hooks import Hooks
from ssehub.hub import Hub
from ssehub.mercure import MERCURE_PATH, METADATA_PATH, Mercure

from ._config import ServerConfig
from ._connection import Connection, Host
from ._dashboard import ASSETS_PATH, Assets, Feeds
from ._files import Files, SetsCookie
from ._handler import Handler
from ._mercure import MercureRoute
from ._metrics import Histogram
from ._ops import Health, Metrics, Readiness
from ._routes import GetOnly, Route, Routes

__all__ = ("HubServer",)


class HubServer:
    """Serves a `Hub` over HTTP/1.1 on one asyncio loop.

    `await start()` binds; `port` is the bound port; `await drain(grace)`
    stops accepting, ends every stream within `grace` seconds and answers
    requests in flight; `await aclose()` closes what is left. The hub's own
    life cycle stays with its owner.
    """

    def __init__(self, hub: Hub, config: ServerConfig | None = None) -> None:
        self.hub = hub
        self.config = config = config or ServerConfig()
        self.mercure = Mercure(config.mercure, hub)
        self.hooks = Hooks(hub, config.mercure.authorize, config.webhooks)
        self.authorizer, self.webhooks = self.hooks.authorizer, self.hooks.webhooks
        self.publish_seconds = Histogram(
            (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
        )
        self._server: asyncio.Server | None = None
        self.feeds = Feeds(
            hub, lambda: len(self._host.connections), dialects=config.mercure.dialects
        )
        max_connections = config.max_connections or _open_files_limit() - 64
        self._host = Host(config, self._routes(), max_connections)

    def _routes(self) -> Routes:
        def count() -> int:
            return len(self._host.connections)

        hub, config = self.hub, self.config
        static = config.static_dir
        pages: Handler | None = GetOnly(Files(Path(static))) if static is not None else None
        assets: Handler = GetOnly(Assets(config, self.feeds))
        if config.page_token is not None:
            if pages is not None:
                pages = SetsCookie(pages, config.page_token)
            assets = SetsCookie(assets, config.page_token)
        mercure = MercureRoute(self.mercure, self.publish_seconds, self.authorizer, self.webhooks)
        # Which routes may answer with no task (the rule: `_answer.py`), once
        # for the server's life. Mercure runs the store and the authorization
        # callback; readiness runs `wait_for` on the store; the dashboard's
        # feeds are a task's life anyway.
        mercure_eager = self.authorizer is None and store_needs_no_task(hub.backend)
        metrics = Metrics(
            hub,
            count,
            self.publish_seconds,
            self.feeds,
            self.mercure.registry,
            self.authorizer,
            self.webhooks,
        )
        return Routes(
            [
                (MERCURE_PATH + "/", Route(mercure, eager=mercure_eager)),
                (METADATA_PATH, Route(mercure, eager=mercure_eager)),
                ("/healthz", Route(GetOnly(Health()), eager=True)),
                ("/readyz", Route(GetOnly(Readiness(hub)))),
                ("/metrics", Route(GetOnly(metrics), eager=True)),
                (ASSETS_PATH, Route(assets)),
            ],
            fallback=None if pages is None else Route(pages, eager=True),
        )

    @property
    def connections(self) -> set[Connection]:
        """The open connections (streams, publishers, idle keep-alives)."""
        return self._host.connections

    @property
    def max_connections(self) -> int:
        return self._host.max_connections

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the server is not listening")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        context = None
        if self.config.certfile is not None and self.config.keyfile is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.config.certfile, self.config.keyfile)
        host = self._host
        host.loop = loop
        self._server = await loop.create_server(
            functools.partial(Connection, host),
            self.config.host,
            self.config.port,
            backlog=self.config.backlog,
            reuse_address=True,
            reuse_port=self.config.reuse_port or None,
            ssl=context,
        )
        # Let the kernel give up on a peer that acknowledges nothing for two
        # heartbeats (a dead host sends no RST). Set on the listening socket,
        # accepted sockets inherit it: no per-connection socket object.
        option = getattr(socket, "TCP_USER_TIMEOUT", None)
        if option is not None:
            timeout_ms = int(self.hub.config.heartbeat * 2 * 1000)
            for sock in self._server.sockets:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, option, timeout_ms)

    async def drain(self, grace: float = 5.0) -> None:
        """Stop accepting, end the hub's streams within `grace`, then close
        the remaining (idle or publishing) connections."""
        if self._server is not None:
            self._server.close()
        await self.hub.drain(grace)
        connections = self._host.connections
        tasks = [c.answering for c in connections if c.answering is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=max(grace, 0.1))
        for conn in list(connections):
            if conn.transport is not None:
                conn.transport.close()

    async def aclose(self) -> None:
        await self.drain(0)
        await self.feeds.aclose()
        await self.mercure.aclose()
        await self.hooks.aclose()
        for conn in list(self._host.connections):
            if conn.transport is not None:
                conn.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self._host.deadlines.close()


def store_needs_no_task(backend: object) -> bool:
    """Whether `backend` is one of ssehub's stores whose paths need no
    current task (`_answer.py`): the memory and SQLite stores, by exact type
    (a subclass may override a method with one that needs a task). Redis
    (its client uses `asyncio.timeout`) and any other backend: no."""
    kind = type(backend)
    if kind is MemoryBackend:
        return True
    # a SQLite store's module is loaded if it is one (no import of sqlite3 here)
    sqlite = sys.modules.get("ssehub.backends.sqlite")
    shared = sys.modules.get("ssehub.backends._sqlite_shared")
    return (sqlite is not None and kind is sqlite.SQLiteBackend) or (
        shared is not None and kind is shared.SharedSQLiteBackend
    )


def _open_files_limit() -> int:
    try:
        import resource
    except ImportError:  # Windows
        return 1 << 20
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY and soft > 128 else 1 << 20
