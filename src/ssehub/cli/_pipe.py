"""`ssehub pipe`: each line of standard input becomes an event."""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from ssehub.server import BackgroundHub, ServerConfig

from ._http import Publisher, PublishError
from ._jwt import Bearer
from ._options import UsageError, add_option, add_token_options, config_default, integer, number

__all__ = ("add_parser", "lines", "run")


def add_parser(commands: Any) -> argparse.ArgumentParser:
    pipe: argparse.ArgumentParser = commands.add_parser(
        "pipe",
        help="publish each line of standard input as an event",
        description="Publish each line read from standard input as an event on TOPIC, "
        "to a running hub (--hub) or to a hub started here with the live page (--serve): "
        "`tail -f app.log | ssehub pipe logs --serve`. At end of input, stops once "
        "everything read was delivered.",
        usage="%(prog)s TOPIC (--hub URL [--token JWT | --jwt-key KEY] | --serve) [OPTION]...",
    )
    pipe.add_argument("topic")
    target = pipe.add_mutually_exclusive_group(required=True)
    target.add_argument("--hub", metavar="URL", help="a running hub's base URL")
    target.add_argument("--serve", action="store_true", help="start a hub with the live page")
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


def run(args: argparse.Namespace) -> int:
    if args.serve:
        if args.token or args.jwt_key:
            raise UsageError("--token and --jwt-key go with --hub (--serve needs none)")
        with BackgroundHub(port=args.port, host=args.host, page=True, grace=args.grace) as hub:
            print(f"ssehub pipe: open {hub.url}/?topic={args.topic}", file=sys.stderr, flush=True)
            for line in lines(sys.stdin):
                hub.publish(args.topic, line, event=args.type)
        return 0
    bearer = Bearer(args.token, args.jwt_key, args.jwt_algorithm, publish=[args.topic])
    try:
        with Publisher(args.hub, bearer) as publisher:
            for line in lines(sys.stdin):
                publisher.publish([args.topic], line, type=args.type)
    except PublishError as error:
        print(f"ssehub pipe: {error}", file=sys.stderr)
        return 1
    return 0
