"""The hub's contract (docs/hub.md, "The contract"), in process, with a fake clock."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import threading
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Collection

import pytest

from ssehub.backends import DuplicateEventIdError, History, HistoryLimits, MemoryBackend, Record
from ssehub.hub import (
    GAP_EVENT,
    EventSubscription,
    Hub,
    HubClosedError,
    HubConfig,
    IdGenerator,
    SlowSubscriberError,
)
from ssehub.protocol import Event, LocalProtocolError, encode_event
from ssehub.testing import FakeClock


def run(body: Callable[[Hub, FakeClock], Awaitable[None]], **config: object) -> None:
    async def main() -> None:
        clock = FakeClock()
        backend = MemoryBackend(clock=clock.time)
        async with Hub(HubConfig(**config), backend=backend, clock=clock) as hub:  # type: ignore[arg-type]
            await body(hub, clock)

    asyncio.run(main())


async def take(sub: EventSubscription, n: int) -> list[Event]:
    return [await asyncio.wait_for(anext(sub), 5) for _ in range(n)]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_publish_reaches_subscribers_of_the_topic_only() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        async with hub.subscribe("a") as a, hub.subscribe("b") as b:
            id1 = await hub.publish("a", "one")
            await hub.publish("b", "two", event="tick")
            [ev] = await take(a, 1)
            assert ev == Event("one", id=id1)
            [ev] = await take(b, 1)
            assert (ev.data, ev.event) == ("two", "tick")

    run(body)


def test_several_topics_deliver_once_in_order() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        async with hub.subscribe(["a", "b"]) as sub, hub.subscribe("*") as everything:
            await hub.publish("a", "1")
            await hub.publish(["a", "b"], "2")
            await hub.publish("c", "3")
            await hub.publish("b", "4")
            assert [e.data for e in await take(sub, 3)] == ["1", "2", "4"]
            assert [e.data for e in await take(everything, 4)] == ["1", "2", "3", "4"]

    run(body)


def test_ids_are_ordered_and_unique() -> None:
    gen = IdGenerator()
    ids = [gen() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert re.fullmatch(
        r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", ids[0]
    )
    # ids embed the wall clock's milliseconds (UUIDv7), so a generator made
    # later (a restart) continues after them...
    last_ms = int(ids[-1].removeprefix("urn:uuid:").replace("-", "")[:12], 16)
    assert abs(last_ms / 1000 - time.time()) < 60
    while time.time_ns() // 1_000_000 <= last_ms:  # at most a millisecond
        pass
    assert IdGenerator()() > ids[-1]
    # ...and one running at the same moment (another process, or a restart
    # within the millisecond) never makes the same ids: their random bits differ
    first, other = IdGenerator(), IdGenerator()
    pairs = [(first(), other()) for _ in range(5_000)]
    assert not {a for a, _ in pairs} & {b for _, b in pairs}


def test_resume_replays_then_goes_live_without_gap_or_duplicate() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        ids = [await hub.publish("t", str(i)) for i in range(5)]
        sub = hub.subscribe("t", last_event_id=ids[1])
        opening = asyncio.ensure_future(sub.open())
        # publish while the subscription is opening
        late = await hub.publish("t", "5")
        resume = await opening
        assert resume.replayed in (3, 4)
        assert not resume.gap
        await hub.publish("t", "6")
        events = await take(sub, 5)
        assert [e.data for e in events] == ["2", "3", "4", "5", "6"]
        assert events[3].id == late
        sub.close()

    run(body)


def test_resume_from_earliest_gets_all_history() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        for i in range(3):
            await hub.publish("t", str(i))
        async with hub.subscribe("t", last_event_id="earliest") as sub:
            assert [e.data for e in await take(sub, 3)] == ["0", "1", "2"]
            assert sub.resume is not None
            assert sub.resume.replayed == 3

    run(body)


def test_unknown_last_event_id_is_an_explicit_gap() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        await hub.publish("t", "kept")
        async with hub.subscribe("t", last_event_id="urn:uuid:gone") as sub:
            gap, kept = await take(sub, 2)
            assert gap.event == GAP_EVENT
            assert gap.id is None
            assert json.loads(gap.data) == {"lastEventID": "urn:uuid:gone"}
            assert kept.data == "kept"
            assert sub.resume is not None
            assert sub.resume.gap
        assert hub.statistics().gaps == 1

    run(body)


def test_aged_out_id_is_a_gap() -> None:
    async def main() -> None:
        clock = FakeClock()
        backend = MemoryBackend(HistoryLimits(max_age=60), clock=clock.time)
        async with Hub(backend=backend, clock=clock) as hub:
            old = await hub.publish("t", "old")
            await clock.advance(61)
            await hub.publish("t", "new")
            async with hub.subscribe("t", last_event_id=old) as sub:
                gap, new = await take(sub, 2)
                assert gap.event == GAP_EVENT
                assert new.data == "new"

    asyncio.run(main())


def test_fresh_subscription_starts_after_the_newest_event() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        async with hub.subscribe("t") as sub:
            assert sub.resume is not None
            assert sub.resume.last_event_id == "earliest"
        newest = await hub.publish("t", "x")
        async with hub.subscribe("other") as sub:
            assert sub.resume is not None
            assert sub.resume.last_event_id == newest
            assert sub.resume.replayed == 0

    run(body)


def test_slow_subscriber_is_dropped_and_can_resume() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        fast = hub.subscribe("t")
        slow = hub.subscribe("t")
        await fast.open()
        await slow.open()
        first = await hub.publish("t", "0")
        assert (await take(slow, 1))[0].id == first  # then it stops reading
        assert (await take(fast, 1))[0].id == first
        for i in range(1, 10):
            await hub.publish("t", str(i))
            assert (await take(fast, 1))[0].data == str(i)  # fast keeps up
        await settle()
        assert slow.reason == "slow"
        with pytest.raises(SlowSubscriberError) as info:
            await take(slow, 1)
        assert info.value.last_event_id == first
        stats = hub.statistics()
        assert stats.disconnects_slow == 1
        assert stats.subscribers == 1
        # nothing is lost: resuming from the last seen id gets the rest
        async with hub.subscribe("t", last_event_id=first) as again:
            assert [e.data for e in await take(again, 9)] == [str(i) for i in range(1, 10)]
        fast.close()

    run(body, max_buffer_events=4)


def test_slow_by_bytes() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        async with hub.subscribe("t") as sub:
            await hub.publish("t", "x" * 600)
            await hub.publish("t", "y" * 600)
            await settle()
            assert sub.reason == "slow"

    run(body, max_buffer_bytes=1000)


def test_close_unregisters_at_once() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        sub = hub.subscribe(["a", "b"])
        await sub.open()
        assert hub.statistics().subscribers_by_topic == {"a": 1, "b": 1}
        sub.close()
        stats = hub.statistics()
        assert stats.subscribers == 0
        assert stats.subscribers_by_topic == {}
        assert stats.groups == 0
        with pytest.raises(StopAsyncIteration):
            await anext(sub)

    run(body)


def test_cancelled_consumer_leaves_no_registration() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        async def consume() -> None:
            async with hub.subscribe("t") as sub:
                async for _ in sub:
                    pass

        task = asyncio.ensure_future(consume())
        await settle()
        assert hub.statistics().subscribers == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert hub.statistics().subscribers == 0

    run(body)


def test_publish_validates_and_names_the_field() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        with pytest.raises(LocalProtocolError, match="Event id"):
            await hub.publish("t", "x", id="1\ndata: evil")
        with pytest.raises(LocalProtocolError, match="Event event"):
            await hub.publish("t", "x", event="a\nb")
        with pytest.raises(LocalProtocolError, match="Event retry"):
            await hub.publish("t", "x", retry=-5)
        with pytest.raises(ValueError, match="at least one topic"):
            await hub.publish([], "x")
        with pytest.raises(ValueError, match="non-empty str"):
            await hub.publish("", "x")
        with pytest.raises(ValueError, match="reserved"):
            await hub.publish("t", "x", id="earliest")
        await hub.publish("t", "x", id="mine")
        with pytest.raises(DuplicateEventIdError):
            await hub.publish("t", "y", id="mine")
        assert hub.statistics().events_published == 1
        with pytest.raises(ValueError, match="Last-Event-ID is longer"):
            hub.subscribe("t", last_event_id="x" * 2000)

    run(body)


class RecordingTransport(asyncio.WriteTransport):
    """What a stream subscription writes (in test_server: over real sockets)."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return False

    def abort(self) -> None:
        raise AssertionError("the stream was aborted")


