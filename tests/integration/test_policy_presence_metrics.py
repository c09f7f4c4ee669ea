"""`/metrics` of real `ssehub serve` processes shows the per-topic policies
(subscriptions refused by `max_subscribers`, the policy cache) and, on a
store that keeps presence (a redis-server of the test's own), this hub's
presence: writes, failed writes, entries lost, the peers seen alive and
their subscriptions, the age of the last answered write."""

from __future__ import annotations

import asyncio
import math
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.support.helpers import Stream, free_port, request, subscribe
from tests.support.processes import connect, spawn, stop
from tests.support.redis import RedisProcess, redis_server_or_skip

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
PREFIX = "metrics-test:"


async def _metrics(port: int) -> dict[str, float]:
    """The samples of `/metrics`: `name{labels}` -> value."""
    answer = await request(port, "GET", "/metrics")
    assert answer.status == 200, answer.text
    samples = {}
    for line in answer.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


async def _eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + 30
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never {what}")
        await asyncio.sleep(0.1)


def test_subscriptions_refused_by_max_subscribers_are_counted(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "hub.toml"
    config.write_text(
        f'port = {port}\nstore = "memory:"\nlog-level = "warning"\n'
        '[[topics]]\nmatch = "https://example.com/busy/{id}"\nmax_subscribers = 1\n'
    )
    proc = spawn("serve", "--config", str(config))
    try:
        connect(port, HEALTHZ).close()

        async def body() -> None:
            refused = 'ssehub_subscriptions_refused_total{reason="max_subscribers"}'
            before = await _metrics(port)
            assert before[refused] == 0
            assert before["ssehub_topic_policy_cache_entries"] == 0
            first = await subscribe(port, "https://example.com/busy/1")
            try:
                assert first.status == 200
                for _ in range(2):
                    again = await subscribe(port, "https://example.com/busy/1")
                    assert again.status == 503
                    again.close()
                after = await _metrics(port)
                assert after[refused] == 2
                assert after["ssehub_topic_policy_cache_entries"] == 1  # one topic looked up
            finally:
                first.close()

        asyncio.run(body())
    finally:
        code, _, err = stop(proc)
    assert code == 0, err


def _serve(store: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    proc = spawn("serve", "--port", str(port), "--presence-interval", "0.5",
                 "--store", store, "--log-level", "warning")  # fmt: skip
    connect(port, HEALTHZ).close()
    return proc, port


def test_presence_on_redis_is_in_metrics(tmp_path: Path) -> None:
    redis_server_or_skip()  # fails instead under CI=true
    server = RedisProcess(tmp_path / "redis")
    server.start()
    store = f"redis://{server.address}/0?prefix={PREFIX}"
    hubs: list[subprocess.Popen[str]] = []
    try:
        (a, port_a), (b, port_b) = _serve(store), _serve(store)
        hubs += [a, b]

        async def body() -> None:
            streams: list[Stream] = []
            try:
                for topic in ("https://example.com/a", "https://example.com/{x}"):
                    stream = await subscribe(port_b, topic)
                    assert stream.status == 200
                    streams.append(stream)

                async def a_sees_b() -> bool:
                    m = await _metrics(port_a)
                    return (
                        m["ssehub_presence_peers"] == 1
                        and m["ssehub_presence_peer_subscriptions"] == 2
                    )

                await _eventually(a_sees_b, "saw hub B's two subscriptions")
                m = await _metrics(port_a)
                assert m["ssehub_presence_writes_total"] >= 1
                assert m["ssehub_presence_write_failures_total"] == 0
                assert m["ssehub_presence_lost_total"] == 0
                age = m["ssehub_presence_refresh_age_seconds"]
                assert not math.isnan(age)
                assert age >= 0

                # A frozen past its TTL: B removes its entry; A, thawed,
                # finds it lost and writes it again
                a.send_signal(signal.SIGSTOP)
                try:
                    redis = server.client()
                    try:

                        async def a_removed() -> bool:
                            return bool(redis.zcard(f"{PREFIX}presence") == 1)

                        await _eventually(a_removed, "removed the frozen hub's entry")
                    finally:
                        redis.close()
                finally:
                    a.send_signal(signal.SIGCONT)

                async def a_lost_and_back() -> bool:
                    m = await _metrics(port_a)
                    return m["ssehub_presence_lost_total"] == 1 and m["ssehub_presence_peers"] == 1

                await _eventually(a_lost_and_back, "counted the lost entry")

                async def b_sees_a_again() -> bool:
                    return (await _metrics(port_b))["ssehub_presence_peers"] == 1

                await _eventually(b_sees_a_again, "saw hub A again")

                # the store away: failed writes counted
                server.kill()

                async def a_fails() -> bool:
                    return (await _metrics(port_a))["ssehub_presence_write_failures_total"] >= 1

                await _eventually(a_fails, "counted a failed write")
            finally:
                for stream in streams:
                    stream.close()

        asyncio.run(body())
    finally:
        results = [stop(proc) for proc in hubs]
        server.stop()
    for code, _, err in results:
        assert code == 0, err
