"""ASGI apps under real servers (uvicorn, hypercorn, granian), each in a process of its own."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from ssehub.client import EventSource
from ssehub.protocol import Event
from tests.support.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]


APP = "tests.support.asgi_app:app"


GRACE = 2


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


SERVERS = ["uvicorn", "hypercorn"] + (["granian"] if _has("granian") else [])


def command(server: str, app: str, port: int, *extra: str, grace: int = GRACE) -> list[str]:
    py = sys.executable
    if server == "uvicorn":
        return [py, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
                "--timeout-graceful-shutdown", str(grace), "--log-level", "warning", *extra]  # fmt: skip
    if server == "hypercorn":
        return [py, "-m", "hypercorn", app, "--bind", f"127.0.0.1:{port}",
                "--graceful-timeout", str(grace), "--log-level", "warning", *extra]  # fmt: skip
    return [py, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning", *extra, app]  # fmt: skip


class Served:
    """An ASGI app under a real server, in a process of its own (and a
    process group of its own: `signal(..., group=True)` is a terminal's Ctrl-C)."""

    def __init__(
        self,
        server: str,
        *extra: str,
        app: str = APP,
        scheme: str = "http",
        grace: int = GRACE,
        env: dict[str, str] | None = None,
    ) -> None:
        self.server = server
        self.port = free_port()
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            command(server, app, self.port, *extra, grace=grace),
            cwd=ROOT,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    _, err = self.proc.communicate()
                    raise RuntimeError(f"{server} did not start: {err}") from None
                time.sleep(0.05)

    def stats(self) -> dict[str, int]:
        return dict(httpx.get(f"{self.url}/stats", timeout=10, verify=False).json())

    def signal(self, sig: int, *, group: bool = False) -> None:
        """Send `sig` to the server's process, or to its whole process group
        (the server and its workers, as a terminal's Ctrl-C does)."""
        if group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)

    def wait(self, timeout: float = GRACE + 20) -> tuple[str, str]:
        """The server's stdout and stderr once it has exited by itself."""
        return self.proc.communicate(timeout=timeout)

    def stop(self) -> tuple[str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.communicate(timeout=GRACE + 20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.communicate()


def open_stream(port: int, path: str, until: bytes = b":\n\n") -> socket.socket:
    """A raw HTTP/1.1 request for an event stream, read up to `until` (the
    first comment every ssehub stream sends); the socket is left open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    data = b""
    while until not in data.partition(b"\r\n\r\n")[2]:
        chunk = sock.recv(65536)
        assert chunk, f"closed before {until!r}: {data!r}"
        data += chunk
    return sock


def read_to_end(sock: socket.socket, timeout: float) -> tuple[bytes, float | None]:
    """Read until the chunked body ends (or the peer closes) or `timeout`
    passes; the bytes and how long it took (None: it did not end)."""
    started = time.monotonic()
    data = b""
    while (left := started + timeout - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except OSError:
            return data, time.monotonic() - started
        data += chunk
        if not chunk or data.endswith(b"\r\n0\r\n\r\n"):
            return data, time.monotonic() - started
    return data, None


def wait_until(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return bool(predicate())  # type: ignore[operator]


def take(url: str, n: int, **kwargs: object) -> list[Event]:
    events = []
    with EventSource(url, retry=0.05, **kwargs) as source:  # type: ignore[arg-type]
        for event in source:
            events.append(event)
            if len(events) == n:
                break
    return events


class Peer:
    """The ASGI server's side of one request, in the test's loop: records
    what is sent (`sent`); `gone.set()` disconnects the client, `stalled`
    makes every later send wait forever (a peer whose buffer is full)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.gone = asyncio.Event()
        self.stalled = False

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Any) -> None:
        if self.stalled:
            await asyncio.Event().wait()  # never completes
        self.sent.append(dict(message))

    def bodies(self) -> list[Any]:
        """The body of each `http.response.body` message, as sent."""
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]

    @property
    def body(self) -> bytes:
        """The whole body sent."""
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")
