"""Real-socket helpers shared by the server tests."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlencode

import pytest

from ssehub.hub import LIVE_EVENT
from ssehub.protocol import Event, EventStreamParser


def missing(why: str) -> NoReturn:
    """A test needs something this machine lacks (Chromium, Redis): skip on a
    developer machine, fail under CI, where it must be there."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{why} (CI=true: this test must run)")
    pytest.skip(why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode()


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def request(
    port: int,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> Response:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_request_bytes(method, path, headers or {}, body, close=True))
        status, head = await read_head(reader)
        rest = await asyncio.wait_for(reader.read(), 10)
        if "content-length" in head:
            rest = rest[: int(head["content-length"])]
        return Response(status, head, rest)
    finally:
        writer.close()


def _request_bytes(
    method: str, path: str, headers: dict[str, str], body: bytes, *, close: bool
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def form(**fields: str | list[str]) -> bytes:
    return urlencode(fields, doseq=True).encode()


async def publish(port: int, **fields: str | list[str]) -> Response:
    return await request(
        port,
        "POST",
        "/.well-known/mercure",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=form(**fields),
    )


class Stream:
    """A subscriber over a real socket. The hub's live markers are kept
    apart, in `live` (as a page's `onmessage` never sees them)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        status: int,
        headers: dict[str, str],
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.status = status
        self.headers = headers
        self.parser = EventStreamParser()
        self.events: list[Event] = []
        self.live: list[Event] = []
        self.raw = b""

    def _take(self, events: list[Event]) -> None:
        for event in events:
            (self.live if event.event == LIVE_EVENT else self.events).append(event)

    async def next_events(self, n: int, timeout: float = 10) -> list[Event]:
        async def fill() -> None:
            while len(self.events) < n:
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise EOFError(f"stream ended after {len(self.events)} events")
                self.raw += chunk
                self._take(self.parser.feed(chunk))

        await asyncio.wait_for(fill(), timeout)
        taken, self.events = self.events[:n], self.events[n:]
        return taken

    async def read_until_eof(self, timeout: float = 10) -> bytes:
        data = await asyncio.wait_for(self.reader.read(), timeout)
        self.raw += data
        self._take(self.parser.feed(data))
        return data

    def close(self) -> None:
        self.writer.close()


async def subscribe(
    port: int,
    *topics: str,
    last_event_id: str | None = None,
    query_last_event_id: str | None = None,
    rcvbuf: int | None = None,
    headers: dict[str, str] | None = None,
    extra_query: dict[str, str] | None = None,
) -> Stream:
    params: list[tuple[str, str]] = [("topic", t) for t in topics]
    if query_last_event_id is not None:
        params.append(("lastEventID", query_last_event_id))
    params.extend((extra_query or {}).items())
    headers = {"Accept": "text/event-stream", **(headers or {})}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    sock = None
    if rcvbuf is not None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=rcvbuf)
    else:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    path = "/.well-known/mercure?" + urlencode(params)
    writer.write(_request_bytes("GET", path, headers, b"", close=False))
    status, head = await read_head(reader)
    return Stream(reader, writer, status, head)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1, made with openssl, for TLS tests."""
    import subprocess

    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def publish_request(topic: str, data: str, event_id: str, *, close: bool = False) -> bytes:
    """A Mercure publish request (form body), as one client would send it."""
    body = urlencode({"topic": topic, "data": data, "id": event_id}).encode()
    head = (
        "POST /.well-known/mercure HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    return (head + ("Connection: close\r\n" if close else "") + "\r\n").encode() + body


@contextmanager
def tasks_made() -> Iterator[list[Coroutine[Any, Any, Any]]]:
    """The coroutines of every task made on this loop meanwhile (the test's
    own client runs in a thread: it makes none), but plain asyncio's own
    per accepted connection (uvloop accepts with none)."""
    loop = asyncio.get_running_loop()
    made: list[Coroutine[Any, Any, Any]] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        if getattr(coro, "__qualname__", "") != "BaseSelectorEventLoop._accept_connection2":
            made.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    try:
        yield made
    finally:
        loop.set_task_factory(None)