def test_heartbeat_is_a_comment_on_streams_only() -> None:
    # Paced by the injected clock: the test never sleeps for real.
    async def body(hub: Hub, clock: FakeClock) -> None:
        transport = RecordingTransport()
        stream = hub.subscribe_stream(transport, "t")
        await stream.open(lambda resume: b"HEAD\n")
        async with hub.subscribe("t") as events:
            await settle()
            await clock.advance(14.9)
            assert transport.written == b"HEAD\n"
            await clock.advance(0.2)  # 15.1 s
            assert transport.written == b"HEAD\n:\n\n"
            await clock.advance(15)  # 30.1 s
            assert transport.written == b"HEAD\n:\n\n:\n\n"
            event_id = await hub.publish("t", "x")
            [event] = await take(events, 1)  # the iterator got no heartbeat, just the event
            assert event == Event("x", id=event_id)
            assert transport.written.endswith(encode_event(event))
        stream.close()

    run(body)


def test_publish_threadsafe_from_many_threads() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        results: list[str] = []

        def worker(n: int) -> None:
            for i in range(50):
                results.append(hub.publish_threadsafe("t", f"{n}-{i}").result(10))

        async with hub.subscribe("t") as sub:
            threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
            for t in threads:
                t.start()
            events = await take(sub, 200)
            for t in threads:
                await asyncio.to_thread(t.join)
            assert sorted(e.id or "" for e in events) == sorted(results)
            for n in range(4):  # each thread's events arrive in its order
                mine = [e.data for e in events if e.data.startswith(f"{n}-")]
                assert mine == [f"{n}-{i}" for i in range(50)]

    run(body)


