"""Parse throughput: ssehub's EventStreamParser beside httpx-sse's and
sseclient-py's decoders, on the same bytes, in one process.

    python benchmarks/parse.py            # needs: pip install httpx-sse sseclient-py

Each workload is fed in fixed-size chunks, as a socket would deliver it;
best of 3 runs. httpx-sse is driven the way its `iter_sse()` drives it
(incremental UTF-8 decoding, its line decoder, its event decoder);
sseclient-py through `SSEClient(chunks).events()`.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script: the repository root on sys.path (for `benchmarks.*`),
# instead of this folder, whose modules must not shadow the standard library.
if Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import codecs
import json
import time
from collections.abc import Callable

from ssehub.protocol import EventStreamParser

Parser = Callable[[list[bytes]], int]


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def workloads() -> dict[str, tuple[bytes, int]]:
    payload = json.dumps({"symbol": "ACME", "price": 123.45, "volume": 1000, "pad": "x" * 40})
    small = b"".join(f"id: {i}\ndata: {payload}\n\n".encode() for i in range(100_000))
    one_line = b"data: " + b"y" * (8 * 1024 * 1024) + b"\n\n"
    many_lines = (b"data: " + b"z" * 100 + b"\n") * 80_000 + b"\n"
    return {
        "100,000 small events (4 KiB chunks)": (small, 4096),
        "one 8 MiB single-line event (64 KiB chunks)": (one_line, 65536),
        "one 8 MiB event of 80,000 lines (64 KiB chunks)": (many_lines, 65536),
    }


def ssehub_parse(chunks: list[bytes]) -> int:
    parser = EventStreamParser()
    n = 0
    for chunk in chunks:
        n += len(parser.feed(chunk))
    return n + len(parser.close())


def httpx_sse_parse(chunks: list[bytes]) -> int:
    from httpx_sse._decoders import SSEDecoder, SSELineDecoder

    text = codecs.getincrementaldecoder("utf-8")(errors="replace")
    lines, events = SSELineDecoder(), SSEDecoder()
    n = 0
    for chunk in chunks:
        for line in lines.decode(text.decode(chunk)):
            if events.decode(line) is not None:
                n += 1
    return n


def sseclient_parse(chunks: list[bytes]) -> int:
    import sseclient

    n = 0
    for _ in sseclient.SSEClient(iter(chunks)).events():
        n += 1
    return n


def measure(parse: Parser, chunks: list[bytes], size: int, limit: float) -> tuple[float, int]:
    best = float("inf")
    events = 0
    for _ in range(3):
        started = time.perf_counter()
        events = parse(chunks)
        best = min(best, time.perf_counter() - started)
        if best > limit:
            break  # one run is enough to see it is slow
    return best, events


def main() -> None:
    parsers: dict[str, Parser] = {
        "ssehub": ssehub_parse,
        "httpx-sse": httpx_sse_parse,
        "sseclient-py": sseclient_parse,
    }
    print("| workload | parser | MB/s | events/s |")
    print("|---|---|---|---|")
    for name, (data, size) in workloads().items():
        chunks = chunked(data, size)
        for label, parse in parsers.items():
            try:
                seconds, events = measure(parse, chunks, size, limit=20.0)
            except ImportError:
                print(f"| {name} | {label} | not installed | |")
                continue
            mb_s = len(data) / seconds / 1e6
            print(f"| {name} | {label} | {mb_s:,.1f} | {events / seconds:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
