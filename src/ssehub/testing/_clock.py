"""`FakeClock`: time that moves only when a test says so."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ("FakeClock",)


class _FakeTimer:
    __slots__ = ("callback", "cancelled", "due")

    def __init__(self, due: float, callback: Callable[[], None]) -> None:
        self.due = due
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that moves only when told: `await clock.advance(15)` wakes
    every sleeper whose time has come, so heartbeat and age tests never
    sleep for real."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self._timers: list[_FakeTimer] = []

    def time(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + seconds, future))
        await future

    def call_later(self, seconds: float, callback: Callable[[], None]) -> _FakeTimer:
        timer = _FakeTimer(self._now + seconds, callback)
        self._timers.append(timer)
        return timer

    async def advance(self, seconds: float) -> None:
        """Move time forward, fire due timers and let woken sleepers run."""
        self._now += seconds
        due_timers = [t for t in self._timers if t.due <= self._now]
        self._timers = [t for t in self._timers if t.due > self._now]
        for timer in due_timers:
            if not timer.cancelled:
                timer.callback()
        due = [f for t, f in self._sleepers if t <= self._now]
        self._sleepers = [(t, f) for t, f in self._sleepers if t > self._now]
        for future in due:
            if not future.done():
                future.set_result(None)
        for _ in range(3):  # let woken tasks run their step
            await asyncio.sleep(0)
