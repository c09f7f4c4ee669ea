"""The test Redis: reachable or skipped (failed under CI), and left as found."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.support.helpers import missing

REDIS_URL = os.environ.get("SSEHUB_TEST_REDIS", "redis://127.0.0.1:6379/15")


def redis_or_skip() -> None:
    """Skip without Redis on a developer machine; fail under CI."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(REDIS_URL)
    try:
        socket.create_connection((url.hostname, url.port or 6379), 1).close()
    except OSError:
        missing(f"Redis is not reachable at {REDIS_URL}")


def drop_keys(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


class RedisReads:
    """`entries`: how many stream entries Redis sent back to this process."""

    def __init__(self) -> None:
        self.entries = 0

    def count(self, reply: object) -> None:
        if isinstance(reply, list | tuple):
            if len(reply) == 2 and isinstance(reply[0], str) and isinstance(reply[1], dict):
                self.entries += 1  # one entry: (stream id, fields)
            else:
                for item in reply:
                    self.count(item)


def count_redis_reads(monkeypatch: pytest.MonkeyPatch) -> RedisReads:
    """From now to the end of the test, count the stream entries every
    redis-py asyncio client of this process receives (pipelines included)."""
    from redis.asyncio.client import Pipeline, Redis

    reads = RedisReads()
    command: Any = Redis.execute_command  # redis-py leaves it untyped
    execute = Pipeline.execute

    async def counted_command(self: Redis, *args: Any, **options: Any) -> Any:
        reply = await command(self, *args, **options)
        reads.count(reply)
        return reply

    async def counted_execute(self: Pipeline, raise_on_error: bool = True) -> list[Any]:
        replies = await execute(self, raise_on_error)
        reads.count(replies)
        return replies

    monkeypatch.setattr(Redis, "execute_command", counted_command)
    monkeypatch.setattr(Pipeline, "execute", counted_execute)
    return reads
