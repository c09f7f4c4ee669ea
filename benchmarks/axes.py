"""One scenario per performance axis of issue 15, beside the peers where they
apply (Nchan when nginx with its nchan module is installed, sse-starlette),
each server measured in the same run, server on core 0 and load on core 1.

    python benchmarks/axes.py                   # the quick set (make bench)
    python benchmarks/axes.py --all             # every scenario (~6 minutes)
    python benchmarks/axes.py --scenario many-topics,resume-storm
    python benchmarks/axes.py --scenario connect --profile   # py-spy SVG of the server
    python benchmarks/axes.py --all --small     # tiny parameters: proves each runs

Scenarios (see docs/benchmarks.md for what each measures):
  connect       10,000 subscribers: seconds of the load generator's connect phase and
                the server's CPU per connect (memory store, default SQLite store, Nchan)
  rss           10,000 idle subscribers: server RSS and kernel socket memory per subscriber
  latency30     10,000 subscribers x 30 events/s: p50/p99 latency, every event delivered
  many-topics   1,000 and 10,000 subscribers, a topic each, 8 publishers on random topics
  resume-storm  10,000 clients resume 999 events behind (SQLite), publishes meanwhile
  durable-16    SQLite, commit before ack, 16 concurrent publishers
  workers-sqlite  --workers 2 on the default SQLite store against one worker
  asgi          HubApp under uvicorn against sse-starlette: delivered events/s, KB per stream
                (and the floor: uvicorn's own KB per idle stream)

Load: the C tools `sseload`/`ssepub` when found (`SSELOAD_DIR`, see
benchmarks/fanout.py), else benchmarks/loadgen.py; many-topics always uses
loadgen.py (the C tools take one URL and one body template: no topic per
subscriber, no random topics). Every result line says which ran. Each
scenario prints result lines and writes benchmarks/results/axes-<name>-<time>.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script: the repository root on sys.path (for `benchmarks.*`),
# instead of this folder, whose modules must not shadow the standard library.
if Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._cost import process_cpu
from benchmarks.fanout import (
    PY,
    ROOT,
    Target,
    Tools,
    free_port,
    pinned,
    rss_kb,
    server,
    ssehub_serve,
    stop,
    targets,
    wait_port,
)

PYTHON_LOAD = "benchmarks/loadgen.py (Python)"
NCHAN_MODULE = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")
RESULTS = ROOT / "benchmarks" / "results"
MERCURE = ("/.well-known/mercure?topic=t1", "/.well-known/mercure", "t1")


@dataclass(frozen=True, slots=True)
class Scale:
    """The parameters of a run; `--small` is the smoke test's."""

    subs: int = 10_000
    duration: float = 10.0
    topics: tuple[int, ...] = (1_000, 10_000)
    topics_duration: float = 5.0
    storm_clients: int = 10_000
    behind: int = 1_000
    durable_events: int = 20_000
    asgi_subs: int = 1_000
    rate: float = 30.0
    settle: float = 1.0  # seconds for a server's memory to settle before/after connecting

    def __post_init__(self) -> None:
        if self.subs < 1 or self.storm_clients < 1 or self.asgi_subs < 1:
            raise ValueError("subscriber counts must be >= 1")
        if self.duration <= 0 or self.topics_duration <= 0 or self.rate <= 0:
            raise ValueError("durations and the rate must be > 0")
        if self.settle < 0:
            raise ValueError(f"settle must be >= 0, not {self.settle}")
        if self.behind < 2 or self.durable_events < 1 or not self.topics:
            raise ValueError("behind must be >= 2, durable_events >= 1, topics non-empty")


