"""`HubApp`: a `Hub` as an ASGI app, mountable in FastAPI and Starlette: the
Mercure protocol of `ssehub.mercure`, the same as `ssehub serve` speaks."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from ssehub.hooks import Hooks, WebhookConfig, decide
from ssehub.hub import Hub, Resume
from ssehub.mercure import (
    MERCURE_PATH,
    METADATA_PATH,
    HTTPError,
    Listing,
    Mercure,
    MercureConfig,
    Publish,
    Request,
    Response,
    Subscribe,
)

from ._response import _STATE_KEY, SSE_HEADERS, Streams
from ._stream import SendTransport
from ._types import Receive, Scope, Send

__all__ = ("HubApp",)

_COME_BACK = b"retry: 1000\n\n"  # the token expired: come back soon, with a fresh one
_BYE = b"retry: 1000\n\n"  # drained, or cancelled by the server: come back soon
FIRST_COMMENT = b":\n\n"  # at once, so no proxy holds the head back
# the stream's headers before Mercure's (its Cache-Control replaces ours)
_SSE_HEADERS = tuple((k, v) for k, v in SSE_HEADERS if k != b"cache-control")


class HubApp:
    """Serve a hub as a Mercure endpoint from an ASGI app::

        hub = Hub()
        events = HubApp(hub, config=MercureConfig.from_environ())
        app = FastAPI(lifespan=events.lifespan)      # starts the hub, drains it at shutdown
        app.mount("/.well-known/mercure", events)    # GET ...?topic=T, POST to publish

    Everything `ssehub serve` does at `/.well-known/mercure`, configured by
    the same `MercureConfig`: subscribe (`GET ?topic=T[&topic=U]`, resume
    with `Last-Event-ID` or `lastEventID`), publish (`POST`, form fields),
    JWT keys and private updates, anonymous access, CORS, publish origins,
    the topic limit, the subscriptions API. Mounted at any path `P`, it
    answers `P`, `P/`, `P/.well-known/mercure` and `P/subscriptions...`.
    `max_body_bytes` bounds a publish body (413). With `config.authorize`
    it asks the app's endpoint before each subscription and publish;
    `webhooks` posts subscription and watch notices (`WebhookConfig`), as
    `ssehub serve --authorize-url / --webhook-url` do. Used as the top-level
    app, it also answers the ASGI lifespan (starting the hub, and
    `drain(grace)` then `aclose()` at shutdown).
    """

    def __init__(
        self,
        hub: Hub,
        *,
        config: MercureConfig | None = None,
        grace: float = 5.0,
        send_timeout: float | None = 30.0,
        cors_origins: Iterable[str] = (),
        max_body_bytes: int = 1024 * 1024,
        webhooks: WebhookConfig | None = None,
    ) -> None:
        origins = tuple(cors_origins)
        if config is None:
            config = MercureConfig(cors_origins=origins)
        elif origins:
            raise ValueError("give cors_origins in the MercureConfig, not both")
        self.hub = hub
        self.config = config
        self.mercure = Mercure(config, hub)
        self.grace = grace
        self.send_timeout = send_timeout
        self.max_body_bytes = max_body_bytes
        # its streams end at once (with a `retry:` hint) when the server is
        # told to stop, while its lifespan runs (`Streams.lifespan`)
        self.streams = Streams(grace=grace)
        self.hooks = Hooks(hub, config.authorize, webhooks)
        self.authorizer, self.webhooks = self.hooks.authorizer, self.hooks.webhooks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = await self._start(scope, receive, send)
        if stream is None:
            return  # answered already
        # An open stream. This frame is all an idle stream keeps of ours
        # besides the `SendTransport` (its bytes: docs/benchmarks.md), so it
        # holds as few locals as it can. The hub writes the events to the
        # stream as to a socket of the standalone server (`_stream.py`): no
        # producer task, no queue, no timer of ours. Here, in the request's
        # task, we only wait for the disconnect; ending the stream otherwise
        # cancels this wait.
        try:
            try:
                while not stream.is_closing():
                    if (await receive())["type"] == "http.disconnect":
                        stream.left()
            except asyncio.CancelledError:
                stream.woken(_BYE)
            await stream.finish()
        finally:
            self._close(stream, scope)

    async def _start(self, scope: Scope, receive: Receive, send: Send) -> SendTransport | None:
        """Answer the request, or open its stream and return it (waiting:
        `SendTransport.waiting`); None when it was answered."""
        decision = await self._decide(scope, receive, send)
        if decision is None:
            return None
        if not isinstance(decision, Subscribe):
            await self._answer(decision, send)
            return None
        stream = SendTransport(send, self.send_timeout)
        try:
            sub = stream.sub = self.mercure.stream(decision, stream)
        except HTTPError as error:
            await _send(send, error.response())
            return None
        try:
            try:
                await self.mercure.open_stream(
                    sub, decision, functools.partial(_head, stream, decision)
                )
            except HTTPError as error:
                await _send(send, error.response())
                self._close(stream, scope)
                return None
            subscriber = await self.mercure.opened(decision, sub.topics)
            if subscriber is not None:  # (closed by `_close`, whatever fails next)
                stream.held = (subscriber, None, None)
            hooked = None
            if self.webhooks is not None:
                hooked = self.webhooks.opened(subscriber, sub.topics, decision.payload)
            seconds = decision.seconds_left(time.time())
            timer = None
            if seconds is not None:
                timer = asyncio.get_running_loop().call_later(seconds, stream.end, _COME_BACK)
            if subscriber is not None or hooked is not None or timer is not None:
                stream.held = (subscriber, hooked, timer)
            for handle in _handles(self.streams, scope):
                handle._join(stream)
        except BaseException:
            self._close(stream, scope)
            raise
        stream.waiting()
        return stream

    def _close(self, stream: SendTransport, scope: Scope) -> None:
        """The stream is over (or was refused): the hub, the `Streams`, the
        subscriptions API and the webhooks forget it. Safe to call twice."""
        subscriber, hooked, timer = stream.held or (None, None, None)
        stream.held = None
        if timer is not None:
            timer.cancel()
        for handle in _handles(self.streams, scope):
            handle._part(stream)
        sub = stream.sub
        if sub is None:
            return
        sub.close()
        self.mercure.closed(subscriber)
        if self.webhooks is not None and hooked is not None:
            self.webhooks.closed(hooked, sub.topics)

    async def _decide(
        self, scope: Scope, receive: Receive, send: Send
    ) -> Subscribe | Publish | Listing | Response | None:
        """What Mercure decides for the request; None when it was answered
        here (the lifespan, a websocket, a 404, a body too large)."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return None
        if scope["type"] != "http":
            return None  # websockets are not ours: closing the scope refuses them
        path = _mercure_path(scope)
        if path is None:
            await _send(send, Response.text(404, f"not found: {scope.get('path', '')}"))
            return None
        body = b""
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            read = await _body(receive, self.max_body_bytes)
            if read is None:
                limit = self.max_body_bytes
                await _send(send, Response.text(413, f"request body is larger than {limit} bytes"))
                return None
            body = read
        request = Request.from_pairs(
            scope["method"],
            path,
            scope.get("query_string", b""),
            scope["headers"],
            body,
            "https" if scope.get("scheme") == "https" else "http",
        )
        return await decide(self.mercure, request, self.authorizer)

    async def _answer(self, decision: Publish | Listing | Response, send: Send) -> None:
        if isinstance(decision, Publish):
            await _send(send, await self.mercure.publish(decision))
        elif isinstance(decision, Listing):
            await _send(send, await self.mercure.listing(decision))
        else:
            await _send(send, decision)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[dict[str, Streams]]:
        """For your app's `lifespan=`: start the hub (if new); when the
        server is told to stop (SIGINT, SIGTERM) end every stream at once
        with a `retry:` hint (`Streams.lifespan`); at shutdown `drain(grace)`
        and `aclose()` the hub."""
        if self.hub.state == "new":
            await self.hub.start()
        try:
            async with self.streams.lifespan() as state:
                yield state
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        await self.hub.drain(self.grace)
        await self.mercure.aclose()
        await self.hooks.aclose()
        await self.hub.aclose()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        async with contextlib.AsyncExitStack() as stack:
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    try:
                        if self.hub.state == "new":
                            await self.hub.start()
                    except Exception as error:
                        await send({"type": "lifespan.startup.failed", "message": str(error)})
                        return
                    await stack.enter_async_context(self.streams.lifespan())
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await stack.aclose()  # streams end now, with their retry hint
                    await self._shutdown()
                    await send({"type": "lifespan.shutdown.complete"})
                    return


