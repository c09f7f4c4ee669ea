"""Per-topic policies end to end: a real `ssehub serve --config FILE`
process with `[[topics]]` tables, on SQLite and on Redis, over real sockets
(history trimmed per table, newest-N on open, a subscriber limit), and a bad
table's one line."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.asgi import Served, open_stream
from tests.support.helpers import publish, subscribe
from tests.support.processes import finish, serving_config, spawn
from tests.support.redis import REDIS_URL, drop_keys, redis_or_skip

SHORT = "https://example.com/short/{id}"
POLICIES = f"""
[[topics]]
match = "{SHORT}"
history = 2

[[topics]]
match = "https://example.com/short/{{id}}"  # never used: the first match wins
history = 100

[[topics]]
match = "https://example.com/state"
newest = 1

[[topics]]
match = "https://example.com/busy"
max_subscribers = 1

[[topics]]
match = "https://example.com/:name"
match_type = "urlpattern"
history_age = 1
"""


@pytest.fixture(params=["sqlite", "redis"])
def hub(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[int]:
    """A hub process whose config file has the policies above; its port."""
    prefix = f"ssehub-test:{uuid.uuid4().hex}:"
    if request.param == "redis":
        redis_or_skip()  # fails instead under CI=true
        store = f"{REDIS_URL}?prefix={prefix}"
    else:
        store = f"sqlite:{tmp_path / 'hub.db'}"
    try:
        settings = f'store = "{store}"\nanonymous-publish = true\nlog-level = "warning"\n{POLICIES}'
        with serving_config(tmp_path, settings) as port:
            yield port
    finally:
        if request.param == "redis":
            drop_keys(prefix)


async def published(port: int, topic: str, *data: str) -> list[str]:
    ids = []
    for item in data:
        response = await publish(port, topic=topic, data=item)
        assert response.status == 200, response.text
        ids.append(response.text.strip())
    return ids


def test_history_is_trimmed_per_table(hub: int) -> None:
    async def body() -> None:
        short, plain = "https://example.com/short/1", "plain"
        for i in range(4):
            await published(hub, short, f"short {i}")
            await published(hub, plain, f"plain {i}")
        stream = await subscribe(hub, short, plain, query_last_event_id="earliest")
        try:
            assert stream.status == 200
            got = [e.data for e in await stream.next_events(6)]
            assert got == ["plain 0", "plain 1", "short 2", "plain 2", "short 3", "plain 3"]
            await published(hub, short, "live")
            assert [e.data for e in await stream.next_events(1)] == ["live"]  # nothing else
        finally:
            stream.close()

    asyncio.run(body())


def test_history_ages_per_table(hub: int) -> None:
    async def body() -> None:
        await published(hub, "https://example.com/brief", "soon gone")
        await published(hub, "plain", "kept")
        await asyncio.sleep(2.5)  # past the table's 1 s (not a timing assertion: an age to pass)
        stream = await subscribe(
            hub, "https://example.com/brief", "plain", query_last_event_id="earliest"
        )
        try:
            assert [e.data for e in await stream.next_events(1)] == ["kept"]
            await published(hub, "https://example.com/brief", "live")
            assert [e.data for e in await stream.next_events(1)] == ["live"]
        finally:
            stream.close()

    asyncio.run(body())


def test_a_subscriber_asking_no_replay_gets_the_tables_newest(hub: int) -> None:
    async def body() -> None:
        state = "https://example.com/state"
        await published(hub, state, "old", "older", "current")
        stream = await subscribe(hub, state)
        try:
            assert [e.data for e in await stream.next_events(1)] == ["current"]
            await published(hub, state, "next")
            assert [e.data for e in await stream.next_events(1)] == ["next"]
            assert len(stream.live) == 1  # the replay's end was marked
        finally:
            stream.close()
        other = await subscribe(hub, "plain")  # no table: no replay
        try:
            await published(hub, "plain", "first live")
            assert [e.data for e in await other.next_events(1)] == ["first live"]
            assert other.live == []
        finally:
            other.close()

    asyncio.run(body())


def test_a_subscriber_past_the_tables_maximum_gets_a_503_with_retry_after(hub: int) -> None:
    async def body() -> None:
        busy = "https://example.com/busy"
        first = await subscribe(hub, busy)
        try:
            assert first.status == 200
            second = await subscribe(hub, busy)
            try:
                assert second.status == 503
                assert second.headers["retry-after"] == "10"
                text = (await second.read_until_eof()).decode()
                assert text == f"topic '{busy}' has its maximum of 1 subscribers\n"
            finally:
                second.close()
            elsewhere = await subscribe(hub, "https://example.com/state/other")
            assert elsewhere.status == 200  # another topic
            elsewhere.close()
        finally:
            first.close()
        for _ in range(100):  # the hub notices the first one left
            again = await subscribe(hub, busy)
            if again.status == 200:
                again.close()
                return
            again.close()
            await asyncio.sleep(0.1)
        raise AssertionError("the topic stayed full after its subscriber left")

    asyncio.run(body())


def test_a_bad_table_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(f'store = "memory:"\n{POLICIES}\n[[topics]]\nmatch = "x"\nnewest = -3\n')
    code, out, err = finish(spawn("serve", "--config", str(config)))
    assert code == 2
    assert err == f"ssehub serve: {config}: [[topics]] #6: newest must be an int >= 1, not -3\n"
    assert out == ""


def test_the_workers_check_the_tables_once_too(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('[[topics]]\nmatch = "x"\nhistory_age = -1\n')
    code, _, err = finish(spawn("serve", "--config", str(config), "--workers", "2"))
    assert code == 2
    assert (
        err == f"ssehub serve: {config}: [[topics]] #1: history_age must be > 0 seconds, not -1\n"
    )


def test_the_asgi_hub_app_refuses_past_the_maximum_too() -> None:
    served = Served("uvicorn")
    try:
        path = "/hub/.well-known/mercure?topic=one-viewer"
        first = open_stream(served.port, path)  # open (its first bytes are sent after)
        try:
            second = httpx.get(served.url + path, timeout=10)
            assert second.status_code == 503
            assert second.headers["retry-after"] == "10"
            assert second.text == "topic 'one-viewer' has its maximum of 1 subscribers\n"
        finally:
            first.close()
    finally:
        served.stop()
