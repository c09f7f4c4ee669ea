"""The backend contract (`ssehub.testing.BackendContract`), run against every
backend of ours, plus what only one backend can show."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ssehub.backends import Backend, HistoryLimits, MemoryBackend, SQLiteBackend
from ssehub.backends.redis import RedisBackend
from ssehub.testing import BackendContract
from tests.support.redis import REDIS_URL, drop_keys, redis_or_skip


class TestMemoryBackend(BackendContract):
    def make_backend(self, limits: HistoryLimits, clock: Callable[[], float]) -> Backend:
        return MemoryBackend(limits, clock=clock)


class TestSQLiteBackend(BackendContract):
    @pytest.fixture(autouse=True)
    def sqlite_file(self, tmp_path: Path) -> None:
        self.path = tmp_path / "history.db"

    def make_backend(self, limits: HistoryLimits, clock: Callable[[], float]) -> Backend:
        return SQLiteBackend(self.path, limits, clock=clock)


class TestRedisBackend(BackendContract):
    @pytest.fixture(autouse=True)
    def redis_namespace(self) -> Iterator[None]:
        redis_or_skip()  # fails instead under CI=true
        self.prefix = f"ssehub-test:{uuid.uuid4().hex}:"  # a namespace of this test's own
        yield
        drop_keys(self.prefix)  # leave Redis as we found it

    def make_backend(self, limits: HistoryLimits, clock: Callable[[], float]) -> Backend:
        return RedisBackend(REDIS_URL, limits, prefix=self.prefix, clock=clock)


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_events"):
        HistoryLimits(max_events=0)
    with pytest.raises(ValueError, match="max_age"):
        HistoryLimits(max_age=0)


def test_the_contract_names_what_a_subclass_lacks() -> None:
    with pytest.raises(NotImplementedError, match=r"Incomplete must define make_backend"):
        type("Incomplete", (BackendContract,), {})().test_age_bound()
