"""Several hub processes on one SQLite file (`ssehub serve --workers N`, no
Redis): publish on any, every subscriber on every worker gets every event
once and in the one order of the database; resume on any worker; a worker
killed with kill -9 mid-stream costs its clients a reconnect, not an event."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ssehub import Hub
from ssehub.backends import HistoryLimits, Record, SharedSQLiteBackend, SQLiteBackend
from ssehub.hub import EventSubscription
from ssehub.protocol import Event, encode_event
from tests.support.helpers import Stream, free_port, publish, subscribe
from tests.support.processes import connect, finish, spawn, stop

# -- in one process: two hubs on one file ------------------------------------


async def take(sub: EventSubscription, n: int) -> list[str]:
    return [(await asyncio.wait_for(anext(sub), 10)).id or "" for _ in range(n)]


def seq_order(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT id FROM events ORDER BY seq")]


def test_two_hubs_on_one_file_deliver_everything_once_in_the_files_order(
    tmp_path: Path,
) -> None:
    """The safety poll is an hour: what arrives came by the wake-up."""
    path = tmp_path / "hub.db"

    async def main() -> None:
        store_a, store_b = (
            SharedSQLiteBackend(path, poll=3600),
            SharedSQLiteBackend(path, poll=3600),
        )
        async with (
            Hub(backend=store_a) as a,
            Hub(backend=store_b) as b,
            a.subscribe("t") as on_a,
            b.subscribe("t") as on_b,
            b.subscribe("*") as on_b_all,
        ):
            # one after the other, alternating: the publish returns once its
            # own hub fanned it out, so each order is the publish order
            sent = [await (a if i % 2 else b).publish("t", str(i)) for i in range(20)]
            # where each one's last append is in the file: what its publish waited for
            assert (store_a.appended_position, store_b.appended_position) == (20, 19)
            assert await take(on_a, 20) == sent
            assert await take(on_b, 20) == sent
            assert await take(on_b_all, 20) == sent
            # all at once on both: every subscriber gets them all, once, in
            # one order, the file's
            many = await asyncio.gather(
                *((a if i % 2 else b).publish("t", str(i)) for i in range(300))
            )
            got_a, got_b = await take(on_a, 300), await take(on_b, 300)
            assert sorted(got_a) == sorted(many)
            assert got_a == got_b == await take(on_b_all, 300)
            assert got_a == seq_order(path)[20:]
            assert a.statistics().events_from_peers == b.statistics().events_from_peers == 160
            for sub in (on_a, on_b, on_b_all):  # and nothing more: no duplicate
                try:
                    extra = await asyncio.wait_for(anext(sub), 0.3)
                except TimeoutError:
                    continue
                raise AssertionError(f"a duplicate or stray event: {extra}")

    asyncio.run(main())


def test_a_publish_on_a_shared_file_takes_no_more_loop_turns_than_on_its_own(
    tmp_path: Path,
) -> None:
    """Under load every turn of the loop is a fan-out pass: a publish that
    takes more turns to be answered gets fewer events into each pass. Four
    publishers, each turn a pass (3 ms, the GIL released): on the shared
    file a publish is answered in about the turns it takes on a file of its
    own (its rows reach the feed with the commit), not twice as many."""

    async def turns_per_publish(backend: SQLiteBackend) -> float:
        async with Hub(backend=backend) as hub:
            loop = asyncio.get_running_loop()
            turns, running = 0, True

            def turn() -> None:
                nonlocal turns
                turns += 1
                time.sleep(0.003)  # a pass over the subscribers
                if running:
                    loop.call_soon(turn)

            async def publisher() -> None:
                for i in range(50):
                    await hub.publish("t", str(i))

            await hub.publish("t", "first")
            loop.call_soon(turn)
            await asyncio.gather(*(publisher() for _ in range(4)))
            running = False
            return turns / 200

    own = asyncio.run(turns_per_publish(SQLiteBackend(tmp_path / "own.db")))
    shared = asyncio.run(turns_per_publish(SharedSQLiteBackend(tmp_path / "shared.db")))
    assert shared <= 1.3 * own, (shared, own)


def test_without_wake_ups_the_safety_poll_still_brings_every_event(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"

    async def main() -> None:
        async with (
            Hub(backend=SharedSQLiteBackend(path, poll=0.05, wake=False)) as a,
            Hub(backend=SharedSQLiteBackend(path, poll=0.05, wake=False)) as b,
            b.subscribe("t") as on_b,
        ):
            sent = [await a.publish("t", str(i)) for i in range(5)]
            assert await take(on_b, 5) == sent
        assert not (tmp_path / "hub.db.wake").exists()

    asyncio.run(main())


def test_a_replay_on_one_while_the_other_publishes_has_no_gap_or_duplicate(
    tmp_path: Path,
) -> None:
    """b follows slowly (no wake-ups, a read a second): it is asked to resume
    from an event its feed has not brought yet, and reads history its feed
    has not passed. It must wait for its feed, or the resumed event comes
    again after the replay, and the replayed ones twice."""
    path = tmp_path / "hub.db"

    async def main() -> None:
        async with (
            Hub(backend=SharedSQLiteBackend(path)) as a,
            Hub(backend=SharedSQLiteBackend(path, poll=1.0, wake=False)) as b,
        ):
            await asyncio.sleep(0.1)  # b's feed read the (empty) table: next in 1 s
            ids = [await a.publish("t", str(i)) for i in range(10)]

            async def publish_on_a() -> None:
                for i in range(10, 60):
                    ids.append(await a.publish("t", str(i)))

            publisher = asyncio.ensure_future(publish_on_a())
            async with b.subscribe("t", last_event_id=ids[0]) as sub:
                await publisher
                assert await take(sub, 59) == ids[1:]  # replayed, then live: once, in order
                try:
                    extra = await asyncio.wait_for(anext(sub), 0.5)
                except TimeoutError:
                    return
                raise AssertionError(f"a duplicate: {extra}")

    asyncio.run(main())


def test_the_history_bound_holds_with_several_writers(tmp_path: Path) -> None:
    """Each process counts a topic's rows afresh under the write lock: the
    other's rows count too."""
    path = tmp_path / "hub.db"
    limits = HistoryLimits(max_events=10)

    def record(i: int) -> Record:
        event = Event(str(i), id=f"e{i}")
        return Record(("t",), event, 1e10, encode_event(event))

    async def main() -> None:
        a, b = SharedSQLiteBackend(path, limits), SharedSQLiteBackend(path, limits)
        await a.start()
        await b.start()
        try:
            for i in range(60):
                assert await (a if i % 2 else b).append(record(i)) is True
            for backend in (a, b):
                kept = (await backend.history(["t"], None)).records
                assert [r.id for r in kept] == [f"e{i}" for i in range(50, 60)]
            # idempotent across the two: a retry on the other is acknowledged
            assert await a.append(record(58)) is False
        finally:
            await a.aclose()
            await b.aclose()

    asyncio.run(main())


