"""Several hubs on one Redis behave as one hub: publish anywhere, receive
everywhere, once, and resume anywhere (the real Redis on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from ssehub import Hub
from ssehub.backends import RedisBackend
from ssehub.hub import EventSubscription
from ssehub.mercure import MercureConfig
from ssehub.protocol import Event
from tests.support.helpers import missing
from tests.support.redis import REDIS_URL, drop_keys, redis_or_skip


def run_two_hubs(body: Callable[[Hub, Hub], Awaitable[None]]) -> None:
    redis_or_skip()
    prefix = f"ssehub-test:{uuid.uuid4().hex}:"

    async def main() -> None:
        async with (
            Hub(backend=RedisBackend(REDIS_URL, prefix=prefix)) as a,
            Hub(backend=RedisBackend(REDIS_URL, prefix=prefix)) as b,
        ):
            await body(a, b)

    try:
        asyncio.run(main())
    finally:
        drop_keys(prefix)


async def take(sub: EventSubscription, n: int) -> list[Event]:
    return [await asyncio.wait_for(anext(sub), 10) for _ in range(n)]


def test_publish_on_one_receive_on_both_once_in_order() -> None:
    async def body(a: Hub, b: Hub) -> None:
        async with a.subscribe("t") as on_a, b.subscribe("t") as on_b:
            sent = [await a.publish("t", f"from a {i}") for i in range(3)]
            sent += [await b.publish("t", f"from b {i}") for i in range(3)]
            got_a = [e.id or "" for e in await take(on_a, 6)]
            got_b = [e.id or "" for e in await take(on_b, 6)]
            assert sorted(got_a) == sorted(sent) == sorted(got_b)  # everything, on both
            # each hub's own events in publish order, and no echo of its own
            assert [i for i in got_a if i in sent[:3]] == sent[:3]
            assert [i for i in got_b if i in sent[3:]] == sent[3:]
            await asyncio.sleep(0.3)
            assert a.statistics().events_from_peers == 3
            assert b.statistics().events_from_peers == 3

    run_two_hubs(body)


def test_replay_on_one_while_the_other_publishes_has_no_gap_or_duplicate() -> None:
    async def body(a: Hub, b: Hub) -> None:
        first = await a.publish("t", "0")
        ids = [first]

        async def publish_on_a() -> None:
            for i in range(1, 40):
                ids.append(await a.publish("t", str(i)))

        publisher = asyncio.ensure_future(publish_on_a())
        await asyncio.sleep(0.01)
        async with b.subscribe("t", last_event_id=first) as sub:
            await publisher
            got = [e.id for e in await take(sub, 39)]
            assert got == ids[1:]  # replayed then live across the seam: each once, in order
            await asyncio.sleep(0.2)
            extra = []
            while True:
                try:
                    extra.append(await asyncio.wait_for(anext(sub), 0.2))
                except TimeoutError:
                    break
            assert extra == []

    run_two_hubs(body)


def test_serve_with_two_workers_on_one_port() -> None:
    import json
    import signal

    from tests.support.helpers import free_port
    from tests.support.processes import connect, finish, run_cli, spawn

    redis_or_skip()
    prefix = f"ssehub-test:{uuid.uuid4().hex}:"
    port = free_port()
    proc = spawn("serve", "--port", str(port), "--workers", "2", "--anonymous-publish",
                 "--store", f"{REDIS_URL}?prefix={prefix}")  # fmt: skip
    try:
        connect(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").close()
        hub = f"http://127.0.0.1:{port}"
        # listeners land on either worker; publishes too; everyone gets everything
        listeners = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ssehub",
                    "listen",
                    "--hub",
                    hub,
                    "--topic",
                    "t",
                    "--count",
                    "6",
                    "--format",
                    "json",
                    # from all history: one that subscribes only after some
                    # publishes (a loaded machine) still gets every event once
                    "--last-event-id",
                    "earliest",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(6)
        ]
        import time

        time.sleep(1.5)  # most subscribe first: they get the events live
        sent = [
            run_cli("publish", "t", f"event {i}", "--hub", hub).stdout.strip() for i in range(6)
        ]
        for listener in listeners:
            out, err = listener.communicate(timeout=30)
            assert listener.returncode == 0, err
            assert sorted(json.loads(line)["id"] for line in out.splitlines()) == sorted(sent)
    finally:
        proc.send_signal(signal.SIGTERM)
        code, out, err = finish(proc)
        drop_keys(prefix)
    assert code == 0, err
    assert "2 workers on port" in out


def test_workers_need_a_shared_store() -> None:
    from tests.support.processes import finish, spawn

    code, _, err = finish(spawn("serve", "--workers", "2", "--port", "1", "--store", "memory:"))
    assert code == 2
    assert "--workers > 1 needs a shared store: --store memory: keeps history in one" in err
    assert err.strip().count("\n") == 0, err  # one line, no traceback


def _redis_server_or_skip() -> None:
    """These tests run a redis-server of their own."""
    import shutil

    if shutil.which("redis-server") is None:
        missing("redis-server is not installed")


class PrivateRedis:
    """A redis-server of the test's own (append-only file on), to restart."""

    def __init__(self, folder: Path) -> None:
        from tests.support.helpers import free_port

        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import socket
        import time

        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


