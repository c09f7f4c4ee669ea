"""`ssehub serve`: the standalone hub."""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import inspect
import logging
import signal
import sqlite3
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

from ssehub.backends import HistoryLimits, backend_from_url
from ssehub.backends._redis_url import redact
from ssehub.hooks import WebhookConfig
from ssehub.hooks._webhooks import shown_url
from ssehub.hub import Hub, HubConfig
from ssehub.mercure import AuthorizeConfig, JWTAuth, MercureConfig
from ssehub.mercure._issuers import issuer_keys
from ssehub.server import BUILTIN_PAGE, BackgroundHub, HubServer, ServerConfig
from ssehub.server._platform import add_stop_signals, check_reuse_port, collect_for_a_server
from ssehub.server._platform import run as run_loop

from ._options import (
    UsageError,
    add_option,
    algorithm,
    config_default,
    flag_names,
    integer,
    key,
    number,
    read_key,
)

__all__ = ("add_parser", "describe", "run", "serve_configs")

STORE = "sqlite:ssehub.db"
# seconds a thread holds the GIL while another waits for it (Python's default: 5 ms)
SWITCH_INTERVAL = 0.0005
EPILOG = (
    "Every option can also come from the environment as SSEHUB_<OPTION> "
    "(SSEHUB_JWT_KEY, SSEHUB_CORS_ORIGIN=a,b, SSEHUB_ANONYMOUS=true) or from a TOML "
    "file named by --config or SSEHUB_CONFIG (keys are the option names: port = 8000, "
    'cors-origin = ["https://app.example"]). Flags win over the environment, which '
    "wins over the file. Keys can be given as @path to read them from a file."
)


