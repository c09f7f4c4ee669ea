"""The `ssehub` command as a user runs it: a real process, real sockets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from ssehub.protocol import Event, EventStreamParser

from .helpers import free_port


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ssehub", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def connect(port: int, request: bytes) -> socket.socket:
    deadline = time.monotonic() + 10
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    sock.sendall(request)
    return sock


def stop(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    return proc.returncode, out, err


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=20)
    return proc.returncode, out, err


def test_demo_publishes_the_time_every_second_and_serves_the_page() -> None:
    port = free_port()
    proc = spawn("demo", "--port", str(port), "--interval", "0.2")
    try:
        sock = connect(port, b"GET /.well-known/mercure?topic=clock HTTP/1.1\r\nHost: x\r\n\r\n")
        parser = EventStreamParser()
        data = b""
        events: list[Event] = []
        while len(events) < 3:
            chunk = sock.recv(4096)
            assert chunk, "stream ended"
            if not data:
                assert chunk.startswith(b"HTTP/1.1 200 OK")
                chunk = chunk.partition(b"\r\n\r\n")[2]
            data += chunk
            events.extend(parser.feed(chunk))
        assert all(e.data[:4].isdigit() and "T" in e.data for e in events)
        assert len({e.data for e in events}) >= 1
        sock.close()
        page = connect(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        body = b""
        while chunk := page.recv(65536):
            body += chunk
        page.close()
        assert b"new EventSource" in body or b"live.js" in body
    finally:
        code, out, err = stop(proc)
    assert code == 0, err
    assert f"http://127.0.0.1:{port}/" in out


def test_serve_shuts_down_cleanly_on_sigterm() -> None:
    port = free_port()
    proc = spawn("serve", "--port", str(port), "--anonymous-publish", "--grace", "1")
    try:
        sub = connect(port, b"GET /.well-known/mercure?topic=t HTTP/1.1\r\nHost: x\r\n\r\n")
        head = sub.recv(4096)
        assert head.startswith(b"HTTP/1.1 200 OK")
        body = b"topic=t&data=hello"
        pub = connect(
            port,
            b"POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body,
        )
        assert pub.recv(4096).startswith(b"HTTP/1.1 200 OK")
        pub.close()
    finally:
        code, out, err = stop(proc)
    rest = b""
    while chunk := sub.recv(4096):  # the stream was ended by the server
        rest += chunk
    sub.close()
    assert b"data: hello" in head + rest
    assert code == 0, err
    assert "shutting down" in out


def test_bad_arguments_exit_2_with_a_reason() -> None:
    code, _, err = finish(spawn("demo", "--interval", "0"))
    assert code == 2
    assert "--interval must be > 0" in err
    code, _, err = finish(spawn("serve", "--page", "/does/not/exist"))
    assert code == 2
    assert "not a directory" in err


def test_port_in_use_exits_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = finish(spawn("serve", "--port", str(port)))
    assert code == 2
    assert "address already in use" in err