def test_drain_ends_subscriptions_and_refuses_new_work() -> None:
    async def main() -> None:
        hub = Hub()
        await hub.start()
        sub = hub.subscribe("t")
        await sub.open()
        await hub.publish("t", "last")
        await hub.drain(1.0)
        assert [e.data async for e in sub] == ["last"]  # delivered, then ended
        assert sub.reason == "shutdown"
        with pytest.raises(HubClosedError):
            await hub.publish("t", "late")
        with pytest.raises(HubClosedError):
            await hub.subscribe("t").open()
        await hub.aclose()
        await hub.aclose()  # idempotent
        assert hub.state == "closed"
        assert hub._heartbeat_task is None

    asyncio.run(main())


def test_publish_threadsafe_needs_a_running_hub() -> None:
    hub = Hub()
    with pytest.raises(HubClosedError, match="new"):
        hub.publish_threadsafe("t", "x")


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="heartbeat"):
        HubConfig(heartbeat=0)
    with pytest.raises(ValueError, match="max_buffer_events"):
        HubConfig(max_buffer_events=0)


class AckLatencyBackend(MemoryBackend):
    """A memory backend whose acknowledgement takes a while after the event is
    stored, like a durable backend waiting on a commit."""

    async def append(self, record: Record) -> bool:
        stored = await super().append(record)
        for _ in range(5):
            await asyncio.sleep(0)
        return stored


def test_no_duplicate_when_a_stored_publish_is_fanned_out_after_the_replay() -> None:
    async def main() -> None:
        async with Hub(backend=AckLatencyBackend()) as hub:
            first = await hub.publish("t", "0")
            publishing = asyncio.ensure_future(hub.publish("t", "1"))
            for _ in range(2):  # the publish starts the hub's store task, which runs
                await asyncio.sleep(0)  # then "1" is stored, not yet fanned out
            sub = hub.subscribe("t", last_event_id=first)
            resume = await sub.open()
            assert resume.replayed == 1  # "1" came from history
            second = await publishing
            third = await hub.publish("t", "2")
            events = await take(sub, 2)
            assert [e.id for e in events] == [second, third]  # "1" once, then "2"
            sub.close()

    asyncio.run(main())


