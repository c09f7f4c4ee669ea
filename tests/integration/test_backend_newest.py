"""`Backend.newest()`: the newest N records per topic, against every backend
(kept apart from the conformance suite while that moves to `ssehub.testing`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ssehub.backends import Backend, HistoryLimits, MemoryBackend, Record, SQLiteBackend
from ssehub.backends.redis import RedisBackend
from ssehub.protocol import Event, encode_event
from tests.support.redis import REDIS_URL, drop_keys, redis_or_skip


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Factory = Callable[[HistoryLimits, Clock], Backend]


def rec(topics: tuple[str, ...], id: str, t: float) -> Record:
    event = Event(id, id=id)
    return Record(topics, event, t, encode_event(event))


def ids(records: list[Record]) -> list[str]:
    return [r.id for r in records]


@pytest.fixture(params=["memory", "sqlite", "redis"])
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    prefixes: list[str] = []

    def make(limits: HistoryLimits, clock: Clock) -> Backend:
        if request.param == "sqlite":
            return SQLiteBackend(tmp_path / "history.db", limits, clock=clock)
        if request.param == "redis":
            redis_or_skip()
            prefix = f"ssehub-test:{uuid.uuid4().hex}:"
            prefixes.append(prefix)
            return RedisBackend(REDIS_URL, limits, prefix=prefix, clock=clock)
        return MemoryBackend(limits, clock=clock)

    yield make
    for prefix in prefixes:
        drop_keys(prefix)


def run(factory: Factory, body: Callable[[Backend, Clock], Awaitable[None]], **limits: Any) -> None:
    clock = Clock()
    backend = factory(HistoryLimits(**limits), clock)

    async def main() -> None:
        await backend.start()
        try:
            await body(backend, clock)
        finally:
            await backend.aclose()

    asyncio.run(main())


def test_newest_of_one_topic_oldest_first(factory: Factory) -> None:
    async def body(b: Backend, c: Clock) -> None:
        assert (await b.newest(["a"], 1)).records == []
        for i in range(5):
            await b.append(rec(("a",), f"a{i}", c.now))
            await b.append(rec(("b",), f"b{i}", c.now))
        h = await b.newest(["a"], 2)
        assert h.found
        assert ids(h.records) == ["a3", "a4"]
        assert ids((await b.newest(["a"], 1)).records) == ["a4"]
        assert ids((await b.newest(["a"], 50)).records) == [f"a{i}" for i in range(5)]
        assert (await b.newest(["nobody"], 3)).records == []

    run(factory, body)


def test_newest_per_topic_merged_each_once(factory: Factory) -> None:
    async def body(b: Backend, c: Clock) -> None:
        await b.append(rec(("a",), "e0", c.now))
        await b.append(rec(("b",), "e1", c.now))
        await b.append(rec(("a", "b"), "e2", c.now))  # the newest of both
        await b.append(rec(("b",), "e3", c.now))
        await b.append(rec(("c",), "e4", c.now))
        assert ids((await b.newest(["a", "b"], 1)).records) == ["e2", "e3"]
        assert ids((await b.newest(["a", "b"], 2)).records) == ["e0", "e2", "e3"]
        assert ids((await b.newest(["a", "a"], 1)).records) == ["e2"]

    run(factory, body)


def test_newest_of_all_topics(factory: Factory) -> None:
    async def body(b: Backend, c: Clock) -> None:
        await b.append(rec(("a",), "e0", c.now))
        await b.append(rec(("a", "b"), "e1", c.now))
        await b.append(rec(("c",), "e2", c.now))
        assert ids((await b.newest(None, 2)).records) == ["e1", "e2"]
        assert ids((await b.newest(None, 9)).records) == ["e0", "e1", "e2"]

    run(factory, body)


def test_newest_within_the_history_bounds(factory: Factory) -> None:
    async def body(b: Backend, c: Clock) -> None:
        for i in range(5):
            await b.append(rec(("a",), f"a{i}", c.now))
        assert ids((await b.newest(["a"], 10)).records) == ["a2", "a3", "a4"]  # max_events
        c.now += 50
        await b.append(rec(("a",), "late", c.now))
        c.now += 60  # the first five are older than max_age now
        assert ids((await b.newest(["a"], 10)).records) == ["late"]
        assert ids((await b.newest(None, 10)).records) == ["late"]
        c.now += 100
        assert (await b.newest(["a"], 10)).records == []
        assert (await b.newest(None, 10)).records == []

    run(factory, body, max_events=3, max_age=100)


def test_newest_rejects_a_bad_count(factory: Factory) -> None:
    async def body(b: Backend, c: Clock) -> None:
        for bad in (0, -1, True, 1.5):
            with pytest.raises(ValueError, match="newest"):
                await b.newest(["a"], bad)  # type: ignore[arg-type]

    run(factory, body)
