"""The standalone hub's operations: durable publishing, a resume storm, and
fan-out with JWT authorization — each beside the in-memory baseline.

    python benchmarks/hub_ops.py            # needs the C tools (sseload, ssepub)

1. Publish throughput: `ssepub` posts 20,000 events over 4 keep-alive
   connections as fast as the hub acknowledges them, with no subscribers;
   acknowledged events/s and p99 publish latency (request written to answer
   read), `--store memory:` and `--store sqlite:` (every event committed
   before its answer).
2. Resume storm: 1,000 events are published, then 10,000 clients connect at
   once with `Last-Event-ID` of the first: seconds until every client has
   received the 999 events it missed (SQLite store).
3. Fan-out with auth: 1,000 subscribers each with a subscriber JWT, a
   publisher with a publisher JWT, as in benchmarks/fanout.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script: the repository root on sys.path (for `benchmarks.*`),
# instead of this folder, whose modules must not shadow the standard library.
if Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import json
import subprocess
import tempfile
import time
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.fanout import Target, Tools, free_port, pinned, server, ssehub_serve

SECRET = "benchmark-secret-that-is-long-enough-for-hs256"
MERCURE = ("/.well-known/mercure?topic=t1", "/.well-known/mercure", "t1")


def token(claims: dict[str, list[str]]) -> str:
    import jwt

    return str(jwt.encode({"mercure": claims}, SECRET, algorithm="HS256"))


def publish_throughput(tools: Tools, store: str) -> dict[str, Any]:
    assert tools.c_dir is not None
    port = free_port()
    target = Target("ssehub", ssehub_serve(port, "--store", store), *MERCURE)
    with server(target, port), tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pub.json"
        subprocess.run(
            pinned(1, [str(tools.c_dir / "ssepub"), "-n", "20000", "-r", "0", "-k", "4",
                       "-s", "100", "-b", "topic=t1&data={ts}+{seq}+{pad}",
                       "-H", "Content-Type: application/x-www-form-urlencoded",
                       "-j", str(out), f"http://127.0.0.1:{port}/.well-known/mercure"]),
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        return dict(json.loads(out.read_text()))


def resume_storm(tools: Tools, clients: int, behind: int) -> dict[str, Any]:
    import httpx

    assert tools.c_dir is not None
    port = free_port()
    target = Target("ssehub", ssehub_serve(port, "--store", "sqlite:@PREFIX@/hub.db"), *MERCURE)
    with server(target, port), tempfile.TemporaryDirectory() as tmp:
        url = f"http://127.0.0.1:{port}/.well-known/mercure"
        with httpx.Client() as client:
            ids = [
                client.post(url, data={"topic": "t1", "data": f"{time.time_ns()} {i}"}).text
                for i in range(behind)
            ]
        out = Path(tmp) / "load.json"
        started = time.monotonic()
        subprocess.run(
            pinned(1, [str(tools.c_dir / "sseload"), "-c", str(clients), "-n", str(behind - 1),
                       "-d", "120", "-T", "120", "-H", f"Last-Event-ID: {ids[0]}",
                       "-j", str(out), f"{url}?topic=t1"]),
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        elapsed = time.monotonic() - started
        result = dict(json.loads(out.read_text()))
        result["seconds_until_all_caught_up"] = elapsed
        return result


def fanout_with_auth(tools: Tools, subs: int, duration: float) -> dict[str, Any]:
    assert tools.c_dir is not None
    port = free_port()
    target = Target(
        "ssehub",
        ssehub_serve(port, "--store", "memory:", "--jwt-key", SECRET),
        *MERCURE,
    )
    sub_header = f"Authorization: Bearer {token({'subscribe': ['*']})}"
    pub_header = f"Authorization: Bearer {token({'publish': ['*']})}"
    with server(target, port), tempfile.TemporaryDirectory() as tmp:
        ready, out = Path(tmp) / "ready", Path(tmp) / "load.json"
        base = f"http://127.0.0.1:{port}/.well-known/mercure"
        load = subprocess.Popen(
            pinned(1, [str(tools.c_dir / "sseload"), "-c", str(subs), "-n", "1000000000",
                       "-d", str(duration), "-F", str(ready), "-j", str(out),
                       "-H", sub_header, f"{base}?topic=t1"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        while not ready.exists():
            if load.poll() is not None:
                raise RuntimeError("subscribers did not get ready")
            time.sleep(0.05)
        pub = subprocess.Popen(
            pinned(1, [str(tools.c_dir / "ssepub"), "-n", "10000000", "-r", "0", "-k", "4",
                       "-s", "100", "-b", "topic=t1&data={ts}+{seq}+{pad}",
                       "-H", "Content-Type: application/x-www-form-urlencoded",
                       "-H", pub_header, base]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        load.wait(duration + 120)
        pub.terminate()
        pub.wait(10)
        return dict(json.loads(out.read_text()))


def main() -> None:
    tools = Tools("c")
    print("| measurement | result |")
    print("|---|---|")
    for store in (
        "memory:",
        "sqlite:@PREFIX@/hub.db",
        "redis://127.0.0.1:6379/14?prefix=@PREFIX@:",
    ):
        r = publish_throughput(tools, store)
        kind = store.split(":")[0]  # memory, sqlite, redis
        rate, p50, p99 = r["rate_achieved"], r["rtt_ms_p50"], r["rtt_ms_p99"]
        print(f"| publish, store {kind} | {rate:,.0f} acknowledged events/s,"
              f" p50 {p50:.2f} ms, p99 {p99:.2f} ms |", flush=True)  # fmt: skip
    r = fanout_with_auth(tools, 1000, 10.0)
    print(f"| fan-out, 1,000 subscribers with JWTs | {r['events_per_s_active']:,.0f} events/s |",
          flush=True)  # fmt: skip
    r = resume_storm(tools, 10_000, 1000)
    print(f"| resume storm: 10,000 clients, 999 events behind (SQLite) | all caught up in "
          f"{r['seconds_until_all_caught_up']:.1f} s ({r['events']:,} events, "
          f"min per client {r['per_conn_min']}) |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
