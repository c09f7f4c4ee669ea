"""Where an idle subscriber's bytes go: the hub server in this process under
tracemalloc, N idle subscribers from a separate load process, and the
allocation sites that grew, per subscriber, beside the RSS growth (what
tracemalloc does not see: libuv's and the C libraries' own mallocs) and the
kernel's TCP memory (`/proc/net/sockstat`, both loopback ends).

    python benchmarks/idle_bytes.py               # 10,000 subscribers, top 15 sites
    python benchmarks/idle_bytes.py -c 1000 --top 25
    python benchmarks/idle_bytes.py --asgi -c 1000   # HubApp under uvicorn instead
    python benchmarks/idle_bytes.py --asgi-floor -c 1000   # the least any ASGI stream costs

`--asgi` serves `benchmarks/peers/ssehub_asgi.py` (the `asgi` scenario's
app: `HubApp` under uvicorn with uvloop and httptools) in this process
instead of the native server, so the sites include uvicorn's own objects.

Byte counts do not depend on how busy the machine is, so unlike the timed
scenarios this one can be read anywhere. tracemalloc adds its own overhead
to RSS; the traced figures are exact.
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
import contextlib
import gc
import json
import re
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

from benchmarks.axes import RESULTS, sockstat_mem_kb
from benchmarks.fanout import PY, ROOT, free_port, pinned, rss_kb


@contextlib.asynccontextmanager
async def native() -> AsyncIterator[int]:
    """The standalone server (memory store) on a free port: yields the port."""
    from ssehub import Hub
    from ssehub.server import HubServer, ServerConfig

    async with Hub() as hub:
        server = HubServer(hub, ServerConfig(port=0))
        await server.start()
        try:
            yield server.port
        finally:
            await server.aclose()


@contextlib.asynccontextmanager
async def asgi(floor: bool = False) -> AsyncIterator[int]:
    """`HubApp` under uvicorn (the `asgi` scenario's app) on a free port;
    with `floor`, `benchmarks/peers/asgi_floor.py` instead."""
    import uvicorn

    from benchmarks.peers.asgi_floor import app as floor_app
    from benchmarks.peers.ssehub_asgi import app as hub_app

    app = floor_app if floor else hub_app

    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http="httptools", loop="none",
        access_log=False, log_level="warning", backlog=4096,
    )  # fmt: skip
    server = uvicorn.Server(config)
    serving = asyncio.get_running_loop().create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                serving.result()
                raise RuntimeError("uvicorn did not start")
            await asyncio.sleep(0.05)
        yield port
    finally:
        server.should_exit = True
        await serving


async def measure(
    subs: int, top: int, asgi_path: bool = False, floor: bool = False
) -> dict[str, Any]:
    async with asgi(floor) if asgi_path or floor else native() as port:
        with tempfile.TemporaryDirectory() as tmp:
            ready, out = Path(tmp) / "ready", Path(tmp) / "load.json"
            url = f"http://127.0.0.1:{port}/.well-known/mercure?topic=t1"
            await asyncio.sleep(0.5)
            gc.collect()
            before, rss0, sock0 = tracemalloc.take_snapshot(), rss_kb_self(), sockstat_mem_kb()
            command = pinned(
                1,
                [
                    PY,
                    str(ROOT / "benchmarks" / "loadgen.py"),
                    "subscribe",
                    url,
                    "-c",
                    str(subs),
                    "-d",
                    "60",
                    "--ready",
                    str(ready),
                ],
            )
            with out.open("wb") as sink:
                load = await asyncio.create_subprocess_exec(*command, stdout=sink)
            deadline = time.monotonic() + 120
            while not ready.exists():
                if load.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError("the idle subscribers did not get ready")
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
            gc.collect()
            after, rss1, sock1 = tracemalloc.take_snapshot(), rss_kb_self(), sockstat_mem_kb()
            load.terminate()
            await asyncio.wait_for(load.wait(), 30)
            established = int(json.loads(out.read_text().splitlines()[-1])["established"])
    n = max(established, 1)
    stats = [s for s in after.compare_to(before, "lineno") if s.size_diff > 0]
    traced = sum(s.size_diff for s in stats)
    sites = [
        {
            "site": f"{_short(s.traceback[0].filename)}:{s.traceback[0].lineno}",
            "bytes_per_sub": s.size_diff / n,
            "blocks_per_sub": s.count_diff / n,
        }
        for s in stats[:top]
    ]
    return {
        "server": "asgi-floor" if floor else "ssehub-asgi" if asgi_path else "ssehub",
        "subscribers": established,
        "traced_bytes_per_sub": traced / n,
        "rss_kb_per_sub": (rss1 - rss0) / n,
        "kernel_tcp_kb_per_sub": (sock1 - sock0) / n,
        "sites": sites,
    }


def rss_kb_self() -> int:
    import os

    return rss_kb(os.getpid())


def _short(filename: str) -> str:
    """`ssehub/hub/_hub.py`, `asyncio/runners.py`: the path from the package on."""
    for marker in ("/site-packages/", "/src/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return re.sub(r"^.*/python3\.\d+/", "", filename)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--subs", type=int, default=10_000, help="idle subscribers")
    parser.add_argument("--top", type=int, default=15, help="allocation sites to show")
    parser.add_argument(
        "--asgi", action="store_true", help="HubApp under uvicorn instead of the native server"
    )
    parser.add_argument(
        "--asgi-floor",
        action="store_true",
        help="the least an ASGI SSE stream costs under uvicorn (head, comment, wait)",
    )
    args = parser.parse_args()
    if args.subs < 1 or args.top < 1:
        parser.error("--subs and --top must be >= 1")
    tracemalloc.start(1)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(measure(args.subs, args.top, args.asgi, args.asgi_floor))
    else:
        result = uvloop.run(measure(args.subs, args.top, args.asgi, args.asgi_floor))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"idle-bytes-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    label = " (HubApp under uvicorn)" if args.asgi else ""
    label = " (the ASGI floor under uvicorn)" if args.asgi_floor else label
    print(
        f"{result['subscribers']:,} idle subscribers{label}:"
        f" {result['traced_bytes_per_sub']:,.0f} bytes"
        f" traced by tracemalloc, {result['rss_kb_per_sub']:.2f} KB RSS and"
        f" {result['kernel_tcp_kb_per_sub']:.2f} KB kernel TCP memory per subscriber"
    )
    print("\n| allocation site | bytes per subscriber | blocks per subscriber |\n|---|---|---|")
    for site in result["sites"]:
        print(f"| `{site['site']}` | {site['bytes_per_sub']:,.0f} | {site['blocks_per_sub']:.2f} |")
    print(f"\nraw result: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
