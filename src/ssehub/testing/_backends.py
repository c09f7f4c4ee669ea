"""The backend contract: one conformance suite that every backend passes.

Subclass `BackendContract` in a pytest `Test*` class and give it
`make_backend`; pytest collects the `test_*` methods. The suite uses plain
Python (asyncio and `AssertionError`), so it needs no test framework itself.

A new case is one more `test_*` method: an `async def body(backend, clock)`
run by `self.run(body, **limits)`, checking with `expect()` and `raises()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from ssehub.backends import Backend, DuplicateEventIdError, HistoryLimits, Record
from ssehub.hub import TopicPolicies, TopicPolicy
from ssehub.protocol import Event, encode_event

from ._clock import FakeClock

__all__ = ("BackendContract",)

Body = Callable[[Backend, FakeClock], Awaitable[None]]


def record(topics: tuple[str, ...], event_id: str, at: float, data: str = "") -> Record:
    """A stored record of an event with `event_id` (its data, unless given)."""
    event = Event(data or event_id, id=event_id)
    return Record(topics, event, at, encode_event(event))


def ids(records: list[Record]) -> list[str]:
    return [r.id for r in records]


def expect(got: object, want: object, what: str) -> None:
    """Fail with both values named: the suite runs without pytest's assert rewriting."""
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, expected {want!r}")


@contextlib.contextmanager
def raises(kind: type[BaseException], match: str) -> Iterator[None]:
    """Like `pytest.raises(kind, match=...)`, without pytest."""
    try:
        yield
    except kind as error:
        if not re.search(match, str(error)):
            message = f"{kind.__name__} {str(error)!r} does not match {match!r}"
            raise AssertionError(message) from error
    else:
        raise AssertionError(f"{kind.__name__} not raised")


