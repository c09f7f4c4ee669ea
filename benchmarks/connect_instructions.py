"""Instructions per connect, counted by callgrind: `ssehub serve` (memory
store) under `valgrind --tool=callgrind`, pinned to core 0, N and then 2N
subscribers connecting with `sseload` (512 in flight, core 1) and leaving;
the difference of the two runs' totals over the N more connects is one
connect's and one disconnect's user-space instructions (Python, uvloop,
httptools, libc; not the kernel's). A count, not a time: the figure to
compare A/B on a shared machine (about 1 % apart from run to run: how many
connects a loop turn takes varies).

    SSELOAD_DIR=/tmp/sseload .venv/bin/python benchmarks/connect_instructions.py
    .venv/bin/python benchmarks/connect_instructions.py -c 1000 --src /old/src --src src
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script: the repository root on sys.path (for `benchmarks.*`),
# instead of this folder, whose modules must not shadow the standard library.
if Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from benchmarks.fanout import PY, free_port, wait_port
from benchmarks.publish_cost import instructions


def counted(src: Path | None, subs: int, out: Path, sseload: Path, query: str) -> int:
    """Subscribers established, once the server (under callgrind, writing
    `out` when it exits) has had `subs` of them connect and leave."""
    port = free_port()
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
           PY, "-m", "ssehub", "serve", "--port", str(port), "--anonymous-publish",
           "--log-level", "warning", "--store", "memory:"]  # fmt: skip
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    quiet = subprocess.DEVNULL
    proc = subprocess.Popen(cmd, env=env, stdout=quiet, stderr=quiet)
    try:
        wait_port(port, 300, proc)
        with tempfile.TemporaryDirectory() as tmp:
            load = [str(sseload), "-c", str(subs), "-n", "1000000000", "-d", "0.2", "-T", "300",
                    "-F", f"{tmp}/ready", "-j", f"{tmp}/load.json",
                    f"http://127.0.0.1:{port}/.well-known/mercure?{query}"]  # fmt: skip
            if shutil.which("taskset"):
                load = ["taskset", "-c", "1", *load]
            subprocess.run(load, stdout=quiet, stderr=quiet, check=False)
            lines = Path(f"{tmp}/load.json").read_text().strip().splitlines()
            established = int(json.loads(lines[-1])["established"])
        time.sleep(1.0)  # the disconnects are handled
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(300)
    return established


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--subs", type=int, default=1000, help="N (then 2N) subscribers")
    parser.add_argument("--src", type=Path, action="append", help="a src/ tree (A/B, in turn)")
    parser.add_argument("--query", default="topic=t1", help="the subscribe query string")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    sseload = Path(os.environ.get("SSELOAD_DIR", "/tmp/sseload")) / "sseload"
    if not sseload.exists() or shutil.which("valgrind") is None:
        parser.error("needs valgrind and sseload (SSELOAD_DIR)")
    for _ in range(args.repeat):
        for src in args.src or [None]:
            with tempfile.TemporaryDirectory() as tmp:
                once = Path(tmp) / "once.out"
                twice = Path(tmp) / "twice.out"
                a = counted(src, args.subs, once, sseload, args.query)
                b = counted(src, 2 * args.subs, twice, sseload, args.query)
                per = (instructions(twice) - instructions(once)) / max(b - a, 1)
            print(f"{src or 'installed'}: {per:,.0f} instructions per connect ({a:,} and {b:,})")


if __name__ == "__main__":
    main()
