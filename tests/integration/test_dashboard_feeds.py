"""The dashboard's `/_ssehub/stats` feeds share one snapshot a second, and a
feed whose client does not read is dropped (issue 11 item 6)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

from ssehub.protocol import EventStreamParser
from tests.support.helpers import publish, request
from tests.support.servers import run, serving


class _Feed:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = EventStreamParser()
        self.snapshots = 0

    async def read(self, seconds: float) -> None:
        """Read whatever comes for `seconds`."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                chunk = await asyncio.wait_for(self.reader.read(1 << 16), left)
            except TimeoutError:
                return
            if not chunk:
                raise EOFError("the feed ended")
            self.snapshots += sum(e.event == "stats" for e in self.parser.feed(chunk))


async def _open_feed(port: int, *, rcvbuf: int | None = None) -> _Feed:
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(b"GET /_ssehub/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200"), head
    return _Feed(reader, writer)


async def _metric(port: int, name: str) -> float:
    answer = await request(port, "GET", "/metrics")
    for line in answer.text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not in /metrics")


def test_a_hundred_feeds_cost_one_snapshot_a_second_and_publishes_stay_prompt() -> None:
    async def body() -> None:
        async with serving(dashboard=True, anonymous_publish=True) as (_, _, port):
            feeds = [await _open_feed(port) for _ in range(100)]
            try:
                assert await _metric(port, "ssehub_dashboard_feeds") == 100
                before = await _metric(port, "ssehub_dashboard_snapshots_total")
                slowest = 0.0
                for i in range(20):
                    started = time.monotonic()
                    answer = await publish(port, topic="t", data=str(i))
                    slowest = max(slowest, time.monotonic() - started)
                    assert answer.status == 200
                await asyncio.gather(*(f.read(3.0) for f in feeds))
                built = await _metric(port, "ssehub_dashboard_snapshots_total") - before
                # one snapshot a second for all of them, not one per feed (300+)
                assert 1 <= built <= 8, built
                assert all(f.snapshots >= 2 for f in feeds), [f.snapshots for f in feeds]
                assert slowest < 1.0, slowest  # generous: a full core was 210 ms at p50
            finally:
                for f in feeds:
                    f.writer.close()

    run(body)


def test_a_feed_that_does_not_read_is_dropped_and_a_reading_one_keeps_its_snapshots() -> None:
    async def body() -> None:
        async with serving(dashboard=True) as (hub, _, port):
            for i in range(12000):  # a big snapshot (~580 KB), as on a busy hub
                await hub.publish(f"https://example.com/a/rather/long/topic/name/{i:06}", "x")
            reading = await _open_feed(port)
            stuck = await _open_feed(port, rcvbuf=4096)
            try:

                async def dropped() -> bool:
                    return await _metric(port, "ssehub_dashboard_dropped_total") == 1

                deadline = time.monotonic() + 20
                while not await dropped():
                    assert time.monotonic() < deadline, "the stuck feed was never dropped"
                    await reading.read(0.5)
                got = reading.snapshots
                await reading.read(2.5)
                assert reading.snapshots >= got + 1  # the reader is still fed
                assert await _metric(port, "ssehub_dashboard_feeds") == 1
                # the stuck client finds its connection closed once it reads
                with contextlib.suppress(ConnectionResetError):
                    while await asyncio.wait_for(stuck.reader.read(1 << 20), 10):
                        pass
            finally:
                reading.writer.close()
                stuck.writer.close()

    run(body)
