"""Event ids: time-ordered UUIDs (version 7 layout), as `urn:uuid:...` like
Mercure. Ordered within a process, unique across restarts (48 bits of
milliseconds plus 62 random bits), safe from any thread."""

from __future__ import annotations

import os
import threading
import time

__all__ = ("IdGenerator",)


class IdGenerator:
    """Callable returning a new id. Within one millisecond a 12-bit counter
    keeps ids increasing; when it runs out the timestamp borrows the next
    millisecond, so ids never go backwards even if the wall clock does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ms = 0
        self._counter = 0

    def __call__(self) -> str:
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms > self._ms:
                self._ms, self._counter = ms, 0
            else:
                self._counter += 1
                if self._counter > 0xFFF:
                    self._ms, self._counter = self._ms + 1, 0
            ms, counter = self._ms, self._counter
        rand = int.from_bytes(os.urandom(8)) & 0x3FFF_FFFF_FFFF_FFFF
        value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand
        h = f"{value:032x}"
        return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
