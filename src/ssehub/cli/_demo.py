"""`ssehub demo`: the live page, and the time on topic "clock"."""

from __future__ import annotations

import argparse
import signal
import threading
from datetime import datetime
from typing import Any

from ssehub.server import BackgroundHub, ServerConfig

from ._options import UsageError, add_option, config_default, integer, number
from ._serve import describe

__all__ = ("add_parser", "run")


def add_parser(commands: Any) -> argparse.ArgumentParser:
    demo: argparse.ArgumentParser = commands.add_parser(
        "demo",
        help="serve the live page and publish the time every second on topic 'clock'",
        description="Serve the live page and publish the time on topic 'clock'.",
        usage="%(prog)s [--host HOST] [--port N] [--interval SECONDS]",
    )
    add_option(
        demo, "--host", default=config_default(ServerConfig, "host"), help="address to listen on"
    )
    add_option(
        demo,
        "--port",
        type=integer,
        default=config_default(ServerConfig, "port"),
        help="port to listen on",
    )
    add_option(
        demo,
        "--interval",
        type=number,
        default=1.0,
        metavar="SECONDS",
        help="seconds between events",
    )
    demo.set_defaults(run=run)
    return demo


def run(args: argparse.Namespace) -> int:
    if not args.interval > 0:
        raise UsageError(f"--interval must be > 0, not {args.interval}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # The dashboard's publish form publishes with the cookie the hub hands its
    # own pages (any topic: the demo is a playground, on loopback by default).
    demo = BackgroundHub(
        port=args.port, host=args.host, page=True, dashboard=None, page_publishes=("*",)
    )
    with demo as hub:
        print(f"ssehub demo: open {hub.url}/ in a browser (Ctrl-C to stop)", flush=True)
        for line in describe(hub.server_config, hub.url, flags="ssehub serve "):
            if line.startswith(("page: ", "publish: ")):
                continue  # said above, or below
            if line.startswith("dashboard: http"):
                line = f"the dashboard is at {line.removeprefix('dashboard: ')}"
            print(f"ssehub demo: {line}", flush=True)
        print(
            "ssehub demo: publish: from the pages served here (the dashboard's form), "
            "to any topic, by whoever can open them",
            flush=True,
        )
        try:
            while not stop.wait(args.interval):
                hub.publish("clock", datetime.now().astimezone().isoformat(timespec="seconds"))
        except KeyboardInterrupt:
            pass
    return 0
