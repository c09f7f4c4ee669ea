"""Where uvloop or SO_REUSEPORT is missing (Windows), `ssehub serve` and
`BackgroundHub` run on plain asyncio and `--workers` refuses in one line.

The platform is simulated in real child processes: a `uvloop` on the path
that fails to import (and leaves a mark that someone tried), and a
`sitecustomize` that removes `socket.SO_REUSEPORT`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import free_port
from tests.support.processes import connect, post_form, spawn, stop

ROOT = Path(__file__).resolve().parents[2]

NO_UVLOOP = """\
import os, pathlib
pathlib.Path(os.environ["SSEHUB_TEST_UVLOOP_MARK"]).touch()
raise ImportError("no uvloop on this platform (a test's stand-in)")
"""

NO_REUSEPORT = """\
import socket
del socket.SO_REUSEPORT
"""


def _without_uvloop(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment for a child process on a "platform without uvloop"
    with SSEHUB_NO_UVLOOP=1, and the file that appears if it imports uvloop."""
    (tmp_path / "path" / "uvloop").mkdir(parents=True)
    (tmp_path / "path" / "uvloop" / "__init__.py").write_text(NO_UVLOOP)
    mark = tmp_path / "uvloop-was-imported"
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path / "path"),
        "SSEHUB_NO_UVLOOP": "1",
        "SSEHUB_TEST_UVLOOP_MARK": str(mark),
    }
    return env, mark


@pytest.mark.timeout(180)
def test_server_and_background_tests_pass_on_plain_asyncio(tmp_path: Path) -> None:
    env, mark = _without_uvloop(tmp_path)
    suite = ["tests/integration/test_server.py", "tests/integration/test_background.py"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *suite],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
    assert not mark.exists(), "uvloop was imported although SSEHUB_NO_UVLOOP=1"


def test_ssehub_serve_runs_on_plain_asyncio(tmp_path: Path) -> None:
    env, mark = _without_uvloop(tmp_path)
    port = free_port()
    proc = spawn(
        "serve", "--port", str(port), "--store", "memory:", "--anonymous-publish",
        "--grace", "1", env=env,
    )  # fmt: skip
    try:
        sub = connect(port, b"GET /.well-known/mercure?topic=t HTTP/1.1\r\nHost: x\r\n\r\n")
        received = sub.recv(65536)
        assert received.startswith(b"HTTP/1.1 200 OK")
        body = b"topic=t&data=on-plain-asyncio"
        pub = post_form(port, body)
        assert pub.recv(65536).startswith(b"HTTP/1.1 200 OK")
        pub.close()
        while b"data: on-plain-asyncio\n" not in received:
            chunk = sub.recv(65536)
            assert chunk, "the stream ended before the event came"
            received += chunk
        sub.close()
    finally:
        code, _, err = stop(proc)
    assert code == 0, err
    assert not mark.exists(), "uvloop was imported although SSEHUB_NO_UVLOOP=1"


def test_workers_refused_in_one_line_without_so_reuseport(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(NO_REUSEPORT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssehub", "serve", "--workers", "2", "--port", str(free_port()),
         "--store", "redis://127.0.0.1:6379/15"],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: any workers it started die with it
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    assert "workers on port" not in out  # refused before starting any
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "--workers > 1 needs SO_REUSEPORT" in lines[0]
