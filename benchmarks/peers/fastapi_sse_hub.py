"""FastAPI's built-in SSE (`fastapi.sse`), as its docs suggest: a generator
path operation with `response_class=EventSourceResponse`, one asyncio.Queue
per subscriber, filled by the publish route.

Run: uvicorn benchmarks.peers.fastapi_sse_hub:app --loop uvloop --http httptools
Subscribe GET /sub/{topic}; publish POST /pub/{topic} with the data as body.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

app = FastAPI()
queues: dict[str, set[asyncio.Queue[str]]] = {}


@app.get("/sub/{topic}", response_class=EventSourceResponse)
async def sub(topic: str) -> AsyncIterator[ServerSentEvent]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    queues.setdefault(topic, set()).add(queue)
    try:
        while True:
            yield ServerSentEvent(raw_data=await queue.get())  # as sent, not JSON-quoted
    finally:
        queues[topic].discard(queue)


@app.post("/pub/{topic}")
async def pub(topic: str, request: Request) -> Response:
    data = (await request.body()).decode()
    for queue in queues.get(topic, ()):
        queue.put_nowait(data)
    return Response(status_code=204)
