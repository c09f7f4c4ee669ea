"""`ssehub token`: print a development JWT."""

from __future__ import annotations

import argparse
from typing import Any

from ssehub.server import JWTAuth

from ._jwt import mint
from ._options import add_option, algorithm, config_default, key, number

__all__ = ("add_parser", "run")


def add_parser(commands: Any) -> argparse.ArgumentParser:
    token: argparse.ArgumentParser = commands.add_parser(
        "token",
        help="print a JWT for a hub (for development)",
        description="Print a JWT with the given Mercure claims, signed with --jwt-key.",
        usage="%(prog)s --jwt-key KEY [--publish SELECTOR] [--subscribe SELECTOR] [OPTION]...",
    )
    token.add_argument(
        "--jwt-key",
        required=True,
        metavar="KEY",
        type=key,
        help="HMAC secret or PEM private key (@FILE reads it from FILE)",
    )
    add_option(
        token,
        "--jwt-algorithm",
        metavar="ALG",
        type=algorithm,
        default=config_default(JWTAuth, "algorithm"),
        help="the signature algorithm",
    )
    token.add_argument(
        "--publish",
        action="append",
        default=[],
        metavar="SELECTOR",
        help="topics it may publish to ('*': all); repeatable",
    )
    token.add_argument(
        "--subscribe",
        action="append",
        default=[],
        metavar="SELECTOR",
        help="topics whose private updates it may receive; repeatable",
    )
    add_option(
        token,
        "--ttl",
        type=number,
        default=3600.0,
        metavar="SECONDS",
        help="seconds until it expires (0: never)",
    )
    token.set_defaults(run=run)
    return token


def run(args: argparse.Namespace) -> int:
    print(mint(args.jwt_key, args.jwt_algorithm, args.publish, args.subscribe, args.ttl))
    return 0
