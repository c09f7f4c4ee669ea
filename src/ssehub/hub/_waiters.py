"""Coroutines waiting for a counter to reach their target."""

from __future__ import annotations

import asyncio

__all__ = ("Waiters",)


class Waiters:
    """Coroutines waiting for a counter (a publish ticket, a feed position)
    to reach their target."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []

    def __bool__(self) -> bool:
        return bool(self._waiting)

    async def wait(self, target: int) -> None:
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((target, future))
        try:
            await future
        finally:
            if not future.done():  # cancelled: do not keep it
                future.cancel()

    def release(self, reached: float) -> None:
        """Wake every waiter whose target is at most `reached`."""
        waiting = []
        for target, future in self._waiting:
            if target <= reached:
                if not future.done():
                    future.set_result(None)
            elif not future.done():
                waiting.append((target, future))
        self._waiting = waiting
