"""Redis Cluster (`redis+cluster://`): a private cluster of three primaries
started by the test; two hubs on it publish, receive, resume and see each
other's subscribers, and every key of the hub group lives in the one slot of
its hash tag; `ssehub serve` runs on it too."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

from ssehub import Hub
from ssehub.backends import RedisBackend
from ssehub.hub import HubConfig
from tests.support.helpers import missing, publish, request, subscribe
from tests.support.processes import connect, spawn, stop
from tests.support.redis import ClusterGroup, redis_server_or_skip
from tests.support.servers import run


def _cluster_or_skip() -> None:
    redis_server_or_skip()
    if shutil.which("redis-cli") is None:
        missing("redis-cli is not installed")


def test_two_hubs_on_a_three_primary_cluster_keep_every_key_in_one_slot(tmp_path: Path) -> None:
    _cluster_or_skip()
    with ClusterGroup(tmp_path) as cluster:
        url = cluster.url("prefix={orders}:")

        async def main() -> None:
            config = HubConfig(presence_interval=0.3)
            async with (
                Hub(config, backend=RedisBackend(url)) as a,
                Hub(config, backend=RedisBackend(url)) as b,
                a.subscribe(["t", "u"]) as on_a,
                b.subscribe("t") as on_b,
            ):
                first = await a.publish(["t", "u"], "one")
                await b.publish("t", "two")
                for sub in (on_a, on_b):
                    got = [await asyncio.wait_for(anext(sub), 10) for _ in range(2)]
                    assert [e.data for e in got] == ["one", "two"]
                async with b.subscribe("t", last_event_id=first) as resumed:
                    assert (await asyncio.wait_for(anext(resumed), 10)).data == "two"
                deadline = time.monotonic() + 30
                while (a.subscribers("t"), b.subscribers("u")) != (2, 1):
                    assert time.monotonic() < deadline, (a.subscribers("t"), b.subscribers("u"))
                    await asyncio.sleep(0.05)
                stats = a.backend.statistics()  # type: ignore[attr-defined]
                assert stats.primary in [node.address for node in cluster.nodes]

        asyncio.run(main())
        # every key in the slot of the tag: all on one node, in one slot
        holders = {}
        for node in cluster.nodes:
            client = node.client()
            try:
                keys = list(client.scan_iter(match="{orders}:*"))
                if keys:
                    holders[node.address] = {
                        client.execute_command("CLUSTER KEYSLOT", k) for k in keys
                    }
            finally:
                client.close()
        client = cluster.nodes[0].client()
        slot = client.execute_command("CLUSTER KEYSLOT", "orders")
        client.close()
        assert list(holders.values()) == [{slot}], holders


def test_serve_on_a_cluster_store(tmp_path: Path) -> None:
    _cluster_or_skip()
    from tests.support.helpers import free_port

    with ClusterGroup(tmp_path) as cluster:
        ports = [free_port(), free_port()]
        hubs = [
            spawn(
                "serve",
                "--port",
                str(port),
                "--anonymous-publish",
                "--presence-interval",
                "0.5",
                "--store",
                cluster.url(),
            )
            for port in ports
        ]
        try:
            for port in ports:
                connect(
                    port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                ).close()

            async def body() -> None:
                stream = await subscribe(ports[1], "t")
                assert stream.status == 200
                answer = await publish(ports[0], topic="t", data="over the cluster")
                assert answer.status == 200, answer.text
                (event,) = await stream.next_events(1)
                assert (event.data, event.id) == ("over the cluster", answer.text)
                ready = await request(ports[0], "GET", "/readyz")
                assert ready.status == 200, ready.text
                stream.close()

            run(body)
        finally:
            for proc in hubs:
                code, _, err = stop(proc)
                assert code == 0, err


def test_a_hub_group_goes_on_after_the_failover_of_its_shard(tmp_path: Path) -> None:
    _cluster_or_skip()
    with ClusterGroup(tmp_path, replicas=1) as cluster:

        async def main() -> None:
            config = HubConfig(presence_interval=0.5)
            async with (
                Hub(config, backend=RedisBackend(cluster.url())) as a,
                Hub(config, backend=RedisBackend(cluster.url())) as b,
                b.subscribe("t") as on_b,
            ):
                await a.publish("t", "before")
                assert (await asyncio.wait_for(anext(on_b), 10)).data == "before"
                holder = cluster.holder("{ssehub}:log")
                holder.kill()  # kill -9 of the primary of the group's slot
                killed = time.monotonic()
                while True:
                    try:
                        await a.publish("t", "after")
                        break
                    except Exception:  # 503 for a server: no primary for the slot yet
                        assert time.monotonic() < killed + 60, "no publish after the failover"
                        await asyncio.sleep(0.2)
                outage = time.monotonic() - killed
                print(f"the first publish acknowledged {outage:.1f} s after the kill")
                assert (await asyncio.wait_for(anext(on_b), 30)).data == "after"
                assert cluster.holder("{ssehub}:log") is not holder  # its replica took over
                async with b.subscribe("u"):
                    deadline = time.monotonic() + 30
                    while a.subscribers("u") != 1:  # presence too
                        assert time.monotonic() < deadline
                        await asyncio.sleep(0.05)

        asyncio.run(main())


def test_serve_names_the_cluster_store_in_help_and_refuses_bad_or_unreachable_ones() -> None:
    from tests.support.helpers import free_port
    from tests.support.processes import run_cli

    assert "redis+cluster://" in run_cli("serve", "--help").stdout
    nobody = f"redis+cluster://:secret@127.0.0.1:{free_port()}"
    done = run_cli("serve", "--port", "0", "--store", nobody)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()  # one line, no traceback
    assert f"the Redis store {nobody.replace('secret', '***')} is unreachable:" in line
    done = run_cli("serve", "--store", "redis+cluster://h1,h2?prefix=plain:")
    assert (done.returncode, done.stderr.count("\n")) == (2, 1)
    assert "needs a prefix= with a hash tag" in done.stderr
