"""The feed of a backend shared by several hub processes: fan out here what
the others publish, and let a replay wait until the feed has caught up with
what it read."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable

from ssehub.backends import Record, SharedBackend

from ._tasks import cancel_and_wait
from ._waiters import Waiters

__all__ = ("Feed",)

_OWN_BOUND = 100_000
log = logging.getLogger("ssehub.hub")


class Feed:
    """Follows a `SharedBackend`: records appended by other processes go to
    `fanout`; this process's own appends (fanned out already) are skipped
    when they come back. `ordered` (an `OrderedSharedBackend`): every record
    goes to `fanout` from here, this process's own too, in position order;
    the own ones are only told apart for `remote`."""

    __slots__ = ("_backend", "_fanout", "_ordered", "_own", "_own_order", "_task", "_waiters",
                 "position", "remote")  # fmt: skip

    def __init__(
        self, backend: SharedBackend, fanout: Callable[[Record], None], *, ordered: bool = False
    ) -> None:
        self._backend = backend
        self._fanout = fanout
        self._ordered = ordered
        self._task: asyncio.Task[None] | None = None
        self.position = 0
        self.remote = 0
        self._own: dict[str, int] = {}  # id -> echoes of own appends still to come
        self._own_order: deque[str] = deque()
        self._waiters = Waiters()

    async def start(self) -> None:
        self.position = await self._backend.newest_position()
        self._task = asyncio.get_running_loop().create_task(self._follow(), name="ssehub-follow")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """The feed stopped (closed, or failed): nobody waits for it any more."""
        self._waiters.release(math.inf)
        if not task.cancelled() and task.exception() is not None:
            log.error("the feed of the shared store stopped", exc_info=task.exception())

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        await cancel_and_wait(task)

    def own(self, event_id: str) -> None:
        """This process is appending `event_id`: skip it when it comes back."""
        self._own[event_id] = self._own.get(event_id, 0) + 1
        self._own_order.append(event_id)
        if len(self._own_order) > _OWN_BOUND:  # bounded, even if some never come back
            self._unown(self._own_order.popleft())

    def disown(self, event_id: str) -> None:
        """The append failed: if it was stored all the same, fan it out when
        it comes."""
        self._unown(event_id)

    def replayed(self, record: Record) -> None:
        """The append of `record` stored nothing: the same event was stored
        already (an idempotent retry), perhaps by another process. Its one
        echo is not ours to skip; if the feed skipped it meanwhile, taking
        it for ours, fan it out now — the subscribers here get it once."""
        if not self._unown(record.id) and not self._ordered:
            self.remote += 1
            self._fanout(record)  # ordered: the feed brings (or brought) it, once

    def _unown(self, event_id: str) -> bool:
        left = self._own.get(event_id, 0)
        if left > 1:
            self._own[event_id] = left - 1
        elif left == 1:
            del self._own[event_id]
        return left > 0

    async def reached(self, position: int) -> None:
        """Wait until the feed has passed `position` (what a replay read), so
        a record both replayed and fed is held, then dropped as a duplicate."""
        if self._task is None or self._task.done() or self.position >= position:
            return
        await self._waiters.wait(position)

    async def _follow(self) -> None:
        async for position, record in self._backend.follow(self.position):
            self.position = position
            own = self._unown(record.id)
            if not own:
                self.remote += 1
            if not own or self._ordered:  # else published here: fanned out already
                self._fanout(record)
            if self._waiters:
                self._waiters.release(position)
