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
                timers = []
                for _ in range(4):
                    writer.write(b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
                    status, head = await read_head(reader)
                    assert status == 200
                    await reader.readexactly(int(head["content-length"]))
                    (conn,) = srv.connections
                    timers.append(conn._timer)
                    await asyncio.sleep(0.05)  # each request moves the deadline on
                # one timer for all four requests, set at the start (it was two new
                # ones per request)
                assert timers[0] is not None
                assert all(timer is timers[0] for timer in timers)
                # the moved deadline still holds: closed idle_timeout after the
                # last answer, not when that first timer fires
                started = time.monotonic()
                assert await reader.read() == b""
                assert 0.6 < time.monotonic() - started < 3
            finally:
                writer.close()

    run(body)
