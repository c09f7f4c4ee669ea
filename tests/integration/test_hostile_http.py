"""The standalone server's request reader against hostile clients (issue 11:
chunked bodies, slowloris, half-closed requests, forged log lines, and the
other per-connection bounds), over real sockets against a real HubServer."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from ssehub.backends import SQLiteBackend
from ssehub.hub import Hub
from ssehub.mercure import MercureConfig
from ssehub.server import HubServer, ServerConfig
from tests.support.helpers import form, read_head, request, self_signed_certificate, subscribe
from tests.support.servers import run, serving, until

LOOPS = ("asyncio", "uvloop")  # where the two loops' transports differ (pause, EOF)
FORM = "Content-Type: application/x-www-form-urlencoded\r\n"


def run_on(loop: str, body: Callable[[], Awaitable[None]]) -> None:
    """Run the test's body (and the server) on plain asyncio or on uvloop."""
    factory = asyncio.new_event_loop
    if loop == "uvloop":
        factory = pytest.importorskip("uvloop").new_event_loop  # none on Windows
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(body())  # type: ignore[arg-type]


async def read_all(reader: asyncio.StreamReader, timeout: float = 10) -> bytes:
    """Everything the server sends until it closes."""
    return await asyncio.wait_for(reader.read(), timeout)


