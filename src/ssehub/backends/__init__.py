"""Storage and transport of events by topic: one contract, several backends.

`SQLiteBackend` and `RedisBackend` are loaded on first use, so importing the
package (or the memory backend) does not load sqlite3, asyncio or redis.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._base import (
    Backend,
    DuplicateEventIdError,
    History,
    HistoryLimits,
    OrderedSharedBackend,
    PresenceBackend,
    PresenceSync,
    PresenceView,
    Record,
    SharedBackend,
    StoreRefusedError,
    TopicLimits,
)
from .memory import MemoryBackend

if TYPE_CHECKING:
    from ._sqlite_shared import SharedSQLiteBackend
    from .redis import RedisBackend, RedisStatistics, ReplicaWaitError
    from .sqlite import SQLiteBackend

__all__ = (
    "Backend",
    "DuplicateEventIdError",
    "History",
    "HistoryLimits",
    "MemoryBackend",
    "OrderedSharedBackend",
    "PresenceBackend",
    "PresenceSync",
    "PresenceView",
    "Record",
    "RedisBackend",
    "RedisStatistics",
    "ReplicaWaitError",
    "SQLiteBackend",
    "SharedBackend",
    "SharedSQLiteBackend",
    "StoreRefusedError",
    "TopicLimits",
    "backend_from_url",
)

_LAZY = {
    "RedisBackend": "redis",
    "RedisStatistics": "redis",
    "ReplicaWaitError": "redis",
    "SQLiteBackend": "sqlite",
    "SharedSQLiteBackend": "_sqlite_shared",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ssehub.backends' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # loaded once; later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def backend_from_url(
    url: str, limits: HistoryLimits | None = None, *, shared: bool = False
) -> Backend:
    """The backend a store URL names: `memory:` (this process only),
    `sqlite:PATH` (`sqlite:relative.db`; `sqlite:/abs/path.db` and
    `sqlite:///abs/path.db` are the same absolute path), or
    `redis://host:port/db` or
    `redis+sentinel://host:26379,host:26379,.../SERVICE/db` or
    `redis+cluster://host:port,host:port,...` (shared by every
    hub on it; parameters `prefix=`, `wait=N`, `wait_timeout_ms=`).
    `shared`: several processes use the store at once (`serve --workers N`):
    a SQLite file is then a `SharedSQLiteBackend`; memory is refused."""
    if url in ("memory:", "memory://"):
        if shared:
            raise ValueError(
                f"{url} keeps history in one process, which the others would not see:"
                " use sqlite:PATH or redis://host:port/db"
            )
        return MemoryBackend(limits)
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:")
        path = path.removeprefix("//") if path.startswith("//") else path
        if not path:
            raise ValueError(f"store URL {url!r} names no file: use sqlite:///path/to/hub.db")
        folder = Path(path).parent
        if not folder.is_dir():
            raise ValueError(f"store URL {url!r}: the folder {str(folder)!r} does not exist")
        if shared:
            from ._sqlite_shared import SharedSQLiteBackend

            return SharedSQLiteBackend(path, limits)
        from .sqlite import SQLiteBackend

        return SQLiteBackend(path, limits)
    if url.startswith(
        ("redis://", "rediss://", "unix://", "redis+sentinel://", "redis+cluster://")
    ):
        from .redis import RedisBackend

        return RedisBackend(url, limits)  # the URL's grammar: backends/_redis_url.py
    raise ValueError(
        f"unknown store URL {url!r}: use memory:, sqlite:PATH, redis://host:port/db"
        ", redis+sentinel://host:26379,.../SERVICE/db or redis+cluster://host:port,..."
    )
