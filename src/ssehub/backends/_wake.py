"""Waking the other processes that follow one SQLite file: one Unix
datagram socket per process in a folder beside the database
(`<db>.wake/<pid>-<random>`). After a commit a process sends one byte to each peer;
a peer drains its socket and reads the new rows once, however many bytes
came. A datagram lost (a full socket buffer, a peer starting) only delays:
the follower also reads on a slow timer. Not a broker: nothing is carried
but "look again" (docs/decisions/0002-sqlite-workers.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable

__all__ = ("Wake",)

log = logging.getLogger("ssehub.backends.sqlite")
_MAX_PATH = 100  # sun_path holds 108 bytes with its NUL; keep a margin
_DRAIN = 1024  # datagrams read per wake-up at most (the rest: next iteration)


class Wake:
    """This process's wake socket in `folder`; `on_wake()` runs on the loop
    when a peer says it committed. `send()` tells every peer at once, from
    any thread; `notify()` on the loop, once per loop iteration however
    often it is called."""

    __slots__ = ("_dirfd", "_folder", "_loop", "_name", "_on_wake", "_prefix", "_scheduled",
                 "_sock", "sent")  # fmt: skip

    def __init__(self, folder: str, on_wake: Callable[[], None]) -> None:
        self._folder = folder
        self._on_wake = on_wake
        self._name = f"{os.getpid()}-{os.urandom(4).hex()}"  # several per process: tests
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dirfd: int | None = None
        self._prefix = folder
        self._scheduled = False
        self.sent = 0

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind this process's socket and watch it on `loop`."""
        if not hasattr(socket, "AF_UNIX"):
            raise OSError("this platform has no Unix sockets")
        os.makedirs(self._folder, mode=0o700, exist_ok=True)
        if len(os.fsencode(os.path.join(self._folder, self._name))) > _MAX_PATH:
            # a deep folder: name it through a descriptor (Linux), shorter
            self._dirfd = os.open(self._folder, os.O_RDONLY | os.O_DIRECTORY)
            self._prefix = f"/proc/self/fd/{self._dirfd}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind(self._path(self._name))
            loop.add_reader(sock.fileno(), self._drain)
        except BaseException:
            sock.close()
            self._close_dir()
            raise
        self._sock, self._loop = sock, loop

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            with contextlib.suppress(OSError):
                os.unlink(self._path(self._name))
            sock.close()
        self._close_dir()

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

    def _drain(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(_DRAIN):
            try:
                sock.recv(16)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
        self._on_wake()

    def _path(self, name: str) -> str:
        return f"{self._prefix}/{name}"

    def _close_dir(self) -> None:
        fd, self._dirfd = self._dirfd, None
        if fd is not None:
            os.close(fd)
        self._prefix = self._folder
