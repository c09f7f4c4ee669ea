"""A virtual X display (Xvfb) for tests of desktop programs, and what
drives and photographs it (xdotool, ImageMagick's `import`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.helpers import missing

__all__ = ("find_window", "screenshot", "xdotool", "xvfb")


@contextmanager
def xvfb() -> Iterator[str]:
    """A fresh Xvfb on a free display number; yields its `DISPLAY`
    (`:N`), stops it at the end."""
    for tool, package in (("Xvfb", "xvfb"), ("xdotool", "xdotool"), ("import", "imagemagick")):
        if shutil.which(tool) is None:
            missing(f"{tool} is missing (apt-get install {package})")
    read, write = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    os.close(write)
    try:
        with os.fdopen(read) as numbers:
            number = numbers.readline().strip()  # written once the display is up
        if not number:
            why = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise AssertionError(f"Xvfb did not start: {why}")
        yield f":{number}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def xdotool(display: str, *args: str) -> str:
    """Run `xdotool ARGS` on `display`; its output."""
    done = subprocess.run(
        ["xdotool", *args],
        env={**os.environ, "DISPLAY": display},
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    return done.stdout


def find_window(display: str, name: str, timeout: float = 20.0) -> str:
    """The id of the window titled `name`, once it is mapped."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return xdotool(display, "search", "--onlyvisible", "--name", name).split()[0]
        except (subprocess.CalledProcessError, IndexError):
            if time.monotonic() > deadline:
                raise AssertionError(f"no window {name!r} on {display}") from None
            time.sleep(0.1)


def screenshot(display: str, path: Path, window: str = "root") -> None:
    """Save `window` (an id, or the whole screen) of `display` as a PNG."""
    subprocess.run(
        ["import", "-window", window, str(path)],
        env={**os.environ, "DISPLAY": display},
        capture_output=True,
        timeout=30,
        check=True,
    )
