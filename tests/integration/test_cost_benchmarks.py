"""The cost scripts (docs/benchmarks.md, "Where the time goes") run to the
end with tiny parameters on the Python load generator and report what they
promise: server CPU per connect, per subscriber write, per publish, and
with `--profile` Python function calls per unit."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def script(*args: str, timeout: float = 120) -> str:
    proc = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def number(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    assert found is not None, text
    return float(found.group(1).replace(",", ""))


def test_connect_cost_reports_cpu_and_python_calls_per_connect() -> None:
    out = script("benchmarks/connect_cost.py", "-c", "40", "--tools", "python", "--profile")
    assert "40 of 40 connected (benchmarks/loadgen.py (Python))" in out
    assert number(r"= ([\d.,]+) µs per connect", out) > 0
    # the connect path as it stands: well under 300 calls (181 before this round)
    assert 50 < number(r"calls per connect \(cProfile\): ([\d.]+)", out) < 300
    assert "(open_stream)" in out  # the profile names the path's functions


def test_connect_cost_takes_the_subscribe_query() -> None:
    out = script(
        "benchmarks/connect_cost.py", "-c", "20", "--tools", "python", "--query", "match=t1"
    )
    assert "20 of 20 connected" in out
    assert number(r"= ([\d.,]+) µs per connect", out) > 0


def test_fanout_pass_reports_one_python_call_per_subscriber_write() -> None:
    out = script("benchmarks/fanout_pass.py", "-c", "40", "-e", "3", "--tools", "python",
                 "--profile")  # fmt: skip
    assert "40 subscribers, 3 passes" in out
    assert number(r"= ([\d.]+) µs CPU per subscriber write", out) > 0
    assert number(r"per subscriber write \(cProfile\): ([\d.]+)", out) < 1.5


def test_publish_calls_are_the_same_in_python_calls_at_10_and_100_topics() -> None:
    out = script("benchmarks/publish_calls.py", "--topics", "10,100", "--duration", "2",
                 "--profile")  # fmt: skip
    few = number(r"10 topics: .*?, ([\d.]+) Python function calls per publish", out)
    many = number(r"100 topics: .*?, ([\d.]+) Python function calls per publish", out)
    assert few > 0
    # independent of the topic count: one call per topic would add 90 (of ~200);
    # the fixed costs of a run (its 8 connects) spread over the publishes differ a little
    assert abs(many - few) / few < 0.15


def test_workers_turns_reports_turns_and_a_peers_delay_for_each_process() -> None:
    out = script("benchmarks/workers_turns.py", "--publishers", "1", "--each", "5")
    for i in (0, 1):
        assert number(rf"process {i}: ([\d.]+) loop turns per publish", out) > 0
    assert out.count("a peer's row reached the feed in p50") == 2, out


def test_connect_instructions_counts_a_connect_under_callgrind() -> None:
    sseload = Path(os.environ.get("SSELOAD_DIR", "/tmp/sseload")) / "sseload"
    if shutil.which("valgrind") is None or not sseload.exists():
        pytest.skip("needs valgrind and sseload (SSELOAD_DIR)")
    out = script("benchmarks/connect_instructions.py", "-c", "10", timeout=300)
    assert number(r"([\d,]+) instructions per connect", out) > 1000