def test_private_updates_reach_only_authorized_subscribers() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        anyone = hub.subscribe("orders")
        owner = hub.subscribe("orders", private_topics=["orders"])
        admin = hub.subscribe("*", private_topics=["*"])
        other = hub.subscribe("orders", private_topics=["invoices"])
        for sub in (anyone, owner, admin, other):
            await sub.open()
        secret = await hub.publish("orders", "secret", private=True)
        public = await hub.publish("orders", "public")
        assert [e.id for e in await take(owner, 2)] == [secret, public]
        assert [e.id for e in await take(admin, 2)] == [secret, public]
        assert [e.id for e in await take(anyone, 1)] == [public]
        assert [e.id for e in await take(other, 1)] == [public]
        # and replay applies the same rule
        async with hub.subscribe("orders", last_event_id="earliest") as late:
            assert [e.id for e in await take(late, 1)] == [public]
        async with hub.subscribe(
            "orders", last_event_id="earliest", private_topics=["orders"]
        ) as late_owner:
            assert [e.id for e in await take(late_owner, 2)] == [secret, public]
        for sub in (anyone, owner, admin, other):
            sub.close()

    run(body)


def test_every_publish_takes_the_fields_of_hub_publish() -> None:
    import inspect

    from ssehub import BackgroundHub

    def fields(function: Callable[..., object], *extra: str) -> list[tuple[str, object, object]]:
        params = inspect.signature(function).parameters.values()
        return [(p.name, p.kind, p.default) for p in params if p.name not in ("self", *extra)]

    one = fields(Hub.publish)
    assert fields(Hub.publish_threadsafe) == one
    assert fields(BackgroundHub.publish, "timeout") == one


def test_a_paged_replay_with_publishes_between_pages_has_no_gap_or_duplicate() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        ids = [await hub.publish("t", str(i)) for i in range(10)]
        async with hub.subscribe("t", last_event_id="earliest") as sub:
            assert hub.statistics().replaying == 1  # only the first page of 3 was read
            got = [e.id for e in await take(sub, 2)]
            ids.append(await hub.publish("t", "10"))  # stored while replaying
            got += [e.id for e in await take(sub, 7)]
            ids.append(await hub.publish("t", "11"))
            got += [e.id for e in await take(sub, 3)]
            ids.append(await hub.publish("t", "12"))
            got += [e.id for e in await take(sub, 1)]
            assert hub.statistics().replaying == 0
            assert got == ids
            assert hub.statistics().events_replayed == 12

    run(body, replay_page=3)


def test_a_cancelled_publisher_does_not_tear_a_stored_publish() -> None:
    async def main() -> None:
        async with Hub(backend=AckLatencyBackend()) as hub, hub.subscribe("t") as sub:
            publishing = asyncio.ensure_future(hub.publish("t", "kept"))
            for _ in range(3):  # the append has started (stored, not yet acknowledged)
                await asyncio.sleep(0)
            publishing.cancel()  # the caller goes away (its HTTP client left)
            with pytest.raises(asyncio.CancelledError):
                await publishing
            [event] = await take(sub, 1)
            assert event.data == "kept"
            [stored] = (await hub.backend.history(["t"], None)).records
            assert stored.id == event.id
            assert hub.statistics().events_published == 1

    asyncio.run(main())


def test_live_events_held_during_a_slow_replay_are_bounded() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        for i in range(30):
            await hub.publish("t", str(i))
        async with hub.subscribe("t", last_event_id="earliest") as sub:

            async def consume_slowly() -> None:
                for i in range(10):  # held while the consumer is still in the replay
                    await hub.publish("t", f"live {i}")
                    await settle()
                    await take(sub, 1)

            with pytest.raises(SlowSubscriberError):
                await consume_slowly()
            assert sub.reason == "slow"
            assert hub.statistics().disconnects_slow == 1

    run(body, replay_page=10, max_buffer_events=5)


# -- current state on open, the live marker, who is watching (issue 13) ------


def test_newest_gives_the_current_state_of_each_topic_then_live() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        for i in range(3):
            await hub.publish("a", f"a{i}")
        await hub.publish(["a", "b"], "ab")
        await hub.publish("b", "b1")
        await hub.publish("c", "c0")
        async with hub.subscribe("a", newest=1) as sub:
            assert [e.data for e in await take(sub, 1)] == ["ab"]
            await hub.publish("a", "live")
            assert [e.data for e in await take(sub, 1)] == ["live"]
        async with hub.subscribe(["a", "b"], newest=2) as sub:
            # the newest two of each ("ab", "live" and "ab", "b1"), oldest first, "ab" once
            assert [e.data for e in await take(sub, 3)] == ["ab", "b1", "live"]
        async with hub.subscribe(["a", "c"], newest=3) as sub:
            assert [e.data for e in await take(sub, 4)] == ["a2", "ab", "c0", "live"]
        assert hub.statistics().events_replayed == 8

    run(body)


