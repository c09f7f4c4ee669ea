"""The HTTP publish path: what one publish costs beyond storing it — the
publisher's JWT checked once while it is unexpired, no timer per keep-alive
request, answer heads built once — and the SQLite write path without an
index on `time`."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from ssehub.backends import HistoryLimits, Record, SQLiteBackend
from ssehub.hub import Hub
from ssehub.mercure import JWTAuth, Mercure, MercureConfig, Publish, Request, Response
from ssehub.mercure._auth import VerifiedTokens
from ssehub.protocol import Event, encode_event
from ssehub.server import HubServer
from ssehub.server._framing import frame
from tests.support.helpers import read_head
from tests.support.servers import run, serving, until

SECRET = "a-secret-of-at-least-32-bytes-for-hs256!"
FORM = {b"content-type": b"application/x-www-form-urlencoded"}


def token(**claims: Any) -> str:
    body = {"mercure": {"publish": ["*"]}, **claims}
    return jwt.encode(body, SECRET, algorithm="HS256")


def publish_request(bearer: str, body: bytes = b"topic=a&data=x") -> Request:
    headers = {**FORM, b"authorization": f"Bearer {bearer}".encode()}
    return Request("POST", "/.well-known/mercure", b"", headers, body)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens PyJWT verified (the real `jwt.decode` does the work)."""
    seen: list[str] = []
    real = jwt.decode

    def counting(encoded: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(encoded)
        return real(encoded, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return seen


def mercure(leeway: float = 1.0) -> Mercure:
    return Mercure(MercureConfig(auth=JWTAuth(publisher_key=SECRET, leeway=leeway)), Hub())


def test_a_publishers_token_is_verified_once_while_it_is_unexpired(
    decodes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    headers: list[str] = []  # which dialect it is: its header read once too
    real = jwt.get_unverified_header

    def reading(encoded: str) -> Any:
        headers.append(encoded)
        return real(encoded)

    monkeypatch.setattr(jwt, "get_unverified_header", reading)
    hub = mercure()
    bearer = token(exp=int(time.time()) + 3600, n=time.time_ns())
    for _ in range(20):
        assert isinstance(hub.decide(publish_request(bearer)), Publish)
    assert decodes == [bearer]
    assert headers == [bearer]
    # the cached grant still decides the topics
    refused = hub.decide(publish_request(token(mercure={"publish": ["b"]})))
    assert isinstance(refused, Response)
    assert refused.status == 403


def test_a_cached_token_is_refused_once_it_has_expired(decodes: list[str]) -> None:
    hub = mercure(leeway=0)
    bearer = token(exp=int(time.time()) + 2)
    assert isinstance(hub.decide(publish_request(bearer)), Publish)
    time.sleep(max(int(time.time()) + 2 - time.time(), 0) + 0.3)  # past its exp
    late = hub.decide(publish_request(bearer))
    assert isinstance(late, Response)
    assert late.status == 401
    assert b"expired" in late.body
    assert decodes == [bearer, bearer]  # checked again, not taken from the cache


def test_tokens_that_fail_are_never_kept_and_the_cache_is_bounded(decodes: list[str]) -> None:
    hub = mercure()
    good = token()
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    for _ in range(3):
        answer = hub.decide(publish_request(forged))
        assert isinstance(answer, Response)
        assert answer.status == 401
    assert decodes == [forged] * 3
    assert len(hub.tokens) == 0
    cache = VerifiedTokens(size=4)
    auth = JWTAuth(publisher_key=SECRET)
    for i in range(10):
        cache.grant(auth, token(n=i), "publish")
    assert len(cache) == 4


def test_a_cached_grant_ends_at_its_exp_by_the_cache_clock() -> None:
    now = [time.time()]
    cache = VerifiedTokens(clock=lambda: now[0])
    auth = JWTAuth(publisher_key=SECRET, leeway=0)
    bearer = token(exp=int(now[0]) + 30)
    first = cache.grant(auth, bearer, "publish")
    assert cache.grant(auth, bearer, "publish") is first
    now[0] += 31  # past exp: the entry is dropped and the token checked again
    assert cache.grant(auth, bearer, "publish") is not first
    assert len(cache) == 1


def test_a_keep_alive_publisher_costs_no_timer_per_request() -> None:
    async def body() -> None:
        async with serving(anonymous_publish=True) as (_, srv, port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                await _timers_of_ten_publishes(srv, reader, writer)
            finally:
                writer.close()

    run(body)


async def _timers_of_ten_publishes(
    srv: HubServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    ticks = []
    for i in range(10):
        assert await _post(reader, writer, f"topic=t&data={i}".encode()) == 200
        (conn,) = srv.connections
        ticks.append(conn._filed)
    # its deadline filed once (`Deadlines`), moved lazily
    assert ticks[0] is not None
    assert all(t is ticks[0] for t in ticks)


async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, form: bytes) -> int:
    """One publish on a keep-alive connection: its answer's status."""
    writer.write(
        b"POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(form), form)
    )
    status, headers = await read_head(reader)
    await reader.readexactly(int(headers["content-length"]))
    return status


def test_the_idle_deadline_still_runs_from_the_last_answer() -> None:
    async def body() -> None:
        async with serving(anonymous_publish=True, idle_timeout=1.0) as (_, srv, port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(6):  # 2.4 s in all: past the first deadline, alive
                assert await _post(reader, writer, b"topic=t&data=x") == 200
                await asyncio.sleep(0.4)
            assert len(srv.connections) == 1
            # then quiet: closed about a second later, without a word
            assert await asyncio.wait_for(reader.read(), 10) == b""
            await until(lambda: not srv.connections)
            writer.close()

    run(body)


def test_answer_heads_are_built_once_and_framed_exactly() -> None:
    cors = (("Access-Control-Allow-Origin", "*"),)
    one = frame(Response(200, b"urn:uuid:1", headers=cors), True)
    two = frame(Response(200, b"urn:uuid:22", headers=cors), False)
    assert one == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 10\r\nAccess-Control-Allow-Origin: *\r\n\r\nurn:uuid:1"
    )
    assert two == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 11\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n"
        b"urn:uuid:22"
    )
    assert frame(Response(204), True) == (
        b"HTTP/1.1 204 No Content\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 0\r\n\r\n"
    )


def _record(i: int, stamp: float, topic: str = "t") -> Record:
    ev = Event(f"d{i}", id=f"id-{i}")
    return Record((topic,), ev, stamp, encode_event(ev))


def test_sqlite_keeps_no_index_on_time_and_drops_an_old_one(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    db = sqlite3.connect(path)  # a database made by an earlier ssehub, with the index
    db.executescript(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
        " time REAL NOT NULL, topics TEXT NOT NULL, event TEXT NOT NULL, data TEXT NOT NULL,"
        " retry INTEGER, private INTEGER NOT NULL DEFAULT 0);"
        "CREATE INDEX events_time ON events (time);"
    )
    db.close()

    async def body() -> None:
        backend = SQLiteBackend(path)
        await backend.start()
        try:
            await backend.append(_record(1, time.time()))
        finally:
            await backend.aclose()

    run(body)
    names = {row[1] for row in sqlite3.connect(path).execute("PRAGMA index_list(events)")}
    assert "events_time" not in names


def test_sqlite_age_sweep_walks_the_key_and_drops_what_is_old(tmp_path: Path) -> None:
    now = [1_000_000.0]

    async def body() -> None:
        backend = SQLiteBackend(
            tmp_path / "hub.db", limits=HistoryLimits(max_age=60), clock=lambda: now[0]
        )
        await backend.start()
        try:
            for i in range(1500):  # more than one step of 1000
                await backend.append(_record(i, now[0] - 120 + i * 0.01, topic=f"t{i % 3}"))
            for i in range(1500, 1510):
                await backend.append(_record(i, now[0]))
            now[0] += 2  # the sweep runs at most once a second
            await backend.append(_record(9999, now[0]))
        finally:
            await backend.aclose()

    run(body)
    db = sqlite3.connect(tmp_path / "hub.db")
    (left,) = db.execute("SELECT count(*) FROM events").fetchone()
    (links,) = db.execute("SELECT count(*) FROM event_topics").fetchone()
    assert (left, links) == (11, 11)
    # what the sweep reads when nothing is old: one step down the primary key
    plan = db.execute("EXPLAIN QUERY PLAN SELECT time FROM events ORDER BY seq LIMIT 1").fetchall()
    assert "SCAN events" in plan[0][3]
    assert "TEMP B-TREE" not in str(plan)


def test_the_memory_stores_age_sweep_takes_turns_over_many_topics() -> None:
    """A publish pays for at most `_SWEEP` topics' aged events, not for
    every topic at once; in turns, every quiet topic is freed all the same."""
    from ssehub.backends import MemoryBackend
    from ssehub.backends.memory import _SWEEP

    now = [1_000_000.0]

    async def body() -> None:
        backend = MemoryBackend(HistoryLimits(max_age=60), clock=lambda: now[0])
        for i in range(3 * _SWEEP):  # quiet topics, one event each
            await backend.append(_record(i, now[0], topic=f"t{i}"))
        now[0] += 120  # every one of them aged
        await backend.append(_record(10**6, now[0], topic="busy"))
        assert len(backend._topics) == 2 * _SWEEP + 1  # one turn of _SWEEP swept
        for step in range(3):
            now[0] += 1.5
            await backend.append(_record(10**6 + 1 + step, now[0], topic="busy"))
        assert list(backend._topics) == ["busy"]
        history = await backend.history(["t5", "busy"], None)
        assert [r.topics for r in history.records] == [("busy",)] * 4

    run(body)