def test_redis_restart_during_a_publish_stream(tmp_path: Path) -> None:
    """Redis goes away and comes back while one hub publishes: every
    acknowledged event reaches the subscribers of both hubs, once, in order;
    nothing was acknowledged that was not stored."""

    _redis_server_or_skip()
    redis = PrivateRedis(tmp_path)
    redis.start()

    async def main() -> None:
        async with (
            Hub(backend=RedisBackend(redis.url)) as a,
            Hub(backend=RedisBackend(redis.url)) as b,
            a.subscribe("t") as on_a,
            b.subscribe("t") as on_b,
        ):
            acknowledged: list[str] = []
            refused = 0
            for i in range(60):
                if i == 20:
                    await asyncio.to_thread(redis.stop)
                if i == 35:
                    await asyncio.to_thread(redis.start)
                try:
                    acknowledged.append(await asyncio.wait_for(a.publish("t", f"n{i}"), 10))
                except Exception:
                    refused += 1
                    await asyncio.sleep(0.05)
            assert refused > 0  # while Redis was away, nothing was acknowledged
            assert len(acknowledged) >= 40
            for sub in (on_a, on_b):
                got: list[str] = []
                while len(got) < len(acknowledged):
                    event = await asyncio.wait_for(anext(sub), 20)
                    got.append(event.id or "")
                assert [g for g in got if g in acknowledged] == acknowledged  # in order
                assert len(set(got)) == len(got)  # once

    try:
        asyncio.run(main())
    finally:
        redis.stop()


def test_while_redis_is_down_the_hub_says_so_and_keeps_its_streams(tmp_path: Path) -> None:

    from ssehub.server import HubServer, ServerConfig
    from tests.support.helpers import publish, request, subscribe

    _redis_server_or_skip()
    redis = PrivateRedis(tmp_path)
    redis.start()

    async def main() -> None:
        async with Hub(backend=RedisBackend(redis.url)) as hub:
            server = HubServer(
                hub, ServerConfig(port=0, mercure=MercureConfig(anonymous_publish=True))
            )
            await server.start()
            try:
                stream = await subscribe(server.port, "t")
                assert stream.status == 200
                await asyncio.to_thread(redis.stop)
                refused = await publish(server.port, topic="t", data="x")
                assert refused.status == 503
                assert refused.text.startswith("the store is unavailable")
                no_replay = await request(
                    server.port, "GET", "/.well-known/mercure?topic=t&lastEventID=earliest"
                )
                assert no_replay.status == 503
                assert no_replay.text.startswith("the hub could not answer")
                assert hub.statistics().subscribers == 1  # the open stream stays
                await asyncio.to_thread(redis.start)
                for _ in range(100):  # the pool reconnects on its own
                    answer = await publish(server.port, topic="t", data="back")
                    if answer.status == 200:
                        break
                    await asyncio.sleep(0.1)
                assert answer.status == 200
                [event] = await stream.next_events(1)
                assert event.data == "back"
                stream.close()
            finally:
                await server.aclose()

    try:
        asyncio.run(main())
    finally:
        redis.stop()
