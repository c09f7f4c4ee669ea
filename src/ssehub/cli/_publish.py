"""`ssehub publish`: one event to a running hub."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ssehub.server import ServerConfig

from ._http import Publisher, PublishError, hub_url
from ._jwt import bearer as make_bearer
from ._options import add_option, add_token_options, config_default, integer

__all__ = ("add_parser", "one_line_end_stripped", "run")


def default_hub() -> str:
    host, port = config_default(ServerConfig, "host"), config_default(ServerConfig, "port")
    return f"http://{host}:{port}"


def add_parser(commands: Any) -> argparse.ArgumentParser:
    publish: argparse.ArgumentParser = commands.add_parser(
        "publish",
        help="publish one event to a running hub",
        description="Publish one event to a hub's /.well-known/mercure (prints its id). "
        "Data read from standard input loses one final line end, as in $(...).",
        usage="%(prog)s TOPIC [DATA|-] [--hub URL] [--token JWT | --jwt-key KEY] [OPTION]...",
    )
    publish.add_argument("topic", help="the topic (canonical)")
    publish.add_argument("data", nargs="?", default="-", help="the data ('-': standard input)")
    publish.add_argument(
        "--topic", dest="more_topics", action="append", default=[], metavar="TOPIC",
        help="another topic of the same event; repeatable",
    )  # fmt: skip
    add_option(publish, "--hub", default=default_hub(), metavar="URL", help="the hub's base URL")
    add_token_options(publish)
    publish.add_argument("--private", action="store_true", help="a private update")
    publish.add_argument("--id", help="a custom event id")
    publish.add_argument("--type", help="the event type")
    publish.add_argument("--retry", type=integer, metavar="MS", help="reconnection time hint, ms")
    publish.set_defaults(run=run)
    return publish


def one_line_end_stripped(text: str) -> str:
    """`echo '{"x":1}' | ssehub publish t` publishes `{"x":1}`, not a second,
    empty data line: one final CRLF, LF or CR goes."""
    for end in ("\r\n", "\n", "\r"):
        if text.endswith(end):
            return text[: -len(end)]
    return text


def run(args: argparse.Namespace) -> int:
    data = one_line_end_stripped(sys.stdin.read()) if args.data == "-" else args.data
    topics = [args.topic, *args.more_topics]
    bearer = make_bearer(args, hub_url(args.hub), publish=topics)
    try:
        with Publisher(args.hub, bearer) as publisher:
            event_id = publisher.publish(
                topics, data, id=args.id, type=args.type, retry=args.retry, private=args.private
            )
    except PublishError as error:
        print(f"ssehub publish: {error}", file=sys.stderr)
        return 1
    print(event_id)
    return 0
