"""The two Mercure front ends as real processes: `ssehub serve`, and
`examples/fastapi_mercure.py` under uvicorn, configured by the same
`SSEHUB_*` variables."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FRONTENDS = ("serve", "asgi")


class Frontend:
    """A hub process on a free port; `stop()` ends it."""

    def __init__(self, kind: str, env: dict[str, str], port: int) -> None:
        self.kind = kind
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.hub = f"{self.url}/.well-known/mercure"
        py = sys.executable
        if kind == "serve":
            command = [py, "-m", "ssehub", "serve", "--port", str(port), "--store", "memory:"]
            cwd = tempfile.mkdtemp(prefix="ssehub-frontend-")
        else:
            command = [py, "-m", "uvicorn", "examples.fastapi_mercure:app", "--port", str(port),
                       "--log-level", "warning"]  # fmt: skip
            cwd = str(ROOT)
        self.proc = subprocess.Popen(
            command,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.proc.kill()
                    _, err = self.proc.communicate()
                    raise RuntimeError(f"{kind} did not start: {err}") from None
                time.sleep(0.05)

    def stop(self) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return self.proc.returncode, out, err


def start_failure(kind: str, env: dict[str, str], port: int) -> tuple[int, str]:
    """Start a front end that must refuse to start: its exit code and stderr."""
    try:
        frontend = Frontend(kind, env, port)
    except RuntimeError as error:
        return 1, str(error)
    code, _, err = frontend.stop()
    return code, err
