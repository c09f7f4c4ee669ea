"""Two processes opening one new SQLite file at the same moment (what
`serve --workers N`, or two `serve --reuse-port` on one store, do at start):
both open it. SQLite answers the loser of the switch to WAL "database is
locked" at once, without its busy timeout; the backend waits its turn."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

_OPEN = """
import asyncio, sys, time
from ssehub.backends import SQLiteBackend

async def main() -> None:
    backend = SQLiteBackend(sys.argv[1])
    await backend.start()
    await backend.aclose()

while time.time() < float(sys.argv[2]):
    pass  # both start within microseconds of each other
asyncio.run(main())
"""


def test_two_processes_opening_a_new_file_at_once_both_open_it(tmp_path: Path) -> None:
    failures = []
    for round_ in range(10):
        path = tmp_path / f"hub{round_}.db"
        at = time.time() + 0.4  # after both interpreters have started
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _OPEN, str(path), str(at)],
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=30)
            if proc.returncode != 0:
                failures.append(err.strip().splitlines()[-1])
    assert failures == []
