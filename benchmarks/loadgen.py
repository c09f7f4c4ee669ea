"""A Python SSE load generator and publisher, for machines without the C
tools (`sseload`/`ssepub`). Slower than the C tools: at high rates it can be
the bottleneck, so the benchmark prefers the C tools when it finds them.

    python benchmarks/loadgen.py subscribe URL -c 1000 -d 10 --ready FILE
    python benchmarks/loadgen.py publish URL -n 10000 -r 0 -k 4 --form-topic t1
Each prints one JSON line of results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

_TS = re.compile(rb"\ndata: (\d{19})")
_MARK = b"\ndata: "


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values.sort()
    return values[min(len(values) - 1, int(q * len(values)))]


class _Sub(asyncio.Protocol):
    def __init__(self, stats: dict[str, float], lat: list[float], sample: bool) -> None:
        self.stats = stats
        self.lat = lat
        self.sample = sample
        self.tail = b""
        self.head_done = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

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
            if self.sample:
                self.lat.extend((now - int(ts)) / 1e6 for ts in _TS.findall(buf))
        self.tail = buf[-(len(_MARK) - 1) :]

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats["closed"] += 1
        if not self.ready.done():
            self.ready.set_result(None)


async def subscribe(args: argparse.Namespace) -> dict[str, float]:
    url = urlsplit(args.url)
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    request = f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAccept: text/event-stream\r\n\r\n"
    stats = {"events": 0.0, "first": 0.0, "last": 0.0, "closed": 0.0, "errors": 0.0}
    lat: list[float] = []
    loop = asyncio.get_running_loop()
    transports = []
    for i in range(args.connections):
        transport, proto = await loop.create_connection(
            lambda: _Sub(stats, lat, args.latency), url.hostname, url.port
        )
        transport.write(request.encode())
        transports.append(transport)
        await proto.ready if i % 256 == 255 else None
    await asyncio.sleep(0.2)
    if args.ready:
        await asyncio.to_thread(Path(args.ready).write_text, "ready\n")
    start_events = stats["events"]
    await asyncio.sleep(args.duration)
    for t in transports:
        t.close()
    span = (stats["last"] - stats["first"]) / 1e9 if stats["last"] > stats["first"] else 0.0
    return {
        "established": args.connections,
        "events": stats["events"] - start_events,
        "events_per_s_active": (stats["events"] / span) if span else 0.0,
        "lat_ms_p50": _pct(lat, 0.50),
        "lat_ms_p99": _pct(lat, 0.99),
        "closed_by_server": stats["closed"],
        "errors": stats["errors"],
    }


async def publish(args: argparse.Namespace) -> dict[str, float]:
    url = urlsplit(args.url)
    sent = 0
    ok = 0
    started = time.monotonic()

    async def worker(share: int) -> None:
        nonlocal sent, ok
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        for _ in range(share):
            if args.rate:
                due = started + sent / args.rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent += 1
            payload = f"{time.time_ns()} {sent} ".ljust(args.size, "x")
            if args.form_topic:
                body = f"topic={args.form_topic}&data={payload.replace(' ', '+')}".encode()
                ctype = "application/x-www-form-urlencoded"
            else:
                body = payload.encode()
                ctype = "text/plain"
            writer.write(
                f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: (\d+)", head)
            if length:
                await reader.readexactly(int(length.group(1)))
            ok += head.startswith((b"HTTP/1.1 200", b"HTTP/1.1 204"))
        writer.close()

    shares = [args.count // args.keepalive] * args.keepalive
    shares[0] += args.count - sum(shares)
    await asyncio.gather(*(worker(s) for s in shares))
    elapsed = time.monotonic() - started
    return {"sent": sent, "ok": ok, "rate_achieved": sent / elapsed if elapsed else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    modes = parser.add_subparsers(dest="mode", required=True)
    sub = modes.add_parser("subscribe")
    sub.add_argument("url")
    sub.add_argument("-c", "--connections", type=int, default=1000)
    sub.add_argument("-d", "--duration", type=float, default=10.0)
    sub.add_argument("--ready", default=None)
    sub.add_argument("--latency", action="store_true")
    pub = modes.add_parser("publish")
    pub.add_argument("url")
    pub.add_argument("-n", "--count", type=int, default=10000)
    pub.add_argument("-r", "--rate", type=float, default=0.0)
    pub.add_argument("-k", "--keepalive", type=int, default=4)
    pub.add_argument("-s", "--size", type=int, default=100)
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
