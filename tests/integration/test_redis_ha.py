"""Redis high availability, for real on loopback: a primary, a replica and
three Sentinels (`redis-server --sentinel`), two hubs on
`redis+sentinel://…`, the primary killed with `kill -9` in the middle of a
publish stream. With `wait=1` every acknowledged publish survives the
failover: delivered once, in order, on both hubs, and replayed by a resume
on either. Without it, events acknowledged while the replica lagged may be
missing after the failover (docs/scale-out.md, "Failures")."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from ssehub import Hub
from ssehub.backends import RedisBackend, ReplicaWaitError, backend_from_url
from ssehub.hub import EventSubscription
from ssehub.mercure import MercureConfig
from ssehub.server import HubServer, ServerConfig
from tests.support.helpers import Stream, publish, request, subscribe
from tests.support.redis import RedisProcess, SentinelGroup, redis_server_or_skip

WAIT_TIMEOUT_MS = 250


def _fill_replication_link(primary: RedisProcess) -> None:
    """16 MB of writes the (stopped) replica cannot take yet: what follows
    them waits in the primary's output buffer, as behind a slow link."""
    client = primary.client()
    try:
        pipe = client.pipeline(transaction=False)
        for i in range(16):
            pipe.set(f"filler:{i}", "x" * (1 << 20))
        pipe.execute()
    finally:
        client.close()


async def _ids(next_id: Callable[[], Awaitable[str | None]], want: set[str]) -> list[str]:
    """Ids as they come until all of `want` came, or nothing came for 1.5 s."""
    got: list[str] = []
    while not want <= set(got):
        try:
            event_id = await asyncio.wait_for(next_id(), 1.5)
        except TimeoutError:
            break
        got.append(event_id or "")
    return got


def _next_from(sub: EventSubscription) -> Callable[[], Awaitable[str | None]]:
    async def next_id() -> str | None:
        return (await anext(sub)).id

    return next_id


class Outcome:
    def __init__(self) -> None:
        self.acknowledged: list[str] = []
        self.through: list[list[str]] = [[], []]  # acknowledged, per hub posted to
        self.at_risk: list[str] = []  # acknowledged while the replica lagged
        self.refusals: list[str] = []
        self.live: list[list[str]] = []  # per hub, what its subscriber got
        self.replays: list[list[str]] = []  # per hub, a resume after the failover
        self.failovers: list[int] = []
        self.wait_timeouts = 0
        self.outage = 0.0  # seconds from the kill to the next acknowledged publish


