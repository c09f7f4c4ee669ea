"""The typical sse-starlette broadcast, as most tutorials write it: one
asyncio.Queue per subscriber, filled by the publish route.

Run (the benchmark does): uvicorn benchmarks.peers.starlette_hub:app
    --loop uvloop --http httptools --no-access-log --backlog 4096
Subscribe GET /sub/{topic}; publish POST /pub/{topic} with the data as body.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

queues: dict[str, set[asyncio.Queue[str]]] = {}


async def sub(request: Request) -> EventSourceResponse:
    topic = request.path_params["topic"]
    queue: asyncio.Queue[str] = asyncio.Queue()
    queues.setdefault(topic, set()).add(queue)

    async def stream() -> AsyncIterator[dict[str, str]]:
        try:
            while True:
                yield {"data": await queue.get()}
        finally:
            queues[topic].discard(queue)

    return EventSourceResponse(stream())


async def pub(request: Request) -> Response:
    data = (await request.body()).decode()
    for queue in queues.get(request.path_params["topic"], ()):
        queue.put_nowait(data)
    return Response(status_code=204)


app = Starlette(routes=[Route("/sub/{topic}", sub), Route("/pub/{topic}", pub, methods=["POST"])])
