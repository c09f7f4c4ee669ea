"""The replay path alone: a hub on SQLite in this process, 1,000 events on a
topic, then N stream subscriptions resume at once from the first, their
transports taking every write (no sockets, no HTTP). Prints the seconds and
the CPU seconds (every thread) until every replay is written: what the hub
and the backend cost for a resume storm, without the connection handling.

    python benchmarks/replay_storm.py              # 10,000 resumers
    python benchmarks/replay_storm.py -c 2000 --profile   # cProfile, top 20

CPU seconds are less noisy than seconds on a shared machine; compare two
versions by running each a few times, interleaved (`PYTHONPATH=OTHER/src`).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import tempfile
import time

from ssehub.backends import SQLiteBackend
from ssehub.hub import Hub, HubConfig


class _Sink(asyncio.WriteTransport):
    """A transport that takes every write at once and counts its bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.bytes += len(data)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


async def storm(clients: int, behind: int, profile: cProfile.Profile | None) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        backend = SQLiteBackend(os.path.join(tmp, "hub.db"))
        async with Hub(HubConfig(), backend=backend) as hub:
            ids = [await hub.publish("t1", f"{time.time_ns()} {i}") for i in range(behind)]
            sinks = [_Sink() for _ in range(clients)]
            subs = [hub.subscribe_stream(s, "t1", last_event_id=ids[0]) for s in sinks]
            wall, cpu = time.perf_counter(), time.process_time()
            if profile is not None:
                profile.enable()
            await asyncio.gather(*(sub.open(lambda resume: b"HEAD\n") for sub in subs))
            if profile is not None:
                profile.disable()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            replayed = hub.statistics().events_replayed
            for sub in subs:
                sub.close()
    total = sum(s.bytes for s in sinks)
    return (
        f"{clients:,} replays of {behind - 1:,} events ({replayed:,} replayed, "
        f"{total / 1e6:,.0f} MB): {wall:.2f} s, {cpu:.2f} s CPU"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--clients", type=int, default=10_000)
    parser.add_argument("--behind", type=int, default=1000, help="events published first")
    parser.add_argument("--profile", action="store_true", help="cProfile the storm, top 20")
    args = parser.parse_args()
    profile = cProfile.Profile() if args.profile else None
    try:
        import uvloop
    except ImportError:  # the server's loop when installed, else asyncio's
        print(asyncio.run(storm(args.clients, args.behind, profile)))
    else:
        print(uvloop.run(storm(args.clients, args.behind, profile)))
    if profile is not None:
        pstats.Stats(profile).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
