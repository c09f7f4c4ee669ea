"""docs/migration.md, run: its `ssehub serve` commands start real hubs, its
`ssehub token` and Python snippet make the tokens, and every `curl` command
followed by `# expected output` lines is run through bash against the hub
started last, its output compared with those lines (`...`: anything)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import jwt
import pytest

from ssehub.protocol import EventStreamParser
from tests.support.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "migration.md").read_text()
KEY = "!ChangeThisMercureHubJWTSecretKey!"
BIN = str(Path(sys.executable).parent)


def commands() -> list[tuple[str, list[str]]]:
    """Each command of the page's sh blocks (continuation lines joined) and
    the `# ` lines after it."""
    found: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```sh\n(.*?)```", DOC, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("# "):
                found[-1][1].append(line[2:])
            elif line.strip() and not line.startswith("export "):
                found.append((re.sub(r"\s+#.*$", "", line).strip(), []))
    return found


def python_snippet() -> str:
    (code,) = re.findall(r"```python\n(.*?)```", DOC, re.S)
    return str(code)


def shell(command: str, port: int, env: dict[str, str]) -> str:
    command = command.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}")
    command = command.replace("curl ", "curl --max-time 3 ", 1)
    done = subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "KEY": KEY, **env},
    )
    assert done.returncode in (0, 28), (command, done.stderr)  # 28: --max-time on a stream
    return done.stdout.replace("\r", "")


def shows(output: str, expected: str) -> bool:
    pattern = ".*".join(re.escape(piece) for piece in expected.split("..."))
    return re.search(pattern, output) is not None


@contextmanager
def serving(command: str) -> Iterator[int]:
    port = free_port()
    line = command.replace("--port 8000", f"--port {port}")
    proc = subprocess.Popen(
        ["bash", "-c", f"exec {line}"],
        cwd=tempfile.mkdtemp(prefix="ssehub-migration-"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "KEY": KEY},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the hub did not start"
                time.sleep(0.05)
        yield port
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def first_data(response: httpx.Response) -> str:
    parser = EventStreamParser()
    for chunk in response.iter_raw():
        for event in parser.feed(chunk):
            return event.data
    raise AssertionError("the stream ended")


@pytest.mark.skipif(shutil.which("curl") is None and not os.environ.get("CI"), reason="no curl")
def test_the_migration_page_commands_do_what_it_says() -> None:
    found = commands()
    serves = [c for c, _ in found if c.startswith("ssehub serve")]
    assert len(serves) == 2
    assert "--mercure-dialect 1.0" not in serves[0]
    assert "--mercure-dialect 1.0" in serves[1]
    names: dict[str, object] = {}
    exec(python_snippet(), {"KEY": KEY}, names)
    reader = str(names["token"])
    assert jwt.get_unverified_header(reader)["typ"] == "at+jwt"
    names = {}
    exec(python_snippet().replace('["subscribe"]', '["publish"]'), {"KEY": KEY}, names)
    env = {"TOKEN10": reader, "PUBLISHER10": str(names["token"])}
    checked = 0
    with serving(serves[0]) as port:
        (token_command,) = [c for c, _ in found if c.startswith("ssehub token")]
        old = shell(token_command, port, env).strip()
        claims = jwt.decode(old, KEY, algorithms=["HS256"])
        assert claims["mercure"]["subscribe"] == ["https://example.com/books/{id}"]
        hub = f"http://127.0.0.1:{port}/.well-known/mercure"
        with (
            httpx.Client(timeout=10) as client,
            client.stream("GET", hub, params={"topic": "https://example.com/books/1"}) as v0,
            client.stream(
                "GET",
                hub,
                params={"match_urlpattern": "https://example.com/books/:id"},
                headers={"Authorization": f"Bearer {reader}"},
            ) as v1,
        ):
            assert (v0.status_code, v1.status_code) == (200, 200)
            for command, expected in found[: found.index((serves[1], []))]:
                if command.startswith("curl") and expected:
                    output = shell(command, port, env)
                    for line in expected:
                        assert shows(output, line), (command, line, output)
                    checked += 1
            # "Subscribers of both dialects receive it"
            assert first_data(v0) == first_data(v1) == '{"title": "1.0"}'
    with serving(serves[1]) as port:
        for command, expected in found[found.index((serves[1], [])) :]:
            if command.startswith("curl") and expected:
                output = shell(command, port, env)
                assert all(shows(output, line) for line in expected), (command, output)
                checked += 1
        old = jwt.encode({"mercure": {"publish": ["*"]}}, KEY)
        r = httpx.post(
            f"http://127.0.0.1:{port}/.well-known/mercure",
            content="topic=a&data=x",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": f"Bearer {old}",
            },
            timeout=10,
        )
        assert r.status_code == 401
        assert r.text.strip() in DOC.replace("\n", " ")  # the reason the page quotes
    assert checked == 5  # metadata, resume, mixed, publish; and the 1.0-only refusal
