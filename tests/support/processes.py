"""The `ssehub` command as a real process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time


def spawn(
    *args: str, env: dict[str, str] | None = None, cwd: str | None = None
) -> subprocess.Popen[str]:
    """`ssehub ARGS` in a fresh working folder (`serve` keeps its history there)."""
    return subprocess.Popen(
        [sys.executable, "-m", "ssehub", *args],
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


def stop(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    return proc.returncode, out, err


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=20)
    return proc.returncode, out, err


def run_cli(
    *args: str, stdin: str | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ssehub", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


SECRET = "!ChangeThisMercureHubJWTSecretKey!"