def add_parser(commands: Any) -> argparse.ArgumentParser:
    serve: argparse.ArgumentParser = commands.add_parser(
        "serve",
        help="run a hub (subscribe at /.well-known/mercure?topic=T)",
        description="Run a hub: publish with POST, subscribe with GET, at /.well-known/mercure.",
        usage="%(prog)s [--port N] [--jwt-key KEY | --anonymous-publish] [OPTION]...",
        epilog=EPILOG,
    )

    def server(flag: str, field: str, help: str, **kwargs: Any) -> None:
        add_option(serve, flag, default=config_default(ServerConfig, field), help=help, **kwargs)

    serve.add_argument("--config", metavar="FILE", help="a TOML file of options")
    server("--host", "host", "address to listen on")
    server("--port", "port", "port to listen on (0: any free port)", type=integer, metavar="N")
    serve.add_argument(
        "--page", metavar="DIR", help="serve DIR's files at / ('builtin': the live page)"
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
        "--dashboard-token", metavar="TOKEN", type=key, help="require ?token=TOKEN for it"
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
        type=key,
        help="verify publisher and subscriber JWTs with KEY (HMAC secret, or PEM public key; "
        "@FILE reads it from FILE, SSEHUB_JWT_KEY keeps it out of the process list)",
    )
    serve.add_argument(
        "--publisher-jwt-key", metavar="KEY", type=key, help="publishers' key (over --jwt-key)"
    )
    serve.add_argument(
        "--subscriber-jwt-key", metavar="KEY", type=key, help="subscribers' key (over --jwt-key)"
    )
    add_option(
        serve,
        "--jwt-algorithm",
        metavar="ALG",
        type=algorithm,
        help="the JWTs' signature algorithm",
        default=config_default(JWTAuth, "algorithm"),
    )
    add_option(
        serve,
        "--jwt-leeway",
        type=number,
        metavar="SECONDS",
        default=config_default(JWTAuth, "leeway"),
        help="clock skew allowed on the JWTs' exp, nbf and iat",
    )
    add_option(
        serve,
        "--mercure-dialect",
        choices=("both", "1.0", "0.x"),
        default=config_default(MercureConfig, "dialects"),
        help="the Mercure spoken: both (each request in the dialect it speaks: match= for 1.0, "
        "topic= for 0.x), 1.0 or 0.x only",
    )
    serve.add_argument(
        "--jwt-issuer",
        action="append",
        default=[],
        metavar="ISSUER",
        help="trust Mercure 1.0 access tokens whose iss is ISSUER, signed with the JWT keys; "
        "repeatable",
    )
    serve.add_argument(
        "--jwt-issuer-key",
        action="append",
        default=[],
        metavar="ISSUER=KEY",
        help="trust Mercure 1.0 access tokens whose iss is ISSUER, verified with this key of its "
        "own only (HMAC secret or PEM public key; ISSUER=@FILE reads it from FILE); repeatable, "
        "also for one issuer's rotated keys",
    )
    serve.add_argument(
        "--jwt-issuer-algorithm",
        action="append",
        default=[],
        metavar="ISSUER=ALG",
        help="an algorithm ISSUER's keys may sign with (default: --jwt-algorithm); repeatable",
    )
    serve.add_argument(
        "--resource",
        metavar="URL",
        help="the hub's resource identifier, its public URL: the aud of 1.0 access tokens and the "
        "base of relative URL patterns (default: /.well-known/mercure on the request's Host)",
    )
    serve.add_argument(
        "--max-stream-seconds",
        type=number,
        metavar="SECONDS",
        help="end every stream after this long (the client resumes); a stream opened with a "
        "JWT ends when the JWT expires in any case",
    )
    serve.add_argument(
        "--anonymous",
        action="store_true",
        help="with a subscriber key: also let subscribers without a JWT in (public updates only)",
    )
    _add_hook_options(serve)
    add_option(
        serve,
        "--store",
        default=STORE,
        metavar="URL",
        help="history: sqlite:PATH (durable; sqlite:hub.db is in the working folder, "
        "sqlite:///var/lib/hub.db absolute), redis://host:port/db (shared by several hubs), "
        "redis+sentinel://host:26379,host:26379,.../SERVICE/db (the primary Sentinel names, "
        "followed across failovers), redis+cluster://host:port,... (Redis Cluster; the prefix "
        "needs a hash tag, default {ssehub}:) or memory: (this process only); Redis URLs take "
        "?prefix=KEYS: &wait=N (acknowledge a publish only once N replicas have it) "
        "&wait_timeout_ms=1000 (else 503)",
    )
    serve.add_argument("--cert", metavar="FILE", help="serve HTTPS with this certificate (PEM)")
    serve.add_argument("--key", metavar="FILE", help="the certificate's private key (PEM)")
    serve.add_argument(
        "--max-connections",
        type=integer,
        metavar="N",
        help="open connections at most, beyond: 503 (default: the open-files limit less 64)",
    )
    add_option(
        serve,
        "--max-topics",
        default=config_default(MercureConfig, "max_topics"),
        help="topic selectors per subscription, and topics per publish",
        type=integer,
        metavar="N",
    )
    server("--max-body-bytes", "max_body_bytes", "publish body size", type=integer, metavar="BYTES")
    server(
        "--idle-timeout",
        "idle_timeout",
        "seconds an idle non-stream connection lives",
        type=number,
        metavar="SECONDS",
    )
    server(
        "--head-timeout",
        "head_timeout",
        "seconds a request head may take from its first byte (trickling does not extend it)",
        type=number,
        metavar="SECONDS",
    )
    server(
        "--body-timeout",
        "body_timeout",
        "seconds a request body may take after its head",
        type=number,
        metavar="SECONDS",
    )
    server(
        "--max-header-fields",
        "max_header_fields",
        "header fields per request",
        type=integer,
        metavar="N",
    )
    add_option(
        serve,
        "--heartbeat",
        type=number,
        metavar="SECONDS",
        default=config_default(HubConfig, "heartbeat"),
        help="seconds between heartbeats",
    )
    add_option(
        serve,
        "--presence-interval",
        type=number,
        metavar="SECONDS",
        default=config_default(HubConfig, "presence_interval"),
        help="Redis store: seconds between refreshes of this hub's presence entry"
        " (subscribers seen by every hub); it expires after 3 intervals",
    )
    add_option(
        serve,
        "--history-events",
        type=integer,
        metavar="N",
        default=config_default(HistoryLimits, "max_events"),
        help="events kept per topic",
    )
    add_option(
        serve,
        "--history-age",
        type=number,
        metavar="SECONDS",
        default=config_default(HistoryLimits, "max_age"),
        help="seconds an event is kept",
    )
    grace = inspect.signature(BackgroundHub).parameters["grace"].default
    add_option(
        serve,
        "--grace",
        type=number,
        default=grace,
        metavar="SECONDS",
        help="seconds streams get to end at shutdown",
    )
    add_option(
        serve,
        "--workers",
        type=integer,
        default=1,
        metavar="N",
        help="processes sharing the port (SO_REUSEPORT) and the store: the SQLite file "
        "(they wake each other for new events) or Redis; not memory:",
    )
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    # the workers of `--workers N` but the first: the summary is printed once
    serve.add_argument("--no-summary", action="store_true", help=argparse.SUPPRESS)
    add_option(
        serve,
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="info: a line per stream opened and closed, and per refusal",
    )
    # per-topic policies: [[topics]] tables of the --config file (cli/_topics.py)
    serve.set_defaults(topic_policies=())
    serve.set_defaults(run=run)
    return serve


