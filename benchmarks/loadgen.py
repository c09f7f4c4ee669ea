"""A Python SSE load generator and publisher, for machines without the C
tools (`sseload`/`ssepub`), and for what they cannot do (a topic per
subscriber, publishing to random topics). Slower than the C tools: at high
rates it can be the bottleneck (see `cpu_pct_after_ready`), so the
benchmarks prefer the C tools when they find them.

    python benchmarks/loadgen.py subscribe URL -c 1000 -d 10 --ready FILE
    python benchmarks/loadgen.py subscribe 'URL?topic=t{i}' -c 1000 -n 30 -H 'Name: value'
    python benchmarks/loadgen.py publish URL -n 10000 -r 0 -k 4 --form-topic t1
    python benchmarks/loadgen.py publish URL -k 8 --duration 5 --form-topic 't{topic}' --topics 1000

`{i}` in a subscriber URL becomes the connection's number (0..c-1); `{topic}`
in a publish URL or `--form-topic` becomes a random number below
`--topics`. Each prints one JSON line of results, with the C tools' field
names (`connect_phase_s`, `events_per_s_active`, `lat_ms_p99`,
`per_conn_min`, `rate_achieved`, `rtt_ms_p99`...). SIGTERM ends a publisher
early and still prints its results.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script: the repository root on sys.path (for `benchmarks.*`),
# instead of this folder, whose modules must not shadow the standard library.
if Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import asyncio
import json
import random
import re
import resource
import signal
import time
from typing import Any
from urllib.parse import urlsplit

_TS = re.compile(rb"\ndata: (\d{19})")
_MARK = b"\ndata: "


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values.sort()
    return values[min(len(values) - 1, int(q * len(values)))]


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class _Sub(asyncio.Protocol):
    def __init__(
        self, stats: dict[str, float], lat: list[float], sample: bool, target: int
    ) -> None:
        self.stats = stats
        self.lat = lat
        self.sample = sample
        self.target = target  # events after which this connection counts as done
        self.count = 0
        self.tail = b""
        self.head_done = False
        self.loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = self.loop.create_future()
        self.done: asyncio.Future[None] = self.loop.create_future()

    def data_received(self, data: bytes) -> None:
        if not self.head_done:
            if not data.startswith(b"HTTP/1.1 200"):
                self.stats["errors"] += 1
            self.head_done = True
            if not self.ready.done():
                self.ready.set_result(None)
        buf = self.tail + data
        n = buf.count(_MARK)
        if n:
            now = time.time_ns()
            stats = self.stats
            stats["events"] += n
            stats["last"] = now
            if not stats["first"]:
                stats["first"] = now
            self.count += n
            if self.sample:
                self.lat.extend((now - int(ts)) / 1e6 for ts in _TS.findall(buf))
            if self.target and self.count >= self.target and not self.done.done():
                self.done.set_result(None)
        self.tail = buf[-(len(_MARK) - 1) :]

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats["closed"] += 1
        for future in (self.ready, self.done):
            if not future.done():
                future.set_result(None)


async def subscribe(args: argparse.Namespace) -> dict[str, float]:
    _raise_nofile()
    url = urlsplit(args.url)
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    extra = "".join(f"{h}\r\n" for h in args.header)
    loop = asyncio.get_running_loop()
    stats = {"events": 0.0, "first": 0.0, "last": 0.0, "closed": 0.0, "errors": 0.0}
    lat: list[float] = []
    transports: list[asyncio.BaseTransport] = []
    protocols: list[_Sub] = []
    in_flight = asyncio.Semaphore(512)  # handshakes at once, as sseload's -C
    failed = 0

    async def connect(i: int) -> None:
        nonlocal failed
        request = (
            f"GET {path.replace('{i}', str(i))} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Accept: text/event-stream\r\n{extra}\r\n"
        )
        async with in_flight:
            try:
                transport, proto = await loop.create_connection(
                    lambda: _Sub(stats, lat, args.latency, args.events), url.hostname, url.port
                )
            except OSError:
                failed += 1
                return
            transport.write(request.encode())
            transports.append(transport)
            protocols.append(proto)
            await proto.ready

    started = time.monotonic()
    await asyncio.gather(*(connect(i) for i in range(args.connections)))
    connect_phase = time.monotonic() - started
    await asyncio.sleep(0.2)
    if args.ready:
        await asyncio.to_thread(Path(args.ready).write_text, "ready\n")
    start_events = stats["events"]
    cpu0, wall0 = time.process_time(), time.monotonic()
    stop = asyncio.Event()  # SIGTERM ends the measurement early, results still printed
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
    if args.events:
        waits.append(asyncio.gather(*(p.done for p in protocols)))
    _, pending = await asyncio.wait(waits, timeout=args.duration, return_when="FIRST_COMPLETED")
    for task in pending:
        task.cancel()
    cpu = (time.process_time() - cpu0) / max(time.monotonic() - wall0, 1e-9)
    for t in transports:
        t.close()
    span = (stats["last"] - stats["first"]) / 1e9 if stats["last"] > stats["first"] else 0.0
    counts = [p.count for p in protocols]
    return {
        "established": len(protocols),
        "err_connect": failed,
        "connect_phase_s": connect_phase,
        "events": stats["events"] - start_events,
        "events_total": stats["events"],
        "events_per_s_active": (stats["events"] / span) if span else 0.0,
        "lat_ms_p50": _pct(lat, 0.50),
        "lat_ms_p99": _pct(lat, 0.99),
        "per_conn_min": min(counts, default=0),
        "per_conn_max": max(counts, default=0),
        "conns_zero_events": sum(1 for c in counts if not c),
        "closed_by_server": stats["closed"],
        "errors": stats["errors"],
        "cpu_pct_after_ready": 100 * cpu,
    }


async def publish(args: argparse.Namespace) -> dict[str, float]:
    url = urlsplit(args.url)
    sent = 0
    ok = 0
    rtts: list[float] = []
    started = time.monotonic()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    ends = started + args.duration if args.duration else float("inf")
    extra = "".join(f"{h}\r\n" for h in args.header)
    pick = random.Random(0).randrange

    async def worker(share: int) -> None:
        nonlocal sent, ok
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        for _ in range(share):
            if stop.is_set() or time.monotonic() > ends:
                break
            if args.rate:
                due = started + sent / args.rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent += 1
            topic = str(pick(args.topics)) if args.topics else ""
            payload = f"{time.time_ns()} {sent} ".ljust(args.size, "x")
            if args.form_topic:
                form_topic = args.form_topic.replace("{topic}", topic)
                body = f"topic={form_topic}&data={payload.replace(' ', '+')}".encode()
                ctype = "application/x-www-form-urlencoded"
            else:
                body = payload.encode()
                ctype = "text/plain"
            t0 = time.perf_counter()
            writer.write(
                f"POST {url.path.replace('{topic}', topic)} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode()
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: (\d+)", head)
            if length:
                await reader.readexactly(int(length.group(1)))
            rtts.append((time.perf_counter() - t0) * 1e3)
            ok += head[9:10] == b"2"  # any 2xx (Nchan answers 201 or 202)
        writer.close()

    count = args.count if not args.duration else 1 << 62
    shares = [count // args.keepalive] * args.keepalive
    shares[0] += count - sum(shares)
    await asyncio.gather(*(worker(s) for s in shares))
    elapsed = time.monotonic() - started
    return {
        "sent": sent,
        "ok": ok,
        "non2xx": sent - ok,
        "elapsed_s": elapsed,
        "rate_achieved": ok / elapsed if elapsed else 0.0,
        "rtt_ms_p50": _pct(rtts, 0.50),
        "rtt_ms_p99": _pct(rtts, 0.99),
        "rtt_ms_max": max(rtts, default=0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    modes = parser.add_subparsers(dest="mode", required=True)
    sub = modes.add_parser("subscribe")
    sub.add_argument("url")
    sub.add_argument("-c", "--connections", type=int, default=1000)
    sub.add_argument("-d", "--duration", type=float, default=10.0)
    sub.add_argument("-n", "--events", type=int, default=0, help="stop once each got N")
    sub.add_argument("-H", "--header", action="append", default=[])
    sub.add_argument("--ready", default=None)
    sub.add_argument("--latency", action="store_true")
    pub = modes.add_parser("publish")
    pub.add_argument("url")
    pub.add_argument("-n", "--count", type=int, default=10000)
    pub.add_argument("-r", "--rate", type=float, default=0.0)
    pub.add_argument("-k", "--keepalive", type=int, default=4)
    pub.add_argument("-s", "--size", type=int, default=100)
    pub.add_argument("-H", "--header", action="append", default=[])
    pub.add_argument("--duration", type=float, default=0.0, help="publish for SEC (not -n)")
    pub.add_argument("--topics", type=int, default=0, help="{topic}: random below N")
    pub.add_argument("--form-topic", default=None)
    args = parser.parse_args()
    coro = subscribe(args) if args.mode == "subscribe" else publish(args)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(coro)
    else:
        result = uvloop.run(coro)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
