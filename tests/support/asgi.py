"""ASGI apps under real servers (uvicorn, hypercorn, granian), each in a process of its own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

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


def command(server: str, app: str, port: int, *extra: str) -> list[str]:
    py = sys.executable
    if server == "uvicorn":
        return [py, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
                "--timeout-graceful-shutdown", str(GRACE), "--log-level", "warning", *extra]  # fmt: skip
    if server == "hypercorn":
        return [py, "-m", "hypercorn", app, "--bind", f"127.0.0.1:{port}",
                "--graceful-timeout", str(GRACE), "--log-level", "warning", *extra]  # fmt: skip
    return [py, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning", *extra, app]  # fmt: skip


class Served:
    """An ASGI app under a real server, in a process of its own."""

    def __init__(self, server: str, *extra: str, app: str = APP, scheme: str = "http") -> None:
        self.server = server
        self.port = free_port()
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            command(server, app, self.port, *extra),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
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

    def stop(self) -> tuple[str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.communicate(timeout=GRACE + 20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.communicate()


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
