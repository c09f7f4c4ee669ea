"""Fan-out benchmark: ssehub next to a typical sse-starlette hub, same run.

    python benchmarks/fanout.py                 # everything (takes ~3 minutes)
    python benchmarks/fanout.py --subs 1000 --servers ssehub
    python benchmarks/fanout.py --servers ssehub --subscribe topic,match  # 0.x beside 1.0

What it measures, for each server (server pinned to core 0, load to core 1):
- delivered events/s at saturation with 1,000 and 10,000 subscribers
  (a publisher posting 100-byte events as fast as the server takes them over
  4 keep-alive connections);
- publish-to-receive latency p50/p99 with 10,000 subscribers at 10 events/s;
- RSS per idle subscriber with 10,000 idle subscribers.

Mercure subscribers ask for `?topic=t1` (0.x); `--subscribe match` makes
them ask for `?match=t1` (1.0), and `--subscribe topic,match` measures both,
interleaved (each subscriber count with one, then the other), so a 1.0
subscriber's cost is read beside a 0.x one's in the same run.

Load: an optional compiled load generator, the C tools `sseload`/`ssepub`
(not part of this repository), when found: in the folder $SSELOAD_DIR names,
else in a folder shared/tools/sseload beside the checkout (built with make
if only the sources are there); else benchmarks/loadgen.py (Python, which
may itself be the bottleneck; the output says which tool ran). Results go
to stdout as a Markdown table and to benchmarks/results/fanout-<time>.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script: the repository root on sys.path (for `benchmarks.*`),
# instead of this folder, whose modules must not shadow the standard library.
if Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


@dataclass
class Target:
    name: str
    command: list[str]
    sub_path: str
    pub_path: str
    form_topic: str | None  # publish as a Mercure form, or the raw body


def uvicorn(app: str, port: int) -> list[str]:
    """How the ASGI peers run: uvicorn with uvloop and httptools, as fast as
    uvicorn goes."""
    return [
        PY, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--backlog", "4096",
        "--log-level", "warning",
    ]  # fmt: skip


REDIS_STORE = os.environ.get("SSEHUB_BENCH_REDIS", "redis://127.0.0.1:6379/14") + "?prefix="


def ssehub_serve(port: int, *extra: str) -> list[str]:
    """How ssehub runs: `ssehub serve`, publishing open, logging quiet like the peers."""
    return [PY, "-m", "ssehub", "serve", "--port", str(port), "--anonymous-publish",
            "--log-level", "warning", *extra]  # fmt: skip


def targets(port: int) -> dict[str, Target]:
    mercure = ("/.well-known/mercure?topic=t1", "/.well-known/mercure", "t1")
    queue_hub = ("/sub/t1", "/pub/t1", None)
    return {
        "ssehub": Target("ssehub", ssehub_serve(port, "--store", "memory:"), *mercure),
        "ssehub-sqlite": Target(
            "ssehub-sqlite", ssehub_serve(port, "--store", "sqlite:///@PREFIX@/hub.db"), *mercure
        ),
        "ssehub-redis": Target(
            "ssehub-redis", ssehub_serve(port, "--store", REDIS_STORE + "@PREFIX@:"), *mercure
        ),
        "ssehub-redis-2w": Target(
            "ssehub-redis-2w",
            ssehub_serve(port, "--store", REDIS_STORE + "@PREFIX@:", "--workers", "2"),
            *mercure,
        ),
        "ssehub-asgi": Target(
            "ssehub-asgi", uvicorn("benchmarks.peers.ssehub_asgi:app", port), *mercure
        ),
        "sse-starlette": Target(
            "sse-starlette", uvicorn("benchmarks.peers.starlette_hub:app", port), *queue_hub
        ),
        "asgi-floor": Target(
            "asgi-floor", uvicorn("benchmarks.peers.asgi_floor:app", port), *queue_hub
        ),
        "fastapi-sse": Target(
            "fastapi-sse", uvicorn("benchmarks.peers.fastapi_sse_hub:app", port), *queue_hub
        ),
        "nchan": Target("nchan", ["nginx", "-c", "@CONF@", "-p", "@PREFIX@"], *queue_hub),
    }


def pinned(core: int | str, command: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *command] if shutil.which("taskset") else command


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[Any] | None = None) -> None:
    """Until the server on `port` accepts (TimeoutError after `timeout`
    seconds, or at once when `proc`, the server, has exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise TimeoutError(f"server on port {port} did not start")


def rss_kb(pid: int) -> int:
    """RSS of a process and its children (nginx serves from a worker)."""
    total = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total += int(line.split()[1])
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += rss_kb(int(child))
    return total


@contextlib.contextmanager
def server(target: Target, port: int) -> Iterator[subprocess.Popen[bytes]]:
    command = target.command
    with tempfile.TemporaryDirectory() as prefix:
        conf = Path(prefix) / "nchan.conf"
        if target.name == "nchan":  # write its config with our port
            template = (ROOT / "benchmarks" / "peers" / "nchan.conf.in").read_text()
            conf.write_text(template.replace("@PORT@", str(port)).replace("@PREFIX@", prefix))
        command = [c.replace("@CONF@", str(conf)).replace("@PREFIX@", prefix) for c in command]
        with _running(command, port) as proc:
            yield proc


@contextlib.contextmanager
def _running(command: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    cores = "0,1" if "--workers" in command else 0  # two workers get both cores
    proc = subprocess.Popen(
        pinned(cores, command), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_port(port)
        yield proc
    finally:
        stop(proc, signal.SIGINT)


def stop(proc: subprocess.Popen[Any], sig: int, timeout: float = 15) -> None:
    """Send `sig` (if it still runs), wait `timeout` seconds, then kill."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Tools:
    """The C tools if available, else the Python load generator."""

    def __init__(self, choice: str) -> None:
        self.c_dir = self._find_c() if choice in ("auto", "c") else None
        if choice == "c" and self.c_dir is None:
            raise SystemExit("the C tools (sseload, ssepub) were not found")
        self.name = "sseload/ssepub (C)" if self.c_dir else "benchmarks/loadgen.py (Python)"

    @staticmethod
    def _find_c() -> Path | None:
        env = os.environ.get("SSELOAD_DIR")
        candidates = [Path(env)] if env else []
        candidates.append(ROOT.parent / "shared" / "tools" / "sseload")
        for folder in candidates:
            if (folder / "sseload.c").exists() and not (folder / "sseload").exists():
                subprocess.run(["make", "-C", str(folder)], check=False, capture_output=True)
            if (folder / "sseload").exists() and (folder / "ssepub").exists():
                return folder
        return None

    def subscribers(
        self,
        url: str,
        n: int,
        duration: float,
        ready: Path,
        out: Path,
        events: int = 0,
        headers: tuple[str, ...] = (),
    ) -> subprocess.Popen[bytes]:
        """N subscribers for DURATION s after all connected (or until each got
        EVENTS); one JSON line of results in OUT."""
        heads = [arg for h in headers for arg in ("-H", h)]
        if self.c_dir:
            cmd = [
                str(self.c_dir / "sseload"), "-c", str(n), "-n", str(events or 1000000000),
                "-d", str(duration), "-T", "120", "-F", str(ready), "-j", str(out), *heads, url,
            ]  # fmt: skip
            return subprocess.Popen(
                pinned(1, cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        cmd = [
            PY, str(ROOT / "benchmarks" / "loadgen.py"), "subscribe", url, "-c", str(n),
            "-d", str(duration), "-n", str(events), "--ready", str(ready), "--latency", *heads,
        ]  # fmt: skip
        return subprocess.Popen(pinned(1, cmd), stdout=out.open("wb"))

    def publisher(
        self,
        url: str,
        count: int,
        rate: float,
        form_topic: str | None,
        keepalive: int = 4,
        out: Path | None = None,
        headers: tuple[str, ...] = (),
    ) -> subprocess.Popen[bytes]:
        """COUNT events at RATE/s (0: as fast as answered) over KEEPALIVE
        connections; with OUT, one JSON line of results there (SIGTERM ends
        it early and still writes them)."""
        heads = [arg for h in headers for arg in ("-H", h)]
        if self.c_dir:
            cmd = [
                str(self.c_dir / "ssepub"), "-n", str(count), "-r", str(rate),
                "-k", str(keepalive), "-s", "100", "-q", *heads,
            ]  # fmt: skip
            if form_topic:
                cmd += [
                    "-b", f"topic={form_topic}&data={{ts}}+{{seq}}+{{pad}}",
                    "-H", "Content-Type: application/x-www-form-urlencoded",
                ]  # fmt: skip
            if out is not None:
                cmd += ["-j", str(out)]
            cmd.append(url)
            return subprocess.Popen(
                pinned(1, cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        cmd = [
            PY, str(ROOT / "benchmarks" / "loadgen.py"), "publish", url, "-n", str(count),
            "-r", str(rate), "-k", str(keepalive), "-s", "100", *heads,
        ]  # fmt: skip
        if form_topic:
            cmd += ["--form-topic", form_topic]
        stdout = out.open("wb") if out is not None else subprocess.DEVNULL
        return subprocess.Popen(pinned(1, cmd), stdout=stdout)


def subscribing_with(target: Target, param: str) -> Target:
    """The Mercure target with subscribers asking by `param` (`topic`, 0.x,
    or `match`, 1.0); other hubs have no such parameter."""
    if param == "topic" or target.form_topic is None:
        return target
    path = target.sub_path.replace("?topic=", f"?{param}=")
    return Target(target.name, target.command, path, target.pub_path, target.form_topic)


def load_run(
    tools: Tools,
    target: Target,
    port: int,
    subs: int,
    duration: float,
    count: int,
    rate: float,
) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        ready, out = Path(tmp) / "ready", Path(tmp) / "load.json"
        load = tools.subscribers(base + target.sub_path, subs, duration, ready, out)
        deadline = time.monotonic() + 150
        while not ready.exists():
            if load.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"subscribers did not get ready ({target.name}, {subs})")
            time.sleep(0.05)
        pub = tools.publisher(base + target.pub_path, count, rate, target.form_topic)
        load.wait(duration + 120)
        if pub.poll() is None:
            pub.terminate()
        pub.wait(10)
        text = out.read_text().strip().splitlines()[-1]
        return dict(json.loads(text))


def idle_rss(target: Target, tools: Tools, subs: int) -> float:
    port = free_port()
    t = targets(port)[target.name]
    with server(t, port) as proc, tempfile.TemporaryDirectory() as tmp:
        time.sleep(1.0)
        before = rss_kb(proc.pid)
        ready, out = Path(tmp) / "ready", Path(tmp) / "load.json"
        load = tools.subscribers(f"http://127.0.0.1:{port}{t.sub_path}", subs, 6, ready, out)
        while not ready.exists():
            if load.poll() is not None:
                raise RuntimeError("idle subscribers did not get ready")
            time.sleep(0.05)
        time.sleep(2.0)
        after = rss_kb(proc.pid)
        load.wait(60)
    return (after - before) / subs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--servers",
        default="ssehub,sse-starlette",
        help="comma-separated: ssehub, ssehub-sqlite, ssehub-asgi, sse-starlette, fastapi-sse,"
        " nchan (needs nginx)",
    )
    parser.add_argument("--subs", default="1000,10000", help="subscriber counts to saturate")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--tools", choices=("auto", "c", "python"), default="auto")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument(
        "--subscribe",
        default="topic",
        help="Mercure subscribe parameter(s), comma-separated: topic (0.x), match (1.0);"
        " with both, each subscriber count runs with each, interleaved",
    )
    args = parser.parse_args()
    params = args.subscribe.split(",")
    if not params or any(p not in ("topic", "match") for p in params):
        parser.error("--subscribe takes topic, match or topic,match")
    tools = Tools(args.tools)
    names = args.servers.split(",")
    counts = [int(n) for n in args.subs.split(",")]
    results: dict[str, dict[str, Any]] = {}
    print(f"load tool: {tools.name}; cores: {os.cpu_count()}", flush=True)
    for name in names:
        labels = {p: name if len(params) == 1 else f"{name} {p}=" for p in params}
        res: dict[str, Any] = results.setdefault(labels[params[0]], {})
        for subs in counts:
            for param in params:
                port = free_port()
                target = subscribing_with(targets(port)[name], param)
                with server(target, port):
                    r = load_run(tools, target, port, subs, args.duration, 10_000_000, 0)
                results.setdefault(labels[param], {})[f"saturation_{subs}"] = r
                print(f"{labels[param]}: {subs} subs, delivered "
                      f"{r['events_per_s_active']:,.0f} events/s", flush=True)  # fmt: skip
        if not args.skip_latency:
            port = free_port()
            target = targets(port)[name]
            with server(target, port):
                r = load_run(
                    tools, target, port, 10_000, args.duration, int(args.duration * 10), 10
                )
            res["latency_10000x10"] = r
            print(f"{name}: latency p50 {r['lat_ms_p50']:.1f} ms, p99 {r['lat_ms_p99']:.1f} ms",
                  flush=True)  # fmt: skip
        if not args.skip_rss:
            res["idle_kb_per_sub"] = idle_rss(targets(0)[name], tools, 10_000)
            print(f"{name}: {res['idle_kb_per_sub']:.2f} KB RSS per idle subscriber", flush=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"fanout-{stamp}.json"
    path.write_text(json.dumps({"tool": tools.name, "results": results}, indent=2))
    print(f"\nload tool: {tools.name} — raw results in {path.relative_to(ROOT)}\n")
    header = ["server", *[f"{n:,} subs (events/s)" for n in counts]]
    if not args.skip_latency:
        header += ["p50 / p99 ms (10k subs, 10 events/s)"]
    if not args.skip_rss:
        header += ["KB per idle sub"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, res in results.items():
        row = [name] + [f"{res[f'saturation_{n}']['events_per_s_active']:,.0f}" for n in counts]
        if not args.skip_latency:  # (measured with the first --subscribe parameter only)
            lat = res.get("latency_10000x10")
            row.append(f"{lat['lat_ms_p50']:.1f} / {lat['lat_ms_p99']:.1f}" if lat else "—")
        if not args.skip_rss:
            row.append(f"{res['idle_kb_per_sub']:.2f}" if "idle_kb_per_sub" in res else "—")
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