def _add_hook_options(serve: argparse.ArgumentParser) -> None:
    """The app's hooks: the authorization callback and webhooks (one block)."""
    group = serve.add_argument_group("the app's hooks (docs/run-a-hub.md)")

    def authorize(flag: str, field: str, help: str, **kwargs: Any) -> None:
        default = config_default(AuthorizeConfig, field)
        add_option(group, flag, default=default, help=help, **kwargs)

    def webhook(flag: str, field: str, help: str, **kwargs: Any) -> None:
        add_option(group, flag, default=config_default(WebhookConfig, field), help=help, **kwargs)

    group.add_argument(
        "--authorize-url",
        metavar="URL",
        help="before each subscription and publish, POST the question (action, topics) to URL "
        'and go on only if it answers {"allow": true}; beside JWTs, both must allow',
    )
    group.add_argument(
        "--authorize-forward",
        action="append",
        default=[],
        metavar="NAMES",
        help="request headers passed on to --authorize-url, e.g. Cookie,Authorization "
        "(default: none); repeatable",
    )
    authorize(
        "--authorize-timeout",
        "timeout",
        "seconds the app may take to answer; beyond, or a bad answer: 503",
        type=number,
        metavar="SECONDS",
    )
    authorize(
        "--authorize-cache-seconds",
        "cache_seconds",
        "seconds an answer is reused for the same question and headers (its ttl wins)",
        type=number,
        metavar="SECONDS",
    )
    authorize(
        "--authorize-cache-size", "cache_size", "answers cached at most", type=integer, metavar="N"
    )
    group.add_argument(
        "--webhook-url",
        action="append",
        default=[],
        metavar="URL",
        help="POST subscription opened/closed and topic watched/unwatched notices to URL; "
        "repeatable",
    )
    group.add_argument(
        "--webhook-secret",
        metavar="KEY",
        type=key,
        help="sign the notices: SSEHub-Signature: t=TIME,v1=HMAC-SHA256(KEY, 'TIME.' + body) "
        "(@FILE reads it from FILE)",
    )
    webhook(
        "--webhook-queue",
        "max_pending",
        "notices waiting at most (beyond: dropped, counted in /metrics)",
        type=integer,
        metavar="N",
    )
    webhook("--webhook-attempts", "attempts", "tries per notice and URL", type=integer, metavar="N")
    webhook(
        "--webhook-backoff",
        "backoff",
        "seconds before the first retry, doubled each time, jittered",
        type=number,
        metavar="SECONDS",
    )
    webhook(
        "--webhook-timeout", "timeout", "seconds one try may take", type=number, metavar="SECONDS"
    )


