"""`answer_eagerly`: a coroutine run up to its first suspension with no
task, then carried on by a real task exactly as if that task had run it
from the start (the future it waits for, cancellation at every point, its
exceptions), on a real event loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ssehub.server._answer import answer_eagerly, to_task


async def _started(coro: Any) -> asyncio.Task[None] | None:
    loop = asyncio.get_running_loop()
    started: asyncio.Future[asyncio.Task[None] | None] = loop.create_future()
    loop.call_soon(lambda: started.set_result(answer_eagerly(coro)))
    return await started


def test_an_answer_ready_at_once_runs_here_with_no_task() -> None:
    seen: list[object] = []

    async def ready() -> None:
        seen.append(asyncio.current_task())

    async def body() -> None:
        assert await _started(ready()) is None
        assert seen == [None]

    asyncio.run(body())


def test_what_suspends_goes_on_in_a_task_that_waits_for_its_future() -> None:
    seen: list[object] = []

    async def body() -> None:
        gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def suspends() -> None:
            seen.append(asyncio.current_task())
            seen.append(await gate)
            seen.append(asyncio.current_task())
            async with asyncio.timeout(5):  # needs the task: it has it
                await asyncio.sleep(0)

        task = await _started(suspends())
        assert task is not None
        assert not task.done()
        await asyncio.sleep(0.01)
        assert not task.done()  # it waits for the gate, not for the loop
        assert seen == [None]
        gate.set_result("opened")
        await task
        assert seen == [None, "opened", task]

    asyncio.run(body())


def test_a_bare_yield_moves_it_into_its_task_at_once() -> None:
    seen: list[object] = []

    async def asks() -> None:
        seen.append(asyncio.current_task())
        await to_task()
        seen.append(asyncio.current_task())

    async def body() -> None:
        task = await _started(asks())
        assert task is not None
        await task
        assert seen == [None, task]

    asyncio.run(body())


def test_its_exception_is_the_task_s() -> None:
    async def body() -> None:
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def fails() -> None:
            await gate
            raise ValueError("the store broke")

        task = await _started(fails())
        assert task is not None
        gate.set_result(None)
        with pytest.raises(ValueError, match="the store broke"):
            await task

    asyncio.run(body())


@pytest.mark.parametrize("when", ["before its first step", "while it waits"])
def test_cancelling_its_task_cancels_what_it_waits_for_and_reaches_it(when: str) -> None:
    ended: list[str] = []

    async def body() -> None:
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def waits() -> None:
            try:
                await gate
            except asyncio.CancelledError:
                ended.append("cancelled")
                raise
            finally:
                ended.append("cleaned up")

        loop = asyncio.get_running_loop()
        started: asyncio.Future[asyncio.Task[None] | None] = loop.create_future()

        def start() -> None:
            task = answer_eagerly(waits())
            if when == "before its first step":
                assert task is not None
                task.cancel()  # as `connection_lost` right after `data_received`
            started.set_result(task)

        loop.call_soon(start)
        task = await started
        assert task is not None
        if when == "while it waits":
            await asyncio.sleep(0.01)
            task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
        assert gate.cancelled()
        assert ended == ["cancelled", "cleaned up"]

    asyncio.run(body())


def test_an_answer_that_cancels_itself_at_once_ends_quietly() -> None:
    async def body() -> None:
        gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        gone.cancel()

        async def cancelled() -> None:
            await gone

        assert await _started(cancelled()) is None

    asyncio.run(body())