# -- real processes --------------------------------------------------------------


@contextmanager
def workers(store: str, ports: list[int]) -> Iterator[list[subprocess.Popen[str]]]:
    """One `ssehub serve --reuse-port` per port, all on `store` (what
    `--workers N` starts, on ports of their own so a test knows which
    worker a connection reaches)."""
    procs = [
        spawn("serve", "--port", str(p), "--anonymous-publish", "--store", store, "--reuse-port")
        for p in ports
    ]
    try:
        for port, proc in zip(ports, procs, strict=True):
            try:
                connect(
                    port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                ).close()
            except ConnectionRefusedError:  # say why: it may have ended
                ended = proc.poll() is not None
                raise AssertionError(
                    f"the worker on {port} does not answer"
                    + (f" (it ended: {proc.communicate()[1].strip()})" if ended else "")
                ) from None
        yield procs
    finally:
        for proc in procs:
            stop(proc)


async def published(port: int, data: str, **fields: str) -> str:
    answer = await publish(port, topic="t", data=data, **fields)
    assert answer.status == 200, answer.text
    return answer.text


async def ids_of(stream: Stream, n: int) -> list[str]:
    return [e.id or "" for e in await stream.next_events(n, timeout=30)]


def test_three_worker_processes_one_file_one_order_resume_and_retry_anywhere(
    tmp_path: Path,
) -> None:
    ports = [free_port() for _ in range(3)]
    store = f"sqlite:///{tmp_path}/hub.db"

    async def main() -> None:
        streams = [await subscribe(port, "t") for port in ports for _ in range(2)]
        assert all(s.status == 200 for s in streams)
        # every worker publishes, all at once
        sent = await asyncio.gather(*(published(ports[i % 3], str(i)) for i in range(90)))
        got = [await ids_of(s, 90) for s in streams]
        assert sorted(got[0]) == sorted(sent)  # every event, once
        assert all(g == got[0] for g in got)  # one order on every worker: the file's
        assert got[0] == seq_order(tmp_path / "hub.db")

        # resume on another worker than the one the client read on
        resumed = await subscribe(ports[2], "t", last_event_id=got[0][29])
        assert await ids_of(resumed, 60) == got[0][30:]
        resumed.close()

        # a retry of a publish, to another worker: acknowledged, stored once
        first = await publish(ports[0], topic="t", data="once", id="retried")
        again = await publish(ports[1], topic="t", data="once", id="retried")
        assert first.status == again.status == 200
        assert first.text == again.text == "retried"
        conflict = await publish(ports[2], topic="t", data="other", id="retried")
        assert conflict.status == 409, conflict.text
        last = await published(ports[1], "after")
        for s in streams:
            assert await ids_of(s, 2) == ["retried", last]  # the retry not delivered again
            s.close()

    with workers(store, ports):
        asyncio.run(main())


