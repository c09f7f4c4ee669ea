"""A pass over a large group of streams takes turns with the loop
(`hub/_fanout.py`): an HTTP publish is answered during the pass, what it
publishes joins the pass, every stream gets every event once and in order
over its socket, and a paused stream is still dropped as slow at its bound.
Streams that resume meanwhile get each event once at the seam."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ssehub.backends import SQLiteBackend
from ssehub.hub import HubConfig, StreamSubscription
from tests.support.helpers import Stream, publish, subscribe
from tests.support.servers import run, serving, until

STREAMS = 1100  # three turns
# resuming: passes of five turns, longer than a SQLite read's round trip
RESUME_STREAMS = 2500
PUBLISHED = 240  # events published while streams resume


def test_streams_get_what_is_published_mid_pass_once_in_order_and_a_paused_one_is_dropped() -> None:
    async def body() -> None:
        async with serving(hub_config=HubConfig(max_buffer_events=2), anonymous_publish=True) as (
            hub,
            _,
            port,
        ):
            streams: list[Stream] = []
            try:
                for _ in range(STREAMS):
                    streams.append(await subscribe(port, "t1"))
                await until(lambda: hub.statistics().subscribers == STREAMS, 20)
                paused = next(
                    s for s in hub._fanout.subscriptions() if isinstance(s, StreamSubscription)
                )
                paused.pause_writing()  # as its transport would: it takes no more
                await hub.publish("t1", "one")
                await asyncio.sleep(0)  # one turn of the pass
                delivered = hub.statistics().events_delivered
                assert 0 < delivered < STREAMS  # under way, not over
                answer = await publish(port, topic="t1", data="two")  # answered mid-pass
                assert answer.status == 200
                await hub.publish("t1", "three")
                await until(lambda: paused.closed)
                assert paused.reason == "slow"
                got = await asyncio.gather(*(s.next_events(3, 20) for s in streams[1:]))
                assert all([e.data for e in events] == ["one", "two", "three"] for events in got)
                await hub.publish("t1", "end")  # nothing came twice in between
                got = await asyncio.gather(*(s.next_events(1, 20) for s in streams[1:]))
                assert all([e.data for e in events] == ["end"] for events in got)
                assert hub.statistics().disconnects_slow == 1
            finally:
                for stream in streams:
                    stream.close()

    run(body)


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_streams_resuming_while_passes_run_get_every_later_event_once_in_order(
    store: str, tmp_path: Path
) -> None:
    """Streams resume with `Last-Event-ID`, ten at a time, while publishes
    flow into passes over a large group: at the seam of replay and live,
    each gets every event after its id exactly once, in order (an event
    of its page that the fan-out had queued but not yet written to it came
    twice: pending in the loop iteration of the read, or owed by a pass)."""

    async def body() -> None:
        backend = SQLiteBackend(tmp_path / "hub.db") if store == "sqlite" else None
        async with serving(backend=backend, anonymous_publish=True) as (hub, _, port):
            streams: list[Stream] = []
            try:
                for _ in range(RESUME_STREAMS):
                    streams.append(await subscribe(port, "t1"))
                await until(lambda: hub.statistics().subscribers == RESUME_STREAMS, 30)
                ids: list[str] = []
                resumers: list[tuple[int, asyncio.Task[Stream]]] = []
                for i in range(PUBLISHED):
                    ids.append(await hub.publish("t1", f"e{i}"))
                    if i % 12 == 5:  # ten streams resume from an event a few back
                        after = i - i % 3
                        for _ in range(10):
                            opening = subscribe(port, "t1", last_event_id=ids[after])
                            resumers.append((after, asyncio.ensure_future(opening)))
                    await asyncio.sleep(0)  # a turn of the pass under way
                streams += await asyncio.gather(*(task for _, task in resumers))
                total = RESUME_STREAMS + len(resumers)
                await until(lambda: hub.statistics().subscribers == total, 30)
                await hub.publish("t1", "end")
                for after, task in resumers:
                    got = await asyncio.wait_for(until_end(task.result()), 20)
                    assert got == [f"e{i}" for i in range(after + 1, PUBLISHED)] + ["end"]
            finally:
                for stream in streams:
                    stream.close()

    run(body)


async def until_end(stream: Stream) -> list[str]:
    got: list[str] = []
    while not got or got[-1] != "end":
        got.extend(event.data for event in await stream.next_events(1, 20))
    return got
