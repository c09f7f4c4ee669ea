"""What the platform offers the server: the event loop (uvloop where it is
installed, else plain asyncio), `SO_REUSEPORT` for several processes on one
port, stop signals, and the garbage collector's policy of a server process.
The one place that decides; `ssehub serve` and `BackgroundHub` ask here.

`SSEHUB_NO_UVLOOP=1` (any value but empty or `0`) forces the plain asyncio
loop even where uvloop is installed: for debugging, and for running the test
suite as it runs on a platform without uvloop (Windows).
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = (
    "FULL_COLLECTION_EVERY",
    "NO_UVLOOP_VARIABLE",
    "add_stop_signals",
    "check_reuse_port",
    "collect_for_a_server",
    "new_event_loop",
    "run",
    "uvloop_wanted",
)

NO_UVLOOP_VARIABLE = "SSEHUB_NO_UVLOOP"
"""The environment variable that forces the plain asyncio loop."""

FULL_COLLECTION_EVERY = 100
"""Collections of the middle generation between two full ones, at most, in
a server process (Python's default: 10)."""

T = TypeVar("T")


def uvloop_wanted() -> bool:
    """False when `SSEHUB_NO_UVLOOP` is set (to anything but empty or `0`)."""
    return os.environ.get(NO_UVLOOP_VARIABLE, "").strip() in ("", "0")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new loop: uvloop's when installed and wanted, else asyncio's own
    (the selector loop on Unix, the proactor loop on Windows)."""
    if uvloop_wanted():
        try:
            import uvloop
        except ImportError:  # not built for this platform (Windows): slower, same behaviour
            pass
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the loop `new_event_loop()` picks."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)


def check_reuse_port(what: str) -> None:
    """Raise a one-line `ValueError` naming `what` where the platform has no
    `SO_REUSEPORT` (Windows), so several processes cannot share a port."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError(
            f"{what} needs SO_REUSEPORT (several processes on one port), which this "
            "platform does not have: run one process, or several on their own ports "
            "behind a proxy"
        )


def add_stop_signals(loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> None:
    """Call `callback` on the loop at SIGINT or SIGTERM. Where the loop cannot
    watch signals itself (Windows' loops raise `NotImplementedError`), a
    plain signal handler hands the call to the loop instead."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, callback)
        except NotImplementedError:
            signal.signal(sig, lambda _signum, _frame: loop.call_soon_threadsafe(callback))


def collect_for_a_server() -> int:
    """The collector's policy of a long-running server process (`ssehub
    serve`), once it has started; returns the objects it froze.

    What start-up made (modules, classes, the configuration) lives as long
    as the process: it is collected once more, then left out of every later
    collection (`gc.freeze()`). And a full collection, which walks every
    object the process holds (each subscriber's, each event in history),
    comes at most every `FULL_COLLECTION_EVERY` collections of the middle
    generation instead of every 10 (still only once a quarter more objects
    outlived the young generations, as Python decides). Unreachable cycles
    are still collected: the young ones at the same pace as before, the old
    ones at the next full collection. Never for an embedded hub: an app's
    collector is the app's."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    return gc.get_freeze_count()
