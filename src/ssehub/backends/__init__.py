"""Storage and transport of events by topic: one contract, several backends."""

from pathlib import Path

from ._base import Backend, DuplicateEventIdError, History, HistoryLimits, Record, SharedBackend
from .memory import MemoryBackend
from .redis import RedisBackend, RedisStatistics, ReplicaWaitError
from .sqlite import SQLiteBackend

__all__ = (
    "Backend",
    "DuplicateEventIdError",
    "History",
    "HistoryLimits",
    "MemoryBackend",
    "Record",
    "RedisBackend",
    "RedisStatistics",
    "ReplicaWaitError",
    "SQLiteBackend",
    "SharedBackend",
    "backend_from_url",
)


def backend_from_url(url: str, limits: HistoryLimits | None = None) -> Backend:
    """The backend a store URL names: `memory:` (this process only),
    `sqlite:PATH` (`sqlite:relative.db`; `sqlite:/abs/path.db` and
    `sqlite:///abs/path.db` are the same absolute path), or
    `redis://host:port/db` or
    `redis+sentinel://host:26379,host:26379,.../SERVICE/db` (shared by every
    hub on it; parameters `prefix=`, `wait=N`, `wait_timeout_ms=`)."""
    if url in ("memory:", "memory://"):
        return MemoryBackend(limits)
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:")
        path = path.removeprefix("//") if path.startswith("//") else path
        if not path:
            raise ValueError(f"store URL {url!r} names no file: use sqlite:///path/to/hub.db")
        folder = Path(path).parent
        if not folder.is_dir():
            raise ValueError(f"store URL {url!r}: the folder {str(folder)!r} does not exist")
        return SQLiteBackend(path, limits)
    if url.startswith(("redis://", "rediss://", "unix://", "redis+sentinel://")):
        return RedisBackend(url, limits)  # the URL's grammar: backends/_redis_url.py
    raise ValueError(
        f"unknown store URL {url!r}: use memory:, sqlite:PATH, redis://host:port/db"
        " or redis+sentinel://host:26379,.../SERVICE/db"
    )
