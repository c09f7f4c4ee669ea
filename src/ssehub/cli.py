"""The `ssehub` command: argument parsing and exit codes only."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from . import __version__
from .backends import HistoryLimits, MemoryBackend
from .hub import Hub, HubConfig
from .server import BUILTIN_PAGE, BackgroundHub, HubServer, ServerConfig

__all__ = ("main",)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssehub", description="Server-Sent Events hub and toolkit."
    )
    parser.add_argument("--version", action="version", version=f"ssehub {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="serve the live page and publish the time every second on topic 'clock'",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on")
    demo.add_argument("--port", type=int, default=8000, help="port to listen on")
    demo.add_argument("--interval", type=float, default=1.0, help="seconds between events")

    serve = commands.add_parser(
        "serve",
        help="run a hub (subscribe at /.well-known/mercure?topic=T)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument(
        "--page",
        default=None,
        metavar="DIR",
        help="serve DIR's files at / ('builtin': the live page)",
    )
    serve.add_argument(
        "--anonymous-publish",
        action="store_true",
        help="let anyone who can reach the hub publish with POST (local use, benchmarks)",
    )
    serve.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow pages of ORIGIN ('*': any) to subscribe and publish; repeatable",
    )
    serve.add_argument("--heartbeat", type=float, default=15.0, help="seconds between heartbeats")
    serve.add_argument("--history-events", type=int, default=1000, help="events kept per topic")
    serve.add_argument("--history-age", type=float, default=3600.0, help="seconds an event is kept")
    serve.add_argument(
        "--grace", type=float, default=5.0, help="seconds streams get to end at shutdown"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            return _demo(args)
        return _serve(args)
    except (ValueError, OSError) as error:
        print(f"ssehub: error: {error}", file=sys.stderr)
        return 2


def _demo(args: argparse.Namespace) -> int:
    if not args.interval > 0:
        raise ValueError(f"--interval must be > 0, not {args.interval}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with BackgroundHub(port=args.port, host=args.host, page=True) as hub:
        print(f"ssehub demo: open {hub.url}/ in a browser (Ctrl-C to stop)", flush=True)
        try:
            while not stop.wait(args.interval):
                hub.publish("clock", datetime.now().astimezone().isoformat(timespec="seconds"))
        except KeyboardInterrupt:
            pass
    return 0


def _serve(args: argparse.Namespace) -> int:
    page = None
    if args.page == "builtin":
        page = BUILTIN_PAGE
    elif args.page:
        page = Path(args.page)
    server_config = ServerConfig(
        host=args.host,
        port=args.port,
        static_dir=page,
        anonymous_publish=args.anonymous_publish,
        cors_origins=tuple(args.cors_origin),
    )
    hub_config = HubConfig(heartbeat=args.heartbeat)
    limits = HistoryLimits(max_events=args.history_events, max_age=args.history_age)
    if not args.grace >= 0:
        raise ValueError(f"--grace must be >= 0, not {args.grace}")

    _raise_open_files_limit()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with Hub(hub_config, backend=MemoryBackend(limits)) as hub:
            server = HubServer(hub, server_config)
            await server.start()
            print(
                f"ssehub: hub on http://{args.host}:{server.port}/.well-known/mercure", flush=True
            )
            await stop.wait()
            print("ssehub: shutting down", flush=True)
            await server.drain(args.grace)
            await server.aclose()

    try:
        import uvloop
    except ImportError:
        asyncio.run(run())
    else:
        uvloop.run(run())
    return 0


def _raise_open_files_limit() -> None:
    """Each subscriber is a socket: let the hub use every file descriptor the
    system allows it (the soft limit is often 1024, the hard one far higher)."""
    try:
        import resource
    except ImportError:  # Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
