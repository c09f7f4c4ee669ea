"""Loop turns per publish: how many turns of the event loop a publish takes
to be answered, on a SQLite file of its own and on a shared one (each
process of `serve --workers N`).

    python benchmarks/publish_turns.py            # 4 publishers, 100 each
    python benchmarks/publish_turns.py --src /tmp/base/src   # another tree

Under load every turn of a hub's loop is a fan-out pass over its
subscribers, and a publisher that waits for its answer sends one event per
round trip: turns per publish decide how many events each pass carries.
Here a turn costs a 3 ms sleep that releases the GIL (a pass's system
calls do), so the database threads run meanwhile; turns are counted, not
timed, so the machine's load hardly moves the figure.
"""

from __future__ import annotations

import sys
from pathlib import Path

if Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import asyncio
import tempfile
import time

from benchmarks._cost import pin_server


async def turns_per_publish(shared: bool, publishers: int, each: int, folder: str) -> float:
    from ssehub import Hub
    from ssehub.backends import SharedSQLiteBackend, SQLiteBackend

    path = f"{folder}/{'shared' if shared else 'own'}.db"
    backend = SharedSQLiteBackend(path) if shared else SQLiteBackend(path)
    async with Hub(backend=backend) as hub:
        loop = asyncio.get_running_loop()
        turns, running = 0, True

        def turn() -> None:
            nonlocal turns
            turns += 1
            time.sleep(0.003)  # a fan-out pass
            if running:
                loop.call_soon(turn)

        async def publisher() -> None:
            for i in range(each):
                await hub.publish("t", str(i))

        await hub.publish("t", "first")
        loop.call_soon(turn)
        await asyncio.gather(*(publisher() for _ in range(publishers)))
        running = False
        return turns / each


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--each", type=int, default=100, help="publishes per publisher")
    parser.add_argument("--src", default="", help="import ssehub from this folder")
    args = parser.parse_args()
    if args.src:
        sys.path.insert(0, args.src)
    run = pin_server()  # core 0, uvloop where installed
    with tempfile.TemporaryDirectory() as folder:
        for shared in (False, True):
            turns = run(turns_per_publish(shared, args.publishers, args.each, folder))
            store = "SharedSQLiteBackend" if shared else "SQLiteBackend"
            print(f"{store}: {turns:.2f} loop turns per publish ({args.publishers} publishers)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
