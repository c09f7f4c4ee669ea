"""The deployment files run what they say: the container's entry command with
the container's environment, the systemd unit through `systemd-analyze
verify`, the compose file's two hubs on one Redis."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest

from ssehub.client import EventSource
from tests.support.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "a-deployment-test-secret-of-32-bytes!"


def dockerfile() -> dict[str, object]:
    """The instructions of the Dockerfile that matter at run time."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    found: dict[str, object] = {"env": env}
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ENV":
            env.update(re.findall(r"(\w+)=(\S+)", rest))
        elif word in ("CMD", "USER", "VOLUME", "WORKDIR", "STOPSIGNAL"):
            found[word] = json.loads(rest) if rest.startswith("[") else rest.strip()
        elif word == "HEALTHCHECK":
            found[word] = json.loads(rest[rest.index("CMD") + 3 :].strip())
    return found


def resolve(command: list[str]) -> list[str]:
    """The image's `ssehub` / `python` are this environment's."""
    bin_dir = Path(sys.executable).parent
    names = {"python": sys.executable, "ssehub": str(bin_dir / "ssehub")}
    return [names.get(command[0], command[0]), *command[1:]]


def token(**claims: list[str]) -> str:
    return jwt.encode({"mercure": claims}, SECRET, algorithm="HS256")


def test_container_runs_as_a_user_with_a_volume_and_a_healthcheck() -> None:
    image = dockerfile()
    assert image["USER"] not in ("", "root", "0")
    assert image["VOLUME"] == image["WORKDIR"] == "/data"
    env = image["env"]
    assert isinstance(env, dict)
    assert env["SSEHUB_STORE"].startswith("sqlite:/data/")  # history in the volume
    assert image["STOPSIGNAL"] == "SIGTERM"


def test_container_entry_command_serves_keeps_history_and_stops_cleanly(tmp_path: Path) -> None:
    """The CMD with the image's ENV (the volume mapped to a temporary folder,
    loopback instead of 0.0.0.0: tests bind 127.0.0.1 only) and the key an
    operator passes with `-e`: the HEALTHCHECK passes, a publish is stored,
    SIGTERM exits 0, and a restart replays from the volume."""
    image = dockerfile()
    env = dict(image["env"])  # type: ignore[call-overload]
    port = free_port()
    env.update(
        SSEHUB_HOST="127.0.0.1",
        SSEHUB_PORT=str(port),
        SSEHUB_STORE=env["SSEHUB_STORE"].replace("/data", str(tmp_path)),
        SSEHUB_JWT_KEY=SECRET,
    )
    full_env = {**os.environ, **env}
    command = resolve(image["CMD"])  # type: ignore[arg-type]
    healthcheck = resolve(image["HEALTHCHECK"])  # type: ignore[arg-type]
    url = f"http://127.0.0.1:{port}/.well-known/mercure"

    def start() -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            command, cwd=tmp_path, env=full_env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while subprocess.run(healthcheck, env=full_env, capture_output=True).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"not healthy: {proc.communicate(timeout=10)}")
            time.sleep(0.1)
        return proc

    proc = start()
    try:
        published = httpx.post(
            url,
            data={"topic": "status", "data": "deployed"},
            headers={"Authorization": f"Bearer {token(publish=['*'])}"},
            timeout=10,
        )
        assert published.status_code == 200, published.text
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert list(tmp_path.glob("*.db")), "history is not in the volume"

    proc = start()
    try:
        headers = {"Authorization": f"Bearer {token(subscribe=['*'])}"}
        with EventSource(
            f"{url}?topic=status&lastEventID=earliest", headers=headers, retry=0.05
        ) as source:
            first = next(iter(source))
        assert (first.data, first.id) == ("deployed", published.text)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err


def test_systemd_unit_passes_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (ROOT / "deploy" / "ssehub.service").read_text()
    # verify checks that ExecStart's program exists: point it at this checkout's
    ssehub = resolve(["ssehub"])[0]
    assert "ExecStart=/opt/ssehub/bin/ssehub serve" in unit
    (tmp_path / "ssehub.service").write_text(unit.replace("/opt/ssehub/bin/ssehub", ssehub))
    result = subprocess.run(
        [analyze, "verify", str(tmp_path / "ssehub.service")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    problems = [line for line in result.stderr.splitlines() if "ssehub.service" in line]
    assert result.returncode == 0, result.stderr
    assert not problems, result.stderr


def test_compose_runs_two_hubs_on_one_redis() -> None:
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    hubs = [s for s in services.values() if "build" in s]
    assert len(hubs) == 2
    stores = {h["environment"]["SSEHUB_STORE"] for h in hubs}
    assert stores == {"redis://redis:6379/0"}
    assert all(h["depends_on"]["redis"]["condition"] == "service_healthy" for h in hubs)
    assert len({h["ports"][0] for h in hubs}) == 2
