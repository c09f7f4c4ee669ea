"""Event ids: time-ordered UUIDs (version 7 layout), as `urn:uuid:...` like
Mercure. Ordered within a process, unique across restarts (48 bits of
milliseconds plus 62 random bits), safe from any thread."""

from __future__ import annotations

import os
import threading
import time

__all__ = ("IdGenerator",)

_POOL = 4096  # random bytes read at a time: one `getrandom` call per 512 ids


class IdGenerator:
    """Callable returning a new id. Within one millisecond a 12-bit counter
    keeps ids increasing; when it runs out the timestamp borrows the next
    millisecond, so ids never go backwards even if the wall clock does."""

    __slots__ = ("_at", "_counter", "_lock", "_ms", "_pid", "_pool")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ms = 0
        self._counter = 0
        self._pool = b""  # from os.urandom, 8 bytes per id
        self._at = 0
        self._pid = 0  # the process that read the pool: a forked child reads its own

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
            at = self._at
            if at >= len(self._pool) or self._pid != os.getpid():
                self._pool, at, self._pid = os.urandom(_POOL), 0, os.getpid()
            self._at = at + 8
            rand = int.from_bytes(self._pool[at : at + 8]) & 0x3FFF_FFFF_FFFF_FFFF
        value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand
        h = f"{value:032x}"
        return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
