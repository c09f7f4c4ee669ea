"""Idempotent publish against real `ssehub serve` processes: a publish
retried with the same id and the same event answers 200 with that id and is
delivered once — after a restart on SQLite, and on another hub sharing
Redis; another event under a used id is still 409 (issue 16 item 4)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ssehub.backends import Record, RedisBackend, ReplicaWaitError
from ssehub.protocol import Event, encode_event
from tests.support.helpers import Response, form, free_port, request, subscribe
from tests.support.processes import connect, spawn, stop
from tests.support.redis import (
    REDIS_URL,
    RedisProcess,
    drop_keys,
    redis_or_skip,
    redis_server_or_skip,
)

PATH = "/.well-known/mercure"


@contextmanager
def hub(store: str, port: int) -> Iterator[subprocess.Popen[str]]:
    """`ssehub serve` on `port` and `store`, ready; stopped on the way out."""
    proc = spawn("serve", "--port", str(port), "--anonymous-publish", "--store", store)
    try:
        connect(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").close()
        yield proc
    finally:
        stop(proc)


Fields = dict[str, str | list[str]]


async def post(port: int, fields: Fields, key: str | None = None) -> Response:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if key is not None:
        headers["Idempotency-Key"] = f'"{key}"'
    return await request(port, "POST", PATH, headers=headers, body=form(**fields))


async def metric(port: int, name: str) -> float:
    for line in (await request(port, "GET", "/metrics")).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not in /metrics")


def test_a_retry_after_a_restart_on_sqlite_is_answered_and_delivered_once(
    tmp_path: Path,
) -> None:
    store = f"sqlite:///{tmp_path}/hub.db"
    port = free_port()
    order: Fields = {"topic": ["orders", "audit"], "data": "order 1", "type": "order"}

    async def before() -> None:
        stream = await subscribe(port, "orders")
        first = await post(port, order, key="order-1")
        assert (first.status, first.text) == (200, "order-1")
        [event] = await stream.next_events(1)
        assert (event.id, event.data) == ("order-1", "order 1")
        stream.close()

    async def after() -> None:
        stream = await subscribe(port, "orders", last_event_id="earliest")
        [event] = await stream.next_events(1)  # from history
        assert event.id == "order-1"
        # the publisher never saw its answer: it retries, by key and by id,
        # with the topics in another order but the same first one
        retried = [
            await post(port, order, key="order-1"),
            await post(port, {**order, "id": "order-1"}),
            await post(port, {**order, "topic": ["orders", "audit", "audit"]}, key="order-1"),
        ]
        assert [(r.status, r.text) for r in retried] == [(200, "order-1")] * 3
        conflict = await post(port, {**order, "data": "order 2"}, key="order-1")
        assert conflict.status == 409
        assert "order-1" in conflict.text
        clash = await post(port, {**order, "id": "order-2"}, key="order-1")
        assert clash.status == 400
        assert "differ" in clash.text
        later = await post(port, {"topic": "orders", "data": "later"})
        assert later.status == 200
        [event] = await stream.next_events(1)
        assert (event.id, event.data) == (later.text, "later")  # order-1 came once
        assert await metric(port, "ssehub_publish_replayed_total") == 3
        assert await metric(port, "ssehub_events_published_total") == 1
        stream.close()

    with hub(store, port):
        asyncio.run(before())
    with hub(store, port):  # a new process on the same file
        asyncio.run(after())


def test_a_retry_on_another_hub_sharing_redis_is_answered_and_delivered_once() -> None:
    redis_or_skip()
    prefix = f"ssehub-test:{uuid.uuid4().hex}:"
    store = f"{REDIS_URL}?prefix={prefix}"
    port_a, port_b = free_port(), free_port()

    async def body() -> None:
        on_a = await subscribe(port_a, "t")
        on_b = await subscribe(port_b, "t")
        await asyncio.sleep(0.3)  # both subscriptions registered
        first = await post(port_a, {"topic": "t", "data": "x"}, key="k1")
        assert (first.status, first.text) == (200, "k1")
        retry = await post(port_b, {"topic": "t", "data": "x", "id": "k1"})
        assert (retry.status, retry.text) == (200, "k1")
        for port in (port_a, port_b):
            conflict = await post(port, {"topic": "t", "data": "y"}, key="k1")
            assert conflict.status == 409, port
        later = await post(port_b, {"topic": "t", "data": "later"})
        for stream in (on_a, on_b):
            events = await stream.next_events(2)
            assert [e.id for e in events] == ["k1", later.text]  # k1 once on each hub
            assert [e.data for e in events] == ["x", "later"]
        assert await metric(port_b, "ssehub_publish_replayed_total") == 1
        assert await metric(port_a, "ssehub_publish_replayed_total") == 0
        on_a.close()
        on_b.close()

    try:
        with hub(store, port_a), hub(store, port_b):
            asyncio.run(body())
    finally:
        drop_keys(prefix)


def test_a_retry_with_replica_wait_is_acknowledged_only_once_replicas_have_the_event(
    tmp_path: Path,
) -> None:
    """`wait=1`, the replica stopped: the original is not acknowledged
    (ReplicaWaitError), and neither is its retry on another hub — its WAIT
    covers the original append, though the retry stores nothing. Once the
    replica is back, the retry is acknowledged."""
    redis_server_or_skip()
    primary = RedisProcess(tmp_path / "primary")
    primary.start()
    replica = RedisProcess(tmp_path / "replica")
    replica.start("--replicaof", "127.0.0.1", str(primary.port))
    url = f"redis://{primary.address}/0?wait=1&wait_timeout_ms=300"
    ev = Event("x", id="k1")

    def record() -> Record:
        return Record(("t",), ev, time.time(), encode_event(ev))

    async def main() -> None:
        a, b = RedisBackend(url), RedisBackend(url)
        await a.start()
        await b.start()
        try:
            deadline = time.monotonic() + 10
            for i in range(1000):  # until the replica is in sync
                try:
                    warm = Event("warm", id=f"w{i}")
                    assert await a.append(Record(("w",), warm, time.time(), b""))
                    break
                except ReplicaWaitError:
                    assert time.monotonic() < deadline, "the replica did not sync"
            replica.signal(signal.SIGSTOP)
            await asyncio.sleep(1.5)  # its last acknowledgement is behind what follows
            with pytest.raises(ReplicaWaitError):
                await a.append(record())  # stored on the primary, not acknowledged
            with pytest.raises(ReplicaWaitError):
                await b.append(record())  # the retry: not acknowledged either
            replica.signal(signal.SIGCONT)
            deadline = time.monotonic() + 10
            while True:
                try:
                    assert await b.append(record()) is False  # the same event: a retry
                    break
                except ReplicaWaitError:
                    assert time.monotonic() < deadline, "the replica did not catch up"
            [stored] = [r for r in (await b.history(["t"], None)).records if r.id == "k1"]
            assert stored.event == ev  # once
        finally:
            await a.aclose()
            await b.aclose()

    try:
        asyncio.run(main())
    finally:
        replica.stop()
        primary.stop()
