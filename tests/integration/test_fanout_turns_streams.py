"""A pass over a large group of streams takes turns with the loop
(`hub/_fanout.py`): an HTTP publish is answered during the pass, what it
publishes joins the pass, every stream gets every event once and in order
over its socket, and a paused stream is still dropped as slow at its bound."""

from __future__ import annotations

import asyncio

from ssehub.hub import HubConfig, StreamSubscription
from tests.support.helpers import Stream, publish, subscribe
from tests.support.servers import run, serving, until

STREAMS = 1100  # three turns


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
