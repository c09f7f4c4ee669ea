"""Time, injected: the hub asks a clock instead of the time module, so tests
of heartbeats and ages advance a fake clock instead of sleeping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ("Clock", "SystemClock", "Timer")


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def time(self) -> float:
        """Unix time in seconds (stamps events; history ages by it)."""

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` (paces heartbeats)."""

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` on the running loop after `seconds`."""


class SystemClock:
    """The real clock: `time.time()` and `asyncio.sleep()`."""

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(seconds, callback)
