"""Stream LLM-style tokens to each request, with FastAPI.

    uvicorn examples.fastapi_tokens:app --timeout-graceful-shutdown 5
    curl -N 'http://127.0.0.1:8000/generate?prompt=hello'

Each request gets its own generator. When the client goes away, the
generator is cancelled at once and its `finally` runs (here: counts it), so
no model keeps generating for nobody.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import FastAPI

from ssehub.asgi import Streams
from ssehub.asgi.starlette import EventSourceResponse

app = FastAPI(title="tokens")
streams = Streams()  # `await streams.drain()` ends every open stream
stats = {"started": 0, "finished": 0}


async def generate(prompt: str, delay: float) -> AsyncIterator[dict[str, str]]:
    """A stand-in for a model: one token at a time."""
    stats["started"] += 1
    try:
        words = f"You said {prompt!r}. Here is a considered answer, one token at a time.".split()
        for i, word in enumerate(words):
            await asyncio.sleep(delay)
            yield {"event": "token", "id": str(i), "data": word}
        yield {"event": "done", "data": ""}
    finally:
        stats["finished"] += 1


@app.get("/generate")
async def generate_route(prompt: str, delay: float = 0.05) -> EventSourceResponse:
    return EventSourceResponse(generate(prompt, delay), streams=streams)


@app.get("/stats")
async def stats_route() -> dict[str, int]:
    return {**stats, "open": len(streams)}
