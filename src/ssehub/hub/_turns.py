"""Replay writes in turns, so a storm of replays cannot hold the loop.

When many subscribers resume at once their pages become ready together (a
shared history read answers them all in one loop iteration); written all in
that iteration, they would keep the loop from everything else for as long
as it takes to copy them to the sockets. `Turns` lets at most `budget` bytes
of replay be written per loop iteration: the others wait, oldest first, and
go in the next iterations, with the loop's I/O (publishes, live fan-out, new
connections) run between them. Live events never wait here.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ("Turns",)


class Turns:
    """Bytes of replay written per loop iteration, at most `budget` (a page
    larger than that goes alone)."""

    __slots__ = ("_budget", "_handle", "_used", "_waiting")

    def __init__(self, budget: int) -> None:
        if type(budget) is not int or budget < 1:
            raise ValueError(f"the replay budget must be an int >= 1, not {budget!r}")
        self._budget = budget
        self._used = 0  # bytes let through in this loop iteration
        self._waiting: deque[tuple[asyncio.Future[None], int]] = deque()
        self._handle: asyncio.Handle | None = None  # the next iteration's turn

    @property
    def waiting(self) -> int:
        """Replay writes waiting for their turn."""
        return len(self._waiting)

    def take(self, nbytes: int) -> asyncio.Future[None] | None:
        """Write `nbytes` of replay now (None), or once the future is done
        (its turn came, or the caller set it done to leave the queue)."""
        if self._used < self._budget and not self._waiting:
            self._charge(nbytes)
            return None
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append((turn, nbytes))
        self._charge(0)
        return turn

    def _charge(self, nbytes: int) -> None:
        self._used += nbytes
        if self._handle is None:  # the next iteration starts a new budget
            self._handle = asyncio.get_running_loop().call_soon(self._next)

    def _next(self) -> None:
        """A new loop iteration: let the oldest waiters through, `budget`
        bytes of them (their writes run in the iteration after this one)."""
        self._handle = None
        self._used = 0
        waiting = self._waiting
        while waiting and self._used < self._budget:
            turn, nbytes = waiting.popleft()
            if not turn.done():  # else it left (its subscription closed)
                turn.set_result(None)
                self._used += nbytes
        if self._used or waiting:
            self._handle = asyncio.get_running_loop().call_soon(self._next)
