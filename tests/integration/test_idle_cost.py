"""What an idle subscriber costs the server (docs/benchmarks.md, "Where an
idle subscriber's bytes go"): once a connection subscribes, it keeps nothing
request-shaped, and no per-subscriber object that could be shared."""

from __future__ import annotations

import asyncio
import gc
import sys

from tests.support.helpers import subscribe
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
                    assert sys.getsizeof(conn) <= 128  # 10 slots; it was 200 bytes with 21
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
