"""ASGI integration under real servers — uvicorn, hypercorn and granian —
each in a process of its own, with real clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.asgi import (
    GRACE,
    SERVERS,
    Served,
    open_stream,
    read_to_end,
    take,
    wait_until,
)


@pytest.fixture(params=SERVERS)
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    s = Served(request.param)
    yield s
    s.stop()


def open_raw(port: int, path: str) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    data = b""
    while b"data:" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before the first event: {data!r}"
        data += chunk
    return sock, data


def test_events_strings_bytes_and_dicts_encode_exactly(served: Served) -> None:
    events = take(f"{served.url}/count?n=3", 3)
    assert [(e.event, e.id, e.data) for e in events] == [
        ("count", str(i), json.dumps({"i": i}, separators=(",", ":"))) for i in range(3)
    ]
    tricky = take(f"{served.url}/tricky", 3)
    assert [e.data for e in tricky] == [
        "line\u2028separator, next\u0085line",  # U+2028 and NEL are data, not line ends
        "carriage\nreturn and crlf\nend",  # CR and CRLF arrive as LF, as the spec says
        "bytes \u2603",
    ]
    raw = httpx.get(f"{served.url}/count?n=1", timeout=10)
    assert raw.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert raw.headers["cache-control"] == "no-cache"
    assert raw.headers["x-accel-buffering"] == "no"
    assert "keep-alive" not in raw.headers.get("connection", "").lower()
    assert raw.text.startswith(":\n\n")  # a comment first, so nothing holds the head back


def test_producer_is_cancelled_within_a_second_of_the_client_leaving(served: Served) -> None:
    before = served.stats()
    sock, _ = open_raw(served.port, "/forever")
    assert wait_until(lambda: served.stats()["started"] == before["started"] + 1, 5)
    sock.close()
    assert wait_until(lambda: served.stats()["finished"] == before["finished"] + 1, 1.0)
    assert served.stats()["open"] == 0


def test_hub_app_subscribe_publish_and_resume(served: Served) -> None:
    sub_url = f"{served.url}/hub/.well-known/mercure?topic=news"
    ids = [
        httpx.post(f"{served.url}/publish", params={"topic": "news", "data": f"n{i}"}).json()["id"]
        for i in range(3)
    ]
    replayed = take(sub_url, 3, last_event_id="earliest")
    assert [e.id for e in replayed] == ids
    resumed = take(sub_url, 1, last_event_id=ids[0])
    assert [e.data for e in resumed] == ["n1"]
    with httpx.stream("GET", sub_url, headers={"Last-Event-ID": "gone"}, timeout=10) as r:
        assert r.headers["ssehub-gap"] == "1"
        assert r.headers["last-event-id"] == "earliest"  # all retained history follows
    bad = httpx.get(f"{served.url}/hub/.well-known/mercure", timeout=10)
    assert (bad.status_code, bad.text) == (400, "missing 'topic' query parameter\n")


def test_drain_ends_every_stream(served: Served) -> None:
    socks = [open_raw(served.port, "/forever")[0] for _ in range(5)]
    assert wait_until(lambda: served.stats()["open"] == 5, 5)
    assert httpx.post(f"{served.url}/drain", timeout=10).json() == {"left": 0}
    for sock in socks:
        data = b""
        while not data.endswith(b"0\r\n\r\n"):  # the end of the chunked body
            chunk = sock.recv(65536)
            if not chunk:
                break  # or the server closed the connection
            data += chunk
        sock.close()
    stats = served.stats()
    assert stats["started"] == stats["finished"]


def test_no_task_leaks_after_10000_open_close_cycles() -> None:
    served = Served("uvicorn")
    try:
        baseline = served.stats()["tasks"]

        async def cycles(n: int, concurrency: int) -> None:
            async def one() -> None:
                reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
                writer.write(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
                data = b""
                while b"data:" not in data:
                    chunk = await reader.read(4096)
                    assert chunk
                    data += chunk
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()

            sem = asyncio.Semaphore(concurrency)

            async def limited() -> None:
                async with sem:
                    await one()

            await asyncio.gather(*(limited() for _ in range(n)))

        asyncio.run(cycles(10_000, 64))
        assert wait_until(lambda: served.stats()["open"] == 0, 10)
        stats = served.stats()
        assert stats["started"] == stats["finished"] == 10_000
        # the server's own connection tasks wind down; none of ours remain
        assert wait_until(lambda: served.stats()["tasks"] == baseline, 5), served.stats()
    finally:
        served.stop()


@pytest.mark.timeout(180)  # opening 1000 streams is slow on a loaded machine
@pytest.mark.parametrize("server", ["uvicorn", "hypercorn"])
def test_shutdown_with_1000_open_streams_ends_within_grace(server: str) -> None:
    served = Served(server)
    socks = []
    try:
        for _ in range(1000):
            socks.append(open_raw(served.port, "/forever")[0])
        assert wait_until(lambda: served.stats()["open"] == 1000, 10)
        started = time.monotonic()
        out, err = served.stop()
        elapsed = time.monotonic() - started
    finally:
        for sock in socks:
            sock.close()
        served.stop()  # reaped whatever happened above (a no-op once it exited)
    assert served.proc.returncode == 0, err
    assert elapsed < GRACE + 6  # the grace, plus room for a loaded machine
    assert "lifespan done: started=1000 finished=1000" in out


# How each server learns of the shutdown (docs/asgi.md, "Shutting down"):
# uvicorn and hypercorn --workers 0 get the signal in the app's process;
# granian's main process passes it on to its worker as SIGTERM; hypercorn's
# worker processes ignore SIGINT and hear of a signal to the main process only
# through a multiprocessing event, so they see a Ctrl-C (a signal to the
# process group) but not a `kill -INT <main pid>`.
SHUTDOWNS = [
    pytest.param("uvicorn", (), signal.SIGINT, False, id="uvicorn-SIGINT"),
    pytest.param("uvicorn", (), signal.SIGTERM, False, id="uvicorn-SIGTERM"),
    pytest.param("hypercorn", (), signal.SIGINT, True, id="hypercorn-ctrl-c"),
    pytest.param("hypercorn", ("--workers", "0"), signal.SIGINT, False, id="hypercorn-w0-SIGINT"),
    pytest.param("hypercorn", ("--workers", "0"), signal.SIGTERM, False, id="hypercorn-w0-SIGTERM"),
] + [
    pytest.param("granian", (), sig, False, id=f"granian-{sig.name}")
    for sig in (signal.SIGINT, signal.SIGTERM)
    if "granian" in SERVERS
]


@pytest.mark.parametrize(("server", "extra", "sig", "group"), SHUTDOWNS)
def test_a_signal_ends_open_streams_at_once_with_a_retry_hint_and_no_error(
    server: str, extra: tuple[str, ...], sig: signal.Signals, group: bool
) -> None:
    served = Served(server, *extra, grace=30)  # a grace the streams must not wait out
    socks = []
    try:
        paths = ["/forever", "/endless", "/hub/.well-known/mercure?topic=shutdown"]
        socks = [open_stream(served.port, path) for path in paths]
        assert wait_until(lambda: served.stats()["started"] == 2, 5)
        served.signal(sig, group=group)
        ends = [read_to_end(sock, 10) for sock in socks]
        out, err = served.wait()  # a second SIGINT would make the servers force their exit
    finally:
        for sock in socks:
            sock.close()
        served.stop()
    for path, (data, took) in zip(paths, ends, strict=True):
        assert took is not None, (path, data[-200:])
        assert took < 3, (path, took)
        assert data.endswith(b"retry: 1000\n\n\r\n0\r\n\r\n"), (path, data[-200:])
    for word in ("ERROR", "Traceback", "CancelledError", "Exception"):
        assert word not in err, err
    assert "lifespan done: started=2 finished=2" in out, (out, err)
    # uvicorn re-raises a SIGTERM once it has shut down cleanly (its own
    # choice, with or without ssehub): the exit status then says SIGTERM
    expected = {0, -signal.SIGTERM} if (server, sig) == ("uvicorn", signal.SIGTERM) else {0}
    assert served.proc.returncode in expected, err


def test_hub_app_streams_end_at_once_when_its_own_lifespan_runs() -> None:
    """`FastAPI(lifespan=hub_app.lifespan)` alone (the Mercure example): a
    SIGINT ends its streams at once with a retry hint, not at the grace."""
    served = Served(
        "uvicorn", app="examples.fastapi_mercure:app", grace=30, env={"SSEHUB_ANONYMOUS": "1"}
    )
    sock = None
    try:
        sock = open_stream(served.port, "/.well-known/mercure?topic=shutdown")
        served.signal(signal.SIGINT)
        data, took = read_to_end(sock, 10)
        _, err = served.wait()
    finally:
        if sock is not None:
            sock.close()
        served.stop()
    assert took is not None, data[-200:]
    assert took < 3, took
    assert b"retry: 1000\n\n" in data, data[-200:]
    for word in ("ERROR", "Traceback", "CancelledError"):
        assert word not in err, err
