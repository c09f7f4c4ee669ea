"""The SQLite store's cache of recent decoded records is bounded in bytes,
not only in count: publishers of big events (a 1 MB body each, 20,000 of
them) held gigabytes in memory, of rows the history had dropped long
before. Over a real socket, events of ~1 MB on a topic that keeps 3; the
events dropped from the cache are still replayed whole, from their rows."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ssehub.backends import HistoryLimits, SQLiteBackend
from ssehub.backends.sqlite import _CACHE_BYTES
from tests.support.helpers import publish_request as _publish
from tests.support.servers import run, serving

MERCURE = "/.well-known/mercure"
BIG = 1_000_000  # characters of data per big event (under the 1 MiB body limit)


async def _answer(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return await reader.readexactly(length)


def test_big_events_hold_the_cache_to_its_bytes_and_replay_from_rows(tmp_path: Path) -> None:
    async def body() -> None:
        store = SQLiteBackend(tmp_path / "h.db", HistoryLimits(max_events=3))
        async with serving(backend=store, anonymous=True, anonymous_publish=True) as (_, _, port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            small = [f"s{i}" for i in range(3)]
            for event_id in small:  # the oldest in the cache: dropped first
                writer.write(_publish("small", event_id, event_id))
                assert await _answer(reader) == event_id.encode()
            count = _CACHE_BYTES // BIG + 8  # past the bytes by 8 events
            for i in range(count):
                writer.write(_publish("big", "x" * BIG, f"b{i}"))
                assert await _answer(reader) == f"b{i}".encode()
            writer.close()
            cached = sum(len(r.frame) for r in store._cache.values())
            assert cached <= _CACHE_BYTES  # on main: every one of them
            assert "s0" not in {r.id for r in store._cache.values()}

            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"GET {MERCURE}?topic=small HTTP/1.1\r\nHost: x\r\n"
                "Last-Event-ID: earliest\r\n\r\n".encode()
            )
            got = b""
            while got.count(b"\n\n") < len(small) + 1:  # (the stream's first comment)
                got += await asyncio.wait_for(reader.read(65536), 10)
            writer.close()
            ids = [line[4:].decode() for line in got.split(b"\n") if line.startswith(b"id: ")]
            assert ids == small

    run(body)
