"""The `ssehub` command: argument parsing and exit codes only."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TextIO

from . import __version__
from .backends import HistoryLimits, backend_from_url
from .hub import Hub, HubConfig
from .protocol import Event, ProtocolError, encode_event
from .server import BUILTIN_PAGE, MERCURE_PATH, BackgroundHub, HubServer, JWTAuth, ServerConfig
from .server._platform import add_stop_signals, check_reuse_port
from .server._platform import run as run_loop

__all__ = ("main",)


def _parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The command line, and its `serve` subcommand (whose defaults the
    environment and a config file may set)."""
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
        epilog="Every option can also come from the environment as SSEHUB_<OPTION> "
        "(SSEHUB_JWT_KEY, SSEHUB_CORS_ORIGIN=a,b, SSEHUB_ANONYMOUS=true) or from a TOML "
        "file named by --config or SSEHUB_CONFIG (keys are the option names: port = 8000, "
        'cors-origin = ["https://app.example"]). Flags win over the environment, which '
        "wins over the file. Keys can be given as @path to read them from a file.",
    )
    serve.add_argument("--config", metavar="FILE", help="a TOML file of options")
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
        "--dashboard",
        action="store_true",
        default=None,
        help="serve the live dashboard at /_ssehub/ (default: only when listening on loopback)",
    )
    serve.add_argument(
        "--dashboard-token", metavar="TOKEN", help="require ?token=TOKEN for the dashboard"
    )
    serve.add_argument(
        "--subscriptions",
        action="store_true",
        help="publish subscription events and serve /.well-known/mercure/subscriptions",
    )
    serve.add_argument(
        "--publish-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="origins allowed to publish with the mercureAuthorization cookie; repeatable",
    )
    serve.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow pages of ORIGIN ('*': any) to subscribe and publish; repeatable",
    )
    serve.add_argument(
        "--jwt-key",
        metavar="KEY",
        help="verify publisher and subscriber JWTs with KEY (HMAC secret, or PEM public key; "
        "@FILE reads it from FILE, SSEHUB_JWT_KEY keeps it out of the process list)",
    )
    serve.add_argument(
        "--publisher-jwt-key", metavar="KEY", help="publishers' key (over --jwt-key)"
    )
    serve.add_argument(
        "--subscriber-jwt-key", metavar="KEY", help="subscribers' key (over --jwt-key)"
    )
    serve.add_argument("--jwt-algorithm", default="HS256", help="the JWTs' signature algorithm")
    serve.add_argument(
        "--anonymous",
        action="store_true",
        help="with a subscriber key: also let subscribers without a JWT in (public updates only)",
    )
    serve.add_argument(
        "--store",
        default="sqlite:ssehub.db",
        metavar="URL",
        help="history: sqlite:PATH (durable; sqlite:hub.db is in the working folder, "
        "sqlite:///var/lib/hub.db absolute), redis://host:port/db (shared by several hubs) "
        "or memory: (this process only)",
    )
    serve.add_argument("--cert", metavar="FILE", help="serve HTTPS with this certificate (PEM)")
    serve.add_argument("--key", metavar="FILE", help="the certificate's private key (PEM)")
    serve.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="open connections at most, beyond: 503; None: the open-files limit less 64",
    )
    serve.add_argument("--max-topics", type=int, default=64, help="topics per subscription")
    serve.add_argument("--max-body-bytes", type=int, default=1024 * 1024, help="publish body size")
    serve.add_argument(
        "--idle-timeout",
        type=float,
        default=60.0,
        help="seconds an idle non-stream connection lives",
    )
    serve.add_argument("--heartbeat", type=float, default=15.0, help="seconds between heartbeats")
    serve.add_argument("--history-events", type=int, default=1000, help="events kept per topic")
    serve.add_argument("--history-age", type=float, default=3600.0, help="seconds an event is kept")
    serve.add_argument(
        "--grace", type=float, default=5.0, help="seconds streams get to end at shutdown"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes sharing the port (SO_REUSEPORT); more than 1 needs a redis:// store",
    )
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="info: a line per stream opened and closed, and per refusal",
    )

    listen = commands.add_parser(
        "listen",
        help="print the events of an SSE stream as they arrive",
        description="Print the events of an SSE stream as they arrive, reconnecting and "
        "resuming as a browser does. Exit codes: 0 done (--count reached, or the server "
        "answered 204), 1 the stream failed for good, 2 bad arguments, 130 interrupted.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    listen.add_argument("url", nargs="?", help="the stream's URL (or use --hub and --topic)")
    listen.add_argument("--hub", help="a hub's base URL, e.g. http://127.0.0.1:8000")
    listen.add_argument("--topic", action="append", default=[], help="with --hub; repeatable")
    listen.add_argument(
        "--format",
        choices=("text", "json", "raw"),
        default="text",
        help="text: the data; json: one object per event; raw: the event-stream bytes",
    )
    listen.add_argument("--last-event-id", help="resume after this id ('earliest': all history)")
    listen.add_argument("--count", type=int, help="exit 0 after this many events")
    listen.add_argument(
        "-H", "--header", action="append", default=[], metavar="'NAME: VALUE'", help="repeatable"
    )
    listen.add_argument("--max-retries", type=int, default=10, help="failed attempts in a row")
    listen.add_argument("--retry-forever", action="store_true", help="never give up")
    listen.add_argument(
        "--idle-timeout", type=float, default=45.0, help="reconnect after this much silence"
    )

    pipe = commands.add_parser(
        "pipe",
        help="publish each line of standard input as an event",
        description="Publish each line read from standard input as an event on TOPIC, "
        "to a running hub (--hub) or to a hub started here with the live page (--serve): "
        "`tail -f app.log | ssehub pipe logs --serve`. At end of input, stops once "
        "everything read was delivered.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    pipe.add_argument("topic")
    target = pipe.add_mutually_exclusive_group(required=True)
    target.add_argument("--hub", help="a running hub's base URL")
    target.add_argument("--serve", action="store_true", help="start a hub with the live page")
    pipe.add_argument("--token", help="with --hub: sent as 'Authorization: Bearer TOKEN'")
    pipe.add_argument("--type", default="message", help="the events' type")
    pipe.add_argument("--host", default="127.0.0.1", help="with --serve: address to listen on")
    pipe.add_argument("--port", type=int, default=8000, help="with --serve: port to listen on")
    pipe.add_argument("--grace", type=float, default=5.0, help="with --serve: seconds to end")

    token = commands.add_parser(
        "token",
        help="print a JWT for a hub (for development)",
        description="Print a JWT with the given Mercure claims, signed with --jwt-key.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    token.add_argument(
        "--jwt-key", required=True, metavar="KEY", help="HMAC secret or PEM private key"
    )
    token.add_argument("--jwt-algorithm", default="HS256")
    token.add_argument("--publish", action="append", default=[], metavar="SELECTOR",
                       help="topics it may publish to ('*': all); repeatable")  # fmt: skip
    token.add_argument("--subscribe", action="append", default=[], metavar="SELECTOR",
                       help="topics whose private updates it may receive; repeatable")  # fmt: skip
    token.add_argument(
        "--ttl", type=float, default=3600.0, help="seconds until it expires (0: never)"
    )

    publish = commands.add_parser(
        "publish",
        help="publish one event to a running hub",
        description="Publish one event to a hub's /.well-known/mercure (prints its id).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    publish.add_argument("topic", help="the topic (canonical)")
    publish.add_argument("data", nargs="?", default="-", help="the data ('-': standard input)")
    publish.add_argument(
        "--topic", dest="more_topics", action="append", default=[], metavar="TOPIC",
        help="another topic of the same event; repeatable",
    )  # fmt: skip
    publish.add_argument("--hub", default="http://127.0.0.1:8000", help="the hub's base URL")
    publish.add_argument("--token", help="a publisher JWT")
    publish.add_argument("--jwt-key", metavar="KEY", help="mint a publisher JWT with this key")
    publish.add_argument("--private", action="store_true", help="a private update")
    publish.add_argument("--id", help="a custom event id")
    publish.add_argument("--type", help="the event type")
    publish.add_argument("--retry", type=int, help="reconnection time hint, ms")
    return parser, serve


def main(argv: Sequence[str] | None = None) -> int:
    parser, serve = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["serve"]:
            _serve_defaults(serve, argv[1:], os.environ)
    except (ValueError, OSError) as error:
        print(f"ssehub: error: {error}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            return _demo(args)
        if args.command == "listen":
            return _listen(args)
        if args.command == "pipe":
            return _pipe(args)
        if args.command == "token":
            return _token(args)
        if args.command == "publish":
            return _publish(args)
        return _serve(args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, OSError, ImportError) as error:
        print(f"ssehub: error: {error}", file=sys.stderr)
        return 2


def _hub_url(hub: str) -> str:
    hub = hub.rstrip("/")
    return hub if hub.endswith(MERCURE_PATH) else hub + MERCURE_PATH


def _listen(args: argparse.Namespace) -> int:
    from urllib.parse import urlencode

    try:
        from .client import EventSource, SSEClientError, SSEResponseError
    except ImportError as error:
        print(f"ssehub: error: {error}", file=sys.stderr)
        return 2
    if args.hub:
        if not args.topic:
            raise ValueError("--hub needs at least one --topic")
        url = _hub_url(args.hub) + "?" + urlencode([("topic", t) for t in args.topic])
    elif args.url:
        url = args.url
    else:
        raise ValueError("give the stream's URL, or --hub and --topic")
    if args.count is not None and args.count < 1:
        raise ValueError(f"--count must be >= 1, not {args.count}")
    headers = {}
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"a header is 'Name: value', not {header!r}")
        headers[name.strip()] = value.strip()
    seen = 0
    try:
        with EventSource(
            url,
            headers=headers,
            last_event_id=args.last_event_id,
            max_retries=args.max_retries,
            retry_forever=args.retry_forever,
            idle_timeout=args.idle_timeout,
        ) as source:
            for event in source:
                sys.stdout.write(_format(event, args.format))
                sys.stdout.flush()
                seen += 1
                if args.count is not None and seen >= args.count:
                    return 0
    except SSEResponseError as error:
        if error.status_code == 204:
            return 0  # the server said: done
        print(f"ssehub: {error}", file=sys.stderr)
        return 1
    except (SSEClientError, ProtocolError) as error:
        print(f"ssehub: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (| head): nothing to say
        return 0
    return 0


def _format(event: Event, style: str) -> str:
    if style == "json":
        fields = {"event": event.event, "data": event.data, "id": event.id, "retry": event.retry}
        return json.dumps(fields, ensure_ascii=False) + "\n"
    if style == "raw":
        return encode_event(event).decode()
    return event.data + "\n"


def _lines(stream: TextIO) -> Iterator[str]:
    for line in stream:
        if line.endswith("\n"):
            line = line[:-1]
        yield line.removesuffix("\r")


def _pipe(args: argparse.Namespace) -> int:
    if args.serve:
        with BackgroundHub(port=args.port, host=args.host, page=True, grace=args.grace) as hub:
            print(f"ssehub pipe: open {hub.url}/?topic={args.topic}", file=sys.stderr, flush=True)
            for line in _lines(sys.stdin):
                hub.publish(args.topic, line, event=args.type)
        return 0
    try:
        import httpx
    except ImportError:
        print("ssehub: error: --hub needs httpx: pip install 'ssehub[client]'", file=sys.stderr)
        return 2
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    url = _hub_url(args.hub)
    with httpx.Client(headers=headers, timeout=10.0) as client:
        for line in _lines(sys.stdin):
            form = {"topic": args.topic, "data": line, "type": args.type}
            try:
                response = client.post(url, data=form)
            except httpx.HTTPError as error:
                print(f"ssehub: cannot publish to {url}: {error}", file=sys.stderr)
                return 1
            if response.status_code != 200:
                reason = response.text.strip().splitlines()[0] if response.text.strip() else ""
                print(f"ssehub: the hub refused: {response.status_code} {reason}", file=sys.stderr)
                return 1
    return 0


def _demo(args: argparse.Namespace) -> int:
    if not args.interval > 0:
        raise ValueError(f"--interval must be > 0, not {args.interval}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with BackgroundHub(port=args.port, host=args.host, page=True, dashboard=None) as hub:
        print(f"ssehub demo: open {hub.url}/ in a browser (Ctrl-C to stop)", flush=True)
        if hub.server_config.dashboard_enabled:
            print(f"ssehub demo: the dashboard is at {hub.url}/_ssehub/", flush=True)
        try:
            while not stop.wait(args.interval):
                hub.publish("clock", datetime.now().astimezone().isoformat(timespec="seconds"))
        except KeyboardInterrupt:
            pass
    return 0


def _serve(args: argparse.Namespace) -> int:
    if args.workers != 1:
        return _workers(args)
    page = None
    if args.page == "builtin":
        page = BUILTIN_PAGE
    elif args.page:
        page = Path(args.page)
    server_config = ServerConfig(
        host=args.host,
        port=args.port,
        static_dir=page,
        certfile=Path(args.cert) if args.cert else None,
        keyfile=Path(args.key) if args.key else None,
        max_connections=args.max_connections,
        max_topics=args.max_topics,
        max_body_bytes=args.max_body_bytes,
        idle_timeout=args.idle_timeout,
        anonymous_publish=args.anonymous_publish,
        cors_origins=tuple(args.cors_origin),
        auth=JWTAuth(
            publisher_key=_key(args.publisher_jwt_key or args.jwt_key),
            subscriber_key=_key(args.subscriber_jwt_key or args.jwt_key),
            algorithm=args.jwt_algorithm,
        ),
        anonymous=args.anonymous,
        publish_origins=tuple(args.publish_origin),
        subscriptions=args.subscriptions,
        dashboard=args.dashboard,
        dashboard_token=args.dashboard_token,
        reuse_port=args.reuse_port,
    )
    hub_config = HubConfig(heartbeat=args.heartbeat)
    limits = HistoryLimits(max_events=args.history_events, max_age=args.history_age)
    backend = backend_from_url(args.store, limits)
    if not args.grace >= 0:
        raise ValueError(f"--grace must be >= 0, not {args.grace}")

    _raise_open_files_limit()
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )

    async def run() -> None:
        stop = asyncio.Event()
        add_stop_signals(asyncio.get_running_loop(), stop.set)
        async with Hub(hub_config, backend=backend) as hub:
            server = HubServer(hub, server_config)
            await server.start()
            scheme = "https" if args.cert else "http"
            print(
                f"ssehub: hub on {scheme}://{args.host}:{server.port}/.well-known/mercure"
                f" (history: {args.store})",
                flush=True,
            )
            await stop.wait()
            print("ssehub: shutting down", flush=True)
            await server.drain(args.grace)
            await server.aclose()

    run_loop(run())
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


def _key(value: str | None) -> str | None:
    """A key given as text, or as @path to a file holding it (PEM keys)."""
    if value is None or not value.startswith("@"):
        return value
    return Path(value[1:]).read_text()


def _mint(key: str, algorithm: str, publish: list[str], subscribe: list[str], ttl: float) -> str:
    try:
        import jwt
    except ImportError:
        raise ValueError("minting a JWT needs PyJWT: pip install 'ssehub[jwt]'") from None
    claims: dict[str, object] = {"mercure": {"publish": publish, "subscribe": subscribe}}
    if ttl > 0:
        claims["exp"] = int(datetime.now().timestamp() + ttl)
    secret = _key(key)
    assert secret is not None
    return str(jwt.encode(claims, secret, algorithm=algorithm))


def _token(args: argparse.Namespace) -> int:
    print(_mint(args.jwt_key, args.jwt_algorithm, args.publish, args.subscribe, args.ttl))
    return 0


def _publish(args: argparse.Namespace) -> int:
    try:
        import httpx
    except ImportError:
        print("ssehub: error: publish needs httpx: pip install 'ssehub[client]'", file=sys.stderr)
        return 2
    data = sys.stdin.read() if args.data == "-" else args.data
    topics = [args.topic, *args.more_topics]
    token = args.token
    if token is None and args.jwt_key:
        token = _mint(args.jwt_key, "HS256", topics, [], 60)
    form: list[tuple[str, str]] = [("topic", t) for t in topics] + [("data", data)]
    for name, value in (("id", args.id), ("type", args.type), ("retry", args.retry)):
        if value is not None:
            form.append((name, str(value)))
    if args.private:
        form.append(("private", "on"))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.post(_hub_url(args.hub), data=_multi(form), headers=headers)
    except httpx.HTTPError as error:
        print(f"ssehub: cannot publish to {args.hub}: {error}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        reason = response.text.strip().splitlines()[0] if response.text.strip() else ""
        print(f"ssehub: the hub refused: {response.status_code} {reason}", file=sys.stderr)
        return 1
    print(response.text)
    return 0


def _multi(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    form: dict[str, list[str]] = {}
    for name, value in pairs:
        form.setdefault(name, []).append(value)
    return form


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _serve_defaults(
    serve: argparse.ArgumentParser, argv: list[str], env: Mapping[str, str]
) -> None:
    """Set `serve`'s defaults from a TOML file and SSEHUB_* variables, so that
    flags still win: flags > environment > file > built-in defaults."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    path = known.config or env.get("SSEHUB_CONFIG")
    sources: list[tuple[str, Mapping[str, object]]] = []
    if path:
        try:
            with open(path, "rb") as file:
                table = tomllib.load(file)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path}: not valid TOML: {error}") from None
        sources.append((path, {k.replace("-", "_"): v for k, v in table.items()}))
    prefix = "SSEHUB_"
    sources.append(
        (
            "environment",
            {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)},
        )
    )
    actions = {a.dest: a for a in serve._actions if a.dest not in ("help", "config")}
    defaults: dict[str, object] = {}
    for where, values in sources:
        for name, raw in values.items():
            action = actions.get(name)
            if action is None:
                if where != "environment":
                    raise ValueError(f"{where}: unknown option {name.replace('_', '-')!r}")
                continue
            defaults[name] = _option_value(action, raw, f"{where}: {name.replace('_', '-')}")
    serve.set_defaults(**defaults)


def _option_value(action: argparse.Action, raw: object, where: str) -> object:
    if action.nargs == 0 and action.const is True:  # a --flag
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueError(f"{where}: expected true or false, not {raw!r}")
    if isinstance(action, argparse._AppendAction):
        items = raw if isinstance(raw, list) else [s for s in str(raw).split(",") if s.strip()]
        return [str(item).strip() for item in items]
    convert = action.type if callable(action.type) else str
    try:
        value = convert(raw if isinstance(raw, str) else str(raw))
    except (TypeError, ValueError):
        raise ValueError(f"{where}: invalid value {raw!r}") from None
    if action.choices is not None and value not in action.choices:
        raise ValueError(f"{where}: {value!r} is not one of {', '.join(map(str, action.choices))}")
    return value


def _workers(args: argparse.Namespace) -> int:
    """`serve --workers N`: N processes on one port, one history (Redis).
    Signals go to every worker; the exit code is the worst of theirs."""
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, not {args.workers}")
    check_reuse_port("--workers > 1")
    if not str(args.store).startswith(("redis://", "rediss://")):
        raise ValueError(
            "--workers > 1 needs a shared store (--store redis://host:port/db): with "
            f"{args.store} each process would keep a history of its own"
        )
    if args.port == 0:
        raise ValueError("--workers > 1 needs a fixed --port (0 would give each its own)")
    argv = _argv_without_workers(sys.argv[1:])
    command = [sys.executable, "-m", "ssehub", *argv, "--workers", "1", "--reuse-port"]
    children = [subprocess.Popen(command) for _ in range(args.workers)]
    print(f"ssehub: {args.workers} workers on port {args.port} (store {args.store})", flush=True)

    def forward(signum: int, _: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, forward)
    codes = [child.wait() for child in children]
    return max(codes, key=abs)


def _argv_without_workers(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out
