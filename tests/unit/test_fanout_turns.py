"""A pass over a large group takes turns with the loop (`hub/_fanout.py`,
`SLICE` subscribers a turn): what is published between turns joins the pass
under way. Every subscriber still gets every event once, in order; one
that attached mid-pass gets what was published after it; a slow one is
still dropped; drain delivers what a pass still owes."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import pytest

from ssehub.backends import MemoryBackend
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
