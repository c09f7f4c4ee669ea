"""Event ids: time-ordered UUIDs (version 7 layout), as `urn:uuid:...` like
Mercure. Ordered within a process, unique across restarts (48 bits of
milliseconds plus 62 random bits), safe from any thread."""

from __future__ import annotations

import os
import threading
import time

__all__ = ("IdGenerator",)

_POOL = 4096  # random bytes read at a time: one `getrandom` call per 512 ids
# the variant nibble (0b10xx): two random bits of a hex digit under the fixed two
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


class IdGenerator:
    """Callable returning a new id. Within one millisecond a 12-bit counter
    keeps ids increasing; when it runs out the timestamp borrows the next
    millisecond, so ids never go backwards even if the wall clock does.

    The random bits are read in hex (16 digits an id, 62 random bits with
    the variant's two), and the timestamp's digits are written once a
    millisecond: an id is a few string slices, no big-integer arithmetic."""

    __slots__ = ("_at", "_counter", "_lock", "_ms", "_pid", "_pool", "_prefix")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ms = 0
        self._counter = 0
        self._prefix = ""  # "urn:uuid:" and the digits of `_ms`, with the version
        self._pool = ""  # from os.urandom, in hex: 16 digits per id
        self._at = 0
        self._pid = 0  # the process that read the pool: a forked child reads its own

    def __call__(self) -> str:
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms > self._ms:
                self._ms, self._counter = ms, 0
                self._prefix = _prefix(ms)
            else:
                self._counter += 1
                if self._counter > 0xFFF:
                    self._ms, self._counter = self._ms + 1, 0
                    self._prefix = _prefix(self._ms)
            counter = self._counter
            at = self._at
            if at >= len(self._pool) or self._pid != os.getpid():
                self._pool, at, self._pid = os.urandom(_POOL).hex(), 0, os.getpid()
            self._at = at + 16
            prefix, pool = self._prefix, self._pool
        rand = pool[at : at + 16]
        return f"{prefix}{counter:03x}-{_VARIANT[rand[0]]}{rand[1:4]}-{rand[4:]}"


def _prefix(ms: int) -> str:
    """The id's text up to the counter: 48 bits of milliseconds, version 7."""
    return f"urn:uuid:{ms >> 16:08x}-{ms & 0xFFFF:04x}-7"