def test_newest_for_star_and_templates_among_the_newest_page() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        await hub.publish("item/1", "i1")
        await hub.publish("other", "o")
        await hub.publish("item/2", "i2")
        await hub.publish("other", "o2")
        async with hub.subscribe("*", newest=2) as sub:
            assert [e.data for e in await take(sub, 2)] == ["i2", "o2"]
        async with hub.subscribe("item/{id}", newest=1) as sub:
            assert [e.data for e in await take(sub, 1)] == ["i2"]
            await hub.publish("item/3", "i3")
            assert [e.data for e in await take(sub, 1)] == ["i3"]
        async with hub.subscribe("item/{id}", newest=5) as sub:
            assert [e.data for e in await take(sub, 3)] == ["i1", "i2", "i3"]

    run(body)


def test_newest_applies_the_private_rules() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        await hub.publish("orders", "public")
        await hub.publish("orders", "secret", private=True)
        async with hub.subscribe("orders", newest=2) as anyone:
            assert [e.data for e in await take(anyone, 1)] == ["public"]  # fewer than 2
            assert anyone.live
        async with hub.subscribe("orders", newest=1, private_topics=["orders"]) as owner:
            assert [e.data for e in await take(owner, 1)] == ["secret"]
        async with hub.subscribe("*", newest=1, private_topics=["invoices"]) as other:
            # the newest one it may read: not the newer private one
            assert [e.data for e in await take(other, 1)] == ["public"]
            assert await asyncio.wait_for(other.wait_live(), 5)

    run(body)


