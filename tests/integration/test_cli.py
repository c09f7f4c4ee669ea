"""The `ssehub` command as a user runs it: a real process, real sockets."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ssehub import BackgroundHub
from ssehub.protocol import Event, EventStreamParser
from tests.support.helpers import free_port
from tests.support.processes import SECRET, connect, finish, run_cli, spawn, stop


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
    assert f"the dashboard is at http://127.0.0.1:{port}/_ssehub/" in out


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
    # one structured line per stream opened and closed, with the reason
    assert "ssehub.server stream open peer=127.0.0.1:" in err
    assert "topics=t last_event_id=None replayed=0 gap=False" in err
    assert "stream closed peer=127.0.0.1:" in err
    assert "reason=shutdown" in err


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


def test_listen_prints_events_in_each_format() -> None:
    with BackgroundHub(port=0) as hub:
        first = hub.publish("news", "hello\nworld", event="greeting")
        second = hub.publish("news", "second")
        common = [
            "--hub",
            hub.url,
            "--topic",
            "news",
            "--last-event-id",
            "earliest",
            "--count",
            "2",
        ]
        as_json = run_cli("listen", *common, "--format", "json")
        assert as_json.returncode == 0, as_json.stderr
        assert [json.loads(line) for line in as_json.stdout.splitlines()] == [
            {"event": "greeting", "data": "hello\nworld", "id": first, "retry": None},
            {"event": "message", "data": "second", "id": second, "retry": None},
        ]
        as_text = run_cli("listen", *common)
        assert as_text.stdout == "hello\nworld\nsecond\n"
        raw = run_cli("listen", f"{hub.url}/.well-known/mercure?topic=news", "--count", "1",
                      "--last-event-id", first, "--format", "raw")  # fmt: skip
        assert raw.stdout == f"id: {second}\ndata: second\n\n"


def test_listen_exit_codes() -> None:
    with BackgroundHub(port=0) as hub:
        missing = run_cli("listen", f"{hub.url}/nope")
        assert missing.returncode == 1
        assert "status 404" in missing.stderr
        assert "not found: /nope" in missing.stderr
        usage = run_cli("listen", "--hub", hub.url)
        assert usage.returncode == 2
        assert "--hub needs at least one --topic" in usage.stderr
    gone = run_cli("listen", f"http://127.0.0.1:{free_port()}/", "--max-retries", "0")
    assert gone.returncode == 1
    assert "gave up after 1 failed attempts" in gone.stderr


def test_pipe_to_a_running_hub() -> None:
    with BackgroundHub(port=0, anonymous_publish=True) as hub:
        done = run_cli("pipe", "logs", "--hub", hub.url, stdin="first line\r\nsecond line\n\nlast")
        assert done.returncode == 0, done.stderr
        listen = run_cli("listen", "--hub", hub.url, "--topic", "logs",
                         "--last-event-id", "earliest", "--count", "4", "--format", "json")  # fmt: skip
        assert [json.loads(x)["data"] for x in listen.stdout.splitlines()] == [
            "first line",
            "second line",
            "",
            "last",
        ]
    with BackgroundHub(port=0) as closed:
        refused = run_cli("pipe", "logs", "--hub", closed.url, stdin="x\n")
        assert refused.returncode == 1
        assert "403 publishing over HTTP is disabled" in refused.stderr


def test_pipe_serve_delivers_everything_read_then_stops() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssehub", "pipe", "build", "--serve", "--port", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    sock = connect(port, b"GET /.well-known/mercure?topic=build HTTP/1.1\r\nHost: x\r\n\r\n")
    head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 200 OK")
    lines = [f"step {i}" for i in range(50)]
    _, err = proc.communicate("\n".join(lines) + "\n", timeout=30)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/?topic=build" in err
    parser = EventStreamParser()
    events = parser.feed(head.partition(b"\r\n\r\n")[2])
    while chunk := sock.recv(65536):  # until the hub ended the stream
        events += parser.feed(chunk)
    sock.close()
    assert [e.data for e in events] == lines


def test_listen_interrupted_exits_130() -> None:
    with BackgroundHub(port=0) as hub:
        proc = spawn("listen", "--hub", hub.url, "--topic", "quiet")
        deadline = time.monotonic() + 10
        while hub.statistics().subscribers == 0:  # it is connected and waiting
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        code, out, _ = finish(proc)
    assert code == 130
    assert out == ""


def test_serve_with_jwt_token_and_publish_commands() -> None:
    port = free_port()
    proc = spawn("serve", "--port", str(port), "--jwt-key", SECRET)
    try:
        connect(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").close()
        sub_token = run_cli("token", "--jwt-key", SECRET, "--subscribe", "*").stdout.strip()
        hub = f"http://127.0.0.1:{port}"
        refused = run_cli("listen", "--hub", hub, "--topic", "t")
        assert refused.returncode == 1
        assert "subscribing requires a JWT" in refused.stderr
        pub_token = run_cli("token", "--jwt-key", SECRET, "--publish", "t").stdout.strip()
        first = run_cli("publish", "t", "hello", "--hub", hub, "--token", pub_token)
        assert first.returncode == 0, first.stderr
        second = run_cli("publish", "t", "--hub", hub, "--jwt-key", SECRET, "--private",
                         stdin="from stdin")  # fmt: skip
        assert second.returncode == 0, second.stderr
        denied = run_cli("publish", "other", "x", "--hub", hub, "--token", pub_token)
        assert denied.returncode == 1
        assert "403 the JWT does not allow publishing to 'other'" in denied.stderr
        listen = run_cli("listen", "--hub", hub, "--topic", "t", "--last-event-id", "earliest",
                         "--count", "2", "--format", "json",
                         "-H", f"Authorization: Bearer {sub_token}")  # fmt: skip
        got = [json.loads(line) for line in listen.stdout.splitlines()]
        assert [(e["id"], e["data"]) for e in got] == [
            (first.stdout.strip(), "hello"),
            (second.stdout.strip(), "from stdin"),
        ]
    finally:
        stop(proc)


def test_serve_reads_the_environment_and_a_toml_file(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "hub.toml"
    config.write_text('store = "memory:"\nport = 1\ncors-origin = ["https://app.example"]\n')
    env = {"SSEHUB_PORT": str(port), "SSEHUB_ANONYMOUS_PUBLISH": "yes"}  # env over the file
    proc = spawn("serve", "--config", str(config), env=env, cwd=str(tmp_path))
    try:
        body = b"topic=t&data=x"
        pub = connect(
            port,
            b"POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Origin: https://app.example\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body,
        )
        answer = pub.recv(4096)
        pub.close()
        assert answer.startswith(b"HTTP/1.1 200 OK")
        assert b"Access-Control-Allow-Origin: https://app.example" in answer
    finally:
        code, out, err = stop(proc)
    assert code == 0, err
    assert "(history: memory:)" in out
    assert not (tmp_path / "ssehub.db").exists()


def test_serve_keeps_history_in_sqlite_by_default(tmp_path: Path) -> None:
    port = free_port()
    proc = spawn("serve", "--port", str(port), cwd=str(tmp_path))
    try:
        connect(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").close()
    finally:
        code, out, _ = stop(proc)
    assert code == 0
    assert "(history: sqlite:ssehub.db)" in out
    assert (tmp_path / "ssehub.db").exists()


def test_bad_configuration_names_its_source(tmp_path: Path) -> None:
    code, _, err = finish(spawn("serve", env={"SSEHUB_PORT": "eighty"}))
    assert code == 2
    assert err == "ssehub serve: environment SSEHUB_PORT: expected an integer, not 'eighty'\n"
    config = tmp_path / "hub.toml"
    config.write_text("prot = 80\n")
    code, _, err = finish(spawn("serve", "--config", str(config)))
    assert code == 2
    assert "unknown option 'prot'" in err
    config.write_text("port = [\n")
    code, _, err = finish(spawn("serve", "--config", str(config)))
    assert code == 2
    assert "not valid TOML" in err
    code, _, err = finish(spawn("serve", "--log-level", "loud"))
    assert code == 2
    assert "invalid choice: 'loud'" in err
