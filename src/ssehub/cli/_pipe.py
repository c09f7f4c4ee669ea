"""`ssehub pipe`: each line of standard input becomes an event."""

from __future__ import annotations

import argparse
import inspect
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any, TextIO
from urllib.parse import urlencode

from ssehub.server import BackgroundHub, ServerConfig

from ._http import Publisher, PublishError, hub_url
from ._jwt import bearer as make_bearer
from ._options import UsageError, add_option, add_token_options, config_default, integer, number

__all__ = ("add_parser", "feed_url", "lines", "run")


def add_parser(commands: Any) -> argparse.ArgumentParser:
    pipe: argparse.ArgumentParser = commands.add_parser(
        "pipe",
        help="publish each line of standard input as an event",
        description="Publish each line read from standard input as an event on TOPIC, "
        "to a running hub (--hub) or to a hub started here with the live page (--serve): "
        "`tail -f app.log | ssehub pipe logs --serve`, then open the feed URL it prints. "
        "With --hub, or --serve --exit-at-eof, it stops at end of input once everything "
        "read was delivered; with --serve alone it says the input ended and keeps serving "
        "the page and the history until Ctrl-C.",
        usage="%(prog)s TOPIC (--hub URL [--token JWT | --jwt-key KEY] | --serve [--exit-at-eof])"
        " [OPTION]...",
    )
    pipe.add_argument("topic")
    target = pipe.add_mutually_exclusive_group(required=True)
    target.add_argument("--hub", metavar="URL", help="a running hub's base URL")
    target.add_argument("--serve", action="store_true", help="start a hub with the live page")
    pipe.add_argument(
        "--exit-at-eof",
        action="store_true",
        help="with --serve: stop at end of input (once everything read was delivered) "
        "instead of serving until Ctrl-C",
    )
    add_token_options(pipe)
    add_option(pipe, "--type", default="message", help="the events' type")
    add_option(
        pipe,
        "--host",
        default=config_default(ServerConfig, "host"),
        help="with --serve: address to listen on",
    )
    add_option(
        pipe,
        "--port",
        type=integer,
        default=config_default(ServerConfig, "port"),
        help="with --serve: port to listen on",
    )
    grace = inspect.signature(BackgroundHub).parameters["grace"].default
    add_option(
        pipe,
        "--grace",
        type=number,
        default=grace,
        metavar="SECONDS",
        help="with --serve: seconds streams get to end",
    )
    pipe.set_defaults(run=run)
    return pipe


def lines(stream: TextIO) -> Iterator[str]:
    """The lines of `stream` without their line ends (LF or CRLF)."""
    for line in stream:
        if line.endswith("\n"):
            line = line[:-1]
        yield line.removesuffix("\r")


def feed_url(base: str, topic: str) -> str:
    """The built-in page's feed view of `topic` on the hub at `base`."""
    return f"{base}/?{urlencode({'topic': topic, 'view': 'feed'})}"


class _Stopped(Exception):
    """SIGTERM arrived: stop as Ctrl-C does."""


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


def _serve(args: argparse.Namespace) -> int:
    """Publish stdin on a hub started here; then, unless --exit-at-eof, keep
    serving until SIGINT or SIGTERM. Either signal stops it cleanly (exit 0):
    it is how a `tail -f ... | ssehub pipe --serve` ends."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_stopped) if main else None
    try:
        with BackgroundHub(port=args.port, host=args.host, page=True, grace=args.grace) as hub:
            url = feed_url(hub.url, args.topic)
            print(f"ssehub pipe: open {url}", file=sys.stderr, flush=True)
            try:
                count = 0
                for line in lines(sys.stdin):
                    hub.publish(args.topic, line, event=args.type)
                    count += 1
                if args.exit_at_eof:
                    return 0
                print(
                    f"ssehub pipe: input ended ({count} lines published); still serving "
                    f"{url} until Ctrl-C",
                    file=sys.stderr,
                    flush=True,
                )
                threading.Event().wait()  # a signal ends it
            except (KeyboardInterrupt, _Stopped):
                pass
        return 0
    finally:
        if main and previous is not None:
            signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> int:
    if args.serve:
        if args.token or args.jwt_key:
            raise UsageError("--token and --jwt-key go with --hub (--serve needs none)")
        return _serve(args)
    if args.exit_at_eof:
        raise UsageError(
            "--exit-at-eof goes with --serve (with --hub, pipe always stops at end of input)"
        )
    bearer = make_bearer(args, hub_url(args.hub), publish=[args.topic])
    try:
        with Publisher(args.hub, bearer) as publisher:
            for line in lines(sys.stdin):
                publisher.publish([args.topic], line, type=args.type)
    except PublishError as error:
        print(f"ssehub pipe: {error}", file=sys.stderr)
        return 1
    return 0
