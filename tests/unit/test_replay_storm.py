"""A storm of identical resumes: pages shared and encoded once, replay
writes taking turns with the rest of the loop (`ssehub.hub._turns`)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from ssehub.backends import MemoryBackend, Record, SQLiteBackend
from ssehub.backends._sqlite_shared import SharedSQLiteBackend
from ssehub.hub import Hub, HubConfig
from ssehub.hub._turns import Turns
from ssehub.protocol import Event, encode_event
from tests.support.sqlite import trace_sqlite


class Writes(asyncio.WriteTransport):
    """Each bytes object a stream subscription writes, as it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert isinstance(data, bytes)
        self.writes.append(data)

    @property
    def written(self) -> bytes:
        return b"".join(self.writes)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def abort(self) -> None:
        raise AssertionError("the stream was aborted")


def _frames(events: list[Event]) -> bytes:
    return b"".join(encode_event(e) for e in events)


def test_identical_resumes_write_one_shared_bytes_object_per_page(tmp_path: Path) -> None:
    async def main() -> None:
        backend = SQLiteBackend(tmp_path / "hub.db")
        async with Hub(HubConfig(replay_page=10), backend=backend) as hub:
            ids = [await hub.publish("t", f"e{i}") for i in range(35)]
            secret = await hub.publish("t", "secret", private=True)
            expected = [Event(f"e{i}", id=ids[i]) for i in range(1, 35)]
            transports = [Writes() for _ in range(40)]
            subs = [
                hub.subscribe_stream(w, "t", last_event_id=ids[0], private_topics=rights)
                for i, w in enumerate(transports)
                for rights in [("t",) if i == 0 else ()]
            ]
            await asyncio.gather(*(s.open(lambda r: b"HEAD\n") for s in subs))
            for i, w in enumerate(transports):  # each its whole replay, in order, once
                replay = w.written.split(b"event: ssehub-live")[0]
                mine = [*expected, Event("secret", id=secret)] if i == 0 else expected
                assert replay == b"HEAD\n" + _frames(mine)
            # the 36 events in 4 pages: each page's bytes made once for the
            # public subscribers (the private one is a group of its own)
            public = {id(data) for w in transports[1:] for data in w.writes if b"data: e" in data}
            assert len(public) <= 8, f"{len(public)} byte strings for 4 pages"
            private = {id(data) for data in transports[0].writes}
            assert not private & public
            for s in subs:
                s.close()
        assert hub.statistics().events_replayed == 39 * 34 + 35

    asyncio.run(main())


def test_replay_writes_take_turns_with_the_loop() -> None:
    # 64 replays of 40 KiB each: written all at once they would fill one loop
    # iteration with 2.5 MiB; in turns, about 256 KiB go per iteration and
    # the loop runs its other work (a publish, answered) in between.
    async def main() -> None:
        backend = MemoryBackend()
        async with Hub(HubConfig(replay_page=8), backend=backend) as hub:
            ids = [await hub.publish("t", f"{i:04}" + "x" * 1000) for i in range(41)]
            transports = [Writes() for _ in range(64)]
            subs = [hub.subscribe_stream(w, "t", last_event_id=ids[0]) for w in transports]
            per_iteration: list[int] = []
            done = False

            def count(before: int = 0) -> None:  # once per loop iteration
                now = sum(len(d) for w in transports for d in w.writes)
                per_iteration.append(now - before)
                if not done:
                    asyncio.get_running_loop().call_soon(count, now)

            count()
            storm = asyncio.gather(*(s.open() for s in subs))
            await asyncio.sleep(0)
            await hub.publish("other", "meanwhile")
            published_at = sum(len(d) for w in transports for d in w.writes)
            await storm
            done = True
            total = sum(len(d) for w in transports for d in w.writes)
            assert total > 64 * 40 * 1000
            page = 8 * 1100
            assert max(per_iteration) <= 256 * 1024 + page, max(per_iteration)
            assert published_at < total / 2  # answered early in the storm, not after it
            for w in transports:
                assert w.written.count(b"data: ") == 40 + 1  # and every replay whole
            for s in subs:
                s.close()

    asyncio.run(main())


def test_a_subscription_closed_while_waiting_for_its_turn_writes_nothing_more() -> None:
    async def main() -> None:
        async with Hub(HubConfig(replay_page=4)) as hub:
            ids = [await hub.publish("t", "y" * 20_000) for _ in range(30)]
            transports = [Writes() for _ in range(40)]
            subs = [hub.subscribe_stream(w, "t", last_event_id=ids[0]) for w in transports]
            opens = [asyncio.ensure_future(s.open()) for s in subs]
            for _ in range(3):
                await asyncio.sleep(0)
            waiting = hub._replays.turns.waiting
            assert waiting > 0  # some wait for their turn now
            before = [len(w.writes) for w in transports]
            for s in subs[1:]:
                s.close()
            await asyncio.wait_for(asyncio.gather(*opens), 5)  # none stays behind
            assert [len(w.writes) for w in transports[1:]] == before[1:]
            assert transports[0].written.count(b"data: ") == 29 + 1
            assert subs[0].resume is not None
            assert subs[0].resume.replayed == 29
            subs[0].close()

    asyncio.run(main())


