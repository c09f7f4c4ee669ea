"""Presence across hubs on one Redis (the real one on 127.0.0.1): every
hub's subscribers are counted and listed by every hub, a topic's first and
last subscriber are told once across all of them, a hub killed with
`kill -9` vanishes within its TTL and one stopped cleanly at once — with
real `ssehub serve` processes (and hub processes of tests/support/watch_hub.py
for `on_watch`)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jwt
import pytest

from ssehub import Hub
from ssehub.backends import PresenceSync, RedisBackend
from ssehub.hub import HubConfig, SubscriberLimitError, TopicPolicy
from tests.support.helpers import free_port, request, subscribe
from tests.support.processes import connect, spawn, stop
from tests.support.redis import REDIS_URL, drop_keys, redis_or_skip
from tests.support.servers import run

SECRET = "!ChangeThisMercureHubJWTSecretKey!"
WATCH = "/.well-known/mercure/subscriptions{/topic}{/subscriber}"
DETAIL = "https://mercure.rocks/authorization-detail"


def _bearer() -> dict[str, str]:
    token = jwt.encode({"mercure": {"subscribe": [WATCH]}}, SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def _prefix() -> Iterator[str]:
    redis_or_skip()
    prefix = f"ssehub-test:{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        drop_keys(prefix)


def _serve(prefix: str, interval: float, *more: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    proc = spawn("serve", "--port", str(port), "--jwt-key", SECRET, "--anonymous",
                 "--subscriptions", "--presence-interval", str(interval),
                 "--store", f"{REDIS_URL}?prefix={prefix}", *more)  # fmt: skip
    connect(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").close()
    return proc, port


async def _listed(port: int, topic: str | None = None) -> list[dict[str, object]]:
    path = "/.well-known/mercure/subscriptions" + ("" if topic is None else f"/{topic}")
    answer = await request(port, "GET", path, headers=_bearer())
    assert answer.status == 200, answer.text
    subscriptions: list[dict[str, object]] = json.loads(answer.body)["subscriptions"]
    return subscriptions


async def _eventually(check: object, what: str, timeout: float = 30.0) -> float:
    """Poll the coroutine function `check` until it returns True; the
    seconds it took."""
    started = time.monotonic()
    while True:
        if await check():  # type: ignore[operator]
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"never {what} (waited {timeout} s)")
        await asyncio.sleep(0.05)


def test_the_api_on_one_hub_lists_the_subscribers_of_the_others_and_forgets_a_killed_one() -> None:
    with _prefix() as prefix:
        (a, port_a), (b, port_b) = _serve(prefix, 0.5), _serve(prefix, 0.5)
        try:

            async def body() -> None:
                on_a = await subscribe(port_a, "https://example.com/books/1")
                assert on_a.status == 200

                async def b_lists_it() -> bool:
                    listed = await _listed(port_b, "https%3A%2F%2Fexample.com%2Fbooks%2F1")
                    return [s["topic"] for s in listed] == ["https://example.com/books/1"]

                await _eventually(b_lists_it, "listed A's subscriber on B")
                on_b = await subscribe(port_b, "https://example.com/books/1")
                assert on_b.status == 200

                async def both_on_both() -> bool:
                    return len(await _listed(port_a)) == 2 and len(await _listed(port_b)) == 2

                await _eventually(both_on_both, "listed both subscribers on both hubs")
                a.kill()  # kill -9: A cannot take its entry back
                a.wait(10)
                killed = time.monotonic()

                async def only_b_left() -> bool:
                    return len(await _listed(port_b)) == 1

                await _eventually(only_b_left, "dropped the killed hub's subscriber")
                gone = time.monotonic() - killed
                print(f"killed hub gone from the listing after {gone:.2f} s (TTL 1.5 s)")
                on_a.close()
                on_b.close()

            run(body)
        finally:
            for proc in (a, b):
                stop(proc)


def test_the_1_0_api_on_one_hub_lists_the_1_0_subscriptions_of_the_others() -> None:
    """The same across hubs in Mercure 1.0: a `match=` subscription on A is
    in B's 1.0 collection and under its own URL, in the order both hubs
    list, and gone from B once A is killed."""
    resource = "https://hub.example/.well-known/mercure"
    claims = {
        "iss": "https://issuer.example",
        "aud": resource,
        "exp": int(time.time()) + 3600,
        "authorization_details": [
            {"type": DETAIL, "actions": ["subscribe"], "topics": [{"match": "*"}]}
        ],
    }
    token = jwt.encode(claims, SECRET, algorithm="HS256", headers={"typ": "at+jwt"})
    v1 = ["--jwt-issuer", "https://issuer.example", "--resource", resource]
    with _prefix() as prefix:
        (a, port_a), (b, port_b) = _serve(prefix, 0.5, *v1), _serve(prefix, 0.5, *v1)
        try:

            async def body() -> None:
                on_a = await subscribe(port_a, extra_query={"match": "books"})
                on_b = await subscribe(port_b, extra_query={"match": "books"})
                assert (on_a.status, on_b.status) == (200, 200)
                path = "/.well-known/mercure/subscriptions"

                async def listed(port: int) -> list[dict[str, Any]]:
                    answer = await request(
                        port, "GET", path, headers={"Authorization": f"Bearer {token}"}
                    )
                    assert answer.status == 200, answer.text
                    docs: list[dict[str, Any]] = json.loads(answer.body)["subscriptions"]
                    return docs

                async def both_on_both() -> bool:
                    return len(await listed(port_a)) == 2 and len(await listed(port_b)) == 2

                await _eventually(both_on_both, "listed both 1.0 subscriptions on both hubs")
                on_a_docs, on_b_docs = await listed(port_a), await listed(port_b)
                assert on_a_docs == on_b_docs  # one order for all hubs
                assert {d["match"] for d in on_b_docs} == {"books"}
                one = on_b_docs[0]["id"]
                answer = await request(
                    port_b, "GET", one, headers={"Authorization": f"Bearer {token}"}
                )
                assert (answer.status, json.loads(answer.body)["id"]) == (200, one)
                a.kill()
                a.wait(10)

                async def only_b_left() -> bool:
                    return len(await listed(port_b)) == 1

                await _eventually(only_b_left, "dropped the killed hub's 1.0 subscription")
                on_a.close()
                on_b.close()

            run(body)
        finally:
            for proc in (a, b):
                stop(proc)


def test_a_hub_stopped_cleanly_takes_its_subscribers_with_it_at_once() -> None:
    with _prefix() as prefix:
        # a TTL of 3 minutes: what leaves within the test did not expire
        (a, port_a), (b, port_b) = _serve(prefix, 60), _serve(prefix, 60)
        try:

            async def body() -> None:
                on_a = await subscribe(port_a, "t")
                assert on_a.status == 200

                async def b_lists_it() -> bool:
                    return len(await _listed(port_b)) == 1

                await _eventually(b_lists_it, "listed A's subscriber on B")
                code, _, err = stop(a)
                assert code == 0, err
                await _eventually(
                    lambda: _empty(port_b), "dropped the stopped hub's subscriber", 20
                )
                on_a.close()

            async def _empty(port: int) -> bool:
                return await _listed(port) == []

            run(body)
        finally:
            for proc in (a, b):
                stop(proc)


class _Watcher:
    """A watch_hub process and the `on_watch` calls it printed."""

    def __init__(self, store: str, interval: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.watch_hub", store, str(interval)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        assert first.startswith("port "), first + (
            self.proc.stderr.read() if self.proc.stderr else ""
        )
        self.port = int(first.split()[1])
        self.told: list[tuple[str, bool]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            _, topic, watching = line.split()
            self.told.append((topic, watching == "1"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def test_on_watch_is_told_once_across_three_hub_processes() -> None:
    with _prefix() as prefix:
        store = f"{REDIS_URL}?prefix={prefix}"
        hubs = [_Watcher(store, 0.5) for _ in range(3)]
        a, b, c = hubs

        def everything() -> list[tuple[str, bool]]:
            return [call for hub in hubs for call in hub.told]

        async def settled(want: list[tuple[str, bool]]) -> None:
            async def done() -> bool:
                return sorted(everything()) == sorted(want)

            await _eventually(done, f"told exactly {want}: told {everything()}")
            await asyncio.sleep(1.5)  # a second telling would come by now
            assert sorted(everything()) == sorted(want)

        try:

            async def body() -> None:
                on_a = await subscribe(a.port, "t")
                await settled([("t", True)])
                assert a.told == [("t", True)]  # by the hub whose subscriber came first
                on_b = await subscribe(b.port, "t")
                await asyncio.sleep(0.5)
                on_a.close()
                await asyncio.sleep(1.5)
                assert everything() == [("t", True)]  # B still watches: nobody is told
                on_b.close()
                await settled([("t", True), ("t", False)])
                assert b.told == [("t", False)]  # by the hub whose subscriber left last
                # the last subscriber on a hub killed with kill -9: a survivor tells
                on_c = await subscribe(c.port, "u")
                await settled([("t", True), ("t", False), ("u", True)])
                c.stop()
                await settled([("t", True), ("t", False), ("u", True), ("u", False)])
                assert ("u", False) in a.told + b.told
                for stream in (on_a, on_b, on_c):
                    stream.close()

            run(body)
        finally:
            for hub in hubs:
                hub.stop()


def test_subscribers_counts_every_hub_templates_included() -> None:
    with _prefix() as prefix:

        async def main() -> None:
            config = HubConfig(presence_interval=0.2)
            async with (
                Hub(config, backend=RedisBackend(REDIS_URL, prefix=prefix)) as a,
                Hub(config, backend=RedisBackend(REDIS_URL, prefix=prefix)) as b,
            ):
                async with (
                    a.subscribe("https://example.com/books/1"),
                    a.subscribe(["https://example.com/books/{id}", "https://example.com/books/1"]),
                    b.subscribe("*"),
                    b.subscribe("https://example.com/authors/1"),
                ):
                    deadline = time.monotonic() + 30
                    while b.subscribers("https://example.com/books/1") != 3:
                        assert time.monotonic() < deadline, b.subscribers(
                            "https://example.com/books/1"
                        )
                        await asyncio.sleep(0.05)
                    while a.subscribers("https://example.com/books/1") != 3:
                        assert time.monotonic() < deadline
                        await asyncio.sleep(0.05)
                    assert a.subscribers("https://example.com/authors/1") == 2  # `*` and its own
                    assert b.subscribers("https://example.com/books/2") == 2  # `*` and A's template
                deadline = time.monotonic() + 30
                while a.subscribers("https://example.com/books/1") != 0:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)

        asyncio.run(main())


class _Writes:
    """The presence writes a `RedisBackend` makes (the real ones, counted)."""

    def __init__(self, backend: RedisBackend) -> None:
        self.calls: list[tuple[int, bool]] = []  # (fields written, full)
        sync = backend.presence_sync

        async def counted(hub: str, ttl: float, **fields: Any) -> PresenceSync:
            written = sum(len(fields[k]) for k in ("groups", "named", "documents"))
            self.calls.append((written, bool(fields.get("full"))))
            return await sync(hub, ttl, **fields)

        backend.presence_sync = counted  # type: ignore[method-assign]


def test_a_burst_of_subscriptions_is_a_few_writes_and_a_refresh_writes_no_field() -> None:
    with _prefix() as prefix:

        async def main() -> None:
            backend = RedisBackend(REDIS_URL, prefix=prefix)
            writes = _Writes(backend)
            config = HubConfig(presence_interval=1.0)  # 3 s TTL: the burst blocks the loop
            async with (
                Hub(config, backend=backend) as a,
                Hub(config, backend=RedisBackend(REDIS_URL, prefix=prefix)) as b,
            ):
                n = 5000
                subs = [a.subscribe(f"topic/{i}") for i in range(n)]
                started = time.monotonic()
                await asyncio.gather(*(sub.__aenter__() for sub in subs))
                deadline = time.monotonic() + 60
                while b.subscribers(f"topic/{n - 1}") != 1:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.01)
                seen = time.monotonic() - started
                burst = len(writes.calls)
                print(f"{n} subscriptions: {burst} presence writes, seen on B after {seen:.2f} s")
                assert burst < 50  # batched: not one write per subscription
                assert sum(w for w, _ in writes.calls) >= 2 * n  # each named topic and group
                await asyncio.sleep(2.5)  # refreshes only (every second)
                refreshes = writes.calls[burst:]
                assert len(refreshes) >= 2
                assert all(w == 0 for w, _ in refreshes)  # O(1): no field rewritten
                for sub in subs:
                    sub.close()

        asyncio.run(main())


def test_a_hub_taken_for_dead_writes_its_entry_again() -> None:
    import redis

    with _prefix() as prefix:

        async def main() -> None:
            config = HubConfig(presence_interval=0.2)
            async with (
                Hub(config, backend=RedisBackend(REDIS_URL, prefix=prefix)) as a,
                Hub(config, backend=RedisBackend(REDIS_URL, prefix=prefix)) as b,
                a.subscribe("t"),
            ):
                deadline = time.monotonic() + 30
                while b.subscribers("t") != 1:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.01)
                # what another hub does to one whose deadline passed (cut off
                # from Redis longer than its TTL): its entry removed
                client = redis.Redis.from_url(REDIS_URL)
                try:
                    members: list[bytes] = client.zrange(f"{prefix}presence", 0, -1)  # type: ignore[assignment]
                    hub_ids = [m.decode() for m in members]
                    (taken,) = [h for h in hub_ids if client.hget(named(h), "t") is not None]
                    client.zrem(f"{prefix}presence", taken)
                    client.delete(*(f"{prefix}presence:{taken}:{k}" for k in ("named", "groups")))
                    client.incr(f"{prefix}presence:version")
                    # A notices at its next refresh and writes its entry again, whole
                    while client.zscore(f"{prefix}presence", taken) is None:
                        assert time.monotonic() < deadline
                        await asyncio.sleep(0.05)
                    assert client.hget(named(taken), "t") == b"1"
                finally:
                    client.close()
                await asyncio.sleep(1.5)  # B reads the others again
                assert b.subscribers("t") == 1

        def named(hub_id: str) -> str:
            return f"{prefix}presence:{hub_id}:named"

        asyncio.run(main())


def test_a_hub_late_past_its_deadline_that_nobody_removed_goes_on_as_it_was() -> None:
    with _prefix() as prefix:
        told: list[tuple[str, bool]] = []

        async def main() -> None:
            config = HubConfig(presence_interval=1.0)  # deadline 3 s after each refresh
            backend = RedisBackend(REDIS_URL, prefix=prefix)
            async with (
                Hub(config, backend=backend, on_watch=lambda t, w: told.append((t, w))) as a,
                a.subscribe("t"),
            ):
                deadline = time.monotonic() + 30
                while told != [("t", True)]:
                    assert time.monotonic() < deadline, told
                    await asyncio.sleep(0.01)
                time.sleep(4)  # noqa: ASYNC251 - the loop blocked: 1-2 s past its deadline
                await asyncio.sleep(2.5)  # refreshes again
                assert told == [("t", True)]  # not taken for dead and back: no False, True

        asyncio.run(main())


def test_a_hub_that_stops_with_subscribers_tells_their_topics_unwatched_once() -> None:
    with _prefix() as prefix:
        told: list[tuple[str, bool]] = []

        async def main() -> None:
            config = HubConfig(presence_interval=60)  # nothing expires in this test
            async with Hub(config, backend=RedisBackend(REDIS_URL, prefix=prefix)) as b:
                a = Hub(
                    config,
                    backend=RedisBackend(REDIS_URL, prefix=prefix),
                    on_watch=lambda t, w: told.append((t, w)),
                )
                await a.start()
                sub = a.subscribe(["t", "u"])
                await sub.__aenter__()
                deadline = time.monotonic() + 30
                while b.subscribers("u") != 1:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.01)
                await a.aclose()  # the subscription still open
                await asyncio.sleep(0)  # the callbacks run soon after
                assert sorted(told) == [("t", False), ("t", True), ("u", False), ("u", True)]
                while b.subscribers("u") != 0:  # the entry is gone: B sees it at its next read
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.01)

        asyncio.run(main())


def test_a_topics_max_subscribers_counts_the_subscribers_of_every_hub() -> None:
    # the limit counted this hub's subscribers only: with two hubs on one
    # Redis store, a topic limited to 1 took one subscriber on each
    topic = "https://example.com/busy"
    with _prefix() as prefix:

        async def main() -> None:
            config = HubConfig(
                presence_interval=0.2, topics=(TopicPolicy(topic, max_subscribers=1),)
            )
            async with (
                Hub(config, backend=RedisBackend(REDIS_URL, prefix=prefix)) as a,
                Hub(config, backend=RedisBackend(REDIS_URL, prefix=prefix)) as b,
            ):
                async with a.subscribe(topic):
                    deadline = time.monotonic() + 30
                    while b.subscribers(topic) != 1:  # B has read A's presence
                        assert time.monotonic() < deadline, b.subscribers(topic)
                        await asyncio.sleep(0.05)
                    with pytest.raises(SubscriberLimitError):
                        async with b.subscribe(topic):
                            pass
                deadline = time.monotonic() + 30
                while b.subscribers(topic) != 0:  # A's left: B's topic has room again
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
                async with b.subscribe(topic):
                    pass

        asyncio.run(main())