class GatedNewestBackend(MemoryBackend):
    """Publishes land while `newest()` runs: one before its read, one after."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = asyncio.Event()
        self.before = asyncio.Event()
        self.after = asyncio.Event()
        self.read = asyncio.Event()

    async def newest(self, topics: Collection[str] | None, n: int) -> History:
        self.reading.set()
        await self.before.wait()
        history = await super().newest(topics, n)
        self.read.set()
        await self.after.wait()
        return history


def test_newest_has_no_gap_or_duplicate_at_the_seam() -> None:
    async def main() -> None:
        backend = GatedNewestBackend()
        async with Hub(backend=backend) as hub:
            for i in range(3):
                await hub.publish("t", str(i))
            for selector in ("t", "*"):
                backend.reading.clear()
                backend.read.clear()
                backend.before.clear()
                backend.after.clear()
                sub = hub.subscribe(selector, newest=2)
                opening = asyncio.ensure_future(sub.open())
                await backend.reading.wait()
                await hub.publish("t", f"in-{selector}")  # held, and in the read
                backend.before.set()
                await backend.read.wait()
                await hub.publish("t", f"after-{selector}")  # held, after the read
                backend.after.set()
                await opening
                got = [e.data for e in await take(sub, 3)]
                assert got[1:] == [f"in-{selector}", f"after-{selector}"]
                await hub.publish("t", "next")
                assert [e.data for e in await take(sub, 1)] == ["next"]
                sub.close()

    asyncio.run(main())


def test_newest_of_a_pattern_keeps_order_when_live_copies_are_held() -> None:
    async def main() -> None:
        backend = GatedNewestBackend()
        async with Hub(backend=backend) as hub:
            await hub.publish("t", "old")
            sub = hub.subscribe("*", newest=1)
            opening = asyncio.ensure_future(sub.open())
            await backend.reading.wait()
            for data in ("x", "y", "z"):  # live for it (held), and in the read
                await hub.publish("t", data)
            backend.before.set()
            backend.after.set()
            await opening
            await hub.publish("t", "next")
            # the newest one is "z", but "x" and "y" came after it subscribed
            assert [e.data for e in await take(sub, 4)] == ["x", "y", "z", "next"]
            sub.close()

    asyncio.run(main())


def test_last_event_id_wins_over_newest() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        ids = [await hub.publish("t", str(i)) for i in range(5)]
        async with hub.subscribe("t", last_event_id=ids[1], newest=1) as sub:
            assert [e.data for e in await take(sub, 3)] == ["2", "3", "4"]
            assert sub.live

    run(body)


def test_newest_is_validated() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        for bad in (-1, 1001, True, "1"):
            with pytest.raises(ValueError, match="newest must be an int from 0 to 1000"):
                hub.subscribe("t", newest=bad)  # type: ignore[arg-type]

    run(body)


def test_the_live_marker_ends_every_replay_and_only_a_replay() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        first = await hub.publish("t", "0")
        await hub.publish("t", "1")
        cases: list[tuple[dict[str, object], int]] = [
            ({"newest": 1}, 1),
            ({"last_event_id": first}, 1),
            ({"last_event_id": "earliest"}, 2),
        ]
        for asked, replayed in cases:
            async with hub.subscribe("t", **asked) as sub:  # type: ignore[arg-type]
                frames = sub.frames()
                got = await asyncio.wait_for(anext(frames), 5)
                assert got.endswith(b'event: ssehub-live\ndata: {"replayed": %d}\n\n' % replayed)
                assert got.count(b"ssehub-live") == 1
                assert sub.live
                await hub.publish("other", "live")
        async with hub.subscribe("t") as plain:
            assert plain.live  # no replay: live at once, no marker
            await hub.publish("t", "2")
            assert b"ssehub-live" not in await asyncio.wait_for(anext(plain.frames()), 5)

    run(body)


def test_live_turns_true_once_the_replay_is_taken_and_the_marker_is_not_yielded() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        for i in range(5):
            await hub.publish("t", str(i))
        async with hub.subscribe("t", last_event_id="earliest") as sub:
            waiting = asyncio.ensure_future(sub.wait_live())
            seen = []
            for _ in range(4):
                seen.append(((await take(sub, 1))[0].data, sub.live))
            await settle()
            assert not waiting.done()
            seen.append(((await take(sub, 1))[0].data, sub.live))
            assert seen == [("0", False), ("1", False), ("2", False), ("3", False), ("4", True)]
            assert await asyncio.wait_for(waiting, 5) is True
            await hub.publish("t", "live")
            assert [e.event for e in await take(sub, 1)] == ["message"]
        async with hub.subscribe("empty", newest=3) as sub:
            assert await asyncio.wait_for(sub.wait_live(), 5)  # nothing to replay

    run(body, replay_page=2)


class Written(asyncio.WriteTransport):
    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.data += data

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def test_a_stream_gets_the_live_marker_between_replay_and_live() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        await hub.publish("t", "old")
        transport = Written()
        sub = hub.subscribe_stream(transport, "t", newest=1)
        await sub.open(lambda resume: b":head\n\n")
        await hub.publish("t", "new")
        await settle()
        text = bytes(transport.data).decode()
        assert text.index("data: old") < text.index("event: ssehub-live") < text.index("data: new")
        assert 'data: {"replayed": 1}' in text
        sub.close()
        transport = Written()
        plain = hub.subscribe_stream(transport, "t")
        await plain.open()
        await hub.publish("t", "x")
        await settle()
        assert b"ssehub-live" not in transport.data
        plain.close()

    run(body)


def test_subscribers_counts_exact_star_and_template_subscriptions() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        assert hub.subscribers("item/1") == 0
        async with hub.subscribe("item/1"), hub.subscribe(["item/1", "x"]):
            assert hub.subscribers("item/1") == 2
            async with hub.subscribe("*"), hub.subscribe("item/{id}"):
                assert hub.subscribers("item/1") == 4
                assert hub.subscribers("item/2") == 2
                assert hub.subscribers("x") == 2
            assert hub.subscribers("item/1") == 2
        assert hub.subscribers("item/1") == 0

    run(body)


def test_the_watch_callback_tells_first_and_last_subscriber() -> None:
    async def main() -> None:
        calls: list[tuple[str, bool]] = []

        def broken(topic: str, watching: bool) -> None:
            raise RuntimeError("the app's bug")

        async with Hub(on_watch=lambda t, w: calls.append((t, w))) as hub:
            hub.on_watch(broken)  # logged, never raised into the hub
            one = hub.subscribe("score")
            await one.open()
            two = hub.subscribe(["score", "status"])
            await two.open()
            assert calls == []  # soon, not inside the subscribe
            await settle()
            assert calls == [("score", True), ("status", True)]
            async with hub.subscribe("*"), hub.subscribe("item/{id}"):
                await settle()
                assert len(calls) == 2  # patterns name no topic
            one.close()
            await settle()
            assert len(calls) == 2  # "score" still has a subscriber
            two.close()
            await settle()
            assert calls[2:] == [("score", False), ("status", False)]
            assert hub.subscribers("score") == 0
            remove = hub.on_watch(lambda t, w: calls.append(("again", w)))
            remove()
            async with hub.subscribe("score"):
                await settle()
            await settle()
            assert calls[4:] == [("score", True), ("score", False)]

    asyncio.run(main())


def test_a_retried_publish_answers_its_id_and_is_delivered_once() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        async with hub.subscribe("a") as sub:
            assert await hub.publish(["a", "b"], "x", id="k1", retry=5) == "k1"
            await clock.advance(1)
            assert await hub.publish(["a", "b"], "x", id="k1", retry=5) == "k1"  # a retry
            with pytest.raises(DuplicateEventIdError, match="'k1'"):
                await hub.publish(["a", "b"], "y", id="k1", retry=5)  # another event
            after = await hub.publish("a", "after")
            events = await take(sub, 2)
            assert [e.id for e in events] == ["k1", after]  # k1 once
        stats = hub.statistics()
        assert (stats.events_published, stats.publishes_replayed) == (2, 1)
        assert stats.events_by_topic == {"a": 2, "b": 1}

    run(body)


class CommitGateBackend(MemoryBackend):
    """A memory backend that sees an append at once but holds its
    acknowledgement until the test opens the gate (a store waiting for its
    commit), and can fail the next one."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.fail_next = False

    async def append(self, record: Record) -> bool:
        if self.fail_next:
            self.fail_next = False
            await self.gate.wait()
            raise ConnectionError("the store failed")
        stored = await super().append(record)
        if stored:
            await self.gate.wait()
        return stored


