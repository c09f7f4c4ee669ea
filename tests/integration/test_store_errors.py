"""The store's refusals said plainly (issue 11 item 16): a full SQLite store
is named as such in the publish answer, the log and `/readyz`; the Redis
password never reaches the terminal."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ssehub.backends import SQLiteBackend
from tests.support.helpers import free_port, publish, request
from tests.support.processes import connect, finish, spawn, stop
from tests.support.redis import RedisProcess, redis_server_or_skip
from tests.support.servers import run, serving


def test_a_full_sqlite_store_is_reported_as_full_and_readyz_answers_503(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        backend = SQLiteBackend(tmp_path / "hub.db")
        async with serving(backend=backend, anonymous_publish=True) as (_, _, port):
            assert (await request(port, "GET", "/readyz")).status == 200

            def limit(extra: int) -> None:
                db = backend._db  # the writer's connection: cap the file's size
                assert db is not None
                (pages,) = db.execute("PRAGMA page_count").fetchone()
                db.execute(f"PRAGMA max_page_count = {pages + extra}")

            await backend._run(lambda: limit(2))
            answers = [(await publish(port, topic="t", data="x" * 20_000)) for _ in range(3)]
            refused = [a for a in answers if a.status != 200]
            assert refused, [a.status for a in answers]
            assert {(a.status, a.text) for a in refused} == {
                (503, "the store is full (disk or database)\n")
            }
            assert "the store is full (disk or database)" in caplog.text
            assert "cannot rollback" not in caplog.text
            ready = await request(port, "GET", "/readyz")
            assert (ready.status, ready.text) == (
                503,
                "not ready: the store is full (disk or database)\n",
            )
            await backend._run(lambda: limit(10_000))  # space again
            assert (await request(port, "GET", "/readyz")).status == 200
            assert (await publish(port, topic="t", data="fits")).status == 200

    with caplog.at_level(logging.WARNING):
        run(body)


def test_the_redis_password_is_never_printed(tmp_path: Path) -> None:
    redis_server_or_skip()
    server = RedisProcess(tmp_path / "redis", "--requirepass", "s3cret-pw")
    server.start()
    try:
        # the start line
        store = f"redis://:s3cret-pw@{server.address}/0?prefix=redact"
        port = free_port()
        proc = spawn("serve", "--port", str(port), "--store", store)
        try:
            connect(port, b"").close()
        finally:
            _, out, err = stop(proc)
        assert f"(history: redis://:***@{server.address}/0?prefix=redact)" in out, out
        assert "s3cret-pw" not in out + err
        # the refusal when the store cannot be opened (a wrong password)
        wrong = f"redis://user:wr0ng-pw@{server.address}/0"
        code, out, err = finish(spawn("serve", "--port", "0", "--store", wrong))
        assert code != 0
        assert f"--store redis://user:***@{server.address}/0: cannot open it" in err, err
        assert "wr0ng-pw" not in out + err
    finally:
        server.stop()
