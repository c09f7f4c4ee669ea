"""`benchmarks/sqlite_write.py` runs to the end with tiny parameters and
reports what it promises: in-process CPU, statements per batch and VM
instructions per event (`--count`), and through `ssehub serve` every
publish acknowledged with the server's CPU per ack split by thread."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _script(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "benchmarks/sqlite_write.py", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _number(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    assert found is not None, text
    return float(found.group(1).replace(",", ""))


def test_in_process_counts_a_few_statements_per_batch() -> None:
    out = _script("-n", "640", "--repeat", "1", "--count")
    assert _number(r"([\d.]+) µs CPU per stored event", out) > 0
    # a batch of 16: begin, id lookup, last seq, 2 inserts, 2 prune deletes, commit
    assert _number(r"([\d.]+) statements per batch", out) <= 8
    assert _number(r"([\d,]+) SQLite VM instructions per event", out) > 0


def test_serve_reports_every_publish_acknowledged_and_cpu_per_thread() -> None:
    out = _script("--serve", "--tools", "python", "-n", "300", "--repeat", "1")
    assert "300 of 300 acknowledged" in out
    assert _number(r"([\d,]+) acked/s", out) > 0
    assert _number(r"server CPU ([\d.]+) µs/ack", out) > 0
    assert "loop " in out
    assert "threads " in out
