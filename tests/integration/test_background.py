"""BackgroundHub: a plain synchronous program publishing to browsers."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from ssehub import BackgroundHub, MemoryBackend
from ssehub.hub import HubClosedError
from ssehub.protocol import Event, EventStreamParser
from tests.support.helpers import free_port


class SyncStream:
    """A blocking SSE subscriber over a real socket."""

    def __init__(self, port: int, topic: str, last_event_id: str | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        extra = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id else ""
        self.sock.sendall(
            f"GET /.well-known/mercure?topic={topic} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()
        )
        self.parser = EventStreamParser()
        self.events: list[Event] = []
        self.head = b""
        while b"\r\n\r\n" not in self.head:
            self.head += self.sock.recv(4096)
        self.head, _, rest = self.head.partition(b"\r\n\r\n")
        self.events.extend(self.parser.feed(rest))

    def take(self, n: int) -> list[Event]:
        while len(self.events) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"stream ended after {len(self.events)} events")
            self.events.extend(self.parser.feed(chunk))
        taken, self.events = self.events[:n], self.events[n:]
        return taken

    def read_to_eof(self) -> None:
        while chunk := self.sock.recv(65536):
            self.events.extend(self.parser.feed(chunk))

    def close(self) -> None:
        self.sock.close()


def wait_for(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.01)


def test_publish_from_many_threads_reaches_the_browser_side() -> None:
    with BackgroundHub(port=0) as hub:
        stream = SyncStream(hub.port, "clock")
        wait_for(lambda: hub.statistics().subscribers == 1)
        sent: list[str] = []
        lock = threading.Lock()

        def worker(n: int) -> None:
            for i in range(100):
                event_id = hub.publish("clock", f"{n}:{i}")
                with lock:
                    sent.append(event_id)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got = stream.take(400)
        assert sorted(e.id or "" for e in got) == sorted(sent)
        stream.close()


def test_leaving_the_block_ends_streams_within_grace() -> None:
    hub = BackgroundHub(port=0, grace=2.0).start()
    streams = [SyncStream(hub.port, "t") for _ in range(5)]
    wait_for(lambda: hub.statistics().subscribers == 5)
    last = hub.publish("t", "last words")
    started = time.monotonic()
    hub.stop()
    elapsed = time.monotonic() - started
    for stream in streams:
        stream.read_to_eof()  # the server closed it
        assert [e.id for e in stream.events] == [last]
        stream.close()
    assert elapsed < 2.0 + 1.0
    with pytest.raises(HubClosedError):
        hub.publish("t", "too late")
    hub.stop()  # idempotent


def test_restart_on_the_same_backend_resumes_without_loss() -> None:
    backend = MemoryBackend()
    port = free_port()
    with BackgroundHub(port=port, backend=backend) as hub:
        first = hub.publish("t", "before")
    with BackgroundHub(port=port, backend=backend) as hub:
        missed = [hub.publish("t", f"while away {i}") for i in range(3)]
        stream = SyncStream(port, "t", last_event_id=first)
        assert [e.id for e in stream.take(3)] == missed
        stream.close()


def test_port_in_use_is_a_clear_error() -> None:
    with BackgroundHub(port=0) as first, pytest.raises(OSError, match="address already in use"):
        BackgroundHub(port=first.port).start()


def test_publish_validates_in_the_calling_thread() -> None:
    with BackgroundHub(port=0) as hub, pytest.raises(ValueError, match="Event id"):
        hub.publish("t", "x", id="a\nb")


def test_serves_your_own_folder(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    (folder / "index.html").write_text("<p>mine</p>")
    with BackgroundHub(port=0, page=folder) as hub:
        with socket.create_connection(("127.0.0.1", hub.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK")
        assert data.endswith(b"<p>mine</p>")
        assert hub.url == f"http://127.0.0.1:{hub.port}"
