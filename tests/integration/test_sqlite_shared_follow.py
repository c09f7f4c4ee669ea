"""A worker on a shared SQLite file (`serve --workers N`) keeps its
threads working while its loop is busy (a fan-out pass): the follower
reads a peer's rows the moment the peer wakes it (ready at the loop's next
turn; the feed never waits for a read), and the writer starts a commit as
the append comes, not a turn later."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ssehub import Hub
from ssehub.backends import Record, SharedSQLiteBackend
from ssehub.protocol import Event, encode_event


def record(i: int) -> Record:
    event = Event(str(i), id=f"e{i}")
    return Record(("t",), event, 1e10, encode_event(event))


def peer_appends(path: Path, records: list[Record]) -> None:
    """Another process, as far as the file goes: its own backend, its own loop."""

    async def main() -> None:
        peer = SharedSQLiteBackend(path, poll=3600)
        await peer.start()
        try:
            for r in records:
                assert await peer.append(r)
        finally:
            await peer.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("wake", [True, False])
def test_a_peers_rows_are_read_while_the_loop_is_busy(tmp_path: Path, wake: bool) -> None:
    """The loop is held (a long pass) while a peer commits: by the time it
    turns again the rows have been read for it — woken by the peer's
    datagram, or without wake sockets by the safety timer — and the next
    turns deliver them."""
    path = tmp_path / "hub.db"

    async def main() -> None:
        store = SharedSQLiteBackend(path, poll=3600 if wake else 0.05, wake=wake)
        async with Hub(backend=store) as hub, hub.subscribe("t") as sub:
            await asyncio.sleep(0.1)  # the feed follows, idle
            ready: list[int] = []

            def busy_pass() -> None:  # the loop does not turn in here
                peer = threading.Thread(target=peer_appends, args=(path, [record(1), record(2)]))
                peer.start()
                peer.join(10)
                deadline = time.monotonic() + 5
                while not store._ahead and time.monotonic() < deadline:
                    time.sleep(0.01)
                ready.append(len(store._ahead))

            asyncio.get_running_loop().call_soon(busy_pass)
            got = [(await asyncio.wait_for(anext(sub), 10)).id for _ in range(2)]
            assert got == ["e1", "e2"]
            assert ready == [2]

    asyncio.run(main())


def test_the_feed_takes_its_own_rows_while_a_peers_read_is_slow(tmp_path: Path) -> None:
    """This process's rows come with its commit: they reach the subscribers
    at once even while the follower thread is stuck in a read of a peer's
    rows (a slow disk)."""
    path = tmp_path / "hub.db"

    async def main() -> None:
        store = SharedSQLiteBackend(path, poll=3600)
        async with Hub(backend=store) as hub, hub.subscribe("t") as sub:
            await asyncio.sleep(0.1)
            slow = threading.Event()
            read_past = store._read_past

            def stuck(db: object = None) -> bool:
                if db is None:  # the follower thread's read
                    slow.wait(10)
                return read_past(db)  # type: ignore[arg-type]

            store._read_past = stuck  # type: ignore[method-assign]
            try:
                # a peer's commit wakes the follower: its read begins, and hangs
                await asyncio.to_thread(peer_appends, path, [record(1)])
                await asyncio.sleep(0.1)
                sent = await asyncio.wait_for(hub.publish("t", "own"), 3)
                got = [(await asyncio.wait_for(anext(sub), 3)).id for _ in range(2)]
                assert got == ["e1", sent]
            finally:
                slow.set()

    asyncio.run(main())


def test_a_worker_on_a_shared_file_takes_the_gil_back_within_half_a_millisecond(
    tmp_path: Path,
) -> None:
    """`serve` on a shared SQLite file (each of `--workers N`) shortens the
    switch interval: its writer and follower threads get the GIL back from
    a loop busy with a pass in 0.5 ms, not 5. Not on a file of its own, nor
    longer than it was."""
    from ssehub.backends import SQLiteBackend
    from ssehub.cli._serve import SWITCH_INTERVAL, _share_the_gil

    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        _share_the_gil(SQLiteBackend(tmp_path / "own.db"))
        assert sys.getswitchinterval() == pytest.approx(0.005)
        _share_the_gil(SharedSQLiteBackend(tmp_path / "shared.db"))
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL, rel=0.05)
        assert SWITCH_INTERVAL == 0.0005
        sys.setswitchinterval(0.0001)
        _share_the_gil(SharedSQLiteBackend(tmp_path / "shared.db"))
        assert sys.getswitchinterval() == pytest.approx(0.0001, rel=0.05)
    finally:
        sys.setswitchinterval(before)


def test_on_a_shared_file_the_commit_begins_as_the_append_comes(tmp_path: Path) -> None:
    """The loop turns once after the append and is then held (a long pass):
    the writer thread has committed meanwhile."""
    path = tmp_path / "hub.db"

    async def main() -> None:
        store = SharedSQLiteBackend(path, poll=3600)
        await store.start()
        try:
            appending = asyncio.get_running_loop().create_task(store.append(record(1)))
            await asyncio.sleep(0)  # the append runs to its wait, and nothing more
            deadline = time.monotonic() + 5
            while not stored(path) and time.monotonic() < deadline:
                time.sleep(0.01)  # noqa: ASYNC251 (held on purpose: the loop does not turn)
            assert stored(path) == ["e1"]
            assert await appending
        finally:
            await store.aclose()

    asyncio.run(main())


def stored(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [row[0] for row in db.execute("SELECT id FROM events ORDER BY seq")]


# A program that starts a hub on a shared file and ends without closing it
# (an app that forgot `aclose()`, or failed before it): its loop is gone.
UNCLOSED = """\
import asyncio, sys

from ssehub import Hub
from ssehub.backends import SharedSQLiteBackend


async def main() -> None:
    hub = Hub(backend=SharedSQLiteBackend(sys.argv[1], poll=3600))
    await hub.start()
    await hub.publish("t", "x")
    print("started", flush=True)


asyncio.run(main())
"""


def test_a_process_that_never_closes_the_store_still_exits(tmp_path: Path) -> None:
    """The follower thread does not keep a process alive: one that ends
    without `aclose()` exits (on main it hung at exit, joining the thread)."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", UNCLOSED, str(tmp_path / "hub.db")],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(f"the process did not exit: {expired.stdout!r}") from None
    assert done.returncode == 0, done.stderr
    assert done.stdout == "started\n"


def test_a_follower_thread_that_fails_is_logged_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The thread's failure reaches the loop and the log while the store is
    open, and closing it afterwards does not raise it again."""

    async def main() -> None:
        store = SharedSQLiteBackend(tmp_path / "hub.db", poll=0.05)
        await store.start()
        try:
            assert store._wake is not None
            store._wake.close()  # the socket it waits on is gone: its next wait fails
            deadline = time.monotonic() + 5
            while "the SQLite follower thread stopped" not in caplog.text:
                assert time.monotonic() < deadline, "the failure was not logged"
                await asyncio.sleep(0.01)
        finally:
            await store.aclose()

    with caplog.at_level("ERROR", logger="ssehub.backends.sqlite"):
        asyncio.run(main())
    assert "the wake socket is closed" in caplog.text
