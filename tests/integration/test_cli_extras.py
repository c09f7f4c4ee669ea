"""The commands that need an extra say which one, in one line, when it is
missing: a child process whose `httpx` (the `client` extra) cannot be
imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

NO_HTTPX = "raise ImportError(\"No module named 'httpx'\")\n"


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (["listen", "--hub", "http://127.0.0.1:9", "--topic", "t"], None),
        (["publish", "t", "data", "--hub", "http://127.0.0.1:9"], None),
        (["pipe", "t", "--hub", "http://127.0.0.1:9"], "line\n"),
    ],
    ids=["listen", "publish", "pipe"],
)
def test_a_command_without_httpx_names_the_client_extra(
    tmp_path: Path, args: list[str], stdin: str | None
) -> None:
    (tmp_path / "httpx").mkdir()
    (tmp_path / "httpx" / "__init__.py").write_text(NO_HTTPX)
    done = subprocess.run(
        [sys.executable, "-m", "ssehub", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"ssehub {args[0]}: "), lines[0]
    assert "needs httpx: pip install 'ssehub[client]'" in lines[0], lines[0]


def test_serve_on_redis_without_redis_py_names_the_redis_extra(tmp_path: Path) -> None:
    """One line like every other configuration mistake: `ssehub serve:
    REASON`, no `error:` of argparse's in front of it."""
    (tmp_path / "redis").mkdir()
    (tmp_path / "redis" / "__init__.py").write_text(
        "raise ImportError(\"No module named 'redis'\")\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ssehub",
            "serve",
            "--port",
            "0",
            "--store",
            "redis://127.0.0.1:9/0",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ssehub serve: "), lines[0]
    assert not lines[0].startswith("ssehub serve: error:"), lines[0]
    assert "pip install 'ssehub[redis]'" in lines[0], lines[0]
