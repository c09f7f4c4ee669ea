"""A record queued for a group's next fan-out turn, but not yet written,
is not delivered to a subscriber that joins the group after it was
published. A client that pipelines a publish and then a subscribe that
resumes from that very event (`Last-Event-ID`) got the event again on
main: it was stored before the subscribe (so not replayed after it) and
then written live to the whole group, the newcomer included. The same held
for a peer's record fed in just before a resume (`serve --workers`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ssehub.backends import Backend, MemoryBackend, SQLiteBackend
from tests.support.helpers import publish_request
from tests.support.servers import run, serving, until

MERCURE = "/.well-known/mercure"


def _subscribe(extra: str = "") -> bytes:
    return f"GET {MERCURE}?topic=t HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()


async def _ids_until(reader: asyncio.StreamReader, last: str) -> list[str]:
    """The event ids of a stream, up to `last`."""
    got = b""
    while f"id: {last}\n".encode() not in got:
        got += await asyncio.wait_for(reader.read(65536), 10)
    return [line[4:].decode() for line in got.split(b"\n") if line.startswith(b"id: ")]


@pytest.mark.parametrize("store", ["memory", "sqlite"])
@pytest.mark.parametrize("resume", [True, False])
def test_a_subscribe_pipelined_after_a_publish_gets_only_what_follows(
    tmp_path: Path, store: str, resume: bool
) -> None:
    backend: Backend = MemoryBackend() if store == "memory" else SQLiteBackend(tmp_path / "h.db")

    async def body() -> None:
        async with serving(backend=backend, anonymous=True, anonymous_publish=True) as (
            hub,
            _,
            port,
        ):
            # another subscriber of `t`: the group the event is queued for
            other_r, other_w = await asyncio.open_connection("127.0.0.1", port)
            other_w.write(_subscribe())
            await other_r.readuntil(b"\r\n\r\n")
            await until(lambda: len(hub._fanout.subscriptions()) == 1)

            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                extra = "Last-Event-ID: a1\r\n" if resume else ""
                writer.write(publish_request("t", "one", "a1") + _subscribe(extra))
                await until(lambda: len(hub._fanout.subscriptions()) == 2)
                await hub.publish("t", "two", id="a2")
                ids = await _ids_until(reader, "a2")
                assert ids == ["a2"]  # on main (memory): ["a1", "a2"]
                assert await _ids_until(other_r, "a2") == ["a1", "a2"]  # the others: as before
            finally:
                writer.close()
                other_w.close()

    run(body)
