"""`HubApp` streams: the hub writes to ASGI `send` as to a socket — one
shared bytes object per fan-out, no task of ours per stream, the slow-client
policy of the standalone server. In-process through the ASGI interface, and
under uvicorn."""

from __future__ import annotations

import asyncio
from typing import Any

from ssehub import Hub, HubConfig
from ssehub.asgi import HubApp
from ssehub.testing import FakeClock
from tests.support.asgi import Peer, Served, open_stream, wait_until


def scope(topic: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/",
        "root_path": "",
        "query_string": f"topic={topic}".encode(),
        "headers": [],
    }


async def until(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


def test_events_of_one_loop_iteration_are_one_send_of_one_shared_bytes_object() -> None:
    async def main() -> None:
        async with Hub() as hub:
            app = HubApp(hub)
            peers = [Peer(), Peer()]
            streams = [asyncio.create_task(app(scope("t"), p.receive, p.send)) for p in peers]
            await until(lambda: hub.subscribers("t") == 2 and all(p.bodies() for p in peers))
            await asyncio.gather(*(hub.publish("t", f"e{i}") for i in range(3)))
            await until(lambda: all(len(p.bodies()) == 2 for p in peers))
            first, second = (p.bodies()[1] for p in peers)
            assert first.count(b"data: e") == 3  # the three events in one message
            assert first is second  # the same object for every stream: encoded once
            for peer in peers:
                peer.gone.set()
            await asyncio.wait_for(asyncio.gather(*streams), 5)
            assert hub.subscribers("t") == 0

    asyncio.run(main())


def test_a_stalled_stream_is_dropped_as_slow_at_the_buffer_bound_not_at_send_timeout() -> None:
    async def main() -> None:
        async with Hub(HubConfig(max_buffer_events=5)) as hub:
            app = HubApp(hub, send_timeout=30.0)
            stalled, healthy = Peer(), Peer()
            tasks = [
                asyncio.create_task(app(scope("t"), p.receive, p.send)) for p in (stalled, healthy)
            ]
            await until(lambda: hub.subscribers("t") == 2 and stalled.bodies())
            stalled.stalled = True
            await hub.publish("t", "first")  # its send never completes: the hub holds the rest
            for i in range(10):
                await hub.publish("t", f"e{i}")
                await asyncio.sleep(0)
            # ended at the bound (5 events held), long before the 30 s send
            # timeout (not `wait_for`: a response cancelled by it returns quietly)
            done, _ = await asyncio.wait({tasks[0]}, timeout=5)
            assert done, "the stalled stream was not ended at the buffer bound"
            assert hub.statistics().disconnects_slow == 1
            assert sum(b.count(b"data: ") for b in healthy.bodies()) == 11  # the other: all
            healthy.gone.set()
            await asyncio.wait_for(tasks[1], 5)

    asyncio.run(main())


def test_heartbeats_are_the_hubs_ticks_and_a_stream_paused_for_two_is_dropped_as_stalled() -> None:
    async def main() -> None:
        clock = FakeClock()
        async with Hub(HubConfig(heartbeat=15.0), clock=clock) as hub:
            app = HubApp(hub, send_timeout=None)  # no send timeout: only the ticks
            quiet, stalled = Peer(), Peer()
            tasks = [
                asyncio.create_task(app(scope("t"), p.receive, p.send)) for p in (quiet, stalled)
            ]
            await until(lambda: hub.subscribers("t") == 2 and stalled.bodies())
            await clock.advance(15.0)
            assert quiet.bodies() == [b":\n\n", b":\n\n"]  # the first comment, a heartbeat
            stalled.stalled = True
            await hub.publish("t", "x")  # its send suspends: the stream is paused
            await clock.advance(15.0)
            await clock.advance(15.0)
            done, _ = await asyncio.wait({tasks[1]}, timeout=5)
            assert done, "a stream paused for two heartbeats was not dropped"
            assert hub.statistics().disconnects_stalled == 1
            assert len(quiet.bodies()) == 5  # and the other one goes on: event, two beats
            assert quiet.bodies()[-1] == b":\n\n"
            quiet.gone.set()
            await asyncio.wait_for(tasks[0], 5)

    asyncio.run(main())


def test_a_send_that_fails_in_the_fan_out_ends_that_stream_only() -> None:
    async def main() -> None:
        async with Hub() as hub:
            app = HubApp(hub)
            peers = [Peer() for _ in range(3)]
            broken = peers[1]

            async def failing(message: Any) -> None:
                if len(broken.sent) >= 2:  # the head and the first comment went out
                    raise OSError("connection reset")
                await broken.send(message)

            sends = [peers[0].send, failing, peers[2].send]
            tasks = [
                asyncio.create_task(app(scope("t"), p.receive, send))
                for p, send in zip(peers, sends, strict=True)
            ]
            await until(lambda: hub.subscribers("t") == 3 and all(p.bodies() for p in peers))
            for i in range(3):
                await hub.publish("t", f"e{i}")
                await asyncio.sleep(0)
            done, _ = await asyncio.wait({tasks[1]}, timeout=5)
            assert done
            assert hub.subscribers("t") == 2
            for peer in (peers[0], peers[2]):  # the others got every event
                assert sum(b.count(b"data: e") for b in peer.bodies()) == 3
                peer.gone.set()
            await asyncio.wait_for(asyncio.gather(tasks[0], tasks[2]), 5)

    asyncio.run(main())


def test_the_server_cancelling_a_hub_stream_ends_it_with_a_retry_hint_and_no_error() -> None:
    async def main() -> None:
        async with Hub() as hub:
            app = HubApp(hub)
            peer = Peer()
            task = asyncio.create_task(app(scope("t"), peer.receive, peer.send))
            await until(lambda: hub.subscribers("t") == 1 and peer.bodies())
            task.cancel()  # what a server does when its graceful timeout runs out
            await asyncio.wait_for(task, 5)  # returns: no CancelledError
            assert not task.cancelled()
            assert b"".join(peer.bodies()).endswith(b"retry: 1000\n\n")
            assert peer.sent[-1]["more_body"] is False  # and the body is ended
            assert hub.subscribers("t") == 0

    asyncio.run(main())


def test_a_hub_stream_under_uvicorn_costs_no_task_beyond_the_requests_own() -> None:
    served = Served("uvicorn")
    socks = []
    try:
        before = served.stats()
        for _ in range(20):
            socks.append(open_stream(served.port, "/hub/.well-known/mercure?topic=tasks"))
        assert wait_until(lambda: served.stats()["open"] == before["open"] + 20, 10)
        # uvicorn runs each request in a task: that one, and nothing of ours
        # (it was three a stream: the request's, a producer, a listener)
        assert served.stats()["tasks"] - before["tasks"] <= 20 + 2
        for sock in socks:
            sock.close()
        assert wait_until(lambda: served.stats()["open"] == before["open"], 10)
    finally:
        for sock in socks:
            sock.close()
        served.stop()