def _failover_during_a_publish_stream(folder: Path, query: str) -> Outcome:
    redis_server_or_skip()
    out = Outcome()

    async def main(group: SentinelGroup) -> None:
        url = group.url(query)
        async with Hub(backend=RedisBackend(url)) as a, Hub(backend=RedisBackend(url)) as b:
            server_a = HubServer(
                a, ServerConfig(port=0, mercure=MercureConfig(anonymous_publish=True))
            )
            server_b = HubServer(
                b, ServerConfig(port=0, mercure=MercureConfig(anonymous_publish=True))
            )
            await server_a.start()
            await server_b.start()
            try:
                async with a.subscribe("t") as on_a:
                    on_b = await subscribe(server_b.port, "t")  # a real stream, held open
                    assert on_b.status == 200
                    await body(group, (server_a.port, server_b.port), on_a, on_b)
                    on_b.close()
                for hub in (a, b):
                    async with hub.subscribe("t", last_event_id=out.acknowledged[0]) as resumed:
                        out.replays.append(
                            await _ids(_next_from(resumed), set(out.acknowledged[1:]))
                        )
                stats = [h.backend.statistics() for h in (a, b)]  # type: ignore[attr-defined]
                out.failovers = [s.failovers for s in stats]
                out.wait_timeouts = sum(s.wait_timeouts for s in stats)
            finally:
                await server_a.aclose()
                await server_b.aclose()

    async def body(
        group: SentinelGroup, ports: tuple[int, int], on_a: EventSubscription, on_b: Stream
    ) -> None:
        n = 0

        async def post() -> None:
            nonlocal n
            port = ports[n % 2]  # one publisher, posting to either hub in turn
            answer = await asyncio.wait_for(publish(port, topic="t", data=f"n{n}"), 15)
            n += 1
            if answer.status == 200:
                out.acknowledged.append(answer.text)
                out.through[ports.index(port)].append(answer.text)
            else:
                assert answer.status == 503, answer.text
                out.refusals.append(answer.text)

        for _ in range(10):
            await post()
        assert len(out.acknowledged) == 10
        # the replica falls behind: stopped, and a bulk write fills the link
        group.replica.signal(signal.SIGSTOP)
        await asyncio.to_thread(_fill_replication_link, group.primary)
        for _ in range(3):
            await post()
        out.at_risk = out.acknowledged[10:]
        group.primary.kill()  # kill -9, mid-stream
        group.replica.signal(signal.SIGCONT)
        # publish on through the failover; once Sentinel names the new
        # primary, the old one comes back as its replica
        killed = time.monotonic()
        deadline = killed + 30
        before, restarted = len(out.acknowledged), False
        while len(out.acknowledged) < before + 10:
            if len(out.acknowledged) == before + 1 and not out.outage:
                out.outage = time.monotonic() - killed
            assert time.monotonic() < deadline, f"no failover: {out.refusals[-3:]}"
            if not restarted and await asyncio.to_thread(group.primary_port) == group.replica.port:
                replica_of = ("--replicaof", "127.0.0.1", str(group.replica.port))
                await asyncio.to_thread(group.primary.start, *replica_of)
                restarted = True
            await post()
            await asyncio.sleep(0.05)
        want = set(out.acknowledged)
        out.live.append(await _ids(_next_from(on_a), want))

        async def next_on_b() -> str | None:
            [event] = await on_b.next_events(1, timeout=30)
            return event.id

        out.live.append(await _ids(next_on_b, want))

    with SentinelGroup(folder) as group:
        asyncio.run(main(group))
    return out


def _in_order_once(got: list[str], expected: list[str]) -> None:
    assert [g for g in got if g in expected] == expected  # every one, in order
    assert len(set(got)) == len(got)  # once


def _delivered_once_in_order(got: list[str], out: Outcome) -> None:
    """Every acknowledged event once; those posted through each hub in
    publish order. (Between the two hubs' events the order is the log's,
    which a hub's own events may run ahead of while its feed catches up
    after the failover: docs/scale-out.md, "Guarantees".)"""
    assert set(out.acknowledged) <= set(got)
    for through_one_hub in out.through:
        _in_order_once(got, through_one_hub)


def test_with_wait_every_acknowledged_publish_survives_a_failover(tmp_path: Path) -> None:
    out = _failover_during_a_publish_stream(tmp_path, f"wait=1&wait_timeout_ms={WAIT_TIMEOUT_MS}")
    assert out.at_risk == []  # nothing was acknowledged the replica did not have
    assert any("ReplicaWaitError" in r for r in out.refusals), out.refusals
    assert all(
        r.startswith(("the store is unavailable", "the store did not confirm it"))
        for r in out.refusals
    ), out.refusals
    for got in out.live:  # both hubs' subscribers, through the failover
        _delivered_once_in_order(got, out)
    for got in out.replays:  # a resume on either hub after it
        _in_order_once(got, out.acknowledged[1:])
    assert all(f >= 1 for f in out.failovers), out.failovers  # each saw the primary move
    assert out.wait_timeouts >= 3
    print(f"wait=1: no publish acknowledged for {out.outage:.1f} s after the kill;"
          f" {len(out.refusals)} refused (503)")  # fmt: skip


def test_without_wait_acknowledged_events_may_be_missing_after_a_failover(
    tmp_path: Path,
) -> None:
    out = _failover_during_a_publish_stream(tmp_path, "")
    assert len(out.at_risk) == 3  # acknowledged at once, replica or not
    for got in out.replays:
        missing = [i for i in out.acknowledged[1:] if i not in got]
        # only what was acknowledged while the replica lagged can be missing
        assert set(missing) <= set(out.at_risk)
        present = [i for i in out.acknowledged[1:] if i in got]
        _in_order_once(got, present)
        print(f"wait=0: acknowledged but missing after the failover: {len(missing)} of"
              f" {len(out.at_risk)}; outage {out.outage:.1f} s")  # fmt: skip
    for got in out.live:
        for through_one_hub in out.through:
            _in_order_once(got, [i for i in through_one_hub if i in got])