class BackendContract:
    """What every backend must do, as `test_*` methods for pytest to run.

    ::

        class TestMyBackend(BackendContract):
            def make_backend(self, limits, clock):
                return MyBackend(limits, clock=clock)

    `make_backend` gets the `HistoryLimits` the test needs and `clock`, a
    function returning Unix seconds that the test moves forward (so age
    limits are tested without sleeping). Each test starts the backend,
    runs, and closes it. Set up and clean up what a backend needs (a file, a
    key prefix) in pytest fixtures of the subclass, e.g. an autouse fixture
    storing `tmp_path` on `self`.
    """

    def make_backend(self, limits: HistoryLimits, clock: Callable[[], float]) -> Backend:
        """A new, empty backend with these limits and clock."""
        raise NotImplementedError(f"{type(self).__name__} must define make_backend(limits, clock)")

    def run(self, body: Body, **limits: Any) -> None:
        """Run `body(backend, clock)` on a started backend made with
        `HistoryLimits(**limits)`, in a new event loop."""
        clock = FakeClock()
        backend = self.make_backend(HistoryLimits(**limits), clock.time)

        async def main() -> None:
            await backend.start()
            try:
                await body(backend, clock)
            finally:
                await backend.aclose()

        asyncio.run(main())

    # -- reading history ------------------------------------------------------------

    def test_history_after_id_in_order(self) -> None:
        async def body(b: Backend, clock: FakeClock) -> None:
            for i in range(5):
                await b.append(record(("a",), f"e{i}", clock.time()))
            h = await b.history(["a"], "e1")
            expect(h.found, True, "e1 is in history")
            expect(ids(h.records), ["e2", "e3", "e4"], "after e1")
            everything = ["e0", "e1", "e2", "e3", "e4"]
            expect(ids((await b.history(["a"], None)).records), everything, "all history")
            expect(ids((await b.history(["a"], "e4")).records), [], "after the newest")
            expect(await b.last_id(), "e4", "last_id()")

        self.run(body)

    def test_several_topics_merge_in_publish_order_once(self) -> None:
        async def body(b: Backend, clock: FakeClock) -> None:
            for topics, event_id in [(("a",), "1"), (("b",), "2"), (("a", "b"), "3"),
                                     (("c",), "4"), (("b",), "5")]:  # fmt: skip
                await b.append(record(topics, event_id, clock.time()))
            history = b.history
            expect(ids((await history(["a", "b"], None)).records), ["1", "2", "3", "5"], "a, b")
            expect(ids((await history(["b", "a"], "2")).records), ["3", "5"], "b, a after 2")
            expect(ids((await history(None, "1")).records), ["2", "3", "4", "5"], "all after 1")
            expect(ids((await history(["zzz"], None)).records), [], "a topic never used")

        self.run(body)

    def test_unknown_id_is_reported_with_all_history(self) -> None:
        async def body(b: Backend, clock: FakeClock) -> None:
            await b.append(record(("a",), "1", clock.time()))
            h = await b.history(["a"], "nope")
            expect(h.found, False, "an id never stored is found")
            expect(ids(h.records), ["1"], "the history given instead")

        self.run(body)

    def test_private_flag_is_kept(self) -> None:
        async def body(b: Backend, clock: FakeClock) -> None:
            event = Event("s", id="p1")
            await b.append(Record(("a",), event, clock.time(), encode_event(event), private=True))
            await b.append(record(("a",), "p2", clock.time()))
            records = (await b.history(["a"], None)).records
            expect([(r.id, r.private) for r in records], [("p1", True), ("p2", False)], "private")

        self.run(body)

    def test_duplicate_id_is_refused(self) -> None:
        async def body(b: Backend, clock: FakeClock) -> None:
            await b.append(record(("a",), "1", clock.time(), "first"))
            with raises(DuplicateEventIdError, "'1'"):
                await b.append(record(("b",), "1", clock.time(), "second"))
            records = (await b.history(None, None)).records
            expect([r.event.data for r in records], ["first"], "history after the refusal")

        self.run(body)

    # -- idempotent retries -------------------------------------------------------

    def test_the_same_event_again_is_acknowledged_and_stored_once(self) -> None:
        """Same id, same first topic, same set of topics (other topics in
        any order), data, type, retry and private flag: `append` returns
        False and stores nothing."""

        def event(topics: tuple[str, ...], at: float) -> Record:
            ev = Event("line 1\nline 2", "order", "k1", 3000)
            return Record(topics, ev, at, encode_event(ev), private=True)

        async def body(b: Backend, clock: FakeClock) -> None:
            first = clock.time()
            expect(await b.append(event(("a", "b", "c"), first)), True, "the first append")
            await clock.advance(5)
            expect(await b.append(event(("a", "b", "c"), clock.time())), False, "the same again")
            expect(await b.append(event(("a", "c", "b"), clock.time())), False, "topics reordered")
            await b.append(record(("b",), "next", clock.time()))
            for topics in (None, ["a"], ["b", "c"]):
                got = [(r.id, r.time) for r in (await b.history(topics, None)).records]
                expect(got[0], ("k1", first), f"the stored event of {topics}, once and first")
            expect(ids((await b.history(["b"], None)).records), ["k1", "next"], "b")
            expect(ids((await b.history(["a"], "k1")).records), [], "after k1 on a")
            expect(await b.last_id(), "next", "last_id() after the retries")

        self.run(body)

    def test_another_event_under_a_used_id_is_still_refused(self) -> None:
        original = Event("x", "message", "k1", None)
        changes: list[tuple[str, tuple[str, ...], Event, bool]] = [
            ("other data", ("a", "b"), Event("y", "message", "k1", None), False),
            ("another type", ("a", "b"), Event("x", "other", "k1", None), False),
            ("a retry", ("a", "b"), Event("x", "message", "k1", 0), False),
            ("private", ("a", "b"), original, True),
            ("another first topic", ("b", "a"), original, False),
            ("a topic less", ("a",), original, False),
            ("a topic more", ("a", "b", "c"), original, False),
        ]

        async def body(b: Backend, clock: FakeClock) -> None:
            stored = Record(("a", "b"), original, clock.time(), encode_event(original))
            await b.append(stored)
            expect(await b.append(stored), False, "the same event again")
            for what, topics, ev, private in changes:
                with raises(DuplicateEventIdError, "'k1'"):
                    await b.append(Record(topics, ev, clock.time(), encode_event(ev), private))
                    raise AssertionError(f"{what}: taken as the same event")
            records = (await b.history(None, None)).records
            expect([(r.topics, r.event) for r in records], [(("a", "b"), original)], "history")

        self.run(body)

    def test_a_retry_appended_with_its_original_waits_for_it(self) -> None:
        """Appends under way together (one group commit, for a backend that
        batches): the original is stored, its retry acknowledged, a
        conflicting one refused."""

        async def body(b: Backend, clock: FakeClock) -> None:
            now = clock.time()
            outcomes = await asyncio.gather(
                b.append(record(("a",), "k1", now, "first")),
                b.append(record(("a",), "k1", now, "first")),
                b.append(record(("a",), "k1", now, "second")),
                return_exceptions=True,
            )
            expect(outcomes[:2], [True, False], "the original, then its retry")
            if not isinstance(outcomes[2], DuplicateEventIdError):
                raise AssertionError(f"the conflicting append: {outcomes[2]!r}")
            records = (await b.history(["a"], None)).records
            expect([r.event.data for r in records], ["first"], "history")

        self.run(body)

    def test_history_reads_in_pages(self) -> None:
        async def body(b: Backend, clock: FakeClock) -> None:
            layout = [("a",), ("b",), ("a", "b"), ("c",), ("a",), ("b", "c"), ("a",)]
            for i, published in enumerate(layout):
                await b.append(record(published, str(i), clock.time()))

            async def paged(topics: list[str] | None, after: str | None, limit: int) -> list[str]:
                page = await b.history(topics, after, limit=limit)
                got = ids(page.records)
                while page.cursor is not None:
                    if len(page.records) > limit:
                        raise AssertionError(f"a page of {len(page.records)} for limit={limit}")
                    page = await b.history(topics, None, limit=limit, after_position=page.cursor)
                    expect(page.found, True, "a next page's found")
                    got += ids(page.records)
                return got

            selections: list[list[str] | None] = [None, ["a"], ["a", "b"], ["c", "b"]]
            for limit in (1, 2, 3, 100):
                for topics in selections:
                    for after in (None, "1"):
                        whole = ids((await b.history(topics, after)).records)
                        what = f"pages of {limit} of {topics} after {after}"
                        expect(await paged(topics, after, limit), whole, what)
            first = await b.history(["a", "b"], None, limit=2)
            expect(ids(first.records), ["0", "1"], "the first page of a, b")
            if first.cursor is None:
                raise AssertionError("a page cut short by limit has no cursor")
            last = await b.history(["a"], "4", limit=5)
            expect((ids(last.records), last.cursor), (["6"], None), "the last page of a")
            with raises(ValueError, "limit"):
                await b.history(None, None, limit=0)
            with raises(ValueError, "after_position"):
                await b.history(None, "1", after_position=first.cursor)

        self.run(body)

    # -- bounds ---------------------------------------------------------------------

    def test_count_bound_per_topic(self) -> None:
        async def body(b: Backend, clock: FakeClock) -> None:
            for i in range(10):
                await b.append(record(("a",), f"a{i}", clock.time()))
            await b.append(record(("b",), "b0", clock.time()))
            expect(ids((await b.history(["a"], None)).records), ["a7", "a8", "a9"], "a, bounded")
            expect(ids((await b.history(["b"], None)).records), ["b0"], "b, its own bound")
            expect((await b.history(["a"], "a2")).found, False, "a2, dropped by count, found")

        self.run(body, max_events=3)

    def test_event_on_two_topics_stays_while_one_holds_it(self) -> None:
        async def body(b: Backend, clock: FakeClock) -> None:
            await b.append(record(("a", "b"), "x", clock.time()))
            await b.append(record(("a",), "y", clock.time()))
            await b.append(record(("a",), "z", clock.time()))
            expect(ids((await b.history(["a"], None)).records), ["y", "z"], "a")
            expect(ids((await b.history(["b"], None)).records), ["x"], "b still holds x")
            expect((await b.history(["b"], "x")).found, True, "x, held by b, found")

        self.run(body, max_events=2)

    def test_age_bound(self) -> None:
        async def body(b: Backend, clock: FakeClock) -> None:
            await b.append(record(("a",), "old", clock.time()))
            await clock.advance(50)
            await b.append(record(("quiet",), "q", clock.time()))
            await b.append(record(("a",), "new", clock.time()))
            await clock.advance(60)  # "old" is 110 s old, the others 60 s
            expect(ids((await b.history(["a"], None)).records), ["new"], "a after 110 s")
            expect((await b.history(["a"], "old")).found, False, "old, aged out, found")
            await clock.advance(50)
            expect((await b.history(None, None)).records, [], "all history after 160 s")
            expect(await b.last_id(), None, "last_id() with everything aged out")

        self.run(body, max_age=100.0)

    def test_topic_limits_bound_each_topic_by_its_own_count_and_age(self) -> None:
        """`HistoryLimits(topics=...)`: a topic with bounds of its own keeps
        that many events for that long; the others keep the defaults; an
        event on several topics is in history while one of them keeps it."""
        policies = TopicPolicies(
            (
                TopicPolicy("short", history=2),
                TopicPolicy("long/{x}", history=3, history_age=100.0),
                TopicPolicy("long/{x}", history=1),  # never used: the first match wins
            )
        )

        async def body(b: Backend, clock: FakeClock) -> None:
            for i in range(4):
                for topic, name in (("short", "s"), ("plain", "p"), ("long/a", "l")):
                    await b.append(record((topic,), f"{name}{i}", clock.time()))
            await b.append(record(("plain", "long/b"), "both", clock.time()))
            expect(ids((await b.history(["short"], None)).records), ["s2", "s3"], "short")
            expect(len((await b.history(["plain"], None)).records), 5, "plain: the default 5")
            expect(ids((await b.history(["long/a"], None)).records), ["l1", "l2", "l3"], "long")
            await clock.advance(50)  # past the default age (10 s), not long/{x}'s (100 s)
            await b.append(record(("plain",), "p4", clock.time()))  # a write sweeps
            expect(ids((await b.history(["plain"], None)).records), ["p4"], "plain at 50 s")
            expect(ids((await b.history(["short"], None)).records), [], "short at 50 s")
            expect(ids((await b.history(["long/a"], "l1")).records), ["l2", "l3"], "long/a")
            expect((await b.history(["plain"], "p3")).found, False, "p3 aged out, found")
            expect(ids((await b.history(["long/b"], None)).records), ["both"], "long/b")
            mixed = (await b.history(["plain", "long/b"], None)).records
            expect(ids(mixed), ["both", "p4"], "plain and long/b: each once")
            # (an event trimmed by count, l0, may stay in Redis's log for `*` reads)
            everything = [i for i in ids((await b.history(None, None)).records) if i != "l0"]
            expect(everything, ["l1", "l2", "l3", "both", "p4"], "all at 50 s, by age")
            expect(ids((await b.newest(["long/a", "short"], 2)).records), ["l2", "l3"], "newest")
            expect(await b.last_id(), "p4", "last_id() at 50 s")
            await clock.advance(110)  # 160 s: everything aged out
            expect((await b.history(None, None)).records, [], "all history at 160 s")
            expect(await b.last_id(), None, "last_id() at 160 s")

        self.run(body, max_events=5, max_age=10.0, topics=policies)

    # -- cost -----------------------------------------------------------------------

    def test_resume_lookup_is_keyed_not_a_scan(self) -> None:
        """Resuming near the end of a history 200 times longer costs about
        the same (a keyed lookup), not 200 times more (a scan): each cost is
        the best of several tries, both measured in this test, so a slow or
        busy machine slows both alike."""

        async def resume_cost(b: Backend, after: str) -> float:
            best = float("inf")
            for _ in range(15):
                start = time.perf_counter()
                await b.history(["t1"], after)
                best = min(best, time.perf_counter() - start)
            return best

        async def body(b: Backend, clock: FakeClock) -> None:
            for i in range(20_000):
                await b.append(record((f"t{i % 4}",), f"e{i}", clock.time()))
                if i == 99:
                    short = await resume_cost(b, "e97")  # e97: the newest of t1 so far
            h = await b.history(["t1"], "e19997")  # e19997 is the newest of t1
            expect((h.found, h.records), (True, []), "after the newest of t1")
            expect(ids((await b.history(["t1", "t2"], "e19990")).records),
                   ["e19993", "e19994", "e19997", "e19998"], "t1, t2 after e19990")  # fmt: skip
            long = await resume_cost(b, "e19997")
            if long > 10 * short:
                raise AssertionError(
                    f"resuming in 20,000 events took {long * 1e6:.0f} µs, in 100 events"
                    f" {short * 1e6:.0f} µs: {long / short:.0f} times as long, a scan?"
                )

        self.run(body, max_events=10_000)
