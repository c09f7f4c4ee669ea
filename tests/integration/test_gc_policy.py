"""`ssehub serve`'s garbage-collector policy (`collect_for_a_server`): what
start-up made is frozen, full collections come at most every
`FULL_COLLECTION_EVERY` middle-generation collections, and reference
cycles are still collected, young and old, by the collector on its own.

Each case runs in a child process, so this test process keeps its own
collector as it is: a `sitecustomize` reports the server's from inside."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.support.helpers import free_port
from tests.support.processes import connect, post_form, spawn, stop

# In the server process: once start-up froze its objects, a reference cycle
# is made and dropped, and the collector's state is written at exit.
REPORT = """\
import atexit, gc, json, os, threading, time, weakref

_state = {"collected": False}


class _Node:
    pass


def _watch() -> None:
    while gc.get_freeze_count() == 0:
        time.sleep(0.01)
    _state["threshold"] = gc.get_threshold()
    _state["frozen"] = gc.get_freeze_count()
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    _state["ref"] = weakref.ref(a, lambda _: _state.update(collected=True))
    del a, b


def _report() -> None:
    _state.pop("ref", None)
    with open(os.environ["SSEHUB_TEST_GC_REPORT"], "w") as out:
        json.dump(_state, out)


threading.Thread(target=_watch, daemon=True).start()
atexit.register(_report)
"""


def test_serve_freezes_start_up_and_still_collects_a_cycle(tmp_path: Path) -> None:
    """A real `ssehub serve`: after start-up its collector has the server
    policy, and a cycle made afterwards is collected while publishes come
    over HTTP (no explicit `gc.collect`)."""
    (tmp_path / "path").mkdir()
    (tmp_path / "path" / "sitecustomize.py").write_text(REPORT)
    report = tmp_path / "gc.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path / "path"),
        "SSEHUB_TEST_GC_REPORT": str(report),
    }
    port = free_port()
    proc = spawn(
        "serve", "--port", str(port), "--store", "memory:", "--anonymous-publish",
        "--log-level", "debug", "--grace", "1", env=env,
    )  # fmt: skip
    try:
        sub = connect(port, b"GET /.well-known/mercure?topic=t HTTP/1.1\r\nHost: x\r\n\r\n")
        received = sub.recv(65536)
        assert received.startswith(b"HTTP/1.1 200 OK")
        for i in range(300):  # history grows: the young generation is collected
            pub = post_form(port, f"topic=t{i % 7}&data=n{i}".encode())
            assert pub.recv(65536).startswith(b"HTTP/1.1 200 OK")
            pub.close()
        pub = post_form(port, b"topic=t&data=last")
        assert pub.recv(65536).startswith(b"HTTP/1.1 200 OK")
        pub.close()
        deadline = time.monotonic() + 10
        while b"data: last\n" not in received:
            assert time.monotonic() < deadline, "the event did not come"
            chunk = sub.recv(65536)
            assert chunk, "the stream ended before the event came"
            received += chunk
        sub.close()
    finally:
        code, _, err = stop(proc)
    assert code == 0, err
    assert "gc: " in err
    assert "start-up objects frozen" in err
    state = json.loads(report.read_text())
    young, middle, full = state["threshold"]
    assert (young, middle) == (700, 10)  # Python's own: young cycles go as before
    assert full == 100
    assert state["frozen"] > 1000  # the modules, classes and functions of start-up
    assert state["collected"], "the cycle made after start-up was never collected"


# In a plain child process: the policy, then a cycle that outlived the
# young generations (so only a full collection frees it), then objects
# kept until the collector frees the cycle on its own.
OLD_CYCLE = """\
import gc, json, weakref

from ssehub.server._platform import FULL_COLLECTION_EVERY, collect_for_a_server

frozen = collect_for_a_server()
state = {"frozen": frozen, "threshold": gc.get_threshold(), "collected": False}


class Node:
    pass


a, b = Node(), Node()
a.other, b.other = b, a
ref = weakref.ref(a, lambda _: state.update(collected=True))
gc.collect(1)  # survived the young and middle generations: it is old now
full = gc.get_stats()[2]["collections"]
del a, b
kept = []
while not state["collected"] and len(kept) < 5_000_000:
    kept.append(Node())  # what a growing history does: objects that stay
state["full_collections"] = gc.get_stats()[2]["collections"] - full
state["allocated"] = len(kept)
print(json.dumps(state))
"""


def test_an_old_cycle_waits_for_a_full_collection_and_gets_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", OLD_CYCLE], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout)
    assert state["frozen"] > 100
    assert state["threshold"][2] == 100
    assert state["collected"]
    assert state["full_collections"] == 1
    # not before 100 middle collections (10 would be 70,000 objects)
    assert state["allocated"] > 700 * 10 * 10
