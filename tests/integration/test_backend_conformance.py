"""The backend contract, run against every backend."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ssehub.backends import (
    Backend,
    DuplicateEventIdError,
    HistoryLimits,
    MemoryBackend,
    Record,
    SQLiteBackend,
)
from ssehub.backends.redis import RedisBackend
from ssehub.protocol import Event, encode_event
from tests.support.redis import REDIS_URL, drop_keys, redis_or_skip


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


BACKENDS = ["memory", "sqlite", "redis"]


def rec(topics: tuple[str, ...], id: str, t: float, data: str = "") -> Record:
    event = Event(data or id, id=id)
    return Record(topics, event, t, encode_event(event))


def ids(records: list[Record]) -> list[str]:
    return [r.id for r in records]


@pytest.fixture(params=BACKENDS)
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Backend]]:
    prefixes: list[str] = []

    def make(limits: HistoryLimits, clock: Callable[[], float]) -> Backend:
        if request.param == "sqlite":
            return SQLiteBackend(tmp_path / "history.db", limits, clock=clock)
        if request.param == "redis":
            redis_or_skip()
            prefix = f"ssehub-test:{uuid.uuid4().hex}:"  # a namespace of this test's own
            prefixes.append(prefix)
            return RedisBackend(REDIS_URL, limits, prefix=prefix, clock=clock)
        return MemoryBackend(limits, clock=clock)

    yield make
    for prefix in prefixes:  # leave Redis as we found it
        drop_keys(prefix)


def run(
    factory: Callable[..., Backend], body: Callable[[Backend, Clock], object], **kw: object
) -> None:
    clock = Clock()
    backend = factory(HistoryLimits(**kw), clock)  # type: ignore[arg-type]

    async def main() -> None:
        await backend.start()
        try:
            await body(backend, clock)  # type: ignore[misc]
        finally:
            await backend.aclose()

    asyncio.run(main())


def test_history_after_id_in_order(factory: Callable[..., Backend]) -> None:
    async def body(b: Backend, c: Clock) -> None:
        for i in range(5):
            await b.append(rec(("a",), f"e{i}", c.now))
        h = await b.history(["a"], "e1")
        assert h.found
        assert ids(h.records) == ["e2", "e3", "e4"]
        assert ids((await b.history(["a"], None)).records) == ["e0", "e1", "e2", "e3", "e4"]
        assert (await b.history(["a"], "e4")).records == []
        assert await b.last_id() == "e4"

    run(factory, body)


def test_several_topics_merge_in_publish_order_once(factory: Callable[..., Backend]) -> None:
    async def body(b: Backend, c: Clock) -> None:
        await b.append(rec(("a",), "1", c.now))
        await b.append(rec(("b",), "2", c.now))
        await b.append(rec(("a", "b"), "3", c.now))
        await b.append(rec(("c",), "4", c.now))
        await b.append(rec(("b",), "5", c.now))
        assert ids((await b.history(["a", "b"], None)).records) == ["1", "2", "3", "5"]
        assert ids((await b.history(["b", "a"], "2")).records) == ["3", "5"]
        assert ids((await b.history(None, "1")).records) == ["2", "3", "4", "5"]
        assert ids((await b.history(["zzz"], None)).records) == []

    run(factory, body)


def test_unknown_id_is_reported_with_all_history(factory: Callable[..., Backend]) -> None:
    async def body(b: Backend, c: Clock) -> None:
        await b.append(rec(("a",), "1", c.now))
        h = await b.history(["a"], "nope")
        assert not h.found
        assert ids(h.records) == ["1"]

    run(factory, body)


def test_count_bound_per_topic(factory: Callable[..., Backend]) -> None:
    async def body(b: Backend, c: Clock) -> None:
        for i in range(10):
            await b.append(rec(("a",), f"a{i}", c.now))
        await b.append(rec(("b",), "b0", c.now))
        assert ids((await b.history(["a"], None)).records) == ["a7", "a8", "a9"]
        assert ids((await b.history(["b"], None)).records) == ["b0"]
        h = await b.history(["a"], "a2")  # aged out by count
        assert not h.found

    run(factory, body, max_events=3)


def test_event_on_two_topics_stays_while_one_holds_it(factory: Callable[..., Backend]) -> None:
    async def body(b: Backend, c: Clock) -> None:
        await b.append(rec(("a", "b"), "x", c.now))
        await b.append(rec(("a",), "y", c.now))
        await b.append(rec(("a",), "z", c.now))
        assert ids((await b.history(["a"], None)).records) == ["y", "z"]
        assert ids((await b.history(["b"], None)).records) == ["x"]
        assert (await b.history(["b"], "x")).found

    run(factory, body, max_events=2)


def test_age_bound(factory: Callable[..., Backend]) -> None:
    async def body(b: Backend, c: Clock) -> None:
        await b.append(rec(("a",), "old", c.now))
        c.now += 50
        await b.append(rec(("quiet",), "q", c.now))
        await b.append(rec(("a",), "new", c.now))
        c.now += 60  # "old" is 110 s old, the others 60 s
        assert ids((await b.history(["a"], None)).records) == ["new"]
        assert not (await b.history(["a"], "old")).found
        c.now += 50
        assert (await b.history(None, None)).records == []
        assert await b.last_id() is None

    run(factory, body, max_age=100.0)


def test_duplicate_id_is_refused(factory: Callable[..., Backend]) -> None:
    async def body(b: Backend, c: Clock) -> None:
        await b.append(rec(("a",), "1", c.now, "first"))
        with pytest.raises(DuplicateEventIdError, match="'1'"):
            await b.append(rec(("b",), "1", c.now, "second"))
        records = (await b.history(None, None)).records
        assert [r.event.data for r in records] == ["first"]

    run(factory, body)


def test_resume_lookup_is_keyed_not_a_scan(factory: Callable[..., Backend]) -> None:
    async def body(b: Backend, c: Clock) -> None:
        for i in range(20_000):
            await b.append(rec((f"t{i % 4}",), f"e{i}", c.now))
        h = await b.history(["t1"], "e19997")  # e19997 is the newest of t1
        assert h.found
        assert h.records == []
        assert ids((await b.history(["t1", "t2"], "e19990")).records) == [
            "e19993",
            "e19994",
            "e19997",
            "e19998",
        ]

    run(factory, body, max_events=10_000)


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_events"):
        HistoryLimits(max_events=0)
    with pytest.raises(ValueError, match="max_age"):
        HistoryLimits(max_age=0)


def test_private_flag_is_kept(factory: Callable[..., Backend]) -> None:
    async def body(b: Backend, c: Clock) -> None:
        event = Event("s", id="p1")
        await b.append(Record(("a",), event, c.now, encode_event(event), private=True))
        await b.append(rec(("a",), "p2", c.now))
        records = (await b.history(["a"], None)).records
        assert [(r.id, r.private) for r in records] == [("p1", True), ("p2", False)]

    run(factory, body)


def test_history_reads_in_pages(factory: Callable[..., Backend]) -> None:
    async def body(b: Backend, clock: Clock) -> None:
        layout = [("a",), ("b",), ("a", "b"), ("c",), ("a",), ("b", "c"), ("a",)]
        for i, published in enumerate(layout):
            await b.append(rec(published, str(i), 1000.0))

        async def paged(topics: list[str] | None, after: str | None, limit: int) -> list[str]:
            page = await b.history(topics, after, limit=limit)
            got = ids(page.records)
            while page.cursor is not None:
                assert len(page.records) <= limit
                page = await b.history(topics, None, limit=limit, after_position=page.cursor)
                assert page.found
                got += ids(page.records)
            return got

        selections: list[list[str] | None] = [None, ["a"], ["a", "b"], ["c", "b"]]
        for limit in (1, 2, 3, 100):
            for topics in selections:
                for after in (None, "1"):
                    whole = ids((await b.history(topics, after)).records)
                    assert await paged(topics, after, limit) == whole, (topics, after, limit)
        first = await b.history(["a", "b"], None, limit=2)
        assert ids(first.records) == ["0", "1"]
        assert first.cursor is not None
        last = await b.history(["a"], "4", limit=5)
        assert ids(last.records) == ["6"]
        assert last.cursor is None
        with pytest.raises(ValueError, match="limit"):
            await b.history(None, None, limit=0)
        with pytest.raises(ValueError, match="after_position"):
            await b.history(None, "1", after_position=first.cursor)

    run(factory, body)
