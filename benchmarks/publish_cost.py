"""Server CPU per HTTP publish: `ssehub serve` (pinned to core 0) flooded by
K keep-alive publishers (one request in flight each, this process, core 1),
optionally with T subscribers each on its own topic and the publishes on
random ones (the many-topics shape). Prints acknowledged publishes/s, the
server's CPU (utime + stime from /proc/PID/stat) per publish in µs, and
the events delivered. CPU per publish hardly depends on how busy the
machine is, so it is the figure to compare A/B on a shared machine.

    .venv/bin/python benchmarks/publish_cost.py --store memory
    .venv/bin/python benchmarks/publish_cost.py --store sqlite -k 16
    .venv/bin/python benchmarks/publish_cost.py --topics 1000 -k 8
    .venv/bin/python benchmarks/publish_cost.py --src /old/src --src src --repeat 5  # A/B
    .venv/bin/python benchmarks/publish_cost.py --profile out.svg      # py-spy
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Run as a script: the repository root on sys.path (for `benchmarks.*`),
# instead of this folder, whose modules must not shadow the standard library.
if Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from benchmarks._cost import process_cpu
from benchmarks.fanout import PY, ROOT, free_port, wait_port


@contextlib.contextmanager
def serving(
    store: str, src: Path | None, core: str, callgrind: Path | None = None
) -> Iterator[tuple[int, int]]:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        url = "memory:" if store == "memory" else f"sqlite:///{tmp}/hub.db"
        env = dict(os.environ)
        if src is not None:
            env["PYTHONPATH"] = str(src)
        cmd = [PY, "-m", "ssehub", "serve", "--port", str(port), "--anonymous-publish",
               "--log-level", "warning", "--store", url]  # fmt: skip
        if callgrind is not None:  # it writes the count when the server exits
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={callgrind}",
                   *cmd]  # fmt: skip
        if core and shutil.which("taskset"):
            cmd = ["taskset", "-c", core, *cmd]
        quiet = subprocess.DEVNULL
        proc = subprocess.Popen(cmd, env=env, cwd=tmp, stdout=quiet, stderr=quiet)
        try:
            wait_port(port, 300 if callgrind else 30, proc)
            yield port, proc.pid
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def request(topic: str, seq: int, size: int) -> bytes:
    body = f"topic={topic}&data={time.time_ns()}+{seq}+".encode()
    body += b"x" * max(size - len(body), 0)
    head = (
        "POST /.well-known/mercure HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Subscribers:
    """T subscribers, subscriber i on topic `t{i}`: counts the events each got."""

    def __init__(self, port: int, count: int, sel: selectors.DefaultSelector) -> None:
        self.got = [0] * count
        self.tails: list[bytes] = [b""] * count
        self.socks: list[socket.socket] = []
        for i in range(count):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(f"GET /.well-known/mercure?topic=t{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, ("sub", i))
            self.socks.append(s)

    def read(self, s: socket.socket, i: int) -> None:
        try:
            data = s.recv(65536)
        except BlockingIOError:
            return
        text = self.tails[i] + data
        self.got[i] += text.count(b"\ndata: ")
        self.tails[i] = text[-6:]

    def close(self) -> None:
        for s in self.socks:
            s.close()


def flood(
    port: int, publishers: int, count: int, topics: int, size: int, subs: int
) -> dict[str, Any]:
    sel = selectors.DefaultSelector()
    subscribers = Subscribers(port, subs, sel)
    # let the subscriptions open (their heads) before the clock starts
    time.sleep(0.5 + subs / 5000)
    for key, _ in sel.select(0.1):
        kind, i = key.data
        subscribers.read(key.fileobj, i)  # type: ignore[arg-type]
    conns = []
    for _ in range(publishers):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        conns.append(s)
    pick = random.Random(1)
    sent = acked = 0
    rtts: list[float] = []
    started: dict[int, float] = {}
    buffers: dict[int, bytes] = {}

    def send(s: socket.socket) -> None:
        nonlocal sent
        topic = f"t{pick.randrange(topics)}" if topics else "t1"
        started[s.fileno()] = time.perf_counter()
        s.sendall(request(topic, sent, size))
        sent += 1

    for s in conns:
        sel.register(s, selectors.EVENT_READ, ("pub", 0))
        buffers[s.fileno()] = b""
    t0 = time.perf_counter()
    for s in conns:
        if sent < count:
            send(s)
    while acked < count:
        for key, _ in sel.select(5.0):
            kind, i = key.data
            s = key.fileobj  # type: ignore[assignment]
            if kind == "sub":
                subscribers.read(s, i)
                continue
            data = buffers[s.fileno()] + s.recv(65536)
            while True:
                end = data.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = data[:end]
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                if len(data) < end + 4 + length:
                    break
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"publish refused: {data[: end + 4 + length]!r}")
                data = data[end + 4 + length :]
                acked += 1
                rtts.append(time.perf_counter() - started[s.fileno()])
                if sent < count:
                    send(s)
            buffers[s.fileno()] = data
    elapsed = time.perf_counter() - t0
    # what is still on its way to the subscribers
    settle = time.monotonic() + 2.0
    while subs and sum(subscribers.got) < acked and time.monotonic() < settle:
        for key, _ in sel.select(0.1):
            kind, i = key.data
            if kind == "sub":
                subscribers.read(key.fileobj, i)  # type: ignore[arg-type]
    for s in conns:
        s.close()
    subscribers.close()
    rtts.sort()
    return {
        "acked": acked,
        "seconds": elapsed,
        "acked_per_s": acked / elapsed,
        "rtt_ms_p50": rtts[len(rtts) // 2] * 1000,
        "rtt_ms_p99": rtts[int(len(rtts) * 0.99)] * 1000,
        "delivered": sum(subscribers.got),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--store", choices=("memory", "sqlite"), default="memory")
    ap.add_argument("-k", "--publishers", type=int, default=8)
    ap.add_argument("-n", "--publishes", type=int, default=20_000)
    ap.add_argument("--topics", type=int, default=0, help="T subscribers on t0..tT-1 (0: none)")
    ap.add_argument("--size", type=int, default=100, help="form body bytes")
    ap.add_argument(
        "--src", type=Path, action="append",
        help="run the server from this source tree; twice or more: A/B, interleaved",
    )  # fmt: skip
    ap.add_argument("--repeat", type=int, default=1, help="runs of each --src")
    ap.add_argument(
        "--profile", help="py-spy here: a flame graph (.svg), speedscope (.json), collapsed (.txt)"
    )
    ap.add_argument(
        "--callgrind", action="store_true",
        help="count the server's instructions per publish (valgrind): noise-free A/B",
    )  # fmt: skip
    ap.add_argument("--server-core", default="0")
    ap.add_argument("--load-core", default="1")
    ap.add_argument("--json", action="store_true", help="one JSON line instead of text")
    args = ap.parse_args()
    if args.load_core and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {int(args.load_core)})
    sources: list[Path | None] = list(args.src) if args.src else [None]
    results: dict[str, list[dict[str, Any]]] = {}
    for _ in range(args.repeat):  # interleaved: A, B, A, B...
        for src in sources:
            r = measure(args, src)
            results.setdefault(r["src"], []).append(r)
            if args.json:
                print(json.dumps(r), flush=True)
                continue
            delivered = f", delivered {r['delivered']:,}" if args.topics else ""
            print(
                f"{args.store} k={args.publishers} topics={args.topics}: "
                f"{r['acked_per_s']:,.0f} acked/s, p50 {r['rtt_ms_p50']:.2f} ms, "
                f"p99 {r['rtt_ms_p99']:.2f} ms, server CPU {r['cpu_us_per_publish']:.1f} "
                f"µs/publish{delivered}{counted(r)}  [{r['src']}]",
                flush=True,
            )
    if args.repeat > 1 and not args.json:
        for name, rows in results.items():
            cpu = sorted(r["cpu_us_per_publish"] for r in rows)
            rate = sorted(r["acked_per_s"] for r in rows)
            print(
                f"{name}: server CPU µs/publish min {cpu[0]:.1f} median {cpu[len(cpu) // 2]:.1f}; "
                f"acked/s max {rate[-1]:,.0f} median {rate[len(rate) // 2]:,.0f}"
            )


def instructions(path: Path) -> int:
    """The instructions callgrind counted (its `summary:` or `totals:` line)."""
    for line in path.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def counted(r: dict[str, Any]) -> str:
    n = r.get("instructions_per_publish")
    return "" if n is None else f", {n / 1000:,.0f}k instructions/publish"


def measure(args: argparse.Namespace, src: Path | None) -> dict[str, Any]:
    if not args.callgrind:
        return measured(args, src, args.publishes)
    # the server's whole life is counted: run it with N and with 2N
    # publishes, and the difference is what N publishes cost
    with tempfile.TemporaryDirectory() as tmp:
        once = measured(args, src, args.publishes, Path(tmp) / "once.out")
        twice = measured(args, src, 2 * args.publishes, Path(tmp) / "twice.out")
        extra = instructions(Path(tmp) / "twice.out") - instructions(Path(tmp) / "once.out")
    twice["instructions_per_publish"] = extra / (twice["acked"] - once["acked"])
    return twice


def measured(
    args: argparse.Namespace, src: Path | None, publishes: int, grind: Path | None = None
) -> dict[str, Any]:
    with serving(args.store, src, args.server_core, grind) as (port, pid):
        flood(port, args.publishers, min(2000, args.publishes), args.topics, args.size, 0)  # warm
        spy = None
        if args.profile:
            suffix = Path(args.profile).suffix
            fmt = {".json": "speedscope", ".txt": "raw"}.get(suffix, "flamegraph")
            tool = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
            spy = subprocess.Popen(
                [tool, "record", "--pid", str(pid), "--rate", "250", "--format", fmt,
                 "--output", args.profile, "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1.0)
        before = sum(process_cpu(pid))
        r = flood(port, args.publishers, publishes, args.topics, args.size, args.topics)
        cpu = sum(process_cpu(pid)) - before
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
    r.update(
        store=args.store, publishers=args.publishers, topics=args.topics, server_cpu_s=cpu,
        cpu_us_per_publish=cpu / r["acked"] * 1e6, src=str(src or ROOT / "src"),
    )  # fmt: skip
    return r


if __name__ == "__main__":
    main()
