"""What the `*_cost.py`, `fanout_pass.py` and `axes.py` benchmarks share:
the server's process pinned to core 0 (the load runs on core 1), the event
loop it runs on, its CPU time (or another process's), waiting for the load
to be ready, and the cProfile report."""

from __future__ import annotations

import asyncio
import cProfile
import io
import os
import pstats
import resource
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from benchmarks.fanout import ROOT

Runner = Callable[[Coroutine[Any, Any, Any]], Any]


def cpu_seconds() -> float:
    """This process's CPU time (user and system), all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds (user, system) process PID has used so far, all threads
    (`/proc/PID/stat`)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def pin_server() -> Runner:
    """Pin this process (the server) to core 0 where there are two or more,
    and give the loop to run it on: uvloop where installed."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})  # the load runs on core 1
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


async def until_ready(
    ready: Path, ended: Callable[[], bool], *, timeout: float = 150, poll: float = 0.02
) -> None:
    """Wait for the load generator to create `ready`; fail if it `ended`
    first or `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    while not ready.exists():  # noqa: ASYNC240 (one stat a poll, nothing else runs)
        if ended() or time.monotonic() > deadline:
            raise RuntimeError("the subscribers did not get ready")
        await asyncio.sleep(poll)


def profile_report(
    profile: cProfile.Profile, count: int, top: int, *orders: str
) -> tuple[float, str]:
    """The Python function calls of `profile` per one of `count`, and the
    report of its `top` functions by each of `orders` (default: own time),
    paths relative to the repository."""
    text = io.StringIO()
    stats = pstats.Stats(profile, stream=text)
    calls: float = stats.total_calls / max(count, 1)  # type: ignore[attr-defined]
    for order in orders or ("tottime",):
        stats.sort_stats(order).print_stats(top)
    return calls, text.getvalue().replace(str(ROOT) + "/", "")