def test_a_retry_racing_its_original_is_answered_once_the_original_is_stored() -> None:
    async def main() -> None:
        backend = CommitGateBackend()
        async with Hub(backend=backend) as hub, hub.subscribe("t") as sub:
            original = asyncio.ensure_future(hub.publish("t", "x", id="k1"))
            await settle()  # the original is in the store, not yet acknowledged
            retry = asyncio.ensure_future(hub.publish("t", "x", id="k1"))
            await settle()
            assert not retry.done()  # not answered before the original is stored
            backend.gate.set()
            assert await original == await retry == "k1"
            [event] = await take(sub, 1)
            assert event.id == "k1"
            assert hub.statistics().publishes_replayed == 1

            # the original fails: its racing retry is then the first publish
            backend.gate.clear()
            backend.fail_next = True
            failing = asyncio.ensure_future(hub.publish("t", "z", id="k2"))
            await settle()
            retry = asyncio.ensure_future(hub.publish("t", "z", id="k2"))
            await settle()
            assert not retry.done()
            backend.gate.set()
            with pytest.raises(ConnectionError):
                await failing
            assert await retry == "k2"
            [event] = await take(sub, 1)
            assert (event.id, event.data) == ("k2", "z")
            assert hub.statistics().publishes_replayed == 1

    asyncio.run(main())


class PeerBackend(MemoryBackend):
    """A shared backend on which a peer hub publishes: `follow` brings every
    stored record; `peer_append(record, held=True)` holds the peer's back
    until `release()`, or (`during`) until this hub's retry of it is in the
    store."""

    def __init__(self) -> None:
        super().__init__()
        self.feed: asyncio.Queue[tuple[int, Record]] = asyncio.Queue()
        self.position = 0
        self.held: Record | None = None
        self.during = False

    async def newest_position(self) -> int:
        return self.position

    async def follow(self, after: int) -> AsyncIterator[tuple[int, Record]]:
        while True:
            yield await self.feed.get()

    def release(self) -> None:
        assert self.held is not None
        self.feed.put_nowait((self.position, self.held))
        self.held = None

    async def peer_append(self, record: Record, *, held: bool) -> None:
        assert await MemoryBackend.append(self, record)
        self.position += 1
        if held:
            self.held = record
        else:
            self.feed.put_nowait((self.position, record))

    async def append(self, record: Record) -> bool:
        stored = await super().append(record)
        if stored:
            self.position += 1
            self.feed.put_nowait((self.position, record))  # our own echo
        elif self.during:
            self.release()  # the peer's event comes through the feed now
            for _ in range(5):
                await asyncio.sleep(0)  # and the feed takes it meanwhile
        return stored


