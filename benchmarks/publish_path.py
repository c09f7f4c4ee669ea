"""The Python work of one publish from `MercureRoute` getting the server's
`Request` to the `Response` it returns, in this process, no sockets: T
stream subscribers (each on its own topic, writing to a transport that
drops the bytes) and N anonymous publishes to spread topics, the loop given
a turn every 8 publishes (8 keep-alive publishers' worth) so the fan-out
flushes. `--profile`: Python calls per publish (cProfile) and the costliest
functions; `--floor`: the same loop with a route that answers a prebuilt
`Response` (what the loop itself costs). Instructions per publish, which
the machine's load does not move, come from two runs under callgrind with
N and 2N publishes and the same `--build` count (so only publishes differ):

    .venv/bin/python benchmarks/publish_path.py --profile
    for n in 2000 4000; do PYTHONPATH=TREE/src valgrind --tool=callgrind \\
        --callgrind-out-file=/tmp/cg.$n .venv/bin/python benchmarks/publish_path.py \\
        -n $n --build 4000; done   # (totals of 4000 - totals of 2000) / 2000
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import time
from typing import Any


class _Sink(asyncio.WriteTransport):
    """A transport that takes every write at once and keeps nothing."""

    def write(self, data: Any) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


async def main(args: argparse.Namespace) -> None:
    from ssehub import Hub
    from ssehub.mercure import Mercure, MercureConfig, Response
    from ssehub.server._handler import Request
    from ssehub.server._mercure import MercureRoute
    from ssehub.server._metrics import Histogram

    def requests(n: int, base: int) -> list[Request]:
        built = []
        for i in range(n):
            body = f"topic=t{(i * 7919) % args.topics}&data={time.time_ns()}+{i + base}+".encode()
            body += b"x" * (100 - len(body))
            headers = {
                b"host": b"127.0.0.1",
                b"content-type": b"application/x-www-form-urlencoded",
                b"content-length": str(len(body)).encode(),
            }
            built.append(Request("POST", b"/.well-known/mercure", headers, body, True))
        return built

    async with Hub() as hub:
        subs = []
        for i in range(args.topics):
            sub = hub.subscribe_stream(_Sink(), f"t{i}")
            await sub.open(lambda resume: b"")
            subs.append(sub)
        mercure = Mercure(MercureConfig(anonymous_publish=True), hub)
        route: Any = MercureRoute(mercure, Histogram((0.001, 0.01, 0.1)))
        if args.floor:
            prebuilt = Response(200, b"x")

            async def floor(request: Request) -> Response:
                return prebuilt

            route = floor

        async def run(batch: list[Request]) -> None:
            for j, request in enumerate(batch):
                response = await route(request)
                assert response.status == 200, response
                if j % 8 == 7:
                    await asyncio.sleep(0)

        await run(requests(2000, 0))  # warm
        batch = requests(max(args.build, args.publishes), 10**6)[: args.publishes]
        profile = cProfile.Profile() if args.profile else None
        if profile is not None:
            profile.enable()
        await run(batch)
        if profile is not None:
            profile.disable()
            text = io.StringIO()
            stats = pstats.Stats(profile, stream=text)
            calls = stats.total_calls / args.publishes  # type: ignore[attr-defined]
            stats.sort_stats("tottime").print_stats(args.top)
            print(text.getvalue())
            print(f"{calls:.1f} Python calls per publish")
        for sub in subs:
            sub.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--publishes", type=int, default=20_000)
    parser.add_argument("--build", type=int, default=0, help="requests built (>= N)")
    parser.add_argument("--topics", type=int, default=1000, help="subscribers, one topic each")
    parser.add_argument("--profile", action="store_true", help="cProfile the publishes")
    parser.add_argument("--floor", action="store_true", help="a route that does nothing")
    parser.add_argument("--top", type=int, default=30)
    asyncio.run(main(parser.parse_args()))
