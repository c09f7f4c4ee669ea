"""The test Redis: reachable or skipped (failed under CI), and left as found."""

from __future__ import annotations

import os

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
