"""`HubApp`: a `Hub` as an ASGI app, mountable in FastAPI and Starlette."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from urllib.parse import parse_qs

from ssehub.hub import EventSubscription, Hub, HubClosedError, SlowSubscriberError

from ._response import EventSourceResponse
from ._types import Receive, Scope, Send

__all__ = ("HubApp",)

_SUBSCRIBE_PATHS = ("", "/", "/.well-known/mercure")


class HubApp:
    """Serve a hub's subscribe endpoint from an ASGI app::

        hub = Hub()
        events = HubApp(hub)
        app = FastAPI(lifespan=events.lifespan)      # starts the hub, drains it at shutdown
        app.mount("/events", events)                 # GET /events/?topic=T

        @app.post("/notify")
        async def notify(text: str) -> None:
            await hub.publish("notes", text)

    `GET <path>?topic=T[&topic=U]` streams the topics (as a route, or
    mounted: `app.mount("/hub", events)` serves `/hub/` and
    `/hub/.well-known/mercure`) like the standalone server: replay with the
    `Last-Event-ID` header or `lastEventID` parameter, the `Last-Event-ID`
    and `SSEHub-Gap` response headers, heartbeats, a bounded buffer per
    subscriber. Used as the top-level app, it also answers the ASGI lifespan
    (starting the hub, and `drain(grace)` then `aclose()` at shutdown).
    """

    def __init__(
        self,
        hub: Hub,
        *,
        grace: float = 5.0,
        send_timeout: float | None = 30.0,
        cors_origins: Iterable[str] = (),
    ) -> None:
        self.hub = hub
        self.grace = grace
        self.send_timeout = send_timeout
        self.cors_origins = tuple(cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets are not ours: closing the scope refuses them
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if path not in _SUBSCRIBE_PATHS:
            await _plain(send, 404, f"not found: {scope.get('path', '')}")
            return
        if scope["method"] != "GET":
            await _plain(send, 405, f"method {scope['method']} not allowed")
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        topics = query.get("topic")
        if not topics or "" in topics:
            await _plain(send, 400, "missing or empty 'topic' query parameter")
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        last_event_id = headers.get("last-event-id")
        if last_event_id is None and "lastEventID" in query:
            last_event_id = query["lastEventID"][0]
        try:
            sub = self.hub.subscribe(topics, last_event_id=last_event_id)
        except ValueError as error:
            await _plain(send, 400, str(error))
            return
        try:
            try:
                resume = await sub.open()
            except HubClosedError:
                await _plain(send, 503, "the hub is shutting down")
                return
            extra = {"Last-Event-ID": resume.last_event_id}
            if resume.gap:
                extra["SSEHub-Gap"] = "1"
            origin = headers.get("origin")
            if origin and ("*" in self.cors_origins or origin in self.cors_origins):
                extra["Access-Control-Allow-Origin"] = origin
                extra["Vary"] = "Origin"
            response = EventSourceResponse._of_frames(
                _frames(sub),
                headers=extra,
                heartbeat=self.hub.config.heartbeat,
                send_timeout=self.send_timeout,
            )
            await response(scope, receive, send)
        finally:
            sub.close()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """For your app's `lifespan=`: start the hub (if new), and at
        shutdown `drain(grace)` and `aclose()` it."""
        if self.hub.state == "new":
            await self.hub.start()
        try:
            yield
        finally:
            await self.hub.drain(self.grace)
            await self.hub.aclose()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.hub.state == "new":
                        await self.hub.start()
                except Exception as error:
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.hub.drain(self.grace)
                await self.hub.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _frames(sub: EventSubscription) -> AsyncIterator[bytes]:
    try:
        async for frames in sub.frames():
            yield frames
    except SlowSubscriberError:
        return  # dropped for being slow: the client reconnects and resumes


async def _plain(send: Send, status: int, reason: str) -> None:
    body = (reason + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
