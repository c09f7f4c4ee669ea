"""CPU per stored event in SQLiteBackend's write path, in-process, no HTTP:
the writer's `_write` on batches as group commit forms them (16 publishers:
batches of 16), time-ordered ids, one topic at its count bound (1000) or
many topics. Prints µs of CPU per event (`time.process_time`), best of
`--repeat`. Run it on two source trees for an A/B:

    .venv/bin/python benchmarks/sqlite_write.py
    PYTHONPATH=/old/tree/src .venv/bin/python benchmarks/sqlite_write.py --topics 1000

`--count` also prints what noise does not move, from one more pass: the
statements a batch runs (each is one hand-off of the GIL by the writer
thread) and SQLite's virtual-machine instructions per event.

`--serve` measures the real thing instead: `ssehub serve --store sqlite:`
on core 0, `-n` publishes over 16 keep-alive connections (durable-16's
shape: `ssepub -k 16` with SSELOAD_DIR, else loadgen.py) on core 1, and
prints acked/s, p50/p99 and the server's CPU per acked publish, split
into the loop thread and the others (the writer), with the share of the
run each spent runnable but waiting for the core (`/proc/.../schedstat`).
Each `--src` tree in turn, `--repeat` rounds, interleaved:

    .venv/bin/python benchmarks/sqlite_write.py --serve --src /old/src --src src --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script: the repository root on sys.path (for `benchmarks.*`),
# instead of this folder, whose modules must not shadow the standard library.
if Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import ssehub
from benchmarks.fanout import PY, Tools, free_port, pinned, stop, wait_port
from ssehub.backends import HistoryLimits, Record, SQLiteBackend
from ssehub.hub._ids import IdGenerator
from ssehub.protocol import Event, encode_event

_STEP = 100  # VM instructions per progress-handler call (--count)


class Counts:
    """Statements and SQLite VM instructions while `counting`."""

    def __init__(self) -> None:
        self.counting = False
        self.statements = 0
        self.steps = 0

    def statement(self, _sql: str) -> None:
        self.statements += self.counting

    def step(self) -> int:
        self.steps += self.counting
        return 0  # go on


def run(
    events: int, batch: int, topics: int, max_events: int, counts: Counts | None = None
) -> float:
    ids = IdGenerator()
    with tempfile.TemporaryDirectory() as tmp:
        backend = SQLiteBackend(Path(tmp) / "hub.db", HistoryLimits(max_events=max_events))
        backend._open()
        if counts is not None and backend._db is not None:
            backend._db.set_trace_callback(counts.statement)
            backend._db.set_progress_handler(counts.step, _STEP)
        try:
            records = []
            for i in range(events + 2000):
                ev = Event(f"{time.time_ns()} {i} " + "x" * 60, id=ids())
                records.append(Record((f"t{i % topics}",), ev, time.time(), encode_event(ev)))
            warm, timed = records[:2000], records[2000:]
            for i in range(0, len(warm), batch):  # fills topics up to their bound
                backend._write(warm[i : i + batch])
            started = time.process_time()
            if counts is not None:
                counts.counting = True
            for i in range(0, len(timed), batch):
                backend._write(timed[i : i + batch])
            return (time.process_time() - started) / len(timed) * 1e6
        finally:
            backend._close()


def threads(pid: int) -> dict[int, tuple[float, float]]:
    """CPU seconds and run-queue seconds of each thread of PID so far."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            waited = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1]
        except OSError:  # the thread ended
            continue
        out[int(tid)] = ((int(stat[11]) + int(stat[12])) / tick, int(waited) / 1e9)
    return out


def serve(src: Path | None, events: int, tools: Tools) -> str:
    """One durable-16 run against `ssehub serve` from `src`: its result line."""
    port = free_port()
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [PY, "-m", "ssehub", "serve", "--port", str(port), "--anonymous-publish",
               "--log-level", "warning", "--store", f"sqlite:///{tmp}/hub.db"]  # fmt: skip
        server = subprocess.Popen(
            pinned(0, cmd), env=env, cwd=tmp, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_port(port)
            url = f"http://127.0.0.1:{port}/.well-known/mercure"
            tools.publisher(url, 2000, 0, "t1", keepalive=16).wait(120)  # warm
            before = threads(server.pid)
            out = Path(tmp) / "pub.json"
            tools.publisher(url, events, 0, "t1", keepalive=16, out=out).wait(300)
            after = threads(server.pid)
            result = json.loads(out.read_text().strip().splitlines()[-1])
        finally:
            stop(server, signal.SIGINT)
    ok = int(result["ok"])
    seconds = float(result.get("duration_s") or result["elapsed_s"])  # C tool, loadgen.py
    parts = {"loop": [0.0, 0.0], "threads": [0.0, 0.0]}
    for tid, (cpu, waited) in after.items():
        was = before.get(tid, (0.0, 0.0))
        part = parts["loop" if tid == server.pid else "threads"]
        part[0] += cpu - was[0]
        part[1] += waited - was[1]
    total = sum(cpu for cpu, _ in parts.values())
    split = ", ".join(
        f"{name} {cpu / ok * 1e6:.1f} (waiting {waited / seconds:.0%})"
        for name, (cpu, waited) in parts.items()
    )
    return (
        f"{ok:,} of {events:,} acknowledged, {result['rate_achieved']:,.0f} acked/s, "
        f"p50 {result['rtt_ms_p50']:.2f} ms, "
        f"p99 {result['rtt_ms_p99']:.2f} ms; server CPU {total / ok * 1e6:.1f} µs/ack: "
        f"{split} [{src or Path(ssehub.__file__).parent.parent}]"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-n", "--events", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--topics", type=int, default=1)
    ap.add_argument("--max-events", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--count", action="store_true", help="statements and VM instructions too")
    ap.add_argument("--serve", action="store_true", help="through `ssehub serve` (see above)")
    ap.add_argument("--src", type=Path, action="append", help="--serve: a source tree to run")
    ap.add_argument("--tools", choices=("auto", "c", "python"), default="auto")
    args = ap.parse_args()
    if args.serve:
        tools = Tools(args.tools)
        for _ in range(args.repeat):
            for src in args.src or [None]:
                print(serve(src, args.events, tools), flush=True)
        return
    best = min(
        run(args.events, args.batch, args.topics, args.max_events) for _ in range(args.repeat)
    )
    print(
        f"{best:.1f} µs CPU per stored event (batches of {args.batch}, {args.topics} topic(s), "
        f"max_events {args.max_events}) [{Path(ssehub.__file__).parent.parent}]"
    )
    if args.count:
        counts = Counts()
        run(args.events, args.batch, args.topics, args.max_events, counts)
        batches = -(-args.events // args.batch)
        print(
            f"{counts.statements / batches:.1f} statements per batch, "
            f"{counts.steps * _STEP / args.events:,.0f} SQLite VM instructions per event"
        )


if __name__ == "__main__":
    main()