def _hook_configs(args: argparse.Namespace) -> tuple[AuthorizeConfig | None, WebhookConfig | None]:
    """The hooks' configs (inside `flag_names()`), or None each when off."""
    authorize = webhooks = None
    if args.authorize_url:
        names = tuple(n.strip() for v in args.authorize_forward for n in v.split(",") if n.strip())
        authorize = AuthorizeConfig(
            args.authorize_url,
            forward=names,
            timeout=args.authorize_timeout,
            cache_seconds=args.authorize_cache_seconds,
            cache_size=args.authorize_cache_size,
        )
    elif args.authorize_forward:
        raise UsageError("--authorize-forward needs --authorize-url")
    if args.webhook_url:
        webhooks = WebhookConfig(
            tuple(u.strip() for v in args.webhook_url for u in v.split(",") if u.strip()),
            secret=read_key(args.webhook_secret, "--webhook-secret"),
            max_pending=args.webhook_queue,
            attempts=args.webhook_attempts,
            backoff=args.webhook_backoff,
            timeout=args.webhook_timeout,
        )
    elif args.webhook_secret:
        raise UsageError("--webhook-secret needs --webhook-url")
    if (authorize or webhooks) and importlib.util.find_spec("httpx") is None:
        raise UsageError(
            "--authorize-url and --webhook-url need httpx: pip install 'ssehub[hooks]'"
        )
    return authorize, webhooks


def serve_configs(args: argparse.Namespace) -> tuple[ServerConfig, HubConfig, HistoryLimits, str]:
    """The configs `serve`'s options make (errors in flag names), and the store URL."""
    page = None
    if args.page == "builtin":
        page = BUILTIN_PAGE
    elif args.page:
        page = Path(args.page)
    with flag_names():
        authorize, webhooks = _hook_configs(args)
        auth = JWTAuth(
            publisher_key=_key(args.publisher_jwt_key, "--publisher-jwt-key", args.jwt_key),
            subscriber_key=_key(args.subscriber_jwt_key, "--subscriber-jwt-key", args.jwt_key),
            algorithm=args.jwt_algorithm,
            leeway=args.jwt_leeway,
        )
        server = ServerConfig(
            host=args.host,
            port=args.port,
            static_dir=page,
            certfile=Path(args.cert) if args.cert else None,
            keyfile=Path(args.key) if args.key else None,
            max_connections=args.max_connections,
            max_body_bytes=args.max_body_bytes,
            idle_timeout=args.idle_timeout,
            head_timeout=args.head_timeout,
            body_timeout=args.body_timeout,
            max_header_fields=args.max_header_fields,
            mercure=MercureConfig(
                auth=auth,
                max_topics=args.max_topics,
                anonymous_publish=args.anonymous_publish,
                cors_origins=tuple(args.cors_origin),
                anonymous=args.anonymous,
                publish_origins=tuple(args.publish_origin),
                subscriptions=args.subscriptions,
                max_stream_seconds=args.max_stream_seconds,
                dialects=args.mercure_dialect,
                issuers=tuple(args.jwt_issuer),
                resource=args.resource,
                issuer_keys=issuer_keys(
                    args.jwt_issuer_key,
                    args.jwt_issuer_algorithm,
                    args.jwt_algorithm,
                    read=lambda raw: read_key(raw, "--jwt-issuer-key") or raw,
                ),
                authorize=authorize,
            ),
            webhooks=webhooks,
            dashboard=args.dashboard,
            dashboard_token=args.dashboard_token,
            reuse_port=args.reuse_port,
        )
        hub = HubConfig(
            heartbeat=args.heartbeat,
            topics=args.topic_policies,
            presence_interval=args.presence_interval,
        )
        limits = HistoryLimits(max_events=args.history_events, max_age=args.history_age)
    return server, hub, limits, args.store


def _key(own: str | None, flag: str, shared: str | None) -> str | None:
    return read_key(own, flag) if own is not None else read_key(shared, "--jwt-key")


