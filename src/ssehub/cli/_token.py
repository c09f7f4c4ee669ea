"""`ssehub token`: print a development JWT, Mercure 0.x or 1.0."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ssehub.server import JWTAuth

from ._jwt import Access, Match, mint, mint_access_token
from ._options import UsageError, add_option, algorithm, config_default, key, number

__all__ = ("add_parser", "run")

# (flag, action, match_type) of the 1.0 matcher flags
_MATCHERS = (
    ("--publish-match", "publish", "exact"),
    ("--publish-match-urlpattern", "publish", "urlpattern"),
    ("--subscribe-match", "subscribe", "exact"),
    ("--subscribe-match-urlpattern", "subscribe", "urlpattern"),
)


def add_parser(commands: Any) -> argparse.ArgumentParser:
    token: argparse.ArgumentParser = commands.add_parser(
        "token",
        help="print a JWT for a hub (for development)",
        description="Print a JWT signed with --jwt-key: a Mercure 0.x JWT (mercure.publish / "
        "mercure.subscribe claims) by default; with --jwt-issuer, a Mercure 1.0 access token "
        "(typ at+jwt, iss, aud, exp, sub, authorization_details).",
        usage="%(prog)s --jwt-key KEY [--publish SELECTOR] [--subscribe SELECTOR] [OPTION]...\n"
        "       %(prog)s --jwt-key KEY --jwt-issuer ISSUER --resource URL "
        "[--publish-match TOPIC] [--subscribe-match TOPIC] [OPTION]...",
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
        help="0.x: topics it may publish to ('*': all); repeatable",
    )
    token.add_argument(
        "--subscribe",
        action="append",
        default=[],
        metavar="SELECTOR",
        help="0.x: topics whose private updates it may receive; repeatable",
    )
    add_option(
        token,
        "--ttl",
        type=number,
        default=3600.0,
        metavar="SECONDS",
        help="seconds until it expires (0: never, 0.x only)",
    )
    v1 = token.add_argument_group("Mercure 1.0 access tokens")
    v1.add_argument(
        "--jwt-issuer",
        metavar="ISSUER",
        help="make a 1.0 access token whose iss is ISSUER (one the hub trusts: its --jwt-issuer "
        "or --jwt-issuer-key)",
    )
    v1.add_argument(
        "--resource",
        metavar="URL",
        help="the token's aud: the hub's resource identifier (its --resource, else its "
        "/.well-known/mercure URL, e.g. http://127.0.0.1:8000/.well-known/mercure)",
    )
    add_option(v1, "--subject", metavar="SUB", default="ssehub-cli", help="the token's sub")
    for flag, action, kind in _MATCHERS:
        what = "an exact topic ('*': all)" if kind == "exact" else "a URL pattern"
        verb = "publish to" if action == "publish" else "receive the private updates of"
        v1.add_argument(
            flag,
            action="append",
            default=[],
            metavar="TOPIC" if kind == "exact" else "PATTERN",
            help=f"topics it may {verb}: {what}; repeatable",
        )
    v1.add_argument(
        "--payload", metavar="JSON", help="the subscribe detail's payload (a JSON object)"
    )
    token.set_defaults(run=run)
    return token


def run(args: argparse.Namespace) -> int:
    given = {
        flag: getattr(args, flag[2:].replace("-", "_"))
        for flag in ("--resource", "--payload", *(m[0] for m in _MATCHERS))
    }
    if args.jwt_issuer is None:
        extra = [flag for flag, value in given.items() if value]
        if extra:
            raise UsageError(
                f"{extra[0]} is for Mercure 1.0 access tokens: give --jwt-issuer ISSUER and "
                "--resource URL"
            )
        print(mint(args.jwt_key, args.jwt_algorithm, args.publish, args.subscribe, args.ttl))
        return 0
    if args.publish or args.subscribe:
        flag = "--publish" if args.publish else "--subscribe"
        raise UsageError(
            f"{flag} takes 0.x selectors: a 1.0 access token (--jwt-issuer) takes {flag}-match "
            f"or {flag}-match-urlpattern"
        )
    if not args.resource:
        raise UsageError(
            "--jwt-issuer: a 1.0 access token needs --resource URL (its aud: the hub's resource "
            "identifier)"
        )
    matchers: dict[str, list[Match]] = {"publish": [], "subscribe": []}
    for flag, action, kind in _MATCHERS:
        matchers[action] += [(value, kind) for value in given[flag]]
    payload = None
    if args.payload is not None:
        try:
            payload = json.loads(args.payload)
        except ValueError as error:
            raise UsageError(f"--payload: not JSON: {error}") from None
        if not isinstance(payload, dict):
            raise UsageError("--payload: must be a JSON object")
    access = Access(args.jwt_issuer, args.resource, args.subject)
    print(
        mint_access_token(
            args.jwt_key,
            args.jwt_algorithm,
            access,
            matchers["publish"],
            matchers["subscribe"],
            args.ttl,
            payload=payload,
        )
    )
    return 0
