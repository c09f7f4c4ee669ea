"""The floor of an idle SSE stream under an ASGI server: the response head
and a comment, then nothing but waiting for the disconnect. What uvicorn
itself costs per stream, before any app holds anything (the `asgi`
scenario's reference row for memory; it serves no events).

Run: uvicorn benchmarks.peers.asgi_floor:app --loop uvloop --http httptools
"""

from __future__ import annotations

from ssehub.asgi._types import Receive, Scope, Send

_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": message["type"] + ".complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": b":\n\n", "more_body": True})
    while (await receive())["type"] != "http.disconnect":
        pass
