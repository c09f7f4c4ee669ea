"""ssehub's own Hub served through ASGI under uvicorn: the alternative the
server decision (docs/decisions/0001-server.md) was measured against.

Each subscriber is an ASGI task iterating `hub.subscribe()` and awaiting
`send()` per batch of events: the structure any ASGI server imposes.

Run: uvicorn benchmarks.peers.ssehub_asgi:app --loop uvloop --http httptools
Subscribe GET /.well-known/mercure?topic=T; publish POST form topic=T&data=D.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from ssehub import Hub
from ssehub.protocol import encode_event

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

hub = Hub()


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await hub.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await hub.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return
    query = parse_qs(scope["query_string"].decode())
    if scope["method"] == "POST":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        form = parse_qs(body.decode())
        event_id = await hub.publish(form["topic"], form.get("data", [""])[0])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": event_id.encode()})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
        }
    )
    await send({"type": "http.response.body", "body": b":\n\n", "more_body": True})
    async with hub.subscribe(query["topic"]) as events:
        async for event in events:
            await send(
                {"type": "http.response.body", "body": encode_event(event), "more_body": True}
            )