def test_turns_let_through_a_budget_per_loop_iteration_oldest_first() -> None:
    async def main() -> None:
        turns = Turns(100)
        assert turns.take(60) is None
        assert turns.take(60) is None  # over the budget now: the next waits
        first, second, third = turns.take(50), turns.take(50), turns.take(60)
        assert first is not None
        assert second is not None
        assert third is not None
        fourth = turns.take(1)
        assert fourth is not None  # behind the waiting ones
        second.set_result(None)  # it left the queue: it is skipped, not charged
        await asyncio.sleep(0)  # the next iteration: the budget's worth goes
        assert first.done()
        assert third.done()
        assert not fourth.done()
        assert turns.waiting == 1
        await asyncio.sleep(0)
        assert fourth.done()
        assert turns.waiting == 0
        with pytest.raises(ValueError, match="int >= 1"):
            Turns(0)

    asyncio.run(main())


def test_a_storm_of_last_id_reads_shares_reads_and_sees_what_was_stored_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    trace_sqlite(monkeypatch, statements.append)

    def record(event_id: str) -> Record:
        event = Event("x", id=event_id)
        return Record(("t",), event, 1e12, encode_event(event))

    async def main() -> None:
        # a file other processes append to: `last_id` reads it (on a file of
        # its own the store answers from its commits, with no read at all)
        backend = SharedSQLiteBackend(tmp_path / "hub.db", clock=lambda: 1e12, wake=False)
        await backend.start()
        try:
            await backend.append(record("a"))
            statements.clear()
            answers = await asyncio.gather(*(backend.last_id() for _ in range(200)))
            assert answers == ["a"] * 200
            reads = [s for s in statements if s.startswith("SELECT id, time FROM events")]
            assert 0 < len(reads) < 20, f"{len(reads)} reads for 200 at once"
            first = asyncio.ensure_future(backend.last_id())
            await backend.append(record("b"))  # committed before the next asks
            assert await backend.last_id() == "b"
            assert await first in ("a", "b")
        finally:
            await backend.aclose()

    asyncio.run(main())


def test_a_reader_that_leaves_a_shared_read_ends_no_one_elses(tmp_path: Path) -> None:
    async def main() -> None:
        # a shared file, where `last_id` is a read too (see above)
        backend = SharedSQLiteBackend(tmp_path / "hub.db", wake=False)
        await backend.start()
        try:
            event = Event("x", id="a")
            await backend.append(Record(("t",), event, time.time(), encode_event(event)))
            reads = [asyncio.ensure_future(backend.history(["t"], None)) for _ in range(10)]
            ids = [asyncio.ensure_future(backend.last_id()) for _ in range(10)]
            await asyncio.sleep(0)  # all asked (most joined one read)
            for leaving in (*reads[::2], *ids[::2]):
                leaving.cancel()
            for stays in reads[1::2]:
                assert [r.id for r in (await stays).records] == ["a"]
            for stays_id in ids[1::2]:
                assert await stays_id == "a"
            assert all(left.cancelled() for left in (*reads[::2], *ids[::2]))
        finally:
            await backend.aclose()

    asyncio.run(main())


class _CountingMemory(MemoryBackend):
    """A memory store that counts the history reads asked of it."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[int | None] = []

    async def history(self, *args: Any, **kwargs: Any) -> Any:
        self.reads.append(kwargs.get("after_position"))
        return await super().history(*args, **kwargs)


def test_later_replays_reuse_full_pages_for_a_moment_but_never_a_last_page() -> None:
    async def main() -> None:
        backend = _CountingMemory()
        async with Hub(HubConfig(replay_page=10), backend=backend) as hub:
            ids = [await hub.publish("t", f"e{i}") for i in range(36)]
            for _ in range(20):  # one after the other: no read is shared by a queue
                w = Writes()
                sub = hub.subscribe_stream(w, "t", last_event_id=ids[0])
                await sub.open()
                assert w.written.split(b"event: ssehub-live")[0] == _frames(
                    [Event(f"e{i}", id=ids[i]) for i in range(1, 36)]
                )
                sub.close()
            # 35 events: pages of 10, 10, 10, 5; the two full ones after the
            # first are read once, the first (by id) and the last each time
            assert len(backend.reads) == 20 + 2 + 20, backend.reads
            late = await hub.publish("t", "late")  # the last page grew
            w = Writes()
            sub = hub.subscribe_stream(w, "t", last_event_id=ids[0])
            await sub.open()
            assert w.written.split(b"event: ssehub-live")[0].endswith(
                encode_event(Event("late", id=late))
            )
            sub.close()

    asyncio.run(main())
