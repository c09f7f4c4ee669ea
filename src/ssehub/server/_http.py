"""The hub over HTTP/1.1: an asyncio protocol server with httptools
(connections in `_connection.py`, routes here).

Why not ASGI: ASGI gives every connection a task that awaits `send()`, so
each event wakes every subscriber's task. Here a subscribed connection has no
task at all; the hub writes the same bytes object to each transport
(docs/decisions/0001-server.md has the measurements).

Routes:
- `GET /.well-known/mercure?topic=T[&topic=U]`: subscribe (SSE stream),
  resume with the `Last-Event-ID` header or the `lastEventID` parameter;
- `POST /.well-known/mercure`: publish (form fields `topic`, `data`, `id`,
  `type`, `retry`), only when `anonymous_publish` is on;
- `GET /healthz` (alive), `GET /readyz` (running, store answers),
  `GET /metrics` (Prometheus); static files from `static_dir`.
Every refusal is a 4xx/5xx with a one-line plain-text reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import mimetypes
import socket
import ssl
import time
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ssehub.backends import DuplicateEventIdError
from ssehub.hub import Hub, HubClosedError, Resume, selectors_match
from ssehub.protocol import Event, LocalProtocolError, encode_event

from ._auth import AuthError, cookie, find_token
from ._config import ServerConfig
from ._connection import Connection, HTTPError, Outcome, Request, log, loggable
from ._metrics import CONTENT_TYPE as METRICS_TYPE
from ._metrics import Histogram, render
from ._subscriptions import SUBSCRIPTIONS_PATH, Active, Registry

__all__ = ("HubServer", "discovery_link")


MERCURE_PATH = "/.well-known/mercure"
ASSETS_PATH = "/_ssehub/"  # ssehub's own browser files, on every hub
ASSETS = Path(str(files("ssehub").joinpath("assets"))).resolve()
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".html": "text/html"}
_PUBLIC_ASSETS = ("ssehub.js", "ssehub.mjs")  # the rest is the dashboard's
_STREAM_HEAD = (
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/event-stream\r\n"
    "Cache-Control: private, no-cache, no-store, must-revalidate, max-age=0\r\n"
    "X-Accel-Buffering: no\r\n"
    "Connection: close\r\n"
)
_FIRST_BYTES = b":\n\n"  # a comment at once, so no proxy holds the head back


class HubServer:
    """Serves a `Hub` over HTTP/1.1 on one asyncio loop.

    `await start()` binds; `port` is the bound port; `await drain(grace)`
    stops accepting, ends every stream within `grace` seconds and answers
    requests in flight; `await aclose()` closes what is left. The hub's own
    life cycle stays with its owner.
    """

    def __init__(self, hub: Hub, config: ServerConfig | None = None) -> None:
        self.hub = hub
        self.config = config or ServerConfig()
        self._server: asyncio.Server | None = None
        self._connections: set[Connection] = set()
        self._static = Path(self.config.static_dir).resolve() if self.config.static_dir else None
        self.max_connections = self.config.max_connections or _open_files_limit() - 64
        self.subscriptions = Registry(hub) if self.config.subscriptions else None
        self.publish_seconds = Histogram(
            (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
        )

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
        self._server = await loop.create_server(
            lambda: Connection(self),
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

    def _check_dashboard(self, request: Request) -> None:
        if not self.config.dashboard_enabled:
            raise HTTPError(404, "the dashboard is off (start the hub with --dashboard)")
        expected = self.config.dashboard_token
        if expected is None:
            return
        given = parse_qs(request.query).get("token", [None])[0]
        if given is None:
            given = cookie(request.headers, "ssehubDashboard")
        if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
            raise HTTPError(401, "the dashboard needs its token (?token=...)")

    async def _stats_stream(self, conn: Connection) -> Outcome:
        """The dashboard's feed: the hub's statistics as an event a second,
        until the client leaves (this connection's own task does it)."""
        transport = conn.transport
        assert transport is not None
        conn._become_stream()
        transport.write((_STREAM_HEAD + "\r\n").encode() + _FIRST_BYTES)
        while not transport.is_closing() and self.hub.state == "running":
            stats = self.hub.statistics()
            snapshot = {
                "time": time.time(),
                "state": stats.state,
                "connections": len(self._connections),
                "subscribers": stats.subscribers,
                "subscribers_by_topic": stats.subscribers_by_topic,
                "events_by_topic": stats.events_by_topic,
                "events_published": stats.events_published,
                "events_delivered": stats.events_delivered,
                "bytes_delivered": stats.bytes_delivered,
                "replays": stats.replays,
                "gaps": stats.gaps,
                "disconnects": {
                    "slow": stats.disconnects_slow,
                    "stalled": stats.disconnects_stalled,
                },
                "recent_disconnects": [
                    {"time": t, "reason": r, "topics": list(ts)}
                    for t, r, ts in stats.recent_disconnects
                ],
            }
            transport.write(encode_event(Event(json.dumps(snapshot), "stats")))
            await asyncio.sleep(1.0)
        return "close"

    async def _store_answers(self) -> bool:
        try:
            await asyncio.wait_for(self.hub.backend.last_id(), 2.0)
        except Exception:
            return False
        return True

    async def drain(self, grace: float = 5.0) -> None:
        """Stop accepting, end the hub's streams within `grace`, then close
        the remaining (idle or publishing) connections."""
        if self._server is not None:
            self._server.close()
        await self.hub.drain(grace)
        tasks = [c._task for c in self._connections if c._task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=max(grace, 0.1))
        for conn in list(self._connections):
            if conn.transport is not None:
                conn.transport.close()

    async def aclose(self) -> None:
        await self.drain(0)
        if self.subscriptions is not None:
            await self.subscriptions.aclose()
        for conn in list(self._connections):
            if conn.transport is not None:
                conn.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # -- routes ---------------------------------------------------------------------------

    async def _handle(self, conn: Connection, request: Request) -> Outcome:
        cors = self._cors_headers(request)
        if self.subscriptions is not None and request.raw_path.startswith(SUBSCRIPTIONS_PATH):
            rest = request.raw_path[len(SUBSCRIPTIONS_PATH) :]
            if not rest or rest.startswith("/"):
                return await self._subscriptions_api(conn, request, rest, cors)
        if request.path == MERCURE_PATH:
            if request.method == "GET":
                return await self._subscribe(conn, request, cors)
            if request.method == "POST":
                return await self._publish(conn, request, cors)
            if request.method == "OPTIONS":
                return self._preflight(conn, request, cors)
            raise HTTPError(405, f"method {request.method} not allowed on {MERCURE_PATH}")
        if request.method != "GET":
            raise HTTPError(405, f"method {request.method} not allowed on {request.path}")
        if request.path == "/healthz":  # alive: the process answers
            conn.respond(200, "ok\n", keep_alive=request.keep_alive)
            return "keep" if request.keep_alive else "close"
        if request.path == "/readyz":  # ready: running, and the store answers
            ready = self.hub.state == "running" and await self._store_answers()
            status, text = (200, "ready\n") if ready else (503, f"not ready: {self.hub.state}\n")
            conn.respond(status, text, keep_alive=request.keep_alive)
            return "keep" if request.keep_alive else "close"
        if request.path == "/metrics":
            body = render(self.hub.statistics(), len(self._connections), self.publish_seconds)
            conn.respond(200, body, content_type=METRICS_TYPE, keep_alive=request.keep_alive)
            return "keep" if request.keep_alive else "close"
        if request.path.startswith(ASSETS_PATH) or request.path == ASSETS_PATH.rstrip("/"):
            name = request.path[len(ASSETS_PATH) :]
            if name not in _PUBLIC_ASSETS:
                self._check_dashboard(request)
                if name == "stats":
                    return await self._stats_stream(conn)
            return self._file(conn, request, ASSETS, name)
        if self._static is not None:
            return self._file(conn, request, self._static, request.path)
        raise HTTPError(404, f"not found: {request.path}")

    def _cors_headers(self, request: Request) -> tuple[tuple[str, str], ...]:
        origin = request.header(b"origin")
        allowed = self.config.cors_origins
        if origin is None or not ("*" in allowed or origin in allowed):
            return ()
        return (
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Credentials", "true"),
            ("Vary", "Origin"),
        )

    def _preflight(
        self, conn: Connection, request: Request, cors: tuple[tuple[str, str], ...]
    ) -> Outcome:
        if not cors:
            raise HTTPError(403, "origin not allowed (see cors_origins)")
        headers = (
            *cors,
            ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
            ("Access-Control-Allow-Headers", "Last-Event-ID, Content-Type, Authorization"),
            ("Access-Control-Max-Age", "600"),
        )
        conn.respond(204, b"", keep_alive=request.keep_alive, headers=headers)
        return "keep" if request.keep_alive else "close"

    async def _subscribe(
        self, conn: Connection, request: Request, cors: tuple[tuple[str, str], ...]
    ) -> Outcome:
        query = parse_qs(request.query, keep_blank_values=True)
        topics = query.get("topic")
        if not topics:
            raise HTTPError(400, "missing 'topic' query parameter")
        if "" in topics:
            raise HTTPError(400, "empty 'topic' query parameter")
        if len(topics) > self.config.max_topics:
            raise HTTPError(400, f"more than {self.config.max_topics} topics in one subscription")
        last_event_id = request.header(b"last-event-id")
        if last_event_id is None and "lastEventID" in query:
            last_event_id = query["lastEventID"][0]
        private_topics, payload = self._subscriber_rights(request, query)
        transport = conn.transport
        assert transport is not None
        try:
            sub = self.hub.subscribe_stream(
                transport, topics, last_event_id=last_event_id, private_topics=private_topics
            )
        except ValueError as error:
            raise HTTPError(400, str(error)) from None

        def head(resume: Resume) -> bytes:
            lines = [_STREAM_HEAD, f"Last-Event-ID: {resume.last_event_id}\r\n"]
            if resume.gap:
                lines.append("SSEHub-Gap: 1\r\n")
            lines.extend(f"{k}: {v}\r\n" for k, v in cors)
            lines.append("\r\n")
            return "".join(lines).encode() + _FIRST_BYTES

        conn.stream = sub
        conn._become_stream()
        try:
            await sub.open(head)
        except HubClosedError:
            conn.stream = None
            conn.respond(503, "the hub is shutting down\n", keep_alive=False)
            return "close"
        if self.subscriptions is not None and not sub.closed:
            conn.subscriber = self.subscriptions.new_id()
            await self.subscriptions.opened(Active(conn.subscriber, sub.topics, payload))
        conn._opened_at = time.monotonic()
        if log.isEnabledFor(logging.INFO):
            log.info(
                "stream open peer=%s topics=%s last_event_id=%s replayed=%d gap=%s",
                conn._peer(),
                loggable(",".join(sub.topics)),
                loggable(last_event_id),
                sub.resume.replayed if sub.resume else 0,
                bool(sub.resume and sub.resume.gap),
            )
        return "stream"

    def _subscriber_rights(
        self, request: Request, query: dict[str, list[str]]
    ) -> tuple[frozenset[str], Any]:
        """The private topics a subscriber may receive, and its JWT payload;
        raises 401 when it must show a token and does not, or shows a bad one."""
        auth = self.config.auth
        if auth.subscriber_key is None:
            return frozenset(), None
        try:
            found = find_token(request.headers, query)
            if found is None:
                if self.config.anonymous:
                    return frozenset(), None
                raise AuthError(
                    401, "subscribing requires a JWT (this hub has no anonymous access)"
                )
            return auth.subscriber(found[0])
        except AuthError as error:
            raise HTTPError(error.status, error.reason) from None

    async def _subscriptions_api(
        self, conn: Connection, request: Request, rest: str, cors: tuple[tuple[str, str], ...]
    ) -> Outcome:
        assert self.subscriptions is not None
        if request.method != "GET":
            raise HTTPError(405, f"method {request.method} not allowed on {SUBSCRIPTIONS_PATH}")
        if self.config.auth.subscriber_key is None:
            raise HTTPError(403, "the subscriptions API needs a subscriber JWT key")
        query = parse_qs(request.query, keep_blank_values=True)
        found = find_token(request.headers, query)
        if found is None:
            raise HTTPError(401, "the subscriptions API requires a JWT")
        try:
            allowed = self.config.auth.subscribe_selectors(found[0])
        except AuthError as error:
            raise HTTPError(error.status, error.reason) from None
        if not selectors_match(allowed, (request.raw_path,)):
            raise HTTPError(403, f"the JWT does not allow reading {request.raw_path}")
        status, answer = await self.subscriptions.listing(rest)
        if isinstance(answer, str):
            raise HTTPError(status, answer)
        body = json.dumps(answer)
        conn.respond(status, body, content_type="application/ld+json",
                     keep_alive=request.keep_alive, headers=cors)  # fmt: skip
        return "keep" if request.keep_alive else "close"

    def _check_publisher(self, request: Request, topics: list[str]) -> None:
        auth = self.config.auth
        if auth.publisher_key is None:
            return  # anonymous publishing (`_publish` refused it when not allowed)
        try:
            found = find_token(request.headers, {})
            allowed = auth.publish_selectors(found[0] if found else None)
        except AuthError as error:
            raise HTTPError(error.status, error.reason) from None
        if found is not None and found[1] == "cookie":
            # a cookie rides along with any page's request: only allowed
            # origins may publish with it (no cross-site request forgery)
            origin = request.header(b"origin") or _origin_of(request.header(b"referer"))
            allowed_origins = self.config.publish_origins
            if origin is None or not ("*" in allowed_origins or origin in allowed_origins):
                raise HTTPError(
                    403, "publishing with the cookie needs an allowed Origin (publish_origins)"
                )
        for topic in topics:
            if not selectors_match(allowed, (topic,)):
                raise HTTPError(403, f"the JWT does not allow publishing to {topic!r}")

    async def _publish(
        self, conn: Connection, request: Request, cors: tuple[tuple[str, str], ...]
    ) -> Outcome:
        if self.config.auth.publisher_key is None and not self.config.anonymous_publish:
            raise HTTPError(
                403, "publishing over HTTP is disabled (configure a JWT key to allow it)"
            )
        ctype = (request.header(b"content-type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise HTTPError(415, "publish with Content-Type: application/x-www-form-urlencoded")
        try:
            form = parse_qs(
                request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False
            )
        except UnicodeDecodeError:
            raise HTTPError(400, "the form body is not valid UTF-8") from None
        topics = form.get("topic")
        if not topics:
            raise HTTPError(400, "missing 'topic' field")
        self._check_publisher(request, topics)
        retry: int | None = None
        if "retry" in form:
            raw = form["retry"][0]
            if not raw.isascii() or not raw.isdigit():
                raise HTTPError(400, f"'retry' must be a non-negative integer, not {raw!r}")
            retry = int(raw)
        started = time.perf_counter()
        try:
            event_id = await self.hub.publish(
                topics,
                form.get("data", [""])[0],
                event=form.get("type", ["message"])[0] or "message",
                id=form["id"][0] if "id" in form else None,
                retry=retry,
                private="private" in form,
            )
        except DuplicateEventIdError as error:
            raise HTTPError(409, str(error)) from None
        except (LocalProtocolError, ValueError) as error:
            raise HTTPError(400, str(error)) from None
        except HubClosedError:
            raise HTTPError(503, "the hub is shutting down") from None
        except Exception as error:  # the store failed: nothing was acknowledged
            log.warning("publish failed: the store did not take it: %r", error)
            raise HTTPError(503, f"the store is unavailable ({type(error).__name__})") from None
        self.publish_seconds.observe(time.perf_counter() - started)
        conn.respond(200, event_id, keep_alive=request.keep_alive, headers=cors)
        return "keep" if request.keep_alive else "close"

    def _file(self, conn: Connection, request: Request, folder: Path, path: str) -> Outcome:
        relative = path.lstrip("/") or "index.html"
        target = (folder / relative).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_relative_to(folder) or not target.is_file():
            raise HTTPError(404, f"not found: {request.path}")
        body = target.read_bytes()
        ctype = _TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0]
        ctype = ctype or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
            ctype += "; charset=utf-8"
        conn.respond(
            200,
            body,
            content_type=ctype,
            keep_alive=request.keep_alive,
            headers=(("Cache-Control", "no-cache"),),
        )
        return "keep" if request.keep_alive else "close"


def _open_files_limit() -> int:
    try:
        import resource
    except ImportError:  # Windows
        return 1 << 20
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY and soft > 128 else 1 << 20


def _origin_of(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def discovery_link(hub_url: str, *, self_url: str | None = None) -> str:
    """The value of a `Link` header that lets Mercure clients discover the
    hub from any of your app's responses::

        response.headers["Link"] = discovery_link("https://hub.example/.well-known/mercure",
                                                  self_url="https://app.example/books/1")

    gives `<https://hub.example/.well-known/mercure>; rel="mercure",
    <https://app.example/books/1>; rel="self"`.
    """
    links = [(hub_url, "mercure")] + ([(self_url, "self")] if self_url else [])
    for url, _ in links:
        if any(c in url for c in '<>"\r\n ') or not url:
            raise ValueError(f"not a URL for a Link header: {url!r}")
    return ", ".join(f'<{url}>; rel="{rel}"' for url, rel in links)
