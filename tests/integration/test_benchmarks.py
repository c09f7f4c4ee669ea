"""Every scenario of benchmarks/axes.py runs to the end with tiny parameters
and reports a sane result (the real measurements are for a quiet machine:
docs/benchmarks.md). The Python load generator always; the C tools and
Nchan, optional for users, only when this machine has them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NCHAN_MODULE = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")


def axes(tmp_path: Path, *args: str) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """Run `benchmarks/axes.py --small ARGS` as a user would; its output and rows."""
    out = tmp_path / "rows.json"
    proc = subprocess.run(
        [sys.executable, "benchmarks/axes.py", "--small", "--json", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=80,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, json.loads(out.read_text())["scenarios"]


def python_tools(tmp_path: Path, scenario: str, peers: str = "") -> list[dict[str, Any]]:
    stdout, rows = axes(tmp_path, "--tools", "python", "--peers", peers, "--scenario", scenario)
    assert "load tool: benchmarks/loadgen.py (Python)" in stdout
    assert list(rows) == [scenario]
    for row in rows[scenario]:
        assert f"{scenario} | {row['server']} | {row['line']}" in stdout  # one result line each
    return rows[scenario]


def test_connect_counts_every_subscriber_connected(tmp_path: Path) -> None:
    rows = python_tools(tmp_path, "connect")
    assert [row["server"] for row in rows] == ["ssehub", "ssehub-sqlite"]  # both stores
    for row in rows:
        assert row["established"] == row["subscribers"] == 50
        assert 0 < row["connect_phase_s"] < 30
        assert row["server_cpu_us_per_connect"] >= 0  # (ticks of 10 ms: 0 for 50 is possible)
        assert "us per connect" in row["line"]


def test_rss_reports_memory_per_idle_subscriber_and_kernel_socket_memory(tmp_path: Path) -> None:
    [row] = python_tools(tmp_path, "rss")
    assert row["established"] == 50
    assert row["rss_kb_after"] > row["rss_kb_before"] > 0
    assert 0 < row["rss_kb_per_sub"] < 200
    assert row["sockstat_kb_before"] >= 0
    assert "kernel TCP memory" in row["line"]


def test_latency30_delivers_every_event_to_every_subscriber(tmp_path: Path) -> None:
    [row] = python_tools(tmp_path, "latency30")
    assert row["published"] == 30
    assert row["per_conn_min"] >= 30
    assert row["all_delivered"] is True
    assert 0 < row["lat_ms_p50"] <= row["lat_ms_p99"]


def test_many_topics_delivers_each_acknowledged_event_to_its_topic(tmp_path: Path) -> None:
    rows = python_tools(tmp_path, "many-topics")
    assert [r["topics"] for r in rows] == [20, 50]
    for row in rows:
        assert row["acknowledged"] > 0
        assert row["delivered"] == row["acknowledged"]
        assert row["all_delivered"] is True
        assert row["rtt_ms_p99"] > 0


def test_resume_storm_catches_every_client_up_while_publishes_are_answered(
    tmp_path: Path,
) -> None:
    [row] = python_tools(tmp_path, "resume-storm")
    assert row["clients"] == 50
    assert row["per_conn_min"] >= row["behind"] == 19
    assert row["all_caught_up"] is True
    assert row["publishes_meanwhile"] > 0
    assert row["seconds_until_all_caught_up"] > 0


def test_durable_16_acknowledges_every_publish(tmp_path: Path) -> None:
    rows = python_tools(tmp_path, "durable-16")
    assert [r["server"] for r in rows] == ["ssehub-sqlite", "ssehub"]
    for row in rows:
        assert row["ok"] == row["events"] == 300
        assert row["acked_per_s"] > 0
        assert 0 < row["rtt_ms_p50"] <= row["rtt_ms_p99"]


def test_workers_sqlite_measures_two_workers_against_one(tmp_path: Path) -> None:
    rows = python_tools(tmp_path, "workers-sqlite")
    assert all(r["supported"] for r in rows), rows  # `--workers 2` on SQLite runs
    assert [r["workers"] for r in rows] == [1, 2]
    assert all(r["events_per_s_active"] > 0 for r in rows)
    assert rows[1]["ratio_to_one_worker"] > 0
    # what explains it: each worker's share, the load generator's CPU
    assert [len(r["per_worker"]) for r in rows] == [1, 2]
    if shutil.which("ss"):  # subscribers and the publisher's 4 connections, by worker
        for row in rows:
            shares = row["per_worker"]
            assert sum(w["subscribers"] for w in shares) == row["subscribers"], shares
            assert sum(w["publisher_connections"] for w in shares) == 4, shares
    assert all(w["cpu_s"] > 0 for r in rows for w in r["per_worker"])
    assert all(r["events_per_write"] > 0 and r["load_cpu_s"] >= 0 for r in rows)


def test_asgi_compares_hubapp_with_sse_starlette(tmp_path: Path) -> None:
    rows = python_tools(tmp_path, "asgi", peers="sse-starlette")
    assert [r["server"] for r in rows] == ["ssehub-asgi", "sse-starlette", "asgi-floor"]
    for row in rows[:2]:
        assert row["events_per_s_active"] > 0
        assert row["events_per_server_cpu_s"] > 0  # the figure a busy machine disturbs least
    for row in rows:
        assert row["rss_kb_per_sub"] > 0
    assert rows[0]["ratio_to_sse_starlette"] > 0


def test_c_tools_and_nchan_run_beside_ssehub_when_installed(tmp_path: Path) -> None:
    folder = os.environ.get("SSELOAD_DIR", "")
    if not folder or not (Path(folder) / "sseload").exists():
        pytest.skip("the C tools are optional: set SSELOAD_DIR to their folder")
    if shutil.which("nginx") is None or not NCHAN_MODULE.exists():
        pytest.skip("Nchan is optional: apt-get install nginx libnginx-mod-nchan")
    stdout, rows = axes(tmp_path, "--tools", "c", "--peers", "nchan", "--scenario", "latency30")
    assert "load tool: sseload/ssepub (C)" in stdout
    assert [r["server"] for r in rows["latency30"]] == ["ssehub", "nchan"]
    assert all(r["all_delivered"] for r in rows["latency30"])


def test_an_unknown_scenario_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "benchmarks/axes.py", "--scenario", "fan-in"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "unknown scenario fan-in; known: connect, rss, latency30" in proc.stderr


def test_idle_bytes_names_the_allocation_sites_of_an_idle_subscriber() -> None:
    proc = subprocess.run(
        [sys.executable, "benchmarks/idle_bytes.py", "-c", "50", "--top", "8"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary, _, table = proc.stdout.partition("\n\n")
    assert summary.startswith("50 idle subscribers: ")
    traced = int(summary.split(": ")[1].split(" bytes")[0].replace(",", ""))
    assert 0 < traced < 100_000
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert 0 < len(rows) <= 8
    assert any("ssehub/" in row for row in rows)  # the hub's own objects are among them


def test_idle_bytes_asgi_names_the_sites_of_an_idle_hubapp_stream_under_uvicorn() -> None:
    proc = subprocess.run(
        [sys.executable, "benchmarks/idle_bytes.py", "--asgi", "-c", "50", "--top", "40"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary, _, table = proc.stdout.partition("\n\n")
    assert summary.startswith("50 idle subscribers (HubApp under uvicorn): ")
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert any("ssehub/asgi/" in row for row in rows)  # HubApp's own objects
    assert any("uvicorn/" in row for row in rows)  # and the server's, in the same process
