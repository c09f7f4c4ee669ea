"""What an idle subscriber costs the server (docs/benchmarks.md, "Where an
idle subscriber's bytes go"): once a connection subscribes, it keeps nothing
request-shaped, and no per-subscriber object that could be shared."""

from __future__ import annotations

import asyncio
import gc
import sys
import time

from ssehub.hub import StreamSubscription
from tests.support.helpers import read_head, subscribe
from tests.support.servers import run, serving, until


def test_a_subscribed_connection_is_a_bare_transport_holding_no_request_state() -> None:
    async def body() -> None:
        async with serving() as (hub, srv, port):
            streams = [await subscribe(port, "t1"), await subscribe(port, "t2", "t3")]
            await until(lambda: hub.statistics().subscribers == 2)
            try:
                conns = [c for c in srv.connections if c.stream is not None]
                assert len(conns) == 2
                for conn in conns:
                    assert conn.answering is None  # no task
                    # no reader, timer, request list, header dict or body list left over
                    kept = gc.get_referents(conn)
                    assert not [r for r in kept if isinstance(r, dict | list)], kept
                    assert not [r for r in kept if isinstance(r, asyncio.TimerHandle)]
                    assert sys.getsizeof(conn) <= 128  # 11 slots; it was 200 bytes with 21
            finally:
                for stream in streams:
                    stream.close()

    run(body)


def test_anonymous_subscribers_share_one_empty_set_of_private_topics() -> None:
    async def body() -> None:
        async with serving() as (hub, _, port):
            streams = [await subscribe(port, "t1"), await subscribe(port, "t2")]
            await until(lambda: hub.statistics().subscribers == 2)
            try:
                first, second = hub._fanout.subscriptions()
                assert first.private_topics == second.private_topics == frozenset()
                assert first.private_topics is second.private_topics  # not 216 bytes each
            finally:
                for stream in streams:
                    stream.close()

    run(body)


def test_subscribers_of_one_topic_share_their_selectors_and_keep_no_containers() -> None:
    async def body() -> None:
        async with serving() as (hub, _, port):
            streams = [await subscribe(port, "t1") for _ in range(3)]
            await until(lambda: hub.statistics().subscribers == 3)
            try:
                first, *others = hub._fanout.subscriptions()
                for sub in others:
                    # the group's key and topics, not a frozenset and a tuple each (~320 B)
                    assert sub.group_key is first.group_key
                    assert sub.topics is first.topics
                    # not asked to resume: one shared frozen record, not one each
                    assert sub.resume is first.resume
                for sub in (first, *others):
                    # no backlog list (made only while paused), no held dict
                    kept = gc.get_referents(sub)
                    assert not [r for r in kept if isinstance(r, dict | list)], kept
                    assert sys.getsizeof(sub) <= 176  # 18 slots; it was 200 bytes with 21
            finally:
                for stream in streams:
                    stream.close()

    run(body)


def test_a_paused_stream_keeps_its_backlog_and_writes_it_in_order_on_resume() -> None:
    async def body() -> None:
        async with serving() as (hub, _, port):
            stream = await subscribe(port, "t1")
            await until(lambda: hub.statistics().subscribers == 1)
            try:
                (sub,) = hub._fanout.subscriptions()
                assert isinstance(sub, StreamSubscription)
                sub.pause_writing()
                await hub.publish("t1", "one")
                await hub.publish("t1", "two")
                await until(lambda: sub.held_bytes > 0)
                assert sub.held_bytes == hub.statistics().bytes_held > 0
                sub.resume_writing()
                assert sub.held_bytes == 0
                assert [e.data for e in await stream.next_events(2)] == ["one", "two"]
            finally:
                stream.close()

    run(body)


def test_a_keep_alive_clients_requests_reuse_one_timer_and_its_deadlines_still_hold() -> None:
    async def body() -> None:
        async with serving(idle_timeout=1.0, head_timeout=0.9) as (_, srv, port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                ticks = []
                for _ in range(4):
                    writer.write(b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
                    status, head = await read_head(reader)
                    assert status == 200
                    await reader.readexactly(int(head["content-length"]))
                    (conn,) = srv.connections
                    ticks.append(conn._filed)
                    await asyncio.sleep(0.05)  # each request moves the deadline on
                # its deadline filed once for all four requests, at the start (it
                # was two new timers per request)
                assert ticks[0] is not None
                assert all(tick is ticks[0] for tick in ticks)
                # the moved deadline still holds: closed idle_timeout after the
                # last answer, not when that first timer fires
                started = time.monotonic()
                assert await reader.read() == b""
                assert 0.6 < time.monotonic() - started < 3
            finally:
                writer.close()

    run(body)


def test_connections_waiting_for_their_head_share_one_loop_timer_and_each_is_cut_on_time() -> None:
    """50 connections that send nothing cost no loop timer each (`Deadlines`:
    one for all; on `main` before it, one `TimerHandle` each), and each
    is still closed at its own deadline, never before it."""

    async def body() -> None:
        loop = asyncio.get_running_loop()
        async with serving(head_timeout=1.0) as (_, srv, port):

            def timers() -> int:
                return len([h for h in loop._scheduled if not h.cancelled()])  # type: ignore[attr-defined]

            before = timers()
            opened = []
            try:
                for _ in range(50):
                    started = time.monotonic()
                    opened.append((started, *await asyncio.open_connection("127.0.0.1", port)))
                    await asyncio.sleep(0.005)  # spread over several ticks
                await until(lambda: len(srv.connections) == 50)
                assert timers() <= before + 1
                for started, reader, _ in opened:
                    assert await asyncio.wait_for(reader.read(), 10) == b""  # without a word
                    assert time.monotonic() - started > 0.99  # not before its deadline
                await until(lambda: not srv.connections)
            finally:
                for _, _, writer in opened:
                    writer.close()

    # the plain asyncio loop, whose timers can be counted (uvloop's cannot)
    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
        runner.run(body())


def test_deadlines_filed_apart_each_hold_from_their_own_start() -> None:
    """Trickled heads started 0.15 s apart, each refused 408 when its own
    deadline passes (up to a tick late), not all at the first one's."""

    async def body() -> None:
        async with serving(head_timeout=0.6) as (_, srv, port):

            async def trickled(delay: float) -> float:
                await asyncio.sleep(delay)
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                started = time.monotonic()
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: h\r\n")
                answer = await asyncio.wait_for(reader.read(), 10)
                took = time.monotonic() - started
                writer.close()
                assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
                return took

            took = await asyncio.gather(*(trickled(0.15 * i) for i in range(5)))
            assert all(0.59 < t < 2.0 for t in took), took
            await until(lambda: not srv.connections)

    run(body)
