"""A pass over a large group takes turns with the loop (`hub/_fanout.py`,
`SLICE` subscribers a turn): what is published between turns joins the pass
under way. Every subscriber still gets every event once, in order; one
that attached mid-pass gets what was published after it, in the pass
under way; a slow one is still dropped; drain delivers what a pass still
owes; a subscriber resuming from history (`last_event_id`, `newest`) gets
each event once at the seam, whether the pass had reached it or not."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ssehub.backends import History, MemoryBackend
from ssehub.hub import EventSubscription, Hub, HubConfig, SlowSubscriberError
from ssehub.testing import FakeClock

LARGE = 1500  # about three turns


def run(body: Callable[[Hub], Awaitable[None]], **config: object) -> None:
    async def main() -> None:
        clock = FakeClock()
        backend = MemoryBackend(clock=clock.time)
        async with Hub(HubConfig(**config), backend=backend, clock=clock) as hub:  # type: ignore[arg-type]
            await body(hub)

    asyncio.run(main())


async def subscribers(hub: Hub, n: int) -> list[EventSubscription]:
    subs = [hub.subscribe("t") for _ in range(n)]
    for sub in subs:
        await sub.open()
    return subs


async def datas(sub: EventSubscription, n: int) -> list[str]:
    return [(await asyncio.wait_for(anext(sub), 5)).data for _ in range(n)]


def reached(subs: list[EventSubscription]) -> int:
    """How many have something queued (each counts what it holds)."""
    return sum(1 for sub in subs if sub.held_bytes > 0)


def test_a_publish_during_a_pass_joins_it_and_each_gets_every_event_once_in_order() -> None:
    async def body(hub: Hub) -> None:
        subs = await subscribers(hub, LARGE)
        await hub.publish("t", "one")
        await asyncio.sleep(0)  # one turn of the pass
        first = reached(subs)
        assert 0 < first < LARGE  # the pass is under way, not over
        await hub.publish("t", "two")  # mid-pass
        await asyncio.sleep(0)
        assert reached(subs) > first  # the pass went on
        await hub.publish("t", "three")
        for sub in subs:
            assert await datas(sub, 3) == ["one", "two", "three"]
        await hub.publish("t", "end")  # nothing came twice in between
        for sub in subs:
            assert await datas(sub, 1) == ["end"]
        stats = hub.statistics()
        assert stats.events_delivered == 4 * LARGE

    run(body)


def test_one_attached_mid_pass_gets_what_was_published_after_it_only() -> None:
    async def body(hub: Hub) -> None:
        subs = await subscribers(hub, LARGE)
        await hub.publish("t", "before")
        await asyncio.sleep(0)
        assert 0 < reached(subs) < LARGE
        [late] = await subscribers(hub, 1)  # while the pass is under way
        await hub.publish("t", "after")
        assert await datas(late, 1) == ["after"]
        for sub in subs:
            assert await datas(sub, 2) == ["before", "after"]
        await hub.publish("t", "end")
        assert await datas(late, 1) == ["end"]

    run(body)


def test_a_slow_subscriber_is_dropped_mid_pass_and_the_others_miss_nothing() -> None:
    async def body(hub: Hub) -> None:
        subs = await subscribers(hub, LARGE)
        slow, *others = subs
        await hub.publish("t", "e0")
        await asyncio.sleep(0)
        assert 0 < reached(subs) < LARGE
        for i in range(4):  # the slow one takes nothing: dropped past 3 held
            if i:
                await hub.publish("t", f"e{i}")
            for sub in others:
                assert await datas(sub, 1) == [f"e{i}"]
        with pytest.raises(SlowSubscriberError):
            await asyncio.wait_for(datas(slow, 4), 5)
        assert hub.statistics().disconnects_slow == 1

    run(body, max_buffer_events=3)


def test_drain_delivers_what_a_pass_under_way_still_owes() -> None:
    async def main() -> None:
        hub = Hub(HubConfig(), backend=MemoryBackend())
        await hub.start()
        subs = await subscribers(hub, LARGE)
        await hub.publish("t", "one")
        await asyncio.sleep(0)
        assert 0 < reached(subs) < LARGE
        await hub.publish("t", "two")
        await hub.drain(0.1)
        for sub in subs:
            assert [event.data async for event in sub] == ["one", "two"]
        await hub.aclose()

    asyncio.run(main())


def test_publishes_attaches_and_closes_between_turns_in_any_order_lose_and_repeat_nothing() -> None:
    async def body(hub: Hub) -> None:
        rng = random.Random(15)
        subs = await subscribers(hub, 700)
        expected: dict[EventSubscription, list[str]] = {sub: [] for sub in subs}
        await hub.publish("t", "first")
        for sub in subs:
            expected[sub].append("first")
        await asyncio.sleep(0)
        assert 0 < reached(subs) < len(subs)  # the pass takes turns
        live = list(subs)
        for step in range(80):
            action = rng.random()
            if action < 0.55:
                await hub.publish("t", f"e{step}")
                for sub in live:
                    expected[sub].append(f"e{step}")
            elif action < 0.75:
                # a turn first: records not yet taken into a pass reach whoever
                # is attached when they are (as before passes took turns)
                await asyncio.sleep(0)
                [new] = await subscribers(hub, 1)
                expected[new] = []
                live.append(new)
            elif action < 0.85:
                live.pop(rng.randrange(len(live))).close()
            for _ in range(rng.randrange(3)):  # zero, one or two turns
                await asyncio.sleep(0)
        await hub.publish("t", "end")
        for sub in live:
            got = await datas(sub, len(expected[sub]) + 1)
            assert got == [*expected[sub], "end"]

    run(body)


class GatedBackend(MemoryBackend):
    """A memory store whose history reads wait for `gate` when it is set
    (as a SQLite read waits for its thread)."""

    gate: asyncio.Event | None = None

    async def history(self, *args: Any, **kwargs: Any) -> History:
        if self.gate is not None:
            await self.gate.wait()
        return await super().history(*args, **kwargs)

    async def newest(self, *args: Any, **kwargs: Any) -> History:
        if self.gate is not None:
            await self.gate.wait()
        return await super().newest(*args, **kwargs)


def run_gated(body: Callable[[Hub, GatedBackend], Awaitable[None]]) -> None:
    async def main() -> None:
        clock = FakeClock()
        backend = GatedBackend(clock=clock.time)
        async with Hub(HubConfig(), backend=backend, clock=clock) as hub:
            await body(hub, backend)

    asyncio.run(main())


def resumer(hub: Hub, kind: str, after: str) -> EventSubscription:
    if kind == "last_event_id":
        return hub.subscribe("t", last_event_id=after)
    return hub.subscribe("t", newest=10)


async def until_end(sub: EventSubscription) -> list[str]:
    got: list[str] = []
    while not got or got[-1] != "end":
        got.append((await asyncio.wait_for(anext(sub), 5)).data)
    return got


async def release(hub: Hub, backend: GatedBackend, opening: Awaitable[object]) -> None:
    """Let the held history read go and the resumer open, let every pass
    end, then publish "end"."""
    assert backend.gate is not None
    backend.gate.set()
    await opening
    for _ in range(50):
        await asyncio.sleep(0)
    await hub.publish("t", "end")


def resumed(kind: str) -> list[str]:
    """What a resumer from "zero" gets after "one" and "two" (its `kind`)."""
    return ["one", "two", "end"] if kind == "last_event_id" else ["zero", "one", "two", "end"]


KINDS = ["last_event_id", "newest"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_resumer_attached_mid_pass_gets_what_its_page_holds_once(kind: str) -> None:
    async def body(hub: Hub, backend: GatedBackend) -> None:
        await subscribers(hub, LARGE)
        zero = await hub.publish("t", "zero")
        await hub.publish("t", "one")
        await asyncio.sleep(0)  # a pass under way (over a large group)
        backend.gate = asyncio.Event()
        late = resumer(hub, kind, zero)
        opening = asyncio.ensure_future(late.open())
        for _ in range(3):
            await asyncio.sleep(0)  # attached, reading history
        await hub.publish("t", "two")  # taken into the pass: owed to the late one
        await asyncio.sleep(0)
        await release(hub, backend, opening)
        assert await until_end(late) == resumed(kind)

    run_gated(body)


@pytest.mark.parametrize("kind", KINDS)
def test_a_resumer_the_pass_went_past_while_it_replayed_gets_what_its_page_holds_once(
    kind: str,
) -> None:
    async def body(hub: Hub, backend: GatedBackend) -> None:
        zero = await hub.publish("t", "zero")
        subs = await subscribers(hub, 100)
        backend.gate = asyncio.Event()
        late = resumer(hub, kind, zero)  # in the first turn of every pass
        opening = asyncio.ensure_future(late.open())
        for _ in range(3):
            await asyncio.sleep(0)  # attached, reading history
        subs += await subscribers(hub, LARGE - 100)
        await hub.publish("t", "one")
        await asyncio.sleep(0)  # the first turn: the late one holds "one"
        assert late.held_bytes > 0
        assert 0 < reached(subs) < LARGE
        await hub.publish("t", "two")  # mid-pass: the late one gets it next pass
        await asyncio.sleep(0)
        await release(hub, backend, opening)
        assert await until_end(late) == resumed(kind)
        for sub in subs:
            assert await until_end(sub) == ["one", "two", "end"]

    run_gated(body)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [10, LARGE])
def test_a_resumer_in_the_loop_iteration_of_a_publish_gets_it_once(kind: str, size: int) -> None:
    async def body(hub: Hub) -> None:
        await subscribers(hub, size)
        zero = await hub.publish("t", "zero")
        for _ in range(10):
            await asyncio.sleep(0)  # every pass over
        await hub.publish("t", "one")  # queued, not written yet
        late = resumer(hub, kind, zero)
        await late.open()  # the memory store answers at once: the page has "one"
        for _ in range(10):
            await asyncio.sleep(0)
        await hub.publish("t", "end")
        expected = ["one", "end"] if kind == "last_event_id" else ["zero", "one", "end"]
        assert await until_end(late) == expected

    run(body)


def test_one_attached_mid_pass_gets_the_next_batch_in_the_pass_under_way() -> None:
    async def body(hub: Hub) -> None:
        subs = await subscribers(hub, LARGE)
        await hub.publish("t", "one")
        await asyncio.sleep(0)
        assert 0 < reached(subs) < LARGE
        [late] = await subscribers(hub, 1)
        await hub.publish("t", "two")
        while reached(subs) < LARGE:  # the rest of the pass that "one" began
            await asyncio.sleep(0)
        assert late.held_bytes > 0  # it was in that pass: not a pass later
        assert await datas(late, 1) == ["two"]

    run(body)
