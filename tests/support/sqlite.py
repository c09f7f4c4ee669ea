"""Watching what SQLite does, on every connection opened from then on (the
backend's too): the work it does, virtual-machine instructions in steps of
`STEP` (`count_sqlite_work`), and the statements it runs (`trace_sqlite`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

STEP = 10
"""Instructions per counted step."""


class SQLiteWork:
    """`steps`: how many times SQLite ran `STEP` more instructions."""

    def __init__(self) -> None:
        self.steps = 0

    def _tick(self) -> int:
        self.steps += 1
        return 0  # go on

    def instructions(self) -> int:
        return self.steps * STEP

    def reset(self) -> None:
        self.steps = 0


def count_sqlite_work(monkeypatch: pytest.MonkeyPatch) -> SQLiteWork:
    """From now to the end of the test, every `sqlite3.connect()` counts
    into the returned `SQLiteWork`."""
    work = SQLiteWork()
    connect = sqlite3.connect

    def counting_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db: sqlite3.Connection = connect(*args, **kwargs)
        db.set_progress_handler(work._tick, STEP)
        return db

    monkeypatch.setattr(sqlite3, "connect", counting_connect)
    return work


def trace_sqlite(monkeypatch: pytest.MonkeyPatch, statement: Callable[[str], object]) -> None:
    """From now to the end of the test, every `sqlite3.connect()` gives
    `statement` the text of each statement it runs."""
    connect = sqlite3.connect

    def tracing_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db: sqlite3.Connection = connect(*args, **kwargs)
        db.set_trace_callback(statement)
        return db

    monkeypatch.setattr(sqlite3, "connect", tracing_connect)
