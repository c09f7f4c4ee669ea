"""The `ssehub` command as a user runs it: a real process, real sockets."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from ssehub import BackgroundHub
from ssehub.protocol import Event, EventStreamParser
from tests.support.helpers import free_port, missing
from tests.support.processes import SECRET, connect, finish, post_form, run_cli, spawn, stop


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
    assert "ssehub demo: publish: from the pages served here (the dashboard's form)" in out


def test_serve_shuts_down_cleanly_on_sigterm() -> None:
    port = free_port()
    proc = spawn("serve", "--port", str(port), "--anonymous-publish", "--grace", "1")
    try:
        sub = connect(port, b"GET /.well-known/mercure?topic=t HTTP/1.1\r\nHost: x\r\n\r\n")
        head = sub.recv(4096)
        assert head.startswith(b"HTTP/1.1 200 OK")
        body = b"topic=t&data=hello"
        pub = post_form(port, body)
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
    assert "ssehub: publish: anyone who can reach the hub" in out
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
    assert (
        err
        == f"ssehub serve: --host 127.0.0.1 --port {port}: cannot listen there: address already in use\n"
    )


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


def test_pipe_serve_exit_at_eof_delivers_everything_read_then_stops() -> None:
    port = free_port()
    proc = spawn(
        "pipe", "build", "--serve", "--exit-at-eof", "--port", str(port), stdin=subprocess.PIPE
    )
    try:
        sock = connect(port, b"GET /.well-known/mercure?topic=build HTTP/1.1\r\nHost: x\r\n\r\n")
        head = sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 200 OK")
        lines = [f"step {i}" for i in range(50)]
        code, _, err = finish(proc, timeout=30, input="\n".join(lines) + "\n")
    finally:
        stop(proc)
    assert code == 0, err
    assert f"http://127.0.0.1:{port}/?topic=build&view=feed" in err
    assert "input ended" not in err
    parser = EventStreamParser()
    events = parser.feed(head.partition(b"\r\n\r\n")[2])
    while chunk := sock.recv(65536):  # until the hub ended the stream
        events += parser.feed(chunk)
    sock.close()
    assert [e.data for e in events] == lines


def _stderr_until(proc: subprocess.Popen[str], text: str, timeout: float = 20) -> str:
    """What `proc` wrote on stderr up to and including `text`."""
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in seen:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        assert ready, f"no {text!r} on stderr within {timeout} s: {seen!r}"
        chunk = os.read(fd, 65536)
        assert chunk, f"stderr closed before {text!r}: {seen!r}"
        seen += chunk
    return seen.decode()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_pipe_serve_keeps_serving_after_input_ends_until_a_signal(
    sig: signal.Signals, tmp_path: Path
) -> None:
    """The URL it printed stays alive: at end of input it says so, the page
    and the history are still served, and Ctrl-C (or SIGTERM) stops it: 0."""
    port = free_port()
    lines = [f"line {i}" for i in range(30)]
    (tmp_path / "input").write_text("\n".join(lines) + "\n")
    with (tmp_path / "input").open() as stdin:
        proc = spawn("pipe", "my logs", "--serve", "--port", str(port), stdin=stdin.fileno())
    try:
        said = _stderr_until(proc, "until Ctrl-C")
        url = f"http://127.0.0.1:{port}/?topic=my+logs&view=feed"
        assert said.splitlines() == [
            f"ssehub pipe: open {url}",
            f"ssehub pipe: input ended (30 lines published); still serving {url} until Ctrl-C",
        ]
        time.sleep(0.5)  # it did not stop on its own
        assert proc.poll() is None
        page = connect(port, b"GET /?topic=my+logs&view=feed HTTP/1.1\r\nHost: x\r\n"
                             b"Connection: close\r\n\r\n")  # fmt: skip
        body = b""
        while chunk := page.recv(65536):
            body += chunk
        page.close()
        assert body.startswith(b"HTTP/1.1 200 OK")
        assert b"live.js" in body
        sock = connect(port, b"GET /.well-known/mercure?topic=my%20logs&lastEventID=earliest "
                             b"HTTP/1.1\r\nHost: x\r\n\r\n")  # fmt: skip
        parser = EventStreamParser()
        data = sock.recv(65536)
        assert data.startswith(b"HTTP/1.1 200 OK")
        events = parser.feed(data.partition(b"\r\n\r\n")[2])
        while len(events) < len(lines):
            chunk = sock.recv(65536)
            assert chunk, "stream ended"
            events += parser.feed(chunk)
        assert [e.data for e in events if e.event != "ssehub-live"] == lines  # the marker aside
        proc.send_signal(sig)
        code, _, err = finish(proc, timeout=20)
        sock.close()
    finally:
        stop(proc)
    assert code == 0, err
    assert "Traceback" not in err


def _subscribed(hub: BackgroundHub, count: int = 1) -> None:
    deadline = time.monotonic() + 10
    while hub.statistics().subscribers < count:  # it is connected and waiting
        assert time.monotonic() < deadline, "the listener never subscribed"
        time.sleep(0.02)


def test_listen_interrupted_exits_130() -> None:
    with BackgroundHub(port=0) as hub:
        proc = spawn("listen", "--hub", hub.url, "--topic", "quiet")
        try:
            _subscribed(hub)
            proc.send_signal(signal.SIGINT)
            code, out, _ = finish(proc)
        finally:
            stop(proc)
    assert code == 130
    assert out == ""


def test_sigint_reaches_the_child_when_the_test_runner_ignores_it() -> None:
    # as when the suite runs as a background job (`pytest &`): SIGINT ignored
    # here, and an ignored signal stays ignored in a child unless it resets it
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with BackgroundHub(port=0) as hub:
            proc = spawn("listen", "--hub", hub.url, "--topic", "quiet")
            try:
                _subscribed(hub)
                proc.send_signal(signal.SIGINT)
                code, _, _ = finish(proc, timeout=10)
            finally:
                stop(proc)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert code == 130


def test_a_child_deaf_to_sigint_is_still_reaped() -> None:
    with BackgroundHub(port=0) as hub:
        proc = spawn("listen", "--hub", hub.url, "--topic", "quiet", sigint="ignore")
        try:
            _subscribed(hub)
            proc.send_signal(signal.SIGINT)
            with pytest.raises(AssertionError, match="still ran after 1 s"):
                finish(proc, timeout=1)  # it ignored SIGINT: killed, and the test told
            assert proc.returncode == -signal.SIGKILL
        finally:
            code, _, _ = stop(proc)
    assert code == -signal.SIGKILL
    with pytest.raises(ProcessLookupError):
        os.kill(proc.pid, 0)  # reaped: no zombie left


def test_serve_with_jwt_token_and_publish_commands(tmp_path: Path) -> None:
    port = free_port()
    proc = spawn("serve", "--port", str(port), "--jwt-key", SECRET)
    try:
        connect(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").close()
        sub_token = run_cli("token", "--jwt-key", SECRET, "--subscribe", "*").stdout.strip()
        hub = f"http://127.0.0.1:{port}"
        refused = run_cli("listen", "--hub", hub, "--topic", "t")
        assert refused.returncode == 1
        assert "subscribing requires a JWT" in refused.stderr
        assert "(give --token JWT, or --jwt-key KEY to mint one)" in refused.stderr
        pub_token = run_cli("token", "--jwt-key", SECRET, "--publish", "t").stdout.strip()
        first = run_cli("publish", "t", "hello", "--hub", hub, "--token", pub_token)
        assert first.returncode == 0, first.stderr
        second = run_cli("publish", "t", "--hub", hub, "--jwt-key", SECRET, "--private",
                         stdin="from stdin")  # fmt: skip
        assert second.returncode == 0, second.stderr
        piped = run_cli("pipe", "t", "--hub", hub, "--jwt-key", SECRET, stdin="piped\n")
        assert piped.returncode == 0, piped.stderr
        denied = run_cli("publish", "other", "x", "--hub", hub, "--token", pub_token)
        assert denied.returncode == 1
        assert "403 the JWT does not allow publishing to 'other'" in denied.stderr
        anonymous = run_cli("publish", "t", "x", "--hub", hub)
        assert anonymous.returncode == 1
        assert "(give --token JWT, or --jwt-key KEY to mint one)" in anonymous.stderr
        expected = [
            (first.stdout.strip(), "hello"),
            (second.stdout.strip(), "from stdin"),  # private: only with a JWT that allows t
        ]
        common = ["--hub", hub, "--topic", "t", "--last-event-id", "earliest", "--count", "3",
                  "--format", "json"]  # fmt: skip
        (tmp_path / "token").write_text(sub_token + "\n")  # as `ssehub token > token` leaves it
        for credentials in (
            ["--token", sub_token],
            ["--token", f"@{tmp_path / 'token'}"],
            ["--jwt-key", SECRET],
        ):
            listen = run_cli("listen", *common, *credentials)
            assert listen.returncode == 0, listen.stderr
            got = [json.loads(line) for line in listen.stdout.splitlines()]
            assert [(e["id"], e["data"]) for e in got][:2] == expected
            assert got[2]["data"] == "piped"
    finally:
        code, out, err = stop(proc)
    assert code == 0, err
    assert "ssehub: publish: with a JWT whose mercure.publish claim covers the topics" in out


def test_serve_reads_the_environment_and_a_toml_file(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "hub.toml"
    config.write_text('store = "memory:"\nport = 1\ncors-origin = ["https://app.example"]\n')
    env = {"SSEHUB_PORT": str(port), "SSEHUB_ANONYMOUS_PUBLISH": "yes"}  # env over the file
    proc = spawn("serve", "--config", str(config), env=env, cwd=str(tmp_path))
    try:
        body = b"topic=t&data=x"
        pub = post_form(port, body, headers=b"Origin: https://app.example\r\n")
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


def _serve_start_lines(*args: str) -> str:
    """What `ssehub serve ARGS` prints as it starts (then it is stopped)."""
    port = free_port()
    proc = spawn("serve", "--port", str(port), "--store", "memory:", *args)
    try:
        connect(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").close()
    finally:
        code, out, err = stop(proc)
    assert code == 0, err
    return out.replace(str(port), "PORT")


def test_serve_says_what_the_hub_accepts_in_flag_names() -> None:
    plain = _serve_start_lines()
    assert plain.splitlines()[:5] == [
        "ssehub: hub on http://127.0.0.1:PORT/.well-known/mercure (history: memory:)",
        "ssehub: publish: off (--jwt-key KEY accepts JWTs, --anonymous-publish lets anyone)",
        "ssehub: subscribe: anyone, public updates only (--jwt-key KEY for private updates)",
        "ssehub: pages of other origins: none (--cors-origin ORIGIN lets them in)",
        "ssehub: dashboard: http://127.0.0.1:PORT/_ssehub/",
    ]
    keyed = _serve_start_lines("--jwt-key", SECRET, "--cors-origin", "https://app.example",
                               "--dashboard-token", "t", "--page", "builtin")  # fmt: skip
    assert "ssehub: publish: with a JWT whose mercure.publish claim covers the topics\n" in keyed
    assert "ssehub: subscribe: with a JWT only (--anonymous lets anyone in for public" in keyed
    assert "ssehub: pages of other origins: https://app.example\n" in keyed
    assert "ssehub: dashboard: http://127.0.0.1:PORT/_ssehub/ (with ?token=…)\n" in keyed
    assert "ssehub: page: http://127.0.0.1:PORT/\n" in keyed
    open_hub = _serve_start_lines("--anonymous-publish", "--jwt-key", SECRET, "--anonymous")
    # a publisher key wins over --anonymous-publish, as the server decides
    assert "ssehub: publish: with a JWT" in open_hub
    assert "ssehub: subscribe: anyone; private updates with a JWT\n" in open_hub
    anyone = _serve_start_lines("--anonymous-publish", "--dashboard", "--host", "127.0.0.1")
    assert (
        "ssehub: publish: anyone who can reach the hub (--jwt-key KEY requires a JWT)\n" in anyone
    )


def test_an_unknown_option_gets_the_command_usage_and_the_nearest_option() -> None:
    typo = run_cli("serve", "--prot", "8000")
    assert typo.returncode == 2
    assert typo.stderr == (
        "usage: ssehub serve [--port N] [--jwt-key KEY | --anonymous-publish] [OPTION]...\n"
        "ssehub serve: unknown option --prot (did you mean --port?)\n"
    )
    listen = run_cli("listen", "http://127.0.0.1:1/", "--tokn=x")
    assert listen.returncode == 2
    assert listen.stderr.splitlines()[-1] == (
        "ssehub listen: unknown option --tokn (did you mean --token?)"
    )
    prefix = run_cli("serve", "--anon", "--store", "memory:", "--port", "0")
    assert prefix.returncode == 2  # flags are never abbreviated: it does not start a hub
    assert prefix.stderr.splitlines()[-1] == (
        "ssehub serve: unknown option --anon (did you mean --anonymous?)"
    )
    command = run_cli("serv")
    assert command.returncode == 2
    assert command.stderr.splitlines()[-1] == "ssehub: unknown command 'serv' (did you mean serve?)"


def test_a_bad_value_is_one_line_naming_the_flag_and_the_type() -> None:
    for args, line in [
        (("serve", "--port", "eighty"), "ssehub serve: --port: expected an integer, not 'eighty'"),
        (("serve", "--heartbeat", "often"), "ssehub serve: --heartbeat: expected a number, not 'often'"),
        (("listen", "--count", "two", "http://x/"), "ssehub listen: --count: expected an integer, not 'two'"),
        (("publish", "t", "--jwt-algorithm", "none"), "ssehub publish: --jwt-algorithm: must be one of HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384, ES512"),
    ]:  # fmt: skip
        done = run_cli(*args)
        assert done.returncode == 2
        assert done.stderr == line + "\n"


def test_config_errors_name_the_flags(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not really a certificate\n")
    for args, line in [
        (("--cert", str(cert)), "ssehub serve: needs both --cert and --key for HTTPS, or neither"),
        (("--idle-timeout", "0"), "ssehub serve: --idle-timeout must be > 0, not 0.0"),
        (("--history-events", "0"), "ssehub serve: --history-events must be an int >= 1, not 0"),
        (("--heartbeat", "-1"), "ssehub serve: --heartbeat must be > 0 seconds, not -1.0"),
        (("--port", "70000"), "ssehub serve: --port must be an int in 0..65535, not 70000"),
    ]:
        done = run_cli("serve", "--store", "memory:", *args)
        assert done.returncode == 2
        assert done.stderr == line + "\n"
    junk = run_cli(
        "serve", "--store", "memory:", "--port", "0", "--cert", str(cert), "--key", str(cert)
    )
    assert junk.returncode == 2
    assert junk.stderr.startswith("ssehub serve: --cert/--key: cannot load them: ")
    assert len(junk.stderr.splitlines()) == 1


def test_an_empty_jwt_key_is_refused(tmp_path: Path) -> None:
    empty = "must not be empty (give a key, or leave the option out)"
    for args in [
        ("serve", "--jwt-key", ""),
        ("serve", "--subscriber-jwt-key", " "),
        ("publish", "t", "x", "--jwt-key", ""),
        ("listen", "http://127.0.0.1:1/", "--token", ""),
        ("token", "--jwt-key", ""),
    ]:
        done = run_cli(*args)
        assert done.returncode == 2
        flag = next(a for a in args if a.startswith("--"))
        assert done.stderr == f"ssehub {args[0]}: {flag}: {empty}\n"
    code, _, err = finish(spawn("serve", env={"SSEHUB_JWT_KEY": ""}))
    assert code == 2
    assert err == f"ssehub serve: environment SSEHUB_JWT_KEY: {empty}\n"
    (tmp_path / "empty.key").write_text("\n")
    done = run_cli("serve", "--publisher-jwt-key", f"@{tmp_path / 'empty.key'}")
    assert done.returncode == 2
    assert (
        done.stderr
        == f"ssehub serve: --publisher-jwt-key: the file {tmp_path / 'empty.key'} is empty\n"
    )
    done = run_cli("listen", "http://127.0.0.1:1/", "--token", f"@{tmp_path / 'none'}")
    assert done.returncode == 2
    assert (
        done.stderr
        == f"ssehub listen: --token: cannot read {tmp_path / 'none'}: No such file or directory\n"
    )


def test_help_says_each_default_once() -> None:
    for command in ("serve", "demo", "listen", "pipe", "publish", "token"):
        done = run_cli(command, "--help")
        assert done.returncode == 0
        text = " ".join(done.stdout.split())  # unwrapped
        assert "(default: None)" not in text
        assert not re.search(r"\(default: [^)]*\) \(default:", text), text
        if command == "serve":
            assert text.count("(default: 8000)") == 1
            assert "--heartbeat SECONDS seconds between heartbeats (default: 15)" in text
            assert "(default: only when listening on loopback)" in text


def test_every_command_that_talks_to_a_hub_takes_the_same_credentials() -> None:
    sections = set()
    for command in ("publish", "pipe", "listen"):
        text = run_cli(command, "--help").stdout
        section = text[text.index("credentials:") :].split("\n\n")[0]
        assert "--token JWT" in section
        assert "--jwt-key KEY" in section
        assert "--jwt-algorithm ALG" in section
        sections.add(" ".join(section.split()))  # wrapped at widths of its own
    assert len(sections) == 1, sections


def test_stdin_data_loses_one_final_line_end() -> None:
    with BackgroundHub(port=0, anonymous_publish=True) as hub:
        for stdin in ('{"x":1}\n', "two lines\n\n", "crlf\r\n", "none"):
            done = run_cli("publish", "t", "--hub", hub.url, stdin=stdin)
            assert done.returncode == 0, done.stderr
        listen = run_cli("listen", "--hub", hub.url, "--topic", "t", "--last-event-id",
                         "earliest", "--count", "4", "--format", "json")  # fmt: skip
    assert [json.loads(x)["data"] for x in listen.stdout.splitlines()] == [
        '{"x":1}',
        "two lines\n",
        "crlf",
        "none",
    ]


def test_a_store_that_cannot_be_opened_is_one_line_naming_store(tmp_path: Path) -> None:
    (tmp_path / "bad.db").write_bytes(b"this is not a SQLite database, not at all" * 4)
    code, _, err = finish(spawn("serve", "--port", "0", "--store", "sqlite:bad.db",
                                cwd=str(tmp_path)))  # fmt: skip
    assert code == 2
    assert err == "ssehub serve: --store sqlite:bad.db: cannot open it: file is not a database\n"
    (tmp_path / "folder.db").mkdir()
    code, _, err = finish(spawn("serve", "--port", "0", "--store", "sqlite:folder.db",
                                cwd=str(tmp_path)))  # fmt: skip
    assert code == 2
    assert (
        err
        == "ssehub serve: --store sqlite:folder.db: cannot open it: unable to open database file\n"
    )
    if importlib.util.find_spec("redis") is None:
        missing("redis-py is not installed")
    down = f"redis://127.0.0.1:{free_port()}/15"
    code, _, err = finish(spawn("serve", "--port", "0", "--store", down))
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"ssehub serve: --store {down}: cannot open it: "), err
    assert "Connection refused" in err


def test_the_option_table_in_the_docs_lists_every_serve_option_with_its_default() -> None:
    from ssehub.cli import _parsers  # the parser itself: what `serve --help` says

    serve = _parsers()[1]["serve"]
    defaults = {
        flag: action.default
        for action in serve._actions
        for flag in action.option_strings
        if flag.startswith("--") and action.help != argparse.SUPPRESS and flag != "--help"
    }
    table = Path(__file__).parents[2].joinpath("docs", "run-a-hub.md").read_text()
    documented: set[str] = set()
    for row in re.findall(r"^\| (`--.*?) \| (.*?) \|", table, flags=re.MULTILINE):
        flags = re.findall(r"`(--[a-z-]+)`", row[0])
        documented.update(flags)
        values = re.findall(r"`([^`]*)`", row[1])
        if len(values) == len(flags):  # the row gives each flag's default
            for flag, value in zip(flags, values, strict=True):
                default = defaults[flag]
                shown = f"{default:g}" if isinstance(default, float) else str(default)
                assert value == shown, f"{flag}: the docs say {value}, the CLI {shown}"
    assert documented == set(defaults)


def test_listen_says_each_failed_attempt_and_the_next_wait_at_once() -> None:
    """A hub that is down must not look like a hub with nothing to say: the
    first failed attempt is on stderr before the first wait is over."""
    url = f"http://127.0.0.1:{free_port()}/.well-known/mercure?topic=t"
    proc = spawn("listen", url, "--retry-forever")
    try:
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 10)  # the first wait is ~3 s
        assert ready, "nothing on stderr while the hub is unreachable"
        line = proc.stderr.readline()
        assert "attempt 1 failed" in line
        assert "next attempt in" in line
        assert url in line
        assert proc.poll() is None  # still trying
    finally:
        stop(proc)
