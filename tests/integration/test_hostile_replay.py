"""Hostile replays and publishers over real sockets, against a real
HubServer on SQLite (issue 11 items 5 and 7): replays read history in
bounded pages without holding up publishes, a subscriber that does not read
its replay costs about its buffer bound, and a publisher that leaves at once
never tears its publish."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from pathlib import Path

import pytest

from ssehub.backends import HistoryLimits, Record, SQLiteBackend
from ssehub.hub import HubConfig
from ssehub.protocol import Event, encode_event
from tests.support.helpers import form, publish, subscribe
from tests.support.servers import run, serving

HISTORY = 50_000
LIMITS = HistoryLimits(max_events=1_000_000, max_age=10 * 24 * 3600.0)


def _rss() -> int:
    """This process's resident memory, in bytes (the server runs in it)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


@pytest.fixture(scope="module")
def big_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file holding HISTORY events of about 200 bytes on one topic."""
    path = tmp_path_factory.mktemp("history") / "big.db"

    async def fill() -> None:
        backend = SQLiteBackend(path, LIMITS)
        await backend.start()
        now = time.time()
        for start in range(0, HISTORY, 2000):  # group commits of 2000
            records = []
            for i in range(start, start + 2000):
                ev = Event("x" * 160, "message", f"e{i}")
                records.append(Record(("t",), ev, now, encode_event(ev)))
            await asyncio.gather(*(backend.append(r) for r in records))
        await backend.aclose()

    asyncio.run(fill())
    return path


def test_replay_storm_does_not_hold_up_publishes(big_history: Path) -> None:
    async def body() -> None:
        backend = SQLiteBackend(big_history, LIMITS)
        async with serving(backend=backend, anonymous_publish=True) as (hub, _, port):

            async def replayer() -> None:
                while True:  # replay everything, read it all, come back
                    stream = await subscribe(port, "*", query_last_event_id="earliest")
                    try:
                        got = 0
                        while got < HISTORY * 150:
                            chunk = await stream.reader.read(1 << 20)
                            if not chunk:
                                break
                            got += len(chunk)
                    finally:
                        stream.close()

            replayers = [asyncio.ensure_future(replayer()) for _ in range(4)]
            try:
                await asyncio.sleep(0.5)  # the four are replaying
                latencies = []
                for i in range(20):
                    began = time.monotonic()
                    response = await publish(port, topic="live", data=str(i))
                    latencies.append(time.monotonic() - began)
                    assert response.status == 200
                    await asyncio.sleep(0.05)
                assert hub.statistics().replays >= 4  # they were replaying meanwhile
            finally:
                for task in replayers:
                    task.cancel()
                await asyncio.gather(*replayers, return_exceptions=True)
            # every publish answered within 1 s (unpaged: several seconds)
            assert max(latencies) < 1.0, sorted(latencies)[-5:]

    run(body)


def test_a_resumer_that_does_not_read_holds_about_its_buffer_bound(big_history: Path) -> None:
    async def body() -> None:
        backend = SQLiteBackend(big_history, LIMITS)
        config = HubConfig(max_buffer_bytes=256 * 1024)
        async with serving(backend=backend, hub_config=config) as (hub, _, port):
            before = _rss()
            streams = [
                await subscribe(port, "t", query_last_event_id="earliest", rcvbuf=4096)
                for _ in range(4)
            ]
            await asyncio.sleep(2.0)  # long enough to write all of history (10 MB each)
            grown = _rss() - before
            # unpaged, the process holds the four whole replays (40 MB and more)
            assert grown < 20 * 2**20, f"RSS grew by {grown / 2**20:.1f} MB"
            stats = hub.statistics()
            assert stats.subscribers == 4
            assert stats.replaying == 4  # not done: waiting for room
            # the whole history would be 4 x 10 MB; each holds at most its bound
            assert stats.bytes_held <= 4 * config.max_buffer_bytes, stats.bytes_held
            for stream in streams:
                stream.close()

    run(body)


def test_a_publisher_that_leaves_at_once_never_tears_its_publish(tmp_path: Path) -> None:
    async def body() -> None:
        backend = SQLiteBackend(tmp_path / "hub.db")
        async with serving(backend=backend, anonymous_publish=True) as (hub, _, port):
            live = await subscribe(port, "t")
            body_bytes = form(topic="t", data="d")
            head = (
                "POST /.well-known/mercure HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body_bytes)}\r\n\r\n"
            ).encode()
            for _ in range(300):  # post, then reset the connection at once
                sock = socket.create_connection(("127.0.0.1", port))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.sendall(head + body_bytes)
                await asyncio.sleep(0.002)
                sock.close()
            await asyncio.sleep(1.0)
            stored = [r.id for r in (await hub.backend.history(["t"], None)).records]
            assert stored, "no publish was stored: the test shows nothing"
            received = await live.next_events(len(stored), timeout=10)
            assert [e.id for e in received] == stored
            live.close()

    run(body)
