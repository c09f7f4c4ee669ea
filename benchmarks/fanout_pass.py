"""One fan-out pass at N subscribers: the hub server (memory store) in this
process, pinned to core 0, N subscribers of one topic from a separate load
process on core 1 (`sseload` when found, else `loadgen.py`); then E events
published in this process, one per pass (each waits for the previous pass
to end, plus a pause), each pass timed: wall clock and this thread's CPU
time, per pass and per subscriber write. With `--profile`, a cProfile of
the passes: the Python work per subscriber beside the write system call.

    python benchmarks/fanout_pass.py                 # 10,000 subscribers, 30 passes
    python benchmarks/fanout_pass.py -c 10000 -e 50 --profile

A pass writes the same bytes to every subscriber's socket; on loopback
each write also runs the receiving side of TCP in the kernel, on the
server's core, so most of a pass is system time that no Python change
removes. CPU time per write is the figure to compare between builds.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script: the repository root on sys.path (for `benchmarks.*`),
# instead of this folder, whose modules must not shadow the standard library.
if Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import asyncio
import cProfile
import socket
import statistics
import tempfile
import time
from typing import Any

from benchmarks._cost import pin_server, profile_report, until_ready
from benchmarks.fanout import Tools
from ssehub.hub._fanout import SLICE


def shape_sockets(hub: Any, nodelay: bool | None, sndbuf: int) -> int:
    """Set TCP_NODELAY and SO_SNDBUF on every subscriber's socket (the
    kernel cost of a write under another socket shape); how many were set."""
    done = 0
    for sub in hub._fanout.subscriptions():
        sock = sub._transport.get_extra_info("socket")
        if sock is None:
            continue
        if nodelay is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(nodelay))
        if sndbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        done += 1
    return done


async def measure(
    subs: int,
    events: int,
    tools: Tools,
    profile: cProfile.Profile | None,
    nodelay: bool | None = None,
    sndbuf: int = 0,
) -> dict[str, Any]:
    from ssehub import Hub
    from ssehub.server import HubServer, ServerConfig

    async with Hub() as hub:
        server = HubServer(hub, ServerConfig(port=0))
        await server.start()
        fanout = hub._fanout
        walls: list[float] = []
        cpus: list[float] = []

        def timed_flush() -> None:
            """The pass the publish scheduled, run now, its turns back to back
            (without the loop's work between them)."""
            handle, fanout._flush_handle = fanout._flush_handle, None
            if handle is not None:
                handle.cancel()
            wall, cpu = time.perf_counter(), time.thread_time()
            if profile is not None:
                profile.enable()
            while fanout._dirty or fanout._passes:  # turn after turn, as the loop runs them
                fanout._slice(SLICE)
            if profile is not None:
                profile.disable()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.thread_time() - cpu)

        try:
            with tempfile.TemporaryDirectory() as tmp:
                ready, out = Path(tmp) / "ready", Path(tmp) / "load.json"
                url = f"http://127.0.0.1:{server.port}/.well-known/mercure?topic=t1"
                load = tools.subscribers(url, subs, 60, ready, out)
                await until_ready(ready, lambda: load.poll() is not None)
                await asyncio.sleep(1.0)
                if nodelay is not None or sndbuf:
                    shape_sockets(hub, nodelay, sndbuf)
                for i in range(events):
                    await hub.publish("t1", f"{time.time_ns()} {i} " + "x" * 60)
                    timed_flush()
                    await asyncio.sleep(0.05)  # the pass ran; let the sockets drain
                load.terminate()
                load.wait(30)
        finally:
            await server.aclose()
    passes = [(w, c) for w, c in zip(walls, cpus, strict=True) if w > 0]
    return {
        "subscribers": subs,
        "passes": len(passes),
        "pass_ms_median": statistics.median(w for w, _ in passes) * 1e3,
        "cpu_ms_median": statistics.median(c for _, c in passes) * 1e3,
        "cpu_us_per_write": statistics.median(c for _, c in passes) / subs * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--subs", type=int, default=10_000, help="subscribers")
    parser.add_argument("-e", "--events", type=int, default=30, help="passes (one event each)")
    parser.add_argument("--tools", choices=("auto", "c", "python"), default="auto")
    parser.add_argument("--profile", action="store_true", help="cProfile the passes")
    parser.add_argument("--nodelay", choices=("on", "off"), help="TCP_NODELAY on every socket")
    parser.add_argument("--sndbuf", type=int, default=0, help="SO_SNDBUF on every socket")
    parser.add_argument("--top", type=int, default=15, help="functions to show with --profile")
    args = parser.parse_args()
    if args.subs < 1 or args.events < 1 or args.top < 1:
        parser.error("--subs, --events and --top must be >= 1")
    run = pin_server()
    profile = cProfile.Profile() if args.profile else None
    nodelay = None if args.nodelay is None else args.nodelay == "on"
    r = run(measure(args.subs, args.events, Tools(args.tools), profile, nodelay, args.sndbuf))
    print(
        f"{r['subscribers']:,} subscribers, {r['passes']} passes: median pass"
        f" {r['pass_ms_median']:.1f} ms wall clock, {r['cpu_ms_median']:.1f} ms CPU"
        f" = {r['cpu_us_per_write']:.2f} µs CPU per subscriber write"
    )
    if profile is not None:
        calls, report = profile_report(profile, r["subscribers"] * r["passes"], args.top)
        print(f"Python function calls per subscriber write (cProfile): {calls:.2f}")
        print(report)


if __name__ == "__main__":
    main()
