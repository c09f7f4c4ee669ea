"""Redis store URLs: one server, or a primary found through Sentinel, plus
ssehub's own settings in the query. Pure parsing, no redis-py import.

    redis://[[user]:password@]host[:port][/db][?OPTIONS]          (rediss:// for TLS)
    unix://[[user]:password@]/path/to/redis.sock[?db=N&OPTIONS]
    redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/SERVICE[/db][?OPTIONS]
    redis+cluster://[[user]:password@]host[:port][,host[:port]...][?OPTIONS]

OPTIONS: `prefix=` (key prefix, default `ssehub:`; for Cluster `{ssehub}:`,
and it must hold a hash tag so every key is in one slot), `wait=N` (replicas that
must confirm each append, default 0), `wait_timeout_ms=` (how long to wait
for them, default 1000), and for Sentinel `sentinel_password=` (when the
Sentinels themselves need a password). The user and password authenticate to
the Redis servers (not to the Sentinels); Sentinels listen on 26379 unless a
port is given. Cluster hosts are any nodes of the cluster (port 6379 unless
given); there is no database number, and no `wait=` (yet). Anything else
is refused with a line naming what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = (
    "CLUSTER_PREFIX",
    "SENTINEL_PORT",
    "RedisURL",
    "has_hash_tag",
    "parse_redis_url",
    "redact",
)

SENTINEL_PORT = 26379
CLUSTER_PREFIX = "{ssehub}:"
_OPTIONS = ("prefix", "wait", "wait_timeout_ms")
_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster")


def has_hash_tag(prefix: str) -> bool:
    """Whether keys starting with `prefix` all hash to one Redis Cluster
    slot: a `{` followed later by a `}` with something between (the first
    such pair is the tag)."""
    start = prefix.find("{")
    return start >= 0 and prefix.find("}", start + 1) > start + 1


@dataclass(frozen=True, slots=True)
class RedisURL:
    """A parsed store URL. `url` is what redis-py connects to for one server
    (ssehub's options removed); for Sentinel it is empty and `sentinels`,
    `service`, `db`, `username`, `password` say where and how."""

    url: str = ""
    sentinels: tuple[tuple[str, int], ...] = ()
    cluster: tuple[tuple[str, int], ...] = ()
    """Redis Cluster: the nodes to start from."""
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    prefix: str = "ssehub:"
    wait: int = 0
    wait_timeout_ms: int = 1000

    def __post_init__(self) -> None:
        if [bool(self.url), bool(self.sentinels), bool(self.cluster)].count(True) != 1:
            raise ValueError("RedisURL needs one of url, sentinels or cluster")
        if self.sentinels and not self.service:
            raise ValueError("RedisURL with sentinels needs a service name")
        if type(self.wait) is not int or self.wait < 0:
            raise ValueError(f"wait must be an int >= 0 (replicas), not {self.wait!r}")
        if type(self.wait_timeout_ms) is not int or self.wait_timeout_ms < 1:
            raise ValueError(
                f"wait_timeout_ms must be an int >= 1 (WAIT 0 would block forever),"
                f" not {self.wait_timeout_ms!r}"
            )
        if not self.prefix:
            raise ValueError("prefix must not be empty (keys of different hubs would mix)")
        if self.cluster and not has_hash_tag(self.prefix):
            raise ValueError(
                f"Redis Cluster needs a prefix with a hash tag, like {CLUSTER_PREFIX!r}"
                f" (not {self.prefix!r}): a publish's keys must share one slot"
            )
        if self.cluster and self.wait:
            raise ValueError("wait= is not supported with Redis Cluster (yet)")


def redact(url: str) -> str:
    """`url` with its password (if any) replaced by `***`, for messages."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{hosts}{slash}{tail}"


def parse_redis_url(url: str) -> RedisURL:
    """Parse a Redis store URL (see the module's grammar); `ValueError`
    naming the problem for a malformed one."""
    shown = redact(url)
    scheme, sep, _ = url.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise ValueError(
            f"store URL {shown!r}: the scheme must be redis://, rediss://, unix://,"
            " redis+sentinel:// or redis+cluster://"
        )
    head, hash_sign, _ = url.partition("#")
    if hash_sign:
        raise ValueError(f"store URL {shown!r}: a '#' fragment has no meaning here")
    raw_query = head.partition("?")[2]
    try:
        query = parse_qs(raw_query, keep_blank_values=True, strict_parsing=bool(raw_query))
    except ValueError:
        raise ValueError(f"store URL {shown!r}: the query is not name=value&...") from None
    sentinel = scheme.lower() == "redis+sentinel"
    cluster = scheme.lower() == "redis+cluster"
    known = _OPTIONS + (("sentinel_password",) if sentinel else ())
    known += () if sentinel or cluster else ("db",)
    for name, values in query.items():
        if name not in known:
            raise ValueError(
                f"store URL {shown!r}: unknown parameter {name!r} (known: {', '.join(known)})"
            )
        if len(values) > 1:
            raise ValueError(f"store URL {shown!r}: parameter {name!r} given twice")
    options = {name: values[0] for name, values in query.items()}
    settings: dict[str, object] = {
        "prefix": options.get("prefix", CLUSTER_PREFIX if cluster else "ssehub:")
    }
    if not settings["prefix"]:
        raise ValueError(f"store URL {shown!r}: prefix= must not be empty")
    if cluster and not has_hash_tag(str(settings["prefix"])):
        raise ValueError(
            f"store URL {shown!r}: Redis Cluster needs a prefix= with a hash tag, like"
            f" prefix={CLUSTER_PREFIX} (all of a hub group's keys in one slot)"
        )
    if cluster and options.get("wait", "0") != "0":
        raise ValueError(f"store URL {shown!r}: wait= is not supported with Redis Cluster (yet)")
    for name in ("wait", "wait_timeout_ms"):
        if name in options:
            raw = options[name]
            if not (raw.isascii() and raw.isdigit()):
                raise ValueError(
                    f"store URL {shown!r}: {name}= must be a whole number, not {raw!r}"
                )
            settings[name] = int(raw)
    if settings.get("wait_timeout_ms") == 0:
        raise ValueError(f"store URL {shown!r}: wait_timeout_ms= must be >= 1 (0 waits forever)")
    if cluster:
        return _cluster_url(url, shown, settings)
    if not sentinel:
        try:
            parts = urlsplit(url)
        except ValueError as error:  # e.g. "Invalid IPv6 URL"
            raise ValueError(f"store URL {shown!r}: {error}") from None
        rest = {k: v for k, v in options.items() if k == "db"}
        plain = head.partition("?")[0] + (f"?{_query(rest)}" if rest else "")
        if scheme.lower() != "unix" and not parts.hostname:
            raise ValueError(f"store URL {shown!r} names no host: use redis://host:port/db")
        if scheme.lower() != "unix":
            try:
                parts.port  # noqa: B018 - validates the port
            except ValueError:
                raise ValueError(f"store URL {shown!r}: the port is not a number 0-65535") from None
            db = parts.path.strip("/")
            if db and not (db.isascii() and db.isdigit()):
                raise ValueError(f"store URL {shown!r}: the database must be a number, not {db!r}")
        return RedisURL(url=plain, **settings)  # type: ignore[arg-type]
    return _sentinel_url(url, shown, options, settings)


def _query(options: dict[str, str]) -> str:
    return "&".join(f"{k}={v}" for k, v in options.items())


def _credentials(url: str, shown: str) -> tuple[str | None, str | None, str, str]:
    """The user, password, hosts and path of a URL naming several hosts."""
    rest = url.partition("://")[2].partition("?")[0]
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
        if password is None:  # redis://secret@host is a password in redis-py: say it plainly
            raise ValueError(
                f"store URL {shown!r}: write the password as :PASSWORD@ (or USER:PASSWORD@)"
            )
    return username, password, hosts, path


def _cluster_url(url: str, shown: str, settings: dict[str, object]) -> RedisURL:
    username, password, hosts, path = _credentials(url, shown)
    if not hosts:
        raise ValueError(
            f"store URL {shown!r} names no node: use redis+cluster://host:6379,host:6379,..."
        )
    if path:
        raise ValueError(f"store URL {shown!r}: Redis Cluster has no databases: drop the /{path}")
    nodes = tuple(_address(item, shown, 6379) for item in hosts.split(","))
    return RedisURL(cluster=nodes, username=username, password=password, **settings)  # type: ignore[arg-type]


def _sentinel_url(
    url: str, shown: str, options: dict[str, str], settings: dict[str, object]
) -> RedisURL:
    username, password, hosts, path = _credentials(url, shown)
    if not hosts:
        raise ValueError(
            f"store URL {shown!r} names no Sentinel: use redis+sentinel://host:26379,.../SERVICE/DB"
        )
    sentinels = tuple(_address(item, shown) for item in hosts.split(","))
    segments = path.split("/") if path else []
    if not segments or not segments[0]:
        raise ValueError(
            f"store URL {shown!r} names no service: use redis+sentinel://hosts/SERVICE/DB"
            " (SERVICE as in the Sentinels' 'sentinel monitor' line)"
        )
    if len(segments) > 2 or (len(segments) == 2 and not segments[1]):
        raise ValueError(f"store URL {shown!r}: the path must be /SERVICE or /SERVICE/DB")
    service = unquote(segments[0])
    db = 0
    if len(segments) == 2:
        if not (segments[1].isascii() and segments[1].isdigit()):
            raise ValueError(
                f"store URL {shown!r}: the database must be a number, not {segments[1]!r}"
            )
        db = int(segments[1])
    return RedisURL(
        sentinels=sentinels,
        service=service,
        db=db,
        username=username,
        password=password,
        sentinel_password=options.get("sentinel_password") or None,
        **settings,  # type: ignore[arg-type]
    )


def _address(item: str, shown: str, default: int = SENTINEL_PORT) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]` or `[v6]:port` (`default` port: Sentinel's)."""
    if item.startswith("["):
        host, bracket, after = item[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise ValueError(f"store URL {shown!r}: bad IPv6 address {item!r}")
        port = after[1:] if after else ""
    else:
        host, _, port = item.partition(":")
        if ":" in port:
            raise ValueError(f"store URL {shown!r}: write an IPv6 address as [addr]:port")
    if not host:
        kind = "Sentinel" if default == SENTINEL_PORT else "node"
        raise ValueError(f"store URL {shown!r}: an empty {kind} address in {item!r}")
    if not port:
        return host, default
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ValueError(f"store URL {shown!r}: the port of {item!r} is not a number 1-65535")
    return host, int(port)