def test_wait_without_enough_replicas_refuses_the_publish(tmp_path: Path) -> None:
    """One server, no replica, `wait=1`: the append is stored but not
    acknowledged (ReplicaWaitError; the server answers 503 naming it)."""
    redis_server_or_skip()
    server = RedisProcess(tmp_path)
    server.start()

    async def main() -> None:
        url = f"redis://{server.address}/0?wait=1&wait_timeout_ms=50"
        async with Hub(backend=backend_from_url(url)) as hub:
            with pytest.raises(ReplicaWaitError, match="0 of 1 Redis replicas confirmed"):
                await hub.publish("t", "unconfirmed")
            http = HubServer(
                hub, ServerConfig(port=0, mercure=MercureConfig(anonymous_publish=True))
            )
            await http.start()
            try:
                answer = await publish(http.port, topic="t", data="unconfirmed too")
                assert answer.status == 503
                assert answer.text == (
                    "the store did not confirm it (ReplicaWaitError: 0 of 1 Redis replicas"
                    " confirmed the append within 50 ms: not acknowledged)\n"
                )
                stats = hub.backend.statistics()  # type: ignore[attr-defined]
                assert stats.wait_timeouts == 2
                metrics = (await request(http.port, "GET", "/metrics")).text.splitlines()
                assert "ssehub_redis_wait_timeouts_total 2" in metrics
                assert "ssehub_redis_failovers_total 0" in metrics
                assert stats.primary == server.address
                # not acknowledged, yet on the primary: it may still surface
                async with hub.subscribe("t", last_event_id="earliest") as sub:
                    got = [(await anext(sub)).data for _ in range(2)]
                assert got == ["unconfirmed", "unconfirmed too"]
            finally:
                await http.aclose()

    try:
        asyncio.run(main())
    finally:
        server.stop()


def test_serve_names_the_sentinel_store_in_help_and_refuses_an_unreachable_one() -> None:
    from tests.support.helpers import free_port
    from tests.support.processes import run_cli

    usage = run_cli("serve", "--help").stdout
    assert "redis+sentinel://" in usage
    assert "wait=N" in usage
    nobody = f"redis+sentinel://:secret@127.0.0.1:{free_port()}/svc/0"
    done = run_cli("serve", "--port", "0", "--store", nobody)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()  # one line, no traceback
    assert line.endswith(
        f"the Redis store {nobody.replace('secret', '***')} is unreachable:"
        " no Sentinel named a primary (Sentinels down, or no such service)"
    )
    done = run_cli("serve", "--store", "redis+sentinel://h1,h2/")
    assert (done.returncode, done.stderr.count("\n")) == (2, 1)
    assert "names no service" in done.stderr


def test_serve_on_a_sentinel_store(tmp_path: Path) -> None:
    """`ssehub serve --store redis+sentinel://…?wait=1` as a real process:
    publishes are acknowledged once the replica has them, and replayed."""
    import httpx

    from tests.support.helpers import free_port
    from tests.support.processes import connect, spawn, stop

    redis_server_or_skip()
    with SentinelGroup(tmp_path) as group:
        port = free_port()
        proc = spawn("serve", "--port", str(port), "--anonymous-publish",
                     "--store", group.url("wait=1&wait_timeout_ms=2000"))  # fmt: skip
        try:
            connect(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").close()
            hub = f"http://127.0.0.1:{port}/.well-known/mercure"
            with httpx.Client(timeout=10) as client:
                sent = [client.post(hub, data={"topic": "t", "data": str(i)}) for i in range(3)]
                assert [r.status_code for r in sent] == [200] * 3
            replica = group.replica.client()
            try:  # the replica has them: WAIT said so before the 200
                assert replica.xlen("ssehub:topic:t") == 3
            finally:
                replica.close()
        finally:
            code, out, err = stop(proc)
    assert code == 0, err
    assert "redis+sentinel://" in out
