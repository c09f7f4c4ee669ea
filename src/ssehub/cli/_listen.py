"""`ssehub listen`: print the events of a stream as they arrive."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from ssehub.protocol import Event, ProtocolError, encode_event

from ._http import hub_url
from ._jwt import Match
from ._jwt import bearer as make_bearer
from ._options import UsageError, add_option, add_token_options, integer, number

if TYPE_CHECKING:
    from ssehub.client import Gap, Reconnecting

__all__ = ("add_parser", "format_event", "run")


def add_parser(commands: Any) -> argparse.ArgumentParser:
    listen: argparse.ArgumentParser = commands.add_parser(
        "listen",
        help="print the events of an SSE stream as they arrive",
        description="Print the events of an SSE stream as they arrive, reconnecting and "
        "resuming as a browser does. Exit codes: 0 done (--count reached, or the server "
        "answered 204), 1 the stream failed for good, 2 bad arguments, 130 interrupted.",
        usage="%(prog)s (URL | --hub URL (--topic T | --match T)) [--token JWT | --jwt-key KEY] "
        "[OPTION]...",
    )
    listen.add_argument("url", nargs="?", help="the stream's URL (or use --hub and --topic)")
    listen.add_argument("--hub", metavar="URL", help="a hub's base URL, e.g. http://127.0.0.1:8000")
    listen.add_argument(
        "--topic",
        action="append",
        default=[],
        help="with --hub: a Mercure 0.x topic selector; repeatable",
    )
    listen.add_argument(
        "--match",
        action="append",
        default=[],
        metavar="TOPIC",
        help="with --hub: a Mercure 1.0 exact topic matcher ('*': all); repeatable",
    )
    listen.add_argument(
        "--match-urlpattern", action="append", default=[], metavar="PATTERN",
        help="with --hub: a 1.0 URL pattern matcher (relative: to the hub's URL); repeatable",
    )  # fmt: skip
    add_token_options(listen)
    add_option(
        listen,
        "--format",
        choices=("text", "json", "raw"),
        default="text",
        help="text: the data; json: one object per event; raw: the event-stream bytes",
    )
    listen.add_argument(
        "--last-event-id", metavar="ID", help="resume after this id ('earliest': all history)"
    )
    listen.add_argument("--count", type=integer, help="exit 0 after this many events")
    listen.add_argument(
        "-H", "--header", action="append", default=[], metavar="'NAME: VALUE'", help="repeatable"
    )
    add_option(
        listen,
        "--max-retries",
        type=integer,
        default=10,
        metavar="N",
        help="failed attempts in a row before giving up",
    )
    listen.add_argument("--retry-forever", action="store_true", help="never give up")
    add_option(
        listen,
        "--idle-timeout",
        type=number,
        default=45.0,
        metavar="SECONDS",
        help="reconnect after this much silence",
    )
    listen.set_defaults(run=run)
    return listen


def _target(args: argparse.Namespace) -> tuple[str, list[str], list[Match]]:
    """The stream's URL, and what it asks for (what a minted token may
    receive): 0.x topic selectors, or 1.0 matchers."""
    v1 = [(m, "exact") for m in args.match] + [(p, "urlpattern") for p in args.match_urlpattern]
    if args.hub:
        if args.topic and v1:
            raise UsageError("give --topic (Mercure 0.x) or --match/--match-urlpattern (1.0)")
        if not args.topic and not v1:
            raise UsageError("--hub needs at least one --topic (0.x) or --match (1.0)")
        if v1:
            names = {"exact": "match", "urlpattern": "match_urlpattern"}
            query = urlencode([(names[kind], value) for value, kind in v1])
            return hub_url(args.hub) + "?" + query, [], v1
        url = hub_url(args.hub) + "?" + urlencode([("topic", t) for t in args.topic])
        return url, list(args.topic), []
    if args.topic or v1:
        raise UsageError("--topic, --match and --match-urlpattern go with --hub")
    if args.url:
        params = parse_qs(urlsplit(args.url).query)
        v1 = [(m, "exact") for name in ("match", "match_exact") for m in params.get(name, [])]
        v1 += [(p, "urlpattern") for p in params.get("match_urlpattern", [])]
        if v1:
            return args.url, [], v1
        topics = params.get("topic", [])
        if args.jwt_issuer is not None and not topics:
            return args.url, [], [("*", "exact")]
        return args.url, topics or ["*"], []
    raise UsageError("give the stream's URL, or --hub and --topic or --match")


def _headers(args: argparse.Namespace) -> dict[str, str]:
    headers = {}
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"-H: a header is 'Name: value', not {header!r}")
        headers[name.strip()] = value.strip()
    if (args.token or args.jwt_key) and any(n.lower() == "authorization" for n in headers):
        raise UsageError("give --token/--jwt-key or an Authorization header, not both")
    return headers


def run(args: argparse.Namespace) -> int:
    try:
        import httpx
    except ImportError:
        raise UsageError("listening to a hub needs httpx: pip install 'ssehub[client]'") from None
    from ssehub.client import EventSource, SSEClientError, SSEResponseError

    url, topics, matchers = _target(args)
    if args.count is not None and args.count < 1:
        raise UsageError(f"--count must be >= 1, not {args.count}")
    headers = _headers(args)
    if args.jwt_key is not None and matchers and args.jwt_issuer is None:
        raise UsageError(
            "a Mercure 1.0 subscription (match) takes 1.0 access tokens: give --jwt-issuer ISSUER "
            "with --jwt-key"
        )
    if args.jwt_issuer is not None and topics:
        raise UsageError("--jwt-issuer mints Mercure 1.0 access tokens: subscribe with --match")
    bearer = make_bearer(args, url.partition("?")[0], subscribe=topics, matchers=matchers)

    def authorize(request: httpx.Request) -> None:  # each attempt: a fresh minted token
        request.headers.update(bearer.headers())

    options: dict[str, Any] = {
        "headers": headers,
        "last_event_id": args.last_event_id,
        "max_retries": args.max_retries,
        "retry_forever": args.retry_forever,
        "idle_timeout": args.idle_timeout,
        # every failed attempt and the next wait, at once, on stderr (a hub
        # that is down must not look like a hub with nothing to say)
        "on_reconnect": _say_reconnecting,
        "on_gap": _say_gap,
    }
    seen = 0
    client = httpx.Client(follow_redirects=True, event_hooks={"request": [authorize]})
    try:
        with client, EventSource(url, client=client, **options) as source:
            for event in source:
                sys.stdout.write(format_event(event, args.format))
                sys.stdout.flush()
                seen += 1
                if args.count is not None and seen >= args.count:
                    return 0
    except SSEResponseError as error:
        if error.status_code == 204:
            return 0  # the server said: done
        hint = ""
        if error.status_code == 401 and not bearer.given:
            hint = " (give --token JWT, or --jwt-key KEY to mint one)"
        print(f"ssehub listen: {error}{hint}", file=sys.stderr)
        return 1
    except (SSEClientError, ProtocolError) as error:
        print(f"ssehub listen: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (| head): nothing to say
        return 0
    return 0


def format_event(event: Event, style: str) -> str:
    if style == "json":
        fields = {"event": event.event, "data": event.data, "id": event.id, "retry": event.retry}
        return json.dumps(fields, ensure_ascii=False) + "\n"
    if style == "raw":
        return encode_event(event).decode()
    return event.data + "\n"


def _say_reconnecting(attempt: Reconnecting) -> None:
    print(f"ssehub listen: {attempt}", file=sys.stderr, flush=True)


def _say_gap(gap: Gap) -> None:
    print(f"ssehub listen: {gap}", file=sys.stderr, flush=True)
