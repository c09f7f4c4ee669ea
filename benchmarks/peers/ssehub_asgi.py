"""ssehub's ASGI path under uvicorn: `HubApp` serving a `Hub`, with a plain
ASGI publish route. Measured beside the standalone server (decision 0001)
and beside sse-starlette and FastAPI's built-in SSE (docs/benchmarks.md).

Run: uvicorn benchmarks.peers.ssehub_asgi:app --loop uvloop --http httptools
Subscribe GET /.well-known/mercure?topic=T; publish POST form topic=T&data=D.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from ssehub import Hub
from ssehub.asgi import HubApp
from ssehub.asgi._types import Receive, Scope, Send

hub = Hub()
subscribe = HubApp(hub)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http" or scope["method"] != "POST":
        await subscribe(scope, receive, send)  # lifespan and GET
        return
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