def describe(config: ServerConfig, url: str, *, flags: str = "") -> list[str]:
    """What a hub accepts and how to change it, in flag names (`flags`: how
    to name them, e.g. "ssehub serve " from the demo)."""
    mercure = config.mercure
    auth = mercure.auth
    if auth.publisher_key is not None:
        publish = "with a JWT whose mercure.publish claim covers the topics"
    elif mercure.issuer_keys:
        publish = "with a Mercure 1.0 access token that allows the topics"
    elif mercure.anonymous_publish:
        publish = f"anyone who can reach the hub ({flags}--jwt-key KEY requires a JWT)"
    else:
        publish = f"off ({flags}--jwt-key KEY accepts JWTs, {flags}--anonymous-publish lets anyone)"
    if auth.subscriber_key is None and mercure.issuer_keys:
        subscribe = "with a 1.0 access token" + (
            " or none, public updates" if mercure.anonymous else " only"
        )
    elif auth.subscriber_key is None:
        subscribe = f"anyone, public updates only ({flags}--jwt-key KEY for private updates)"
    elif mercure.anonymous:
        subscribe = "anyone; private updates with a JWT"
    else:
        subscribe = f"with a JWT only ({flags}--anonymous lets anyone in for public updates)"
    lines = [f"publish: {publish}", f"subscribe: {subscribe}"]
    own = {k.issuer: k.algorithms for k in mercure.issuer_keys}
    trusted = [f"{i} ({', '.join(a)}, its own key)" for i, a in own.items()]
    trusted += [f"{i} (the JWT keys)" for i in mercure.issuers if i not in own]
    if trusted:
        lines.append(f"Mercure 1.0 access tokens from: {'; '.join(trusted)}")
    origins = ", ".join(mercure.cors_origins) or f"none ({flags}--cors-origin ORIGIN lets them in)"
    lines.append(f"pages of other origins: {origins}")
    if config.dashboard_enabled:
        token = " (with ?token=…)" if config.dashboard_token else ""
        lines.append(f"dashboard: {url}/_ssehub/{token}")
    else:
        lines.append(f"dashboard: off ({flags}--dashboard serves it at /_ssehub/)")
    if config.static_dir is not None:
        lines.append(f"page: {url}/")
    if mercure.authorize is not None:
        lines.append(
            f"authorization callback: {shown_url(mercure.authorize.url)} (both it and JWTs allow)"
        )
    if config.webhooks is not None:
        lines.append(f"webhooks: {', '.join(shown_url(u) for u in config.webhooks.urls)}")
    return lines


def base_url(config: ServerConfig, port: int) -> str:
    host = f"[{config.host}]" if ":" in config.host else config.host
    return f"{'https' if config.certfile else 'http'}://{host}:{port}"


def run(args: argparse.Namespace) -> int:
    if not args.grace >= 0:
        raise UsageError(f"--grace must be >= 0, not {args.grace}")
    if args.workers != 1:
        return _workers(args)
    server_config, hub_config, limits, store = serve_configs(args)
    try:
        # a worker of `--workers N` (or a process sharing the port): it
        # shares the store's history with the others, and follows it
        backend = backend_from_url(store, limits, shared=args.reuse_port)
    except ValueError as error:
        raise UsageError(f"--store: {error}") from None

    _raise_open_files_limit()
    _share_the_gil(backend)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # httpx logs each hook request's URL at INFO: receivers' tokens stay out of the log
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))

    async def serve() -> None:
        stop = asyncio.Event()
        add_stop_signals(asyncio.get_running_loop(), stop.set)
        hub = Hub(hub_config, backend=backend)
        await _open(hub, store)
        try:
            server = HubServer(hub, server_config)
            await _listen(server, server_config)
            frozen = collect_for_a_server()
            logging.getLogger("ssehub.server").debug(
                "gc: %d start-up objects frozen, thresholds %s", frozen, gc.get_threshold()
            )
            url = base_url(server_config, server.port)
            if not args.no_summary:
                print(
                    f"ssehub: hub on {url}/.well-known/mercure (history: {redact(store)})",
                    flush=True,
                )
                for line in describe(server_config, url):
                    print(f"ssehub: {line}", flush=True)
            await stop.wait()
            if not args.no_summary:
                print("ssehub: shutting down", flush=True)
            await server.drain(args.grace)
            await server.aclose()
        finally:
            await hub.aclose()

    run_loop(serve())
    return 0


