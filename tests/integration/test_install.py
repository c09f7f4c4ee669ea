"""The checkout installs as the README says: a wheel built from it goes into a
fresh virtualenv, carries its license and browser files, and the README's
quickstart import and `ssehub --version` work from there, not from `src/`.

Offline-safe: the wheel is installed with `--no-deps --no-index`, and the
fresh virtualenv sees the dependencies already installed for this test run
(httptools, uvloop) through a `.pth` file. Building the wheel needs pip to
get hatchling (the build backend) from an index; without one the test is
skipped (fails under CI)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import httptools
import pytest

from ssehub import __version__
from tests.support.helpers import missing

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """\
import sys, urllib.request
from ssehub import BackgroundHub

with BackgroundHub(port=0, page=True) as hub:
    page = urllib.request.urlopen(hub.url + "/", timeout=10).read().decode()
    helper = urllib.request.urlopen(hub.url + "/_ssehub/ssehub.js", timeout=10).read()
    assert "EventSource" in page and b"SharedEventSource" in helper
    hub.publish("clock", "12:00:00")
import ssehub
print(ssehub.__file__)
"""


def _run(*command: str | Path, cwd: Path, timeout: float = 60) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


@pytest.mark.timeout(120)
def test_a_wheel_of_the_checkout_installs_into_a_fresh_virtualenv(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    if built.returncode != 0 and "hatchling" in built.stderr:
        missing(f"pip could not get the build backend: {built.stderr.strip()[-300:]}")
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob(f"ssehub-{__version__}-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        license_text = archive.read(f"ssehub-{__version__}.dist-info/licenses/LICENSE").decode()
    assert "MIT License" in license_text
    assert {"ssehub/py.typed", "ssehub/page/index.html", "ssehub/assets/ssehub.js"} <= names

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet",
         "--no-deps", "--no-index", wheel, cwd=tmp_path)  # fmt: skip
    site = _run(
        python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp_path
    )
    deps = Path(httptools.__file__).resolve().parents[1]  # where this run's dependencies are
    (Path(site.strip()) / "test-deps.pth").write_text(f"{deps}\n")

    where = _run(python, "-c", PROGRAM, cwd=tmp_path).strip()
    assert Path(where).is_relative_to(venv), where  # the installed copy, not the checkout
    version = _run(venv / "bin" / "ssehub", "--version", cwd=tmp_path)
    assert version.strip() == f"ssehub {__version__}"
