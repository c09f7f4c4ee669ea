"""Loop turns per publish with two processes on one SQLite file (the two
workers of `serve --workers 2`), each publishing: what a peer's commits
cost a worker's own publishes (its feed reading the peer's rows, the
file's write lock).

    python benchmarks/workers_turns.py                 # 2 publishers a process, 200 each
    python benchmarks/workers_turns.py --spin          # a turn holds the GIL, as a real pass
    python benchmarks/workers_turns.py --src /tmp/base/src   # another tree
    python benchmarks/workers_turns.py --switch 0.005  # Python's default switch interval

Under load each turn of a worker's loop is a fan-out pass; here a turn is
3 ms, a sleep that releases the GIL or (`--spin`) a busy loop that holds it
as a pass over thousands of sockets does. Turns are counted, not timed.
Each process sets the thread switch interval as `serve` does (`--switch`).
Each process also reports how long its commits waited for the write lock
(`BEGIN IMMEDIATE`) and how long a peer's row took to reach its feed.
"""

from __future__ import annotations

import sys
from pathlib import Path

if Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from typing import Any


async def worker(path: str, publishers: int, each: int, spin: bool, go: float) -> dict[str, Any]:
    from ssehub import Hub
    from ssehub.backends import SharedSQLiteBackend

    backend = SharedSQLiteBackend(path)
    async with Hub(backend=backend) as hub:
        loop = asyncio.get_running_loop()
        turns, running = 0, True
        seen: list[float] = []  # a peer's row: seconds from its publish to this feed
        me = str(os.getpid())

        def turn() -> None:
            nonlocal turns
            turns += 1
            if spin:
                end = time.perf_counter() + 0.003
                while time.perf_counter() < end:
                    pass
            else:
                time.sleep(0.003)
            if running:
                loop.call_soon(turn)

        async def watch() -> None:
            async with hub.subscribe(["t"]) as sub:
                async for event in sub:
                    who, _, stamp = event.data.partition(" ")
                    if who not in (me, "first"):
                        seen.append(time.time() - float(stamp))

        async def publisher() -> None:
            for _ in range(each):
                await hub.publish("t", f"{me} {time.time()!r}")

        watching = loop.create_task(watch())
        await hub.publish("t", "first 0")
        await asyncio.sleep(max(go - time.time(), 0))
        loop.call_soon(turn)
        t0 = turns
        await asyncio.gather(*(publisher() for _ in range(publishers)))
        done = turns - t0
        await asyncio.sleep(0.5)  # the peer's last rows
        running = False
        watching.cancel()
        seen.sort()
        n = len(seen)
        return {"turns_per_publish": done / each,
                "peer_to_feed_ms_p50": 1e3 * seen[n // 2] if n else 0.0,
                "peer_to_feed_ms_p99": 1e3 * seen[int(n * 0.99)] if n else 0.0}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--publishers", type=int, default=2, help="per process")
    parser.add_argument("--each", type=int, default=200, help="publishes per publisher")
    parser.add_argument("--spin", action="store_true", help="a turn holds the GIL")
    parser.add_argument("--src", default="", help="import ssehub from this folder")
    parser.add_argument(
        "--switch", type=float, default=0.0005, help="thread switch interval, seconds"
    )
    parser.add_argument("--child", nargs=2, metavar=("PATH", "GO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.src:
        sys.path.insert(0, args.src)
    if args.child:
        import uvloop

        path, go = args.child
        sys.setswitchinterval(args.switch)
        r = uvloop.run(worker(path, args.publishers, args.each, args.spin, float(go)))
        print(json.dumps(r), flush=True)
        return 0
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/shared.db"
        go = time.time() + 3.0
        extra = [*(["--spin"] if args.spin else []), *(["--src", args.src] if args.src else [])]
        extra += ["--switch", str(args.switch)]
        procs = [
            subprocess.Popen(
                [
                    *(["taskset", "-c", str(i)] if shutil.which("taskset") else []),
                    sys.executable,
                    __file__,
                    "--child",
                    path,
                    str(go),
                    "--publishers",
                    str(args.publishers),
                    "--each",
                    str(args.each),
                    *extra,
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(2)
        ]
        for i, proc in enumerate(procs):
            out, _ = proc.communicate(timeout=300)
            r = json.loads(out.strip().splitlines()[-1])
            print(f"process {i}: {r['turns_per_publish']:.2f} loop turns per publish;"
                  f" a peer's row reached the feed in p50 {r['peer_to_feed_ms_p50']:.1f} ms,"
                  f" p99 {r['peer_to_feed_ms_p99']:.1f} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