def test_a_worker_killed_mid_stream_its_clients_resume_on_another_with_no_gap(
    tmp_path: Path,
) -> None:
    ports = [free_port() for _ in range(2)]
    store = f"sqlite:///{tmp_path}/hub.db"

    async def main(victim: subprocess.Popen[str]) -> None:
        on_victim = [await subscribe(ports[0], "t") for _ in range(3)]
        on_survivor = [await subscribe(ports[1], "t") for _ in range(3)]
        acked: list[str] = []
        killed = asyncio.Event()

        async def publisher() -> None:
            for i in range(200):
                port = ports[i % 2] if not killed.is_set() else ports[1]
                try:
                    acked.append(await published(port, str(i)))
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                    pass  # sent to the victim as it died: not acknowledged
                if i == 80:
                    victim.send_signal(signal.SIGKILL)  # kill -9, mid-stream
                    killed.set()

        await publisher()
        victim.wait(10)
        final = await published(ports[1], "last")
        order = seq_order(tmp_path / "hub.db")
        assert order[-1] == final
        assert set(acked) <= set(order)  # every acknowledged event is stored
        for s in on_survivor:
            assert await ids_of(s, len(order)) == order  # the survivor missed nothing
        for s in on_victim:  # cut by the kill: each resumes on the survivor
            seen: list[str] = []
            try:
                while True:
                    seen += await ids_of(s, 1)
            except (EOFError, ConnectionError, TimeoutError):
                pass
            assert len(seen) < len(order)
            resumed = await subscribe(ports[1], "t", last_event_id=seen[-1])
            rest = await ids_of(resumed, len(order) - len(seen))
            assert seen + rest == order  # no gap, no duplicate, in order
            resumed.close()
            s.close()
        # the survivor goes on publishing, past the dead worker's wake socket
        still = await published(ports[1], "still")
        assert len(os.listdir(tmp_path / "hub.db.wake")) == 1  # the stale one removed
        for s in on_survivor:
            assert await ids_of(s, 1) == [still]
            s.close()

    with workers(store, ports) as procs:
        asyncio.run(main(procs[0]))