async def _listen(server: HubServer, config: ServerConfig) -> None:
    """Start listening: a certificate that does not load, or an address that
    cannot be bound, is one line naming the flags."""
    try:
        await server.start()
    except ssl.SSLError as error:
        raise UsageError(f"--cert/--key: cannot load them: {error}") from None
    except OSError as error:
        reason = str(error.strerror or error).rpartition(": ")[2]
        raise UsageError(
            f"--host {config.host} --port {config.port}: cannot listen there: {reason}"
        ) from None


async def _open(hub: Hub, store: str) -> None:
    """Start the hub, whose start opens the store: a store that cannot be
    opened (a corrupt file, Redis down) is one line naming `--store`."""
    failures: tuple[type[BaseException], ...] = (sqlite3.Error, OSError)
    try:
        await hub.start()
    except Exception as error:
        redis = sys.modules.get("redis.exceptions")  # loaded by the store, if it is Redis
        if redis is not None:
            failures += (redis.RedisError,)
        if not isinstance(error, failures):
            raise
        await hub.aclose()
        raise UsageError(f"--store {redact(store)}: cannot open it: {error}") from None


def _share_the_gil(backend: object) -> None:
    """A worker on a shared SQLite file (`--workers N`) runs its commits on
    a writer thread and reads its peers' rows on a follower thread, beside
    a loop that holds the GIL through each fan-out pass: every SQLite call
    lets the GIL go, and taking it back waits out the switch interval, so a
    commit of a dozen calls took tens of ms while it held the file's write
    lock. A shorter interval hands it back within half a millisecond; it
    costs nothing while no other thread wants the GIL."""
    from ssehub.backends import SharedSQLiteBackend  # loaded already if it is one

    if isinstance(backend, SharedSQLiteBackend):
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))


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


def _workers(args: argparse.Namespace) -> int:
    """`serve --workers N`: N processes on one port, one history (the SQLite
    file or Redis). Signals go to every worker, also to one being started
    as it came (and no more start after it); the exit code is the worst of
    theirs."""
    if args.workers < 1:
        raise UsageError(f"--workers must be >= 1, not {args.workers}")
    try:
        check_reuse_port("--workers > 1")
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.port == 0:
        raise UsageError("--workers > 1 needs a fixed --port (0 would give each its own)")
    _, _, limits, store = serve_configs(args)  # bad options fail here once, not in every worker
    try:
        backend_from_url(store, limits, shared=True)
    except ValueError as error:
        raise UsageError(f"--workers > 1 needs a shared store: --store {error}") from None
    argv = _argv_without_workers(sys.argv[1:])
    command = [sys.executable, "-m", "ssehub", *argv, "--workers", "1", "--reuse-port"]
    children: list[subprocess.Popen[bytes]] = []
    # each signal caught, with how many workers had started then (and got it)
    received: list[tuple[int, int]] = []

    def forward(signum: int, _: object) -> None:
        received.append((signum, len(children)))
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    # Caught before the workers start: they begin with these signals at
    # their defaults, not ignored as a background job inherits SIGINT — a
    # worker told to stop while it starts would miss it and outlive us.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, forward)
    # the first worker prints the start summary (and "shutting down"), the
    # others nothing: one summary, as with one process
    for i in range(args.workers):
        if received:  # told to stop: start no more
            break
        child = subprocess.Popen(command if i == 0 else [*command, "--no-summary"])
        children.append(child)
        # a signal caught while it was being started was not forwarded to it
        for signum, started in list(received):
            if started <= i:
                child.send_signal(signum)
    if not received:
        print(
            f"ssehub: {args.workers} workers on port {args.port} (store {redact(args.store)})",
            flush=True,
        )
    codes = [child.wait() for child in children]
    code = max(codes, key=abs)
    return 128 - code if code < 0 else code  # a worker ended by signal N: 128 + N, as a shell says


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
