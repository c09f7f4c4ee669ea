"""Storage and transport of events by topic: one contract, several backends."""

from ._base import Backend, DuplicateEventIdError, History, HistoryLimits, Record
from .memory import MemoryBackend
from .sqlite import SQLiteBackend

__all__ = (
    "Backend",
    "DuplicateEventIdError",
    "History",
    "HistoryLimits",
    "MemoryBackend",
    "Record",
    "SQLiteBackend",
)
