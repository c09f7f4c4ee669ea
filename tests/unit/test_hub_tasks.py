"""`cancel_and_wait`: how the hub ends the tasks it owns (heartbeat, feed,
presence) without swallowing its caller's own cancellation."""

from __future__ import annotations

import asyncio

import pytest

from ssehub.hub._tasks import cancel_and_wait


async def _slow_to_stop() -> None:
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        await asyncio.sleep(30)  # a long cleanup, cut by a second cancel
        raise


def test_ends_the_task() -> None:
    async def body() -> None:
        task = asyncio.create_task(asyncio.sleep(30))
        await asyncio.sleep(0)
        await cancel_and_wait(task)  # returns: the task's cancellation is not ours
        assert task.cancelled()

    asyncio.run(body())


def test_the_callers_cancellation_is_not_swallowed() -> None:
    async def body() -> None:
        task = asyncio.create_task(_slow_to_stop())
        await asyncio.sleep(0)
        closer = asyncio.create_task(cancel_and_wait(task))
        await asyncio.sleep(0.05)  # the closer waits for the task's cleanup
        closer.cancel()  # cancels the task again: it ends cancelled
        with pytest.raises(asyncio.CancelledError):
            await closer
        assert closer.cancelled()
        assert task.cancelled()

    asyncio.run(body())


def test_the_tasks_failure_is_raised() -> None:
    async def failing() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    async def body() -> None:
        task = asyncio.create_task(failing())
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="cleanup failed"):
            await cancel_and_wait(task)

    asyncio.run(body())
