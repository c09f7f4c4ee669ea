"""What one publish costs the server, and whether it grows with the number
of topics: the hub server (memory store) in this process, pinned to core 0;
T subscribers each on its own topic (`t0`…`tT-1`) and 8 keep-alive
publishers posting to random topics as fast as answered (`loadgen.py`, the
many-topics scenario of `axes.py`), in separate processes on core 1. It
prints the server's CPU time per acknowledged publish (subscriber delivery
included) and, with `--profile`, Python function calls per publish and the
functions that cost most (cProfile).

    python benchmarks/publish_calls.py                  # 1,000 and 10,000 topics
    python benchmarks/publish_calls.py --topics 1000,10000 --profile --top 30

Function calls per publish do not depend on how busy the machine is; CPU
time per publish much less than events per second does. The same figure at
1,000 and 10,000 topics means the cost of a publish is independent of the
number of topics.
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
import json
import tempfile
from typing import Any

from benchmarks._cost import cpu_seconds, pin_server, profile_report, until_ready
from benchmarks.fanout import PY, ROOT, pinned


async def measure(topics: int, duration: float, profile: cProfile.Profile | None) -> dict[str, Any]:
    from ssehub import Hub
    from ssehub.mercure import MercureConfig
    from ssehub.server import HubServer, ServerConfig

    loadgen = str(ROOT / "benchmarks" / "loadgen.py")
    async with Hub() as hub:
        config = ServerConfig(port=0, mercure=MercureConfig(anonymous_publish=True))
        server = HubServer(hub, config)
        await server.start()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                ready, out, pub = (Path(tmp) / n for n in ("ready", "load.json", "pub.json"))
                base = f"http://127.0.0.1:{server.port}/.well-known/mercure"
                command = [PY, loadgen, "subscribe", base + "?topic=t{i}", "-c", str(topics),
                           "--ready", str(ready), "-d", str(duration + 60)]  # fmt: skip
                with out.open("wb") as sink:
                    load = await asyncio.create_subprocess_exec(*pinned(1, command), stdout=sink)
                await until_ready(ready, lambda: load.returncode is not None, poll=0.05)
                await asyncio.sleep(0.5)
                cpu0 = cpu_seconds()
                if profile is not None:
                    profile.enable()
                command = [PY, loadgen, "publish", base, "-k", "8", "--topics", str(topics),
                           "--duration", str(duration), "--form-topic", "t{topic}"]  # fmt: skip
                with pub.open("wb") as sink:
                    publisher = await asyncio.create_subprocess_exec(
                        *pinned(1, command), stdout=sink
                    )
                    await publisher.wait()
                if profile is not None:
                    profile.disable()
                cpu = cpu_seconds() - cpu0
                load.terminate()
                await load.wait()
                p = json.loads(pub.read_text().strip().splitlines()[-1])
                if not int(p["ok"]):
                    raise RuntimeError(f"no publish was acknowledged: {p}")
        finally:
            await server.aclose()
    acked = int(p["ok"])
    return {
        "topics": topics,
        "acknowledged": acked,
        "acked_per_s": p["rate_achieved"],
        "server_cpu_s": cpu,
        "server_cpu_us_per_publish": cpu / max(acked, 1) * 1e6,
        "rtt_ms_p99": p["rtt_ms_p99"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topics", default="1000,10000", help="comma-separated topic counts")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of publishing")
    parser.add_argument("--profile", action="store_true", help="cProfile the publish phase")
    parser.add_argument("--top", type=int, default=25, help="functions to show with --profile")
    args = parser.parse_args()
    counts = [int(t) for t in args.topics.split(",") if t]
    if not counts or min(counts) < 1 or args.duration <= 0 or args.top < 1:
        parser.error("--topics must be counts >= 1, --duration > 0, --top >= 1")
    run = pin_server()
    for topics in counts:
        profile = cProfile.Profile() if args.profile else None
        r = run(measure(topics, args.duration, profile))
        line = (
            f"{topics:,} topics: {r['acknowledged']:,} publishes ({r['acked_per_s']:,.0f}/s,"
            f" round trip p99 {r['rtt_ms_p99']:.2f} ms, wall clock): server CPU"
            f" {r['server_cpu_us_per_publish']:.1f} µs per publish"
        )
        if profile is not None:
            calls, report = profile_report(profile, r["acknowledged"], args.top)
            line += f", {calls:.1f} Python function calls per publish (cProfile)"
            print(report)
        print(line)


if __name__ == "__main__":
    main()
