"""A publish whose store suspends (a durable backend's append) is answered
in the loop pass after the store's task resumes. (That the store finishes
whatever the caller does, and a racing retry waits: `test_hub.py`.)"""

from __future__ import annotations

import asyncio

from ssehub.backends import MemoryBackend, Record
from ssehub.hub import Hub


class GatedBackend(MemoryBackend):
    """A memory backend whose append waits for the test to open its gate,
    as a durable backend waits for its commit."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: asyncio.Future[None] | None = None

    async def append(self, record: Record) -> bool:
        self.gate = asyncio.get_running_loop().create_future()
        await self.gate
        return await super().append(record)


async def opened(backend: GatedBackend) -> asyncio.Future[None]:
    while backend.gate is None:
        await asyncio.sleep(0)
    return backend.gate


async def passes_until(done: asyncio.Future[str]) -> int:
    """Loop passes this task sees before `done` is."""
    passes = 0
    while not done.done():
        await asyncio.sleep(0)
        passes += 1
    return passes


def test_the_caller_is_answered_in_the_second_loop_pass_after_the_store() -> None:
    async def main() -> None:
        backend = GatedBackend()
        async with Hub(backend=backend) as hub, hub.subscribe("t") as sub:
            publishing = asyncio.ensure_future(hub.publish("t", "x", id="e1"))
            gate = await opened(backend)
            gate.set_result(None)
            # the store's task resumes, then the caller: no pass for a
            # waiter or a shield in between (there were 5)
            assert await passes_until(publishing) <= 2
            assert publishing.result() == "e1"
            assert (await sub.__anext__()).id == "e1"
            assert not hub._publishing

    asyncio.run(main())
