"""Helpers for testing code that uses ssehub (never imported by the library)."""

from __future__ import annotations

import asyncio

__all__ = ("FakeClock",)


class FakeClock:
    """A clock that moves only when told: `await clock.advance(15)` wakes
    every sleeper whose time has come, so heartbeat and age tests never
    sleep for real."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def time(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + seconds, future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time forward and let the woken sleepers run."""
        self._now += seconds
        due = [f for t, f in self._sleepers if t <= self._now]
        self._sleepers = [(t, f) for t, f in self._sleepers if t > self._now]
        for future in due:
            if not future.done():
                future.set_result(None)
        for _ in range(3):  # let woken tasks run their step
            await asyncio.sleep(0)