SMALL = Scale(
    subs=50, duration=1.0, topics=(20, 50), topics_duration=1.0, storm_clients=50,
    behind=20, durable_events=300, asgi_subs=50, settle=0.3,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Run:
    """What a scenario needs besides its scale."""

    tools: Tools
    scale: Scale
    peers: tuple[str, ...]  # which peers may run: "nchan", "sse-starlette"
    profile: str  # "" (off), "flamegraph" (SVG) or "speedscope" (JSON)
    stamp: str = field(default_factory=lambda: time.strftime("%Y%m%d-%H%M%S"))


def have_nchan() -> bool:
    return shutil.which("nginx") is not None and NCHAN_MODULE.exists()


def sockstat_mem_kb() -> int:
    """Kernel memory of all TCP sockets (`/proc/net/sockstat`, `TCP: ... mem
    PAGES`), in KB: socket buffers live there, not in any process's RSS."""

    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    for line in Path("/proc/net/sockstat").read_text().splitlines():
        if line.startswith("TCP:"):
            fields = line.split()
            return int(fields[fields.index("mem") + 1]) * page_kb
    return 0


@contextlib.contextmanager
def profiled(run: Run, label: str, proc: subprocess.Popen[bytes]) -> Iterator[None]:
    """With --profile, py-spy records the server process (and its children)
    while the body runs and writes benchmarks/results/profile-LABEL-TIME.svg
    (a flame graph; `--profile speedscope`: .speedscope.json for speedscope.app)."""
    if not run.profile or label.startswith("nchan"):
        yield
        return
    spy = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("--profile needs py-spy: pip install py-spy")
    RESULTS.mkdir(exist_ok=True)
    suffix = "svg" if run.profile == "flamegraph" else "speedscope.json"
    svg = RESULTS / f"profile-{label}-{run.stamp}.{suffix}"
    # taskset-wrapped servers: the Python process is the taskset child (exec'd,
    # same pid), so --pid is the server itself.
    recorder = subprocess.Popen(
        [spy, "record", "--pid", str(proc.pid), "--subprocesses", "--rate", "200",
         "--format", run.profile, "--output", str(svg), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.0)  # py-spy attaches before the load starts
    try:
        yield
    finally:
        stop(recorder, signal.SIGINT, 30)
        print(f"  profile of {label}: {svg.relative_to(ROOT)}", flush=True)


@contextlib.contextmanager
def serving(run: Run, name: str, label: str) -> Iterator[tuple[Target, int, int]]:
    """Server NAME (a benchmarks/fanout.py target) on a free port, profiled
    if asked: yields (target, port, pid)."""
    port = free_port()
    target = targets(port)[name]
    with server(target, port) as proc, profiled(run, label, proc):
        yield target, port, proc.pid


def ready_wait(load: subprocess.Popen[bytes], ready: Path, what: str) -> None:
    deadline = time.monotonic() + 150
    while not ready.exists():
        if load.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what}: subscribers did not get ready")
        time.sleep(0.02)


def last_json(path: Path) -> dict[str, Any]:
    lines = path.read_text().strip().splitlines()
    if not lines:
        raise RuntimeError(f"no result in {path.name}")
    return dict(json.loads(lines[-1]))


def finish(load: subprocess.Popen[bytes]) -> None:
    """End a load process (sseload, ssepub or loadgen.py): SIGTERM stops
    its measurement and it still writes its results."""
    stop(load, signal.SIGTERM)


def mercure_or_queue(target: Target, topic: str) -> tuple[str, str, str | None]:
    """(subscribe path, publish path, form topic) for TOPIC on TARGET."""
    if target.form_topic is None:  # /sub/T, /pub/T: Nchan and the queue hubs
        return f"/sub/{topic}", f"/pub/{topic}", None
    return f"/.well-known/mercure?topic={topic}", "/.well-known/mercure", topic


def peer_servers(run: Run, *wanted: str) -> list[str]:
    return [p for p in wanted if p in run.peers and (p != "nchan" or have_nchan())]


# -- the scenarios ------------------------------------------------------------------


def connect(run: Run) -> list[dict[str, Any]]:
    """Seconds until N subscribers are connected (each has its response
    head), and the server's CPU time per connect meanwhile, for ssehub on
    the memory store and on its default one (SQLite), and Nchan."""
    rows = []
    for name in ["ssehub", "ssehub-sqlite", *peer_servers(run, "nchan")]:
        with (
            serving(run, name, f"connect-{name}") as (target, port, pid),
            tempfile.TemporaryDirectory() as tmp,
        ):
            ready, out = Path(tmp) / "ready", Path(tmp) / "load.json"
            url = f"http://127.0.0.1:{port}{target.sub_path}"
            cpu0 = sum(process_cpu(pid))
            load = run.tools.subscribers(url, run.scale.subs, 0.5, ready, out)
            ready_wait(load, ready, name)
            cpu = sum(process_cpu(pid)) - cpu0  # (nginx: the master; its worker is a child)
            load.wait(60)
            r = last_json(out)
        per = 1e6 * cpu / max(int(r["established"]), 1)
        rows.append({
            "server": name, "subscribers": run.scale.subs, "tool": run.tools.name,
            "established": r["established"], "connect_phase_s": r["connect_phase_s"],
            "server_cpu_us_per_connect": per if name != "nchan" else None,
            "line": f"{r['established']:,} of {run.scale.subs:,} connected in "
                    f"{r['connect_phase_s']:.3f} s"
                    + (f" (server CPU {per:.0f} us per connect)" if name != "nchan" else ""),
        })  # fmt: skip
    return rows


def idle_memory(
    run: Run, name: str, label: str, subs: int, sub_path: str | None = None
) -> dict[str, Any]:
    """RSS and kernel TCP memory per idle subscriber (both ends of the
    loopback connection are in the kernel figure)."""
    with serving(run, name, label) as (target, port, pid), tempfile.TemporaryDirectory() as tmp:
        time.sleep(run.scale.settle)
        rss0, sock0 = rss_kb(pid), sockstat_mem_kb()
        ready, out = Path(tmp) / "ready", Path(tmp) / "load.json"
        url = f"http://127.0.0.1:{port}{sub_path or target.sub_path}"
        load = run.tools.subscribers(url, subs, 30.0, ready, out)
        ready_wait(load, ready, name)
        time.sleep(1.5 * run.scale.settle)
        rss1, sock1 = rss_kb(pid), sockstat_mem_kb()
        finish(load)
        r = last_json(out)
    established = max(int(r["established"]), 1)
    rss_per, sock_per = (rss1 - rss0) / established, (sock1 - sock0) / established
    return {
        "server": name, "subscribers": subs, "established": r["established"],
        "tool": run.tools.name, "rss_kb_before": rss0, "rss_kb_after": rss1,
        "rss_kb_per_sub": rss_per, "sockstat_kb_before": sock0, "sockstat_kb_after": sock1,
        "kernel_tcp_kb_per_sub": sock_per,
        "line": f"{rss_per:.2f} KB RSS per idle subscriber, kernel TCP memory "
                f"{sock_per:.2f} KB per connection pair ({r['established']:,} subscribers)",
    }  # fmt: skip


def rss(run: Run) -> list[dict[str, Any]]:
    names = ["ssehub", *peer_servers(run, "nchan", "sse-starlette")]
    return [idle_memory(run, n, f"rss-{n}", run.scale.subs) for n in names]


def latency30(run: Run) -> list[dict[str, Any]]:
    """N subscribers, one publisher at RATE events/s for DURATION s: latency
    percentiles, and whether every subscriber got every event."""
    rows = []
    count = max(int(run.scale.rate * run.scale.duration), 1)
    for name in ["ssehub", *peer_servers(run, "nchan")]:
        with (
            serving(run, name, f"latency30-{name}") as (target, port, _),
            tempfile.TemporaryDirectory() as tmp,
        ):
            base = f"http://127.0.0.1:{port}"
            ready, out = Path(tmp) / "ready", Path(tmp) / "load.json"
            load = run.tools.subscribers(
                base + target.sub_path, run.scale.subs, run.scale.duration + 15, ready, out,
                events=count,
            )  # fmt: skip
            ready_wait(load, ready, name)
            pub = run.tools.publisher(base + target.pub_path, count, run.scale.rate,
                                      target.form_topic)  # fmt: skip
            load.wait(run.scale.duration + 60)
            finish(pub)
            r = last_json(out)
        delivered = int(r["per_conn_min"]) >= count and int(r["established"]) == run.scale.subs
        rows.append({
            "server": name, "subscribers": run.scale.subs, "rate": run.scale.rate,
            "published": count, "tool": run.tools.name, "lat_ms_p50": r["lat_ms_p50"],
            "lat_ms_p99": r["lat_ms_p99"], "per_conn_min": r["per_conn_min"],
            "all_delivered": delivered,
            "line": f"p50 {r['lat_ms_p50']:.1f} ms, p99 {r['lat_ms_p99']:.1f} ms, "
                    f"{'all' if delivered else 'NOT all'} delivered "
                    f"(min {r['per_conn_min']:,} of {count:,} per subscriber)",
        })  # fmt: skip
    return rows


def many_topics(run: Run) -> list[dict[str, Any]]:
    """T subscribers, each on its own topic; 8 keep-alive publishers post to
    random topics as fast as answered for a few seconds. Acknowledged
    events/s, delivered == acknowledged, latency p99 (publish to receive) and
    the publishers' round trip p99. Python load generator for both sides."""
    rows = []
    for name in ["ssehub", *peer_servers(run, "nchan")]:
        for topics in run.scale.topics:
            label = f"many-topics-{name}-{topics}"
            with (
                serving(run, name, label) as (target, port, _),
                tempfile.TemporaryDirectory() as tmp,
            ):
                base = f"http://127.0.0.1:{port}"
                sub_path, pub_path, form = mercure_or_queue(target, "t{i}")
                if form is None:
                    pub_path = "/pub/t{topic}"
                else:
                    form = "t{topic}"
                ready, out, pub_out = (Path(tmp) / n for n in ("ready", "load.json", "pub.json"))
                load = subprocess.Popen(
                    pinned(1, [PY, str(ROOT / "benchmarks" / "loadgen.py"), "subscribe",
                               base + sub_path, "-c", str(topics), "--latency", "--ready",
                               str(ready), "-d", str(run.scale.topics_duration + 30)]),
                    stdout=out.open("wb"),
                )  # fmt: skip
                ready_wait(load, ready, name)
                command = [PY, str(ROOT / "benchmarks" / "loadgen.py"), "publish",
                           base + pub_path, "-k", "8", "--topics", str(topics),
                           "--duration", str(run.scale.topics_duration)]  # fmt: skip
                if form:
                    command += ["--form-topic", form]
                subprocess.run(pinned(1, command), stdout=pub_out.open("wb"), check=True,
                               timeout=run.scale.topics_duration + 60)  # fmt: skip
                time.sleep(run.scale.settle)  # the last answered events still on their way
                finish(load)
                r, p = last_json(out), last_json(pub_out)
            acked, delivered = int(p["ok"]), int(r["events_total"])
            rows.append({
                "server": name, "topics": topics, "tool": PYTHON_LOAD, "acknowledged": acked,
                "acked_per_s": p["rate_achieved"], "delivered": delivered,
                "all_delivered": delivered == acked and acked > 0,
                "lat_ms_p99": r["lat_ms_p99"], "rtt_ms_p99": p["rtt_ms_p99"],
                "load_cpu_pct": r["cpu_pct_after_ready"],
                "line": f"{topics:,} topics: {p['rate_achieved']:,.0f} acknowledged events/s, "
                        f"{delivered:,} of {acked:,} delivered, latency p99 "
                        f"{r['lat_ms_p99']:.2f} ms, publish round trip p99 "
                        f"{p['rtt_ms_p99']:.2f} ms",
            })  # fmt: skip
    return rows


def resume_storm(run: Run) -> list[dict[str, Any]]:
    """BEHIND events in t1 (SQLite), then CLIENTS connect at once with the
    Last-Event-ID of the first: seconds until every client has the BEHIND-1
    it missed, while a publisher posts to t2 at 200/s (its p99 round trip)."""
    import httpx

    scale, tools = run.scale, run.tools
    with (
        serving(run, "ssehub-sqlite", "resume-storm") as (_, port, pid),
        tempfile.TemporaryDirectory() as tmp,
    ):
        url = f"http://127.0.0.1:{port}/.well-known/mercure"
        with httpx.Client(timeout=30) as client:
            ids = [
                client.post(url, data={"topic": "t1", "data": f"{time.time_ns()} {i}"}).text
                for i in range(scale.behind)
            ]
        ready, out, pub_out = (Path(tmp) / n for n in ("ready", "load.json", "pub.json"))
        pub = tools.publisher(url, 1_000_000, 200, "t2", keepalive=2, out=pub_out)
        time.sleep(0.3)
        cpu_before = process_cpu(pid)
        started = time.monotonic()
        load = tools.subscribers(
            # each gets the BEHIND-1 it missed and the live marker: sseload stops
            # at N x connections events in all, so N must count the marker too
            f"{url}?topic=t1", scale.storm_clients, 55, ready, out, events=scale.behind,
            headers=(f"Last-Event-ID: {ids[0]}",),
        )  # fmt: skip
        load.wait(120)
        elapsed = time.monotonic() - started
        user, system = (b - a for a, b in zip(cpu_before, process_cpu(pid), strict=True))
        server_cpu = user + system
        finish(pub)
        r, p = last_json(out), last_json(pub_out)
    caught_up = int(r["per_conn_min"]) >= scale.behind - 1
    caught_up = caught_up and int(r["established"]) == scale.storm_clients
    return [{
        "server": "ssehub-sqlite", "clients": scale.storm_clients, "behind": scale.behind - 1,
        "tool": tools.name, "seconds_until_all_caught_up": elapsed, "all_caught_up": caught_up,
        "per_conn_min": r["per_conn_min"], "publishes_meanwhile": p["ok"],
        "publish_rtt_ms_p99": p["rtt_ms_p99"], "server_cpu_s": server_cpu,
        "server_user_s": user, "server_sys_s": system,
        "connect_phase_s": r.get("connect_phase_s"), "load_cpu_pct": r.get("cpu_pct_after_ready"),
        "line": f"{scale.storm_clients:,} clients {scale.behind - 1:,} behind: "
                f"{'all' if caught_up else 'NOT all'} caught up in {elapsed:.2f} s "
                f"(server CPU {server_cpu:.2f} s, {system:.2f} s of it system); "
                f"{p['ok']:,} publishes meanwhile, round trip p99 {p['rtt_ms_p99']:.2f} ms",
    }]  # fmt: skip


def durable_16(run: Run) -> list[dict[str, Any]]:
    """Acknowledged events/s and publish p99 with 16 concurrent publishers,
    SQLite (committed before the answer), the memory store beside it."""
    rows = []
    for name in ("ssehub-sqlite", "ssehub"):
        with (
            serving(run, name, f"durable-16-{name}") as (_, port, _pid),
            tempfile.TemporaryDirectory() as tmp,
        ):
            out = Path(tmp) / "pub.json"
            pub = run.tools.publisher(
                f"http://127.0.0.1:{port}/.well-known/mercure", run.scale.durable_events, 0,
                "t1", keepalive=16, out=out,
            )  # fmt: skip
            pub.wait(120)
            p = last_json(out)
        rows.append({
            "server": name, "publishers": 16, "events": run.scale.durable_events,
            "tool": run.tools.name, "ok": p["ok"], "acked_per_s": p["rate_achieved"],
            "rtt_ms_p50": p["rtt_ms_p50"], "rtt_ms_p99": p["rtt_ms_p99"],
            "line": f"{p['rate_achieved']:,.0f} acknowledged events/s ({p['ok']:,} ok), "
                    f"p50 {p['rtt_ms_p50']:.2f} ms, p99 {p['rtt_ms_p99']:.2f} ms",
        })  # fmt: skip
    return rows


def workers_supported(store: str) -> tuple[bool, str]:
    """Whether `ssehub serve --workers 2` accepts STORE: it either opens its
    port or exits with a reason."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        command = ssehub_serve(port, "--store", store.replace("@PREFIX@", tmp), "--workers", "2")
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    wait_port(port, 0.2)
                    return True, ""
                except TimeoutError:
                    continue
            err = proc.communicate(timeout=5)[1] if proc.poll() is not None else ""
            lines = [line for line in err.strip().splitlines() if line.strip()]
            return False, lines[-1] if lines else "no port opened"
        finally:
            stop(proc, signal.SIGINT)


def saturate(
    run: Run, target: Target, port: int, subs: int, pid: int | None = None
) -> dict[str, Any]:
    """Delivered events/s to SUBS subscribers, a publisher flat out; with
    PID, also `server_cpu_s`: the server's CPU seconds meanwhile."""
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        ready, out = Path(tmp) / "ready", Path(tmp) / "load.json"
        load = run.tools.subscribers(base + target.sub_path, subs, run.scale.duration, ready, out)
        ready_wait(load, ready, target.name)
        cpu0 = sum(process_cpu(pid)) if pid is not None else 0.0
        pub = run.tools.publisher(base + target.pub_path, 10_000_000, 0, target.form_topic)
        load.wait(run.scale.duration + 60)
        cpu1 = sum(process_cpu(pid)) if pid is not None else 0.0
        finish(pub)
        return {**last_json(out), "server_cpu_s": cpu1 - cpu0}


def children_of(pid: int) -> list[int]:
    """The child processes of PID (`serve --workers N`: its workers)."""
    return [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]


def connections_by_pid(port: int, *, to: bool = False) -> dict[int, set[str]]:
    """The established connections of PORT per process (`ss -tnp`), each
    by its other end's address: the server's (how the kernel spread them
    over the workers), or with `to` the clients'."""
    if shutil.which("ss") is None:
        return {}
    text = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( {'dport' if to else 'sport'} = :{port} )"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    ends: dict[int, set[str]] = {}
    for line in text.splitlines():
        fields = line.split()
        for pid in {int(m) for m in re.findall(r"pid=(\d+)", line)}:
            ends.setdefault(pid, set()).add(fields[3 if not to else 2])
    return ends


def writes_of(pid: int) -> int:
    """Write system calls process PID made so far (`/proc/PID/io`, syscw):
    a subscriber write is one."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("syscw:"):
            return int(line.split()[1])
    return 0


def workers_saturate(run: Run, target: Target, port: int, workers: list[int]) -> dict[str, Any]:
    """`saturate`, with what explains the figure: per worker its
    subscribers, publisher connections, CPU seconds and writes while
    measured, and the load generator's CPU seconds (it shares core 1 with
    the second worker)."""
    base = f"http://127.0.0.1:{port}"
    subs = run.scale.subs
    with tempfile.TemporaryDirectory() as tmp:
        ready, out = Path(tmp) / "ready", Path(tmp) / "load.json"
        load = run.tools.subscribers(base + target.sub_path, subs, run.scale.duration, ready, out)
        ready_wait(load, ready, target.name)
        held = {pid: len(ends) for pid, ends in connections_by_pid(port).items()}
        pids = [*workers, load.pid]
        cpu0 = {pid: sum(process_cpu(pid)) for pid in pids}
        writes0 = {pid: writes_of(pid) for pid in workers}
        started = time.monotonic()
        pub = run.tools.publisher(base + target.pub_path, 10_000_000, 0, target.form_topic)
        time.sleep(min(1.0, run.scale.duration / 2))
        ours = connections_by_pid(port, to=True).get(pub.pid, set())  # the publisher's ends
        publishing = {pid: len(ends & ours) for pid, ends in connections_by_pid(port).items()}
        # sample just before the load generator's window ends (it exits then)
        time.sleep(max(run.scale.duration - (time.monotonic() - started) - 0.3, 0.1))
        elapsed = time.monotonic() - started
        cpu = {pid: sum(process_cpu(pid)) - cpu0[pid] for pid in pids}
        writes = {pid: writes_of(pid) - writes0[pid] for pid in workers}
        load.wait(run.scale.duration + 60)
        finish(pub)
        r = last_json(out)
    per_worker = [
        {"pid": pid, "subscribers": held.get(pid, 0),
         "publisher_connections": publishing.get(pid, 0),
         "cpu_s": cpu[pid], "cpu_pct": 100 * cpu[pid] / elapsed, "writes": writes[pid]}
        for pid in workers
    ]  # fmt: skip
    events = r.get("events", r.get("events_total", 0))  # (sseload's name, loadgen.py's)
    return {**r, "events": events, "per_worker": per_worker, "load_cpu_s": cpu[load.pid],
            "load_cpu_pct": 100 * cpu[load.pid] / elapsed,
            "events_per_write": events / max(sum(writes.values()), 1)}  # fmt: skip


def workers_sqlite(run: Run) -> list[dict[str, Any]]:
    """Delivered events/s at N subscribers, `--workers 2` against one worker,
    both on the SQLite store (two workers get cores 0-1, as in fanout.py),
    with each worker's share: subscribers, publisher connections, CPU, and
    events per subscriber write."""
    store = "sqlite:///@PREFIX@/hub.db"
    ok, reason = workers_supported(store)
    if not ok:
        return [{"server": "ssehub-sqlite-2w", "supported": False, "reason": reason,
                 "line": f"not supported by this build ({reason})"}]  # fmt: skip
    rows: list[dict[str, Any]] = []
    for workers in (1, 2):
        port = free_port()
        name = f"ssehub-sqlite-{workers}w"
        extra = ("--workers", str(workers)) if workers > 1 else ()  # 1: core 0 only
        target = Target(name, ssehub_serve(port, "--store", store, *extra), *MERCURE)
        with server(target, port) as proc, profiled(run, f"workers-{workers}", proc):
            pids = [proc.pid]
            if workers > 1:
                deadline = time.monotonic() + 30
                while len(pids := children_of(proc.pid)) < workers:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name}: {workers} workers did not start")
                    time.sleep(0.05)
            r = workers_saturate(run, target, port, pids)
        shares = "; ".join(
            f"{w['subscribers']:,} subscribers, {w['publisher_connections']} publisher"
            f" connections, {w['cpu_pct']:.0f}% CPU"
            for w in r["per_worker"]
        )
        rows.append({"server": name, "supported": True, "workers": workers,
                     "subscribers": run.scale.subs, "tool": run.tools.name,
                     "events_per_s_active": r["events_per_s_active"],
                     "per_worker": r["per_worker"], "load_cpu_pct": r["load_cpu_pct"],
                     "load_cpu_s": r["load_cpu_s"], "events": r["events"],
                     "window_s": r.get("window_s", run.scale.duration),
                     "events_per_write": r["events_per_write"],
                     "lat_ms_p50": r["lat_ms_p50"], "lat_ms_p99": r["lat_ms_p99"],
                     "line": f"{workers} worker(s): {r['events_per_s_active']:,.0f} delivered "
                             f"events/s at {run.scale.subs:,} subscribers [{shares}; load "
                             f"generator {r['load_cpu_pct']:.0f}% CPU; "
                             f"{r['events_per_write']:.1f} events per write; latency p50 "
                             f"{r['lat_ms_p50']:.0f} ms]"})  # fmt: skip
    one, two = rows[0]["events_per_s_active"], rows[1]["events_per_s_active"]
    rows[1]["ratio_to_one_worker"] = two / one if one else 0.0
    rows[1]["line"] += f" ({rows[1]['ratio_to_one_worker']:.2f}x one worker)"
    return rows


def asgi(run: Run) -> list[dict[str, Any]]:
    """ssehub's HubApp under uvicorn against the sse-starlette hub: delivered
    events/s at 1,000 subscribers and memory per idle stream."""
    rows = []
    for name in ["ssehub-asgi", *peer_servers(run, "sse-starlette")]:
        with serving(run, name, f"asgi-{name}") as (target, port, pid):
            r = saturate(run, target, port, run.scale.asgi_subs, pid)
        memory = idle_memory(run, name, f"asgi-rss-{name}", run.scale.asgi_subs)
        # events per CPU second of the server: what a busy machine disturbs least
        events = r.get("events", r.get("events_total", 0))  # (sseload's name, loadgen.py's)
        per_cpu = events / r["server_cpu_s"] if r["server_cpu_s"] > 0 else 0.0
        rows.append({
            "server": name, "subscribers": run.scale.asgi_subs, "tool": run.tools.name,
            "events_per_s_active": r["events_per_s_active"],
            "events_per_server_cpu_s": per_cpu,
            "rss_kb_per_sub": memory["rss_kb_per_sub"],
            "kernel_tcp_kb_per_sub": memory["kernel_tcp_kb_per_sub"],
            "line": f"{r['events_per_s_active']:,.0f} delivered events/s at "
                    f"{run.scale.asgi_subs:,} subscribers ({per_cpu:,.0f} per server CPU "
                    f"second), {memory['rss_kb_per_sub']:.2f} KB RSS per idle stream",
        })  # fmt: skip
    # the floor: what uvicorn itself costs per idle stream, before any app state
    floor = idle_memory(run, "asgi-floor", "asgi-rss-floor", run.scale.asgi_subs)
    rows.append({
        "server": "asgi-floor", "subscribers": run.scale.asgi_subs, "tool": run.tools.name,
        "rss_kb_per_sub": floor["rss_kb_per_sub"],
        "kernel_tcp_kb_per_sub": floor["kernel_tcp_kb_per_sub"],
        "line": f"{floor['rss_kb_per_sub']:.2f} KB RSS per idle stream: uvicorn's own "
                "(head, a comment, await receive; no events)",
    })  # fmt: skip
    if len(rows) == 3 and rows[1]["events_per_s_active"]:
        rows[0]["ratio_to_sse_starlette"] = (
            rows[0]["events_per_s_active"] / rows[1]["events_per_s_active"]
        )
        rows[0]["line"] += f" ({rows[0]['ratio_to_sse_starlette']:.1f}x sse-starlette)"
    return rows


@dataclass(frozen=True, slots=True)
class Scenario:
    run: Callable[[Run], list[dict[str, Any]]]
    axis: str
    quick: bool


SCENARIOS: dict[str, Scenario] = {
    "connect": Scenario(connect, "10,000 subscribers connected", True),
    "rss": Scenario(rss, "RSS per idle subscriber (10,000)", True),
    "latency30": Scenario(latency30, "latency p99, 10,000 subscribers x 30 events/s", True),
    "many-topics": Scenario(many_topics, "many topics, 8 publishers on random topics", False),
    "resume-storm": Scenario(resume_storm, "resume storm, 10,000 clients 999 behind", False),
    "durable-16": Scenario(durable_16, "durable publish, 16 concurrent publishers", True),
    "workers-sqlite": Scenario(workers_sqlite, "--workers 2 on SQLite", False),
    "asgi": Scenario(asgi, "ASGI path (HubApp under uvicorn)", False),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="", help="comma-separated: " + ", ".join(SCENARIOS))
    parser.add_argument("--all", action="store_true", help="every scenario")
    parser.add_argument("--small", action="store_true", help="tiny parameters (smoke test)")
    parser.add_argument("--subs", type=int, default=None, help="subscribers (default 10,000)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per measurement")
    parser.add_argument("--tools", choices=("auto", "c", "python"), default="auto")
    parser.add_argument(
        "--peers",
        default="nchan,sse-starlette",
        help="peers to run beside ssehub where they apply ('' for none);"
        " Nchan only when nginx and its nchan module are installed",
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="flamegraph",
        default="",
        choices=("flamegraph", "speedscope"),
        help="py-spy records each ssehub server while it is measured:"
        " benchmarks/results/profile-*.svg (or .speedscope.json)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write all rows here")
    args = parser.parse_args(argv)  # fmt: skip
    names = list(SCENARIOS) if args.all else [n for n in args.scenario.split(",") if n]
    if not names:
        names = [n for n, s in SCENARIOS.items() if s.quick]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    scale = SMALL if args.small else Scale()
    if args.subs is not None:
        scale = replace(scale, subs=args.subs, storm_clients=args.subs)
    if args.duration is not None:
        scale = replace(scale, duration=args.duration, topics_duration=args.duration)
    run = Run(Tools(args.tools), scale, tuple(p for p in args.peers.split(",") if p), args.profile)
    peers = ", ".join(p for p in run.peers if p != "nchan" or have_nchan()) or "none"
    print(f"load tool: {run.tools.name}; peers: {peers}", flush=True)
    RESULTS.mkdir(exist_ok=True)
    everything: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        rows = SCENARIOS[name].run(run)
        everything[name] = rows
        for row in rows:
            print(f"{name} | {row['server']} | {row['line']}", flush=True)
        path = RESULTS / f"axes-{name}-{run.stamp}.json"
        path.write_text(json.dumps({"tool": run.tools.name, "scale": str(scale), "rows": rows},
                                   indent=2))  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"tool": run.tools.name, "scenarios": everything}))
    print(f"\nraw results: benchmarks/results/axes-*-{run.stamp}.json\n")
    print("| scenario | server | result | load generator |\n|---|---|---|---|")
    for name, rows in everything.items():
        for row in rows:
            print(f"| {name} | {row['server']} | {row['line']} | {row.get('tool', '')} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
