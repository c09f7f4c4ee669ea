"""The ASGI app the ASGI tests run under real servers (uvicorn, hypercorn,
granian), in a process of its own: `<server> tests.asgi_app:app`."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from ssehub import Hub, HubConfig
from ssehub.asgi import HubApp, Streams
from ssehub.asgi.starlette import EventSourceResponse
from ssehub.hub import TopicPolicy

# (the topic "one-viewer" may have one subscriber: test_topic_policies.py)
hub = Hub(HubConfig(heartbeat=15.0, topics=(TopicPolicy("one-viewer", max_subscribers=1),)))
events = HubApp(hub)
streams = Streams()
stats = {"started": 0, "finished": 0}


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Streams]]:
    # streams.lifespan: every stream (the HubApp's too) ends at SIGINT/SIGTERM
    async with events.lifespan(), streams.lifespan() as state:
        yield state
    print(f"lifespan done: started={stats['started']} finished={stats['finished']}", flush=True)
    sys.stdout.flush()


app = FastAPI(lifespan=lifespan)
app.mount("/hub", events)  # /hub/.well-known/mercure?topic=T


async def forever() -> AsyncIterator[dict[str, Any]]:
    stats["started"] += 1
    try:
        i = 0
        while True:
            yield {"id": str(i), "data": f"tick {i}"}
            i += 1
            await asyncio.sleep(0.05)
    finally:
        stats["finished"] += 1


async def count(n: int) -> AsyncIterator[Any]:
    for i in range(n):
        yield {"id": str(i), "event": "count", "data": {"i": i}}


async def tricky() -> AsyncIterator[Any]:
    yield "line\u2028separator, next\u0085line"
    yield "carriage\rreturn and crlf\r\nend"
    yield b"bytes \xe2\x98\x83"


@app.get("/forever")
async def forever_route() -> EventSourceResponse:
    return EventSourceResponse(forever(), streams=streams)


@app.get("/endless")
async def endless_route() -> EventSourceResponse:
    return EventSourceResponse(forever())  # no streams=: it joins the lifespan's


@app.get("/count")
async def count_route(n: int = 3) -> EventSourceResponse:
    return EventSourceResponse(count(n))


@app.get("/tricky")
async def tricky_route() -> EventSourceResponse:
    return EventSourceResponse(tricky())


TABS_PAGE = """<!doctype html><meta charset="utf-8"><title>tab</title>
<p id="state">connecting</p><ul id="got"></ul>
<script>
  const source = new EventSource("/hub/.well-known/mercure?topic=tabs");
  source.onopen = () => { document.getElementById("state").textContent = "open"; };
  source.onmessage = (event) => {
    const li = document.createElement("li");
    li.textContent = event.data;
    document.getElementById("got").append(li);
  };
</script>"""


@app.get("/tabs", response_class=HTMLResponse)
async def tabs() -> str:
    return TABS_PAGE


@app.get("/stats")
async def stats_route() -> dict[str, int]:
    tasks = len(asyncio.all_tasks())
    return {**stats, "open": len(streams), "tasks": tasks}


@app.post("/publish")
async def publish(topic: str, data: str) -> dict[str, str]:
    return {"id": await hub.publish(topic, data)}


@app.post("/drain")
async def drain() -> dict[str, int]:
    return {"left": await streams.drain(2.0)}