def test_serve_workers_on_the_default_sqlite_store(tmp_path: Path) -> None:
    """`serve --workers 3` with no --store: `sqlite:ssehub.db` in the working
    folder, shared; clients spread over the workers (their pids, in the
    dashboard's snapshots), each gets every event once, in one order."""
    port = free_port()
    proc = spawn("serve", "--port", str(port), "--workers", "3", "--anonymous-publish",
                 cwd=str(tmp_path))  # fmt: skip
    try:
        connect(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").close()

        async def main() -> None:
            await snapshots(port, until=lambda seen: len(seen) == 3)  # all three listen
            streams = [await subscribe(port, "t") for _ in range(12)]
            holding = await snapshots(port, until=lambda seen: sum(seen.values()) == 12)
            assert len([pid for pid, n in holding.items() if n]) >= 2, holding
            sent = await asyncio.gather(*(published(port, str(i)) for i in range(60)))
            got = [await ids_of(s, 60) for s in streams]
            assert sorted(got[0]) == sorted(sent)
            assert all(g == got[0] for g in got)
            for s in streams:
                s.close()

        asyncio.run(main())
        assert (tmp_path / "ssehub.db").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        code, out, err = finish(proc)
    assert code == 0, err
    assert "3 workers on port" in out
    assert os.listdir(tmp_path / "ssehub.db.wake") == []  # each removed its socket


def test_serve_workers_prints_its_start_summary_once(tmp_path: Path) -> None:
    """`serve --workers 2`: the parent's line, then one worker's summary and
    one "shutting down" — not one of each per worker."""
    port = free_port()
    proc = spawn("serve", "--port", str(port), "--workers", "2", "--anonymous-publish",
                 "--store", f"sqlite:///{tmp_path}/hub.db")  # fmt: skip
    try:
        connect(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").close()
        # both listen, so both are past the point where a summary is printed
        asyncio.run(snapshots(port, until=lambda seen: len(seen) == 2))
    finally:
        proc.send_signal(signal.SIGTERM)
        code, out, err = finish(proc)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"ssehub: 2 workers on port {port} (store sqlite:///{tmp_path}/hub.db)"
    assert len([line for line in lines if "/.well-known/mercure (history:" in line]) == 1, out
    assert len([line for line in lines if line.startswith("ssehub: publish:")]) == 1, out
    assert lines.count("ssehub: shutting down") == 1, out


def test_serve_workers_stopped_as_they_start_stop_in_a_background_job(tmp_path: Path) -> None:
    """A background job (`ssehub serve --workers 2 &`, a CI step) has
    SIGINT ignored, and an ignored signal stays ignored across exec: a
    worker still starting when SIGINT came would miss it and run on with
    nobody left to stop it. The parent catches SIGINT before it starts
    them, so they start with it at its default."""
    port = free_port()
    proc = spawn("serve", "--port", str(port), "--workers", "2", "--anonymous-publish",
                 "--store", f"sqlite:///{tmp_path}/hub.db", sigint="ignore")  # fmt: skip
    workers: list[int] = []
    try:
        assert proc.stdout is not None
        assert "2 workers on port" in proc.stdout.readline()  # started, not yet listening
        workers = [
            int(child)
            for task in Path(f"/proc/{proc.pid}/task").iterdir()
            for child in (task / "children").read_text().split()
        ]
        proc.send_signal(signal.SIGINT)
        finish(proc)
    finally:
        for pid in workers:  # one that missed it: not left running
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        stop(proc)


async def snapshots(port: int, until: Callable[[dict[int, int]], bool]) -> dict[int, int]:
    """Subscribers per worker pid, from the dashboard's snapshots: new
    connections (the kernel spreads them) until `until(seen)`."""
    seen: dict[int, int] = {}
    for _ in range(200):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /_ssehub/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            while True:
                line = await asyncio.wait_for(reader.readline(), 10)
                if line.startswith(b"data: "):
                    snapshot = json.loads(line[6:])
                    break
        finally:
            writer.close()
        seen[snapshot["pid"]] = snapshot["subscribers"]
        if until(seen):
            return seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"the workers' snapshots never added up: {seen}")


def test_a_database_deep_in_folders_still_wakes_its_peers(tmp_path: Path) -> None:
    """A socket path is at most 107 bytes: past that, the wake folder is
    named through a descriptor. The poll is an hour: it came by wake-up."""
    folder = tmp_path / ("x" * 60) / ("y" * 60)
    folder.mkdir(parents=True)
    path = folder / "hub.db"

    async def main() -> None:
        async with (
            Hub(backend=SharedSQLiteBackend(path, poll=3600)) as a,
            Hub(backend=SharedSQLiteBackend(path, poll=3600)) as b,
            b.subscribe("t") as on_b,
        ):
            assert len(os.listdir(folder / "hub.db.wake")) == 2
            sent = await a.publish("t", "deep")
            assert await take(on_b, 1) == [sent]
        assert os.listdir(folder / "hub.db.wake") == []

    asyncio.run(main())


def test_many_commits_at_once_wake_a_peer_with_a_few_datagrams(tmp_path: Path) -> None:
    """Coalesced: one datagram per peer per loop iteration of the publisher,
    not one per commit (and the peer reads once per wake-up, however many)."""
    path = tmp_path / "hub.db"

    async def main() -> None:
        a, b = SharedSQLiteBackend(path, poll=3600), SharedSQLiteBackend(path, poll=3600)
        async with Hub(backend=a), Hub(backend=b) as hub_b, hub_b.subscribe("t") as on_b:
            wake = a._wake
            assert wake is not None
            sent = await asyncio.gather(*(a.append(record(i)) for i in range(500)))
            assert all(sent)
            assert len(await take(on_b, 500)) == 500
            assert 1 <= wake.sent < 100, wake.sent

    def record(i: int) -> Record:
        event = Event(str(i), id=f"e{i}")
        return Record(("t",), event, 1e10, encode_event(event))

    asyncio.run(main())


def test_the_commit_itself_wakes_the_peers_before_its_answer(tmp_path: Path) -> None:
    """The writer thread sends the datagrams right after the commit: a peer
    is woken while this process's loop still has the fan-out pass ahead of
    it (under load a pass is tens of ms), not one loop turn later."""
    path = tmp_path / "hub.db"
    peer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    async def main() -> None:
        store = SharedSQLiteBackend(path, poll=3600)
        await store.start()
        try:
            peer.bind(str(tmp_path / "hub.db.wake" / "peer"))
            peer.setblocking(False)
            event = Event("x", id="e1")
            assert await store.append(Record(("t",), event, 1e10, encode_event(event)))
            # no await since the answer: the loop has not turned
            assert peer.recv(16) == b"!"
        finally:
            await store.aclose()

    try:
        asyncio.run(main())
    finally:
        peer.close()


def test_serve_workers_one_killed_mid_stream_its_clients_resume_on_the_port(
    tmp_path: Path,
) -> None:
    """`serve --workers 3` on one port: kill -9 a worker that holds streams,
    mid-stream; its clients reconnect to the same port (the kernel sends
    them to a worker still there) and resume with no gap."""
    port = free_port()
    proc = spawn("serve", "--port", str(port), "--workers", "3", "--anonymous-publish",
                 "--store", f"sqlite:///{tmp_path}/hub.db")  # fmt: skip
    try:
        connect(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").close()

        async def publish_retrying(data: str) -> str | None:
            try:
                return await published(port, data)
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                return None  # reached the killed worker as it died: not acknowledged

        async def main() -> None:
            await snapshots(port, until=lambda seen: len(seen) == 3)
            streams = [await subscribe(port, "t") for _ in range(12)]
            holding = await snapshots(port, until=lambda seen: sum(seen.values()) == 12)
            victim = max(holding, key=lambda pid: holding[pid])
            for i in range(60):
                await publish_retrying(str(i))
                if i == 30:
                    os.kill(victim, signal.SIGKILL)
            final = None
            while final is None:
                final = await publish_retrying("last")
            order = seq_order(tmp_path / "hub.db")
            assert order[-1] == final
            cut = 0
            for s in streams:
                seen: list[str] = []
                try:
                    while len(seen) < len(order):
                        seen += await ids_of(s, 1)
                except (EOFError, ConnectionError, TimeoutError):
                    cut += 1
                    resumed = await subscribe(port, "t", last_event_id=seen[-1])
                    seen += await ids_of(resumed, len(order) - len(seen))
                    resumed.close()
                assert seen == order  # every event once, in the file's order
                s.close()
            assert cut == holding[victim] > 0

        asyncio.run(main())
    finally:
        proc.send_signal(signal.SIGTERM)
        code, _, err = finish(proc)
    assert code != 0  # the worst of the workers' exit codes: the killed one's
    assert "Traceback" not in err, err  # the survivors stopped cleanly


def test_serve_workers_interrupted_while_starting_them_stops_every_one(tmp_path: Path) -> None:
    """SIGINT while `serve --workers 6` is still starting its workers: the
    ones started get it, the one being started gets it too, no more start,
    and the command returns. (Sent as soon as the first worker exists; an
    attempt where all six had started by then — the parent says so once
    they have — proves nothing and is made again.)"""
    for _ in range(5):
        port = free_port()
        proc = spawn("serve", "--port", str(port), "--workers", "6", "--anonymous-publish",
                     "--store", f"sqlite:///{tmp_path}/hub.db")  # fmt: skip
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        started: set[int] = set()
        try:
            deadline = time.monotonic() + 30
            while not children.read_text().split():
                assert time.monotonic() < deadline, "no worker started"
            proc.send_signal(signal.SIGINT)
            try:
                out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                started = {int(pid) for pid in children.read_text().split()}
                raise AssertionError(f"still running: workers {sorted(started)}") from None
            if "6 workers on port" not in out:  # it came while they started
                assert proc.returncode in (0, 130), (proc.returncode, err)
                return
        finally:
            for pid in started:  # ones that missed it: not left running
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            stop(proc)
    raise AssertionError("SIGINT never came while the workers were starting")