async def trickle(
    port: int, first: bytes, drip: bytes, *, every: float = 0.2, tls: ssl.SSLContext | None = None
) -> bytes:
    """Send `first`, then `drip` every `every` seconds until the server
    answers and closes (at most 10 s); what it sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls)
    writer.write(first)
    answer = b""
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), every)
            except TimeoutError:
                writer.write(drip)
                continue
            if not chunk:
                break
            answer += chunk
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()
    return answer


# -- 3. chunked bodies in linear time -------------------------------------------------


def test_a_body_of_40000_one_byte_chunks_is_answered_at_once_and_the_hub_stays_responsive() -> None:
    async def body() -> None:
        async with serving(anonymous_publish=True) as (hub, _, port):
            payload = form(topic="t", data="x" * 39_987)
            assert len(payload) == 40_000
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = time.monotonic()
            writer.write(
                b"POST /.well-known/mercure HTTP/1.1\r\nHost: h\r\n"
                + FORM.encode()
                + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                + b"".join(b"1\r\n" + payload[i : i + 1] + b"\r\n" for i in range(len(payload)))
            )
            # the hub answers others while the 234 KiB of chunks are parsed
            health = await request(port, "GET", "/healthz")
            assert (health.status, health.text) == (200, "ok\n")
            assert time.monotonic() - started < 3
            writer.write(b"0\r\n\r\n")
            status, _ = await read_head(reader)
            event_id = (await read_all(reader)).decode()
            writer.close()
            assert status == 200
            assert time.monotonic() - started < 3  # 31 s of CPU before
            history = await hub.backend.history(["t"], None)
            assert [(r.id, r.event.data) for r in history.records] == [(event_id, "x" * 39_987)]

    run(body)


# -- 4. slowloris: deadlines that trickling does not extend ---------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_a_trickled_head_is_cut_at_its_deadline(loop: str) -> None:
    async def body() -> None:
        async with serving(head_timeout=1.0) as (_, srv, port):
            started = time.monotonic()
            answer = await trickle(port, b"GET /healthz HTTP/1.1\r\nHost: h\r\n", b"X")
            took = time.monotonic() - started
            assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
            assert answer.endswith(b"\r\n\r\nrequest head not received within 1 s\n")
            assert 0.9 < took < 5
            await until(lambda: not srv.connections)

    run_on(loop, body)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_trickled_body_is_cut_at_its_deadline(loop: str) -> None:
    async def body() -> None:
        async with serving(anonymous_publish=True, head_timeout=5.0, body_timeout=1.0) as (
            hub,
            _,
            port,
        ):
            head = (
                b"POST /.well-known/mercure HTTP/1.1\r\nHost: h\r\n"
                + FORM.encode()
                + b"Content-Length: 1000\r\n\r\ntopic=t&data="
            )
            started = time.monotonic()
            answer = await trickle(port, head, b"x")
            assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
            assert answer.endswith(b"request body not received within 1 s\n")
            assert 0.9 < time.monotonic() - started < 5
            history = await hub.backend.history(None, None)
            assert history.records == []

    run_on(loop, body)


def test_a_trickled_head_over_tls_is_cut_at_its_deadline(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)

    async def body() -> None:
        async with serving(head_timeout=1.0, certfile=cert, keyfile=key) as (_, srv, port):
            context = ssl.create_default_context(cafile=str(cert))
            started = time.monotonic()
            answer = await trickle(port, b"GET /healthz HTTP/1.1\r\n", b"X", tls=context)
            assert 0.9 < time.monotonic() - started < 5
            assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
            assert answer.endswith(b"\r\n\r\nrequest head not received within 1 s\n")
            await until(lambda: not srv.connections)

    run(body)


def test_a_hub_full_of_slowloris_connections_accepts_subscribers_again_once_they_are_cut() -> None:
    async def body() -> None:
        async with serving(max_connections=5, head_timeout=1.0) as (hub, srv, port):
            attackers = [
                asyncio.create_task(trickle(port, b"GET /", b"a", every=0.1)) for _ in range(5)
            ]
            await until(lambda: len(srv.connections) == 5)
            full = await request(port, "GET", "/healthz")
            assert (full.status, full.text) == (503, "the hub is at its connection limit (5)\n")
            answers = await asyncio.wait_for(asyncio.gather(*attackers), 5)
            assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers)
            await until(lambda: not srv.connections)
            stream = await subscribe(port, "t")
            assert stream.status == 200
            await until(lambda: hub.statistics().subscribers == 1)
            stream.close()

    run(body)


def test_a_connection_that_never_starts_its_request_is_closed_without_a_word() -> None:
    async def body() -> None:
        async with serving(head_timeout=0.5) as (_, _, port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = time.monotonic()
            assert await read_all(reader, 5) == b""  # no 408 to a preconnected socket
            assert time.monotonic() - started < 5  # idle_timeout is 60 s
            writer.close()

    run(body)


def test_a_keep_alive_connection_waits_idle_timeout_between_requests() -> None:
    async def body() -> None:
        async with serving(idle_timeout=1.5, head_timeout=0.5) as (_, _, port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(2):
                await asyncio.sleep(0.3)
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
                status, head = await read_head(reader)
                assert (status, await reader.readexactly(int(head["content-length"]))) == (
                    200,
                    b"ok\n",
                )
            await asyncio.sleep(0.8)  # longer than head_timeout, shorter than idle
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
            assert (await read_head(reader))[0] == 200
            writer.close()

    run(body)


# -- 7. a half-closed request is answered --------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_a_half_closed_publish_is_answered_and_stored(loop: str, tmp_path: Path) -> None:
    async def body() -> None:
        # on SQLite a publish waits for the store's thread: the half-close comes first
        async with Hub(backend=SQLiteBackend(tmp_path / "hub.db")) as hub:
            srv = HubServer(
                hub, ServerConfig(port=0, mercure=MercureConfig(anonymous_publish=True))
            )
            await srv.start()
            try:
                await half_closed_publishes(hub, srv)
            finally:
                await srv.aclose()

    run_on(loop, body)


async def half_closed_publishes(hub: Hub, srv: HubServer) -> None:
    """Two publishes, then shutdown(SHUT_WR): both answered, both stored."""
    port = srv.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    publishes = b"".join(
        b"POST /.well-known/mercure HTTP/1.1\r\nHost: h\r\n"
        + FORM.encode()
        + f"Content-Length: {len(form(topic='t', data=d))}\r\n\r\n".encode()
        + form(topic="t", data=d)
        for d in ("one", "two")
    )
    writer.write(publishes)
    writer.write_eof()  # shutdown(SHUT_WR): "that is all I have to say"
    answer = await read_all(reader)  # then the hub closes
    writer.close()
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 2  # no answer at all before
    history = await hub.backend.history(["t"], None)
    assert [r.event.data for r in history.records] == ["one", "two"]
    for record in history.records:
        assert answer.count(record.id.encode()) == 1
    await until(lambda: not srv.connections)


# -- 16. no forged log lines ------------------------------------------------------------


def test_client_text_in_log_lines_is_escaped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ssehub.server")

    async def body() -> None:
        async with serving() as (_, _, port):
            forged = "%0D%0A2026-12-01%20INFO%20ssehub.server%20forged"
            await request(port, "GET", f"/nope{forged}")  # 404: "refused ... path"
            stream = await subscribe(port, "a\r\nb\\", query_last_event_id="x\ny\u2028z")
            assert stream.status == 200
            stream.close()
            await asyncio.sleep(0.2)

    run(body)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 3  # refused, stream open, stream closed
    for line in lines:
        assert not any(c in line for c in "\r\n\u2028"), line
    refused, opened, closed = lines
    assert refused.endswith(
        "GET /nope\\r\\n2026-12-01 INFO ssehub.server forged status=404 "
        "reason=not found: /nope\\r\\n2026-12-01 INFO ssehub.server forged"
    )
    assert "topics=a\\r\\nb\\\\ last_event_id=x\\ny\\u2028z " in opened
    assert "topics=a\\r\\nb\\\\ reason=closed" in closed


# -- other per-connection bounds ------------------------------------------------------


@pytest.mark.parametrize(
    ("unfinished", "reason"),
    [
        (b"GET /healthz HTTP/1.1\r\nX-Endless: ", b"request head larger than 16384 bytes"),
        (
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nX-Endless: ",
            b"request trailers or chunk framing larger than 16384 bytes",
        ),
        (
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;ext=",
            b"request trailers or chunk framing larger than 16384 bytes",
        ),
    ],
)
def test_a_header_that_never_ends_is_bounded_while_it_comes(
    unfinished: bytes, reason: bytes
) -> None:
    async def body() -> None:
        async with serving() as (_, _, port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(unfinished)
            answer = b""
            try:
                for _ in range(256):  # 1 MiB, as 4 KiB writes
                    writer.write(b"a" * 4096)
                    await writer.drain()
                    await asyncio.sleep(0)
            except ConnectionError:
                pass
            answer = await read_all(reader, 5)
            writer.close()
            assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
            assert answer.endswith(b"\r\n\r\n" + reason + b"\n")

    run(body)


def test_header_fields_are_counted() -> None:
    async def body() -> None:
        async with serving(max_header_fields=20) as (_, _, port):
            fields = {f"X-{i}": "1" for i in range(18)}  # with Host and Connection: 20
            assert (await request(port, "GET", "/healthz", headers=fields)).status == 200
            fields["X-18"] = "1"
            refused = await request(port, "GET", "/healthz", headers=fields)
            assert (refused.status, refused.text) == (431, "more than 20 header fields\n")

    run(body)


def test_trailers_are_not_merged_into_the_head() -> None:
    async def body() -> None:
        async with serving(anonymous_publish=True) as (hub, _, port):
            payload = form(topic="t", data="x")
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"POST /.well-known/mercure HTTP/1.1\r\nHost: h\r\n"
                + FORM.encode()
                + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                + f"{len(payload):x}\r\n".encode()
                + payload
                + b"\r\n0\r\nContent-Type: application/json\r\n\r\n"
            )
            status, _ = await read_head(reader)
            await read_all(reader)
            writer.close()
            assert status == 200
            assert len((await hub.backend.history(["t"], None)).records) == 1

    run(body)


def test_expect_100_continue() -> None:
    async def body() -> None:
        async with serving(anonymous_publish=True, max_body_bytes=1000) as (hub, _, port):
            payload = form(topic="t", data="x")
            head = (
                "POST /.well-known/mercure HTTP/1.1\r\nHost: h\r\n"
                + FORM
                + "Expect: 100-continue\r\nConnection: close\r\n"
            )
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"{head}Content-Length: {len(payload)}\r\n\r\n".encode())
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            writer.write(payload)
            status, _ = await read_head(reader)
            assert status == 200
            writer.close()
            # too large: refused before the client sends its body
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"{head}Content-Length: 2000\r\n\r\n".encode())
            answer = await read_all(reader, 2)
            writer.close()
            assert answer.startswith(b"HTTP/1.1 413 ")
            assert answer.endswith(b"request body is larger than 1000 bytes\n")
            assert len((await hub.backend.history(["t"], None)).records) == 1

    run(body)


@pytest.mark.parametrize("loop", LOOPS)
def test_pipelined_requests_are_all_answered_in_order_with_a_bounded_queue(loop: str) -> None:
    async def body() -> None:
        async with serving() as (_, srv, port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            paths = [f"/healthz?{i}" for i in range(3000)]
            writer.write(b"".join(f"GET {p} HTTP/1.1\r\nHost: h\r\n\r\n".encode() for p in paths))
            writer.write(b"GET /nope HTTP/1.1\r\n\r\nNOT HTTP\r\n\r\n")
            queued = 0

            async def watch() -> None:
                nonlocal queued
                while True:
                    for conn in srv.connections:
                        queued = max(queued, len(conn._requests))
                    await asyncio.sleep(0)

            watcher = asyncio.create_task(watch())
            answer = await read_all(reader)
            watcher.cancel()
            writer.close()
            assert answer.count(b"HTTP/1.1 200 OK\r\n") == 3000
            # the refusal of the garbage comes last, after every earlier answer
            assert answer.rindex(b"HTTP/1.1 200 ") < answer.index(b"HTTP/1.1 404 ")
            assert answer.index(b"HTTP/1.1 404 ") < answer.index(b"HTTP/1.1 400 ")
            assert answer.endswith(b"malformed HTTP request\n")
            # 8 waiting, plus at most those of the one 4 KiB slice being parsed
            assert queued <= 8 + 4096 // len(b"GET /healthz?1000 HTTP/1.1\r\nHost: h\r\n\r\n")

    run_on(loop, body)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_client_that_does_not_read_its_answers_stops_being_read(
    loop: str, tmp_path: Path
) -> None:
    (tmp_path / "big.txt").write_bytes(b"b" * 65536)

    async def body() -> None:
        async with serving(static_dir=tmp_path) as (_, srv, port):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))
            sock.setblocking(False)
            reader, writer = await asyncio.open_connection(sock=sock)
            writer.write(b"GET /big.txt HTTP/1.1\r\nHost: h\r\n\r\n" * 300)  # 19.7 MB to answer
            buffered = 0
            for _ in range(100):
                await asyncio.sleep(0.01)
                for conn in srv.connections:
                    if conn.transport is not None:
                        buffered = max(buffered, conn.transport.get_write_buffer_size())
            assert buffered < 1024 * 1024  # not 300 answers less what the kernel holds
            received = 0
            while received < 300 * 65536:
                chunk = await asyncio.wait_for(reader.read(1 << 20), 10)
                assert chunk
                received += chunk.count(b"b")
            assert received == 300 * 65536
            writer.close()

    run_on(loop, body)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("head_timeout", 0),
        ("body_timeout", -1.0),
        ("idle_timeout", float("inf")),
        ("head_timeout", True),
        ("max_header_fields", 0),
    ],
)
def test_limits_are_validated(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"ServerConfig.{field} must be"):
        ServerConfig(**{field: value})  # type: ignore[arg-type]
