"""A HubServer on a free port, in the test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable

from ssehub.backends import Backend, MemoryBackend
from ssehub.hub import Hub, HubConfig
from ssehub.mercure import MercureConfig
from ssehub.server import HubServer, ServerConfig
from ssehub.server._platform import run as run_loop
from ssehub.testing import FakeClock


@contextlib.asynccontextmanager
async def serving(
    *,
    clock: FakeClock | None = None,
    hub_config: HubConfig | None = None,
    backend: Backend | None = None,
    **server: object,
) -> AsyncIterator[tuple[Hub, HubServer, int]]:
    """`server`: `ServerConfig` fields and `MercureConfig` fields, mixed."""
    if backend is None and clock is not None:
        backend = MemoryBackend(clock=clock.time)
    names = {f.name for f in dataclasses.fields(MercureConfig)}
    mercure = MercureConfig(**{k: v for k, v in server.items() if k in names})  # type: ignore[arg-type]
    rest = {k: v for k, v in server.items() if k not in names}
    async with Hub(hub_config, backend=backend, clock=clock) as hub:
        srv = HubServer(hub, ServerConfig(port=0, mercure=mercure, **rest))  # type: ignore[arg-type]
        await srv.start()
        try:
            yield hub, srv, srv.port
        finally:
            await srv.aclose()


def run(body: Callable[[], Awaitable[None]]) -> None:
    """Run a test's body on the loop the server itself runs on: uvloop where
    installed, plain asyncio with SSEHUB_NO_UVLOOP=1."""
    run_loop(body())  # type: ignore[arg-type]


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)
