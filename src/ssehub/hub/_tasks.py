"""Ending a task the hub owns."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ("cancel_and_wait",)


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait until it has ended. Its cancellation is not
    ours to raise; ours is: when the caller itself is cancelled meanwhile,
    `CancelledError` propagates (even though `task` ended cancelled too). An
    exception the task ended with is raised."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if not task.cancelled() or (current is not None and current.cancelling()):
            raise
