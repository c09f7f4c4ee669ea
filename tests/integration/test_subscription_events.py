"""Subscription events of quickly leaving clients (issue 11 item 15): for
each subscription `"active": true` then `false`, each once per topic
selector, or neither when it ended before it was announced (coalesced);
nothing outlives the clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict

import jwt

from ssehub.mercure import JWTAuth
from tests.support.helpers import request
from tests.support.servers import run, serving, until

SECRET = "!ChangeThisMercureHubJWTSecretKey!"
WATCH = "/.well-known/mercure/subscriptions{/topic}{/subscriber}"


def _bearer(subscribe: list[str]) -> dict[str, str]:
    token = jwt.encode({"mercure": {"subscribe": subscribe}}, SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


async def _metric(port: int, name: str) -> float:
    for line in (await request(port, "GET", "/metrics")).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not in /metrics")


async def _visit(port: int, i: int) -> None:
    """Subscribe to two topics and leave: at once, or once the head came."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /.well-known/mercure?topic=a&topic=b{i} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        if i % 2:
            await writer.drain()
        else:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    writer.transport.abort()


def test_quickly_leaving_clients_get_true_then_false_once_per_topic() -> None:
    async def body() -> None:
        auth = JWTAuth(publisher_key=SECRET, subscriber_key=SECRET)
        async with serving(auth=auth, anonymous=True, subscriptions=True) as (hub, _, port):
            baseline = len(asyncio.all_tasks())
            for start in range(0, 2000, 100):
                await asyncio.gather(*(_visit(port, i) for i in range(start, start + 100)))
            await until(lambda: hub.statistics().subscribers == 0, 20)
            pending = "ssehub_subscription_events_pending"
            deadline = asyncio.get_running_loop().time() + 30
            while await _metric(port, pending) > 0:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.1)
            history = await hub.backend.history(None, None)
            seen: dict[tuple[str, str], list[bool]] = defaultdict(list)
            for record in history.records:
                doc = json.loads(record.event.data)
                assert record.private
                assert record.topics == (doc["id"],)
                seen[doc["subscriber"], doc["topic"]].append(doc["active"])
            subscribers = {s for s, _ in seen}
            for subscriber in subscribers:
                for topic in ("a", next(t for s, t in seen if s == subscriber and t != "a")):
                    assert seen[subscriber, topic] == [True, False], (subscriber, topic)
            coalesced = await _metric(port, "ssehub_subscription_events_coalesced_total")
            assert await _metric(port, "ssehub_subscription_events_dropped_total") == 0
            assert subscribers, "no subscription was announced at all"
            assert len(subscribers) + coalesced <= 2000
            # nobody is listed any more, and no task outlived its client
            listing = await request(
                port, "GET", "/.well-known/mercure/subscriptions", headers=_bearer([WATCH])
            )
            assert listing.status == 200, listing.text
            assert json.loads(listing.body)["subscriptions"] == []
            for _ in range(100):  # (polled here: `until` would add a task of its own)
                if len(asyncio.all_tasks()) <= baseline:
                    break
                await asyncio.sleep(0.1)
            assert len(asyncio.all_tasks()) <= baseline, asyncio.all_tasks()

    run(body)
