"""A client pipelining many tiny requests over a real socket cannot hold the
server's loop: between two turns of the loop's other callbacks (other
clients, timers, fan-out) one connection answers at most what its reader
may hold (`MAX_QUEUED` requests and those of one `SLICE` of bytes), twice
(once in `data_received`, once in its task), never all it pipelined."""

from __future__ import annotations

import asyncio
import logging
import socket
from urllib.parse import urlencode

from ssehub.server._reader import MAX_QUEUED, SLICE
from tests.support.servers import run, serving

MERCURE = "/.well-known/mercure"
FLOOD = 3000  # tiny requests sent in one write, as fast as they are answered
_NOWHERE = b"GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n"


def _publish(i: int) -> bytes:
    body = urlencode({"topic": "t", "data": str(i)}).encode()
    head = (
        f"POST {MERCURE} HTTP/1.1\r\nHost: a\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _flood(port: int, requests: bytes, n: int) -> list[int]:
    """Send `requests` in one write, read the `n` answers (each with a
    `Content-Length` body) as they come: their statuses."""
    statuses: list[int] = []
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(requests)
        buffer = b""
        while len(statuses) < n:
            head_end = buffer.find(b"\r\n\r\n")
            if head_end >= 0:
                head = buffer[:head_end].decode("latin-1").lower()
                length = int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])
                end = head_end + 4 + length
                if len(buffer) >= end:
                    statuses.append(int(head.split(" ", 2)[1]))
                    buffer = buffer[end:]
                    continue
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise EOFError(f"closed after {len(statuses)} answers")
            buffer += chunk
    return statuses


def test_a_pipelined_flood_of_publishes_leaves_the_loop_a_turn_every_few_answers() -> None:
    async def body() -> None:
        async with serving(anonymous_publish=True) as (hub, _, port):
            done = False
            most = 0

            async def ticker() -> None:
                # another callback of the loop: how many publishes were
                # answered between two of its turns
                nonlocal most
                last = hub.statistics().events_published
                while not done:
                    await asyncio.sleep(0)
                    now = hub.statistics().events_published
                    most = max(most, now - last)
                    last = now

            watch = asyncio.create_task(ticker())
            try:
                flood = b"".join(_publish(i) for i in range(FLOOD))
                statuses = await asyncio.to_thread(_flood, port, flood, FLOOD)
            finally:
                done = True
                await watch
            assert statuses == [200] * FLOOD  # every one answered, in order
            assert hub.statistics().events_published == FLOOD
            # between two turns: what the reader holds, in `data_received` and in the task
            assert 0 < most <= 2 * (MAX_QUEUED + SLICE // len(_publish(0))), most

    run(body)


class _Refusals(logging.Handler):
    """Counts the refusals the server logs (one per 404 answered)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("refused"):
            self.count += 1


def test_a_pipelined_flood_of_refusals_leaves_the_loop_a_turn_too() -> None:
    async def body() -> None:
        logger = logging.getLogger("ssehub.server")
        counted = _Refusals()
        level = logger.level
        logger.addHandler(counted)
        logger.setLevel(logging.INFO)
        try:
            async with serving() as (_, _, port):
                done = False
                most = 0

                async def ticker() -> None:
                    nonlocal most
                    last = counted.count
                    while not done:
                        await asyncio.sleep(0)
                        most = max(most, counted.count - last)
                        last = counted.count

                watch = asyncio.create_task(ticker())
                try:
                    flood = _NOWHERE * FLOOD
                    statuses = await asyncio.to_thread(_flood, port, flood, FLOOD)
                finally:
                    done = True
                    await watch
        finally:
            logger.removeHandler(counted)
            logger.setLevel(level)
        assert statuses == [404] * FLOOD  # answered eagerly, in order
        assert counted.count == FLOOD
        assert 0 < most <= 2 * (MAX_QUEUED + SLICE // len(_NOWHERE)), most

    run(body)
