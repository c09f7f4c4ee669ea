"""The live-clock page inside a Starlette app.

    uvicorn examples.starlette_clock:app --timeout-graceful-shutdown 5
    open http://127.0.0.1:8000/

The built-in live page is served as static files, the hub's subscribe
endpoint is routed where the page expects it, and a task owned by the
lifespan publishes the time every second.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime

from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ssehub import Hub
from ssehub.asgi import HubApp
from ssehub.server import ASSETS, BUILTIN_PAGE

hub = Hub()
events = HubApp(hub)


async def clock(interval: float = 1.0) -> None:
    while True:
        await hub.publish("clock", datetime.now().astimezone().isoformat(timespec="seconds"))
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with events.lifespan():
        task = asyncio.create_task(clock())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


app = Starlette(
    lifespan=lifespan,
    routes=[
        Route("/.well-known/mercure", events),
        Mount("/_ssehub", app=StaticFiles(directory=ASSETS)),  # the page's shared-connection helper
        Mount("/", app=StaticFiles(directory=BUILTIN_PAGE, html=True)),
    ],
)
