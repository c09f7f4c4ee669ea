"""The `ssehub` command as a real process, reaped whatever happens.

A test runner started in the background (`pytest &`, a CI job) has SIGINT
ignored, and an ignored signal stays ignored across `exec`: a child started
plainly would not stop on Ctrl-C, and a test that sends it SIGINT would wait
forever and leave it running. So every child here starts with SIGINT as a
terminal gives it (`sigint="default"`, the default; `"ignore"`: as a
background job gets it), and `stop` / `finish` kill what does not end in
time before they return or fail.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import httpx

from tests.support.helpers import free_port

SIGINT = Literal["default", "ignore"]

# Run `python -m ssehub ARGS` with SIGINT set first (no preexec_fn: it is not
# safe in a test process that runs threads, like a BackgroundHub's).
_LAUNCH = (
    "import runpy, signal, sys\n"
    "signal.signal(signal.SIGINT, {handler})\n"
    "runpy.run_module('ssehub', run_name='__main__', alter_sys=True)\n"
)
_HANDLERS = {"default": "signal.default_int_handler", "ignore": "signal.SIG_IGN"}


def command(*args: str, sigint: SIGINT = "default") -> list[str]:
    """The command line of `ssehub ARGS`, with SIGINT set as `sigint` says."""
    return [sys.executable, "-c", _LAUNCH.format(handler=_HANDLERS[sigint]), *args]


def spawn(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    sigint: SIGINT = "default",
    stdin: int | None = None,
) -> subprocess.Popen[str]:
    """`ssehub ARGS` in a fresh working folder (`serve` keeps its history
    there). Reap it with `stop` or `finish` in a `finally`."""
    return subprocess.Popen(
        command(*args, sigint=sigint),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        cwd=cwd or tempfile.mkdtemp(prefix="ssehub-cli-"),
    )


def connect(port: int, request: bytes) -> socket.socket:
    deadline = time.monotonic() + 10
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    sock.sendall(request)
    return sock


def post_form(port: int, body: bytes, *, headers: bytes = b"") -> socket.socket:
    """A raw `POST /.well-known/mercure` of a form body (connecting as soon
    as the hub listens); read the answer from the returned socket."""
    return connect(
        port,
        b"POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + headers
        + b"Content-Type: application/x-www-form-urlencoded\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body,
    )


def stop(proc: subprocess.Popen[str], timeout: float = 20) -> tuple[int, str, str]:
    """SIGTERM, then SIGKILL after `timeout` seconds: the exit code (negative:
    the signal that ended it) and the output."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


def finish(
    proc: subprocess.Popen[str], timeout: float = 20, input: str | None = None
) -> tuple[int, str, str]:
    """Wait for it to end by itself; one still running after `timeout`
    seconds is killed and the test fails."""
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(
            f"ssehub (pid {proc.pid}) still ran after {timeout} s (killed); stderr: {err}"
        ) from None
    return proc.returncode, out, err


@contextlib.contextmanager
def serving_config(folder: Path, settings: str) -> Iterator[int]:
    """`ssehub serve --config FILE`, FILE in `folder` holding a free
    `port = N` and then `settings` (TOML), once it answers `/healthz`; its
    port. Stopped after, and it must have exited 0."""
    port = free_port()
    config = folder / "hub.toml"
    config.write_text(f"port = {port}\n{settings}")
    proc = spawn("serve", "--config", str(config))
    try:
        connect(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").close()
        yield port
    finally:
        code, _, err = stop(proc)
    assert code == 0, err


def run_cli(
    *args: str, stdin: str | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """`ssehub ARGS` to its end (killed after `timeout` seconds)."""
    return subprocess.run(
        command(*args),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


SECRET = "!ChangeThisMercureHubJWTSecretKey!"


def start_hub(port: int, store: str) -> subprocess.Popen[str]:
    """`ssehub serve --anonymous-publish --store STORE` on `port`, once it
    answers `/healthz`."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssehub", "serve", "--port", str(port), "--anonymous-publish",
         "--store", store],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    deadline = time.monotonic() + 15
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except httpx.TransportError:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "hub did not start"
            time.sleep(0.05)
