"""Event ids: time-ordered UUIDs (version 7 layout), as `urn:uuid:...` like
Mercure. Ordered within a process, unique across restarts (48 bits of
milliseconds plus 62 random bits), safe from any thread and across `fork`."""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import ClassVar

__all__ = ("IdGenerator",)

_POOL = 4096  # random bytes read at a time: one `getrandom` call per 512 ids
_HOOKING = threading.Lock()  # the fork hook is registered once, whichever thread is first
# the variant nibble (0b10xx): two random bits of a hex digit under the fixed two
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


class IdGenerator:
    """Callable returning a new id. Within one millisecond a 12-bit counter
    keeps ids increasing; when it runs out the timestamp borrows the next
    millisecond, so ids never go backwards even if the wall clock does.

    The random bits are read in hex (16 digits an id, 62 random bits with
    the variant's two), and the timestamp's digits are written once a
    millisecond: an id is a few string slices, no big-integer arithmetic.

    A forked child must not reuse the random digits it inherited: where the
    platform has `os.register_at_fork`, the child drops every generator's
    pool (and its lock, which a thread of the parent may have held), so no
    id asks for the process id."""

    __slots__ = ("__weakref__", "_at", "_counter", "_lock", "_ms", "_pool", "_prefix")

    # the generators alive, for the child's fork hook (registered by the first)
    _alive: ClassVar[weakref.WeakSet[IdGenerator]] = weakref.WeakSet()
    _hooked: ClassVar[bool] = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ms = 0
        self._counter = 0
        self._prefix = ""  # "urn:uuid:" and the digits of `_ms`, with the version
        self._pool = ""  # from os.urandom, in hex: 16 digits per id
        self._at = 0
        with _HOOKING:
            if not IdGenerator._hooked and hasattr(os, "register_at_fork"):  # (not Windows)
                os.register_at_fork(after_in_child=_forked)
                IdGenerator._hooked = True
            IdGenerator._alive.add(self)

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
            if at >= len(self._pool):
                self._pool, at = os.urandom(_POOL).hex(), 0
            self._at = at + 16
            prefix, pool = self._prefix, self._pool
        rand = pool[at : at + 16]
        return f"{prefix}{counter:03x}-{_VARIANT[rand[0]]}{rand[1:4]}-{rand[4:]}"


def _forked() -> None:
    """In a forked child: every generator reads a pool of its own, under a
    fresh lock (as is the hook's own: a thread of the parent may have held any)."""
    global _HOOKING
    _HOOKING = threading.Lock()
    for gen in tuple(IdGenerator._alive):
        gen._lock = threading.Lock()
        gen._pool, gen._at = "", 0


def _prefix(ms: int) -> str:
    """The id's text up to the counter: 48 bits of milliseconds, version 7."""
    return f"urn:uuid:{ms >> 16:08x}-{ms & 0xFFFF:04x}-7"
