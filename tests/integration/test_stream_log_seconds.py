"""A stream's closing log line gives how long it was open, also for a
stream whose replay never finished because its client read nothing (its
head was written, the rest of the replay waits on the socket): on main
that stream had no opening time and the line said the machine's uptime."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time

import pytest

from tests.support.servers import run, serving, until

MERCURE = "/.well-known/mercure"


def test_a_stream_closed_during_its_replay_logs_its_own_seconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "ssehub.server")

    async def body() -> None:
        async with serving(anonymous=True, anonymous_publish=True) as (hub, _srv, port):
            for _ in range(50):  # a replay of ~3 MB: far more than the socket buffers take
                await hub.publish("t", "x" * 60_000)
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))
            began = time.monotonic()
            sock.sendall(
                f"GET {MERCURE}?topic=t HTTP/1.1\r\nHost: x\r\n"
                "Last-Event-ID: earliest\r\n\r\n".encode()
            )
            await until(lambda: len(hub._fanout.subscriptions()) == 1)
            await asyncio.sleep(0.3)  # its replay is stuck on the unread socket
            sock.close()
            await until(lambda: "stream closed" in caplog.text)
            elapsed = time.monotonic() - began
        found = re.search(r"stream closed .* seconds=([0-9.]+)", caplog.text)
        assert found is not None, caplog.text
        assert float(found.group(1)) <= elapsed + 0.1, (found.group(0), elapsed)

    run(body)