@pytest.mark.parametrize("echo", ["before", "during", "after"])
def test_a_retry_of_a_peer_hubs_event_is_delivered_here_once(echo: str) -> None:
    """Hub B retries what hub A stored: B's subscribers get it once, from
    the feed, whether the feed brings it before, during or after the retry."""

    async def main() -> None:
        backend = PeerBackend()
        async with Hub(backend=backend) as hub, hub.subscribe("t") as sub:
            ev = Event("x", id="k1")
            peer = Record(("t",), ev, time.time(), encode_event(ev))
            await backend.peer_append(peer, held=echo != "before")
            backend.during = echo == "during"
            if echo == "before":
                [event] = await take(sub, 1)
                assert event.id == "k1"
            assert await hub.publish("t", "x", id="k1") == "k1"
            if echo == "after":
                backend.release()
            if echo != "before":
                [event] = await take(sub, 1)
                assert event.id == "k1"
            own = await hub.publish("t", "own")
            [event] = await take(sub, 1)
            assert event.id == own  # k1 came once, and our own events still once
            assert hub.statistics().publishes_replayed == 1

    asyncio.run(main())


def test_ids_read_randomness_in_pools_and_a_forked_child_reads_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gen = IdGenerator()
    reads: list[int] = []
    real = os.urandom

    def counted(n: int) -> bytes:
        reads.append(n)
        return real(n)

    monkeypatch.setattr(os, "urandom", counted)
    ids = [gen() for _ in range(1_000)]
    assert len(set(ids)) == len(ids)
    assert len(reads) <= 2  # not one system call per id
    monkeypatch.setattr(os, "getpid", lambda: pytest.fail("an id asked for the process id"))
    gen()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the platform cannot fork")
def test_a_forked_child_makes_ids_of_its_own_randomness() -> None:
    """A child forked with a pool half read (and its lock held by another
    thread of the parent) makes ids whose random digits are not the
    parent's next ones."""
    gen = IdGenerator()
    gen()  # the pool is read: the child inherits it
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with gen._lock:
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(10)
    read, write = os.pipe()
    try:
        with warnings.catch_warnings():  # forking a process with threads: on purpose
            warnings.simplefilter("ignore", DeprecationWarning)
            child = os.fork()
        if child == 0:  # pragma: no cover (the child)
            try:
                signal.signal(signal.SIGALRM, signal.SIG_DFL)
                signal.alarm(5)  # a lock the child inherited held would hang it
                os.write(write, " ".join(gen() for _ in range(8)).encode())
            finally:
                os._exit(0)
        release.set()
        holder.join(10)
        os.close(write)
        write = -1
        chunks = []
        while chunk := os.read(read, 4096):
            chunks.append(chunk)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        release.set()
        os.close(read)
        if write >= 0:
            os.close(write)
    theirs = b"".join(chunks).decode().split()
    ours = [gen() for _ in range(8)]
    assert len(theirs) == 8
    # the random digits (and the variant's), per id
    assert not {i[-16:] for i in theirs} & {i[-16:] for i in ours}


def test_subscribers_of_one_group_share_its_key_objects() -> None:
    """An idle subscriber holds no copy of what its group already holds (a
    one-topic frozenset is 216 bytes)."""

    async def body(hub: Hub, clock: FakeClock) -> None:
        subs = [hub.subscribe(["a", "b"]) for _ in range(3)]
        for sub in subs:
            await sub.open()
        assert subs[0].group_key == subs[1].group_key == (frozenset(("a", "b")), frozenset(), False)
        assert subs[0].group_key is subs[1].group_key is subs[2].group_key
        assert subs[0].key is subs[2].key
        for sub in subs:
            sub.close()

    run(body)
