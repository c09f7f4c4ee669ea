"""What one connect costs the server: the hub server (memory store) in this
process, pinned to core 0, N subscribers connecting from a separate load
process on core 1 (`sseload` when found, else `loadgen.py`), and the CPU time
this process spent from the first connect to the last response head, per
connect. With `--profile`, a cProfile of that phase: where the time goes
(accept, parse, decide, subscribe, first write).

    python benchmarks/connect_cost.py                 # 10,000 subscribers
    python benchmarks/connect_cost.py -c 5000 --profile --top 30
    python benchmarks/connect_cost.py --query 'match=t1'   # Mercure 1.0 subscribers
    python benchmarks/connect_cost.py --origin https://app.example   # CORS (browsers)

CPU seconds per connect depend far less on a busy machine than the wall
clock of the connect phase (which is printed beside them): the other
processes on the core delay the server but do not add to its CPU time.
cProfile slows Python code down about twice and C code not at all, so read
its shares, not its seconds.
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
from benchmarks.fanout import Tools


async def measure(
    subs: int,
    tools: Tools,
    profile: cProfile.Profile | None,
    query: str = "topic=t1",
    origin: str | None = None,
) -> dict[str, Any]:
    from ssehub import Hub
    from ssehub.mercure import MercureConfig
    from ssehub.server import HubServer, ServerConfig

    cors = () if origin is None else (origin,)
    headers = () if origin is None else (f"Origin: {origin}",)
    async with Hub() as hub:
        server = HubServer(hub, ServerConfig(port=0, mercure=MercureConfig(cors_origins=cors)))
        await server.start()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                ready, out = Path(tmp) / "ready", Path(tmp) / "load.json"
                url = f"http://127.0.0.1:{server.port}/.well-known/mercure?{query}"
                await asyncio.sleep(0.3)
                cpu0 = cpu_seconds()
                if profile is not None:
                    profile.enable()
                load = tools.subscribers(url, subs, 0.2, ready, out, headers=headers)
                await until_ready(ready, lambda: load.poll() is not None)
                if profile is not None:
                    profile.disable()
                cpu = cpu_seconds() - cpu0
                while load.poll() is None:
                    await asyncio.sleep(0.05)
                result = json.loads(out.read_text().strip().splitlines()[-1])
        finally:
            await server.aclose()
    established = int(result["established"])
    return {
        "subscribers": subs,
        "established": established,
        "tool": tools.name,
        "server_cpu_s": cpu,
        "server_cpu_us_per_connect": cpu / max(established, 1) * 1e6,
        "connect_phase_s": result.get("connect_phase_s"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--subs", type=int, default=10_000, help="subscribers")
    parser.add_argument("--tools", choices=("auto", "c", "python"), default="auto")
    parser.add_argument("--profile", action="store_true", help="cProfile the connect phase")
    parser.add_argument("--top", type=int, default=25, help="functions to show with --profile")
    parser.add_argument("--repeat", type=int, default=1, help="runs (a fresh server each)")
    parser.add_argument(
        "--query", default="topic=t1", help="the subscribe query string (default topic=t1)"
    )
    parser.add_argument(
        "--origin", default=None, help="an Origin the hub allows (CORS), sent by every subscriber"
    )
    args = parser.parse_args()
    if args.subs < 1 or args.top < 1 or args.repeat < 1:
        parser.error("--subs, --top and --repeat must be >= 1")
    run = pin_server()
    tools = Tools(args.tools)
    for _ in range(args.repeat):
        profile = cProfile.Profile() if args.profile else None
        r = run(measure(args.subs, tools, profile, args.query, args.origin))
        phase = r["connect_phase_s"]
        print(
            f"{r['established']:,} of {r['subscribers']:,} connected ({r['tool']}):"
            f" server CPU {r['server_cpu_s']:.3f} s = {r['server_cpu_us_per_connect']:.1f} µs"
            f" per connect; connect phase {phase:.3f} s (wall clock)"
            if phase is not None
            else f"{r['established']:,} connected: {r['server_cpu_us_per_connect']:.1f} µs"
        )
        if profile is not None:
            calls, report = profile_report(
                profile, r["established"], args.top, "tottime", "cumulative"
            )
            print(f"Python function calls per connect (cProfile): {calls:.1f}")
            print(report)


if __name__ == "__main__":
    main()
