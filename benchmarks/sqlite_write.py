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
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ssehub
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-n", "--events", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--topics", type=int, default=1)
    ap.add_argument("--max-events", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--count", action="store_true", help="statements and VM instructions too")
    args = ap.parse_args()
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
