"""Waking the other processes that follow one SQLite file: one Unix
datagram socket per process in a folder beside the database
(`<db>.wake/<pid>-<random>`). After a commit a process sends one byte to each peer;
a peer's follower thread, blocked waiting on its socket, drains it and
reads the new rows once, however many bytes came — while that peer's loop
goes on with its fan-out pass, so the rows are ready at its next turn. A
datagram lost (a full socket buffer, a peer starting) only delays: the
follower also reads on a slow timer. Not a broker: nothing is carried but
"look again" (docs/decisions/0002-sqlite-workers.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import socket

__all__ = ("Wake",)

log = logging.getLogger("ssehub.backends.sqlite")
_MAX_PATH = 100  # sun_path holds 108 bytes with its NUL; keep a margin
_DRAIN = 1024  # datagrams taken per wake-up at most (the rest: one wake-up more)


class Wake:
    """This process's wake socket in `folder`. `wait()` blocks a thread
    until a peer says it committed (or `poke()` from this process, or a
    timeout). `send()` tells every peer at once, from any thread;
    `notify()` on the loop, once per loop iteration however often it is
    called."""

    __slots__ = ("_dirfd", "_folder", "_loop", "_name", "_pipe", "_prefix", "_scheduled",
                 "_sock", "sent")  # fmt: skip

    def __init__(self, folder: str) -> None:
        self._folder = folder
        self._name = f"{os.getpid()}-{os.urandom(4).hex()}"  # several per process: tests
        self._sock: socket.socket | None = None
        self._pipe: tuple[int, int] | None = None  # `poke()` writes, `wait()` reads
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dirfd: int | None = None
        self._prefix = folder
        self._scheduled = False
        self.sent = 0

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind this process's socket (`notify()` schedules on `loop`)."""
        if not hasattr(socket, "AF_UNIX") or not hasattr(select, "poll"):
            raise OSError("this platform has no Unix sockets")
        os.makedirs(self._folder, mode=0o700, exist_ok=True)
        if len(os.fsencode(os.path.join(self._folder, self._name))) > _MAX_PATH:
            # a deep folder: name it through a descriptor (Linux), shorter
            self._dirfd = os.open(self._folder, os.O_RDONLY | os.O_DIRECTORY)
            self._prefix = f"/proc/self/fd/{self._dirfd}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            # non-blocking: `send()` never waits for a peer's full buffer
            sock.setblocking(False)
            sock.bind(self._path(self._name))
            pipe = os.pipe()
        except BaseException:
            sock.close()
            self._close_dir()
            raise
        for fd in pipe:
            os.set_blocking(fd, False)
        self._sock, self._pipe, self._loop = sock, pipe, loop

    def close(self) -> None:
        """After the thread that waits has stopped."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._path(self._name))
            sock.close()
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            for fd in pipe:
                os.close(fd)
        self._close_dir()

    def wait(self, timeout: float) -> None:
        """Block this thread until a peer's datagram or a `poke()` comes, or
        `timeout` seconds pass; take every datagram and poke waiting (one
        wake-up, however many came)."""
        sock, pipe = self._sock, self._pipe
        if sock is None or pipe is None:
            raise RuntimeError("the wake socket is closed")
        poller = select.poll()  # (not select(): no limit on descriptor numbers)
        poller.register(sock.fileno(), select.POLLIN)
        poller.register(pipe[0], select.POLLIN)
        if not poller.poll(max(timeout, 0.0) * 1000):
            return
        for _ in range(_DRAIN):
            try:
                sock.recv(16)
            except OSError:  # drained (BlockingIOError), or nothing more to take
                break
        with contextlib.suppress(OSError):
            os.read(pipe[0], _DRAIN)

    def poke(self) -> None:
        """End a `wait()` now (or the next one), from any thread."""
        pipe = self._pipe
        if pipe is not None:
            with contextlib.suppress(OSError):  # full: a poke is waiting already
                os.write(pipe[1], b"!")

    def notify(self) -> None:
        """Tell the peers to look again, soon (coalesced: one datagram per
        peer per loop iteration)."""
        if self._sock is None or self._scheduled or self._loop is None:
            return
        self._scheduled = True
        self._loop.call_soon(self._notified)

    def _notified(self) -> None:
        self._scheduled = False
        self.send()

    def send(self) -> None:
        """Tell the peers to look again, now: one datagram each. Safe from
        any thread (the writer's, right after its commit), until `close()`."""
        sock = self._sock
        if sock is None:
            return
        try:
            peers = os.listdir(self._folder)
        except OSError:
            return
        for name in peers:
            if name == self._name:
                continue
            path = self._path(name)
            self.sent += 1  # tried: a full buffer counts too
            try:
                sock.sendto(b"!", path)
            except BlockingIOError:
                pass  # its buffer is full: it has wake-ups waiting already
            except ConnectionRefusedError:  # nobody there: a worker that died
                with contextlib.suppress(OSError):
                    os.unlink(path)
            except OSError as error:  # gone meanwhile, or not a socket of ours
                log.debug("waking %s failed: %s", path, error)

    def _path(self, name: str) -> str:
        return f"{self._prefix}/{name}"

    def _close_dir(self) -> None:
        fd, self._dirfd = self._dirfd, None
        if fd is not None:
            os.close(fd)
        self._prefix = self._folder