def _mercure_path(scope: Scope) -> str | None:
    """The request's path as the Mercure layer sees it (percent-encoded,
    from `/.well-known/mercure`), wherever the app is mounted; None if it is
    not ours."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    raw = scope.get("raw_path")
    encoded = raw.decode("latin-1") if isinstance(raw, bytes) else None
    if path in ("", "/"):
        return MERCURE_PATH
    if path == METADATA_PATH:  # (when the app routes it here: see the FastAPI example)
        return path
    if path.startswith(MERCURE_PATH):
        rest = path[len(MERCURE_PATH) :]
    elif path.startswith("/subscriptions"):
        rest = path
    else:
        return None
    if encoded is not None and "%" in encoded:
        # keep the percent-encoding of topics in subscriptions-API paths
        index = encoded.find("/subscriptions")
        if index >= 0 and rest.startswith("/subscriptions"):
            return MERCURE_PATH + encoded[index:]
    return MERCURE_PATH + rest


async def _body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None if it is larger than `limit`."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(parts)
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def _head(stream: SendTransport, decision: Subscribe, resume: Resume) -> bytes:
    """Queue the response head (Mercure's headers, which need `resume`);
    the first bytes of the body."""
    headers = [*_SSE_HEADERS]
    headers.extend(
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in decision.headers(resume)
    )
    stream.start(200, headers)
    return FIRST_COMMENT


def _handles(streams: Streams, scope: Scope) -> list[Streams]:
    """The `Streams` a stream joins: the app's, and its lifespan's."""
    handles = [streams]
    state = scope.get("state")
    app_streams = state.get(_STATE_KEY) if isinstance(state, Mapping) else None
    if isinstance(app_streams, Streams) and app_streams is not streams:
        handles.append(app_streams)
    return handles


async def _send(send: Send, response: Response) -> None:
    headers: list[Any] = [
        (b"content-type", response.content_type.encode("latin-1")),
        (b"content-length", str(len(response.body)).encode()),
    ]
    headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers)
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
