"""CORS for the Mercure endpoint: which pages of other origins may read it."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from urllib.parse import urlsplit

__all__ = (
    "SELF",
    "RefusalLog",
    "cors_headers",
    "origin_allowed",
    "preflight_headers",
    "refusal_message",
    "same_origin",
)

SELF = "self"
"""In `publish_origins`: the hub's own pages (an `Origin` naming the
request's `Host`, when that is an IP address or `localhost`)."""

Headers = tuple[tuple[str, str], ...]


def cors_headers(allowed: tuple[str, ...], origin: str | None) -> Headers:
    """The CORS headers for a request from `origin`: an exactly listed origin
    gets itself and credentials (the auth cookie); with `"*"` any other
    origin gets `*` and no credentials (public updates only); `null`
    (sandboxed pages, `file:`) only when listed."""
    if origin is None or not allowed:
        return ()
    if origin in allowed and origin != "*":
        return (
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Credentials", "true"),
            ("Vary", "Origin"),
        )
    if "*" in allowed and origin != "null":
        return (("Access-Control-Allow-Origin", "*"),)
    return ()


def preflight_headers(cors: Headers) -> Headers:
    return (
        *cors,
        ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
        ("Access-Control-Allow-Headers", "Last-Event-ID, Content-Type, Authorization"),
        ("Access-Control-Max-Age", "600"),
    )


def origin_allowed(
    allowed: tuple[str, ...], origin: str | None, referer: str | None, host: str | None = None
) -> bool:
    """Whether a cookie-carrying publish comes from a page of an allowed
    origin (its `Origin`, else its `Referer`'s). `"self"` allows the hub's
    own pages: an origin whose host and port are the request's `Host`,
    only when that names an IP address or `localhost` (a DNS name could be
    an attacker's, rebound to this hub's address)."""
    if origin is None and referer:
        parts = urlsplit(referer)
        if parts.scheme and parts.netloc:
            origin = f"{parts.scheme}://{parts.netloc}"
    if origin is None:
        return False
    if "*" in allowed or origin in allowed:
        return True
    return SELF in allowed and same_origin(origin, host) and _literal_host(host)


def same_origin(origin: str | None, host: str | None) -> bool:
    """Whether `origin` (an `Origin` header) names the `Host` the request
    was sent to: a page of the hub itself."""
    if not origin or not host or origin == "null":
        return False
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.strip().lower()


def _literal_host(host: str | None) -> bool:
    if not host:
        return False
    name = urlsplit(f"//{host.strip()}").hostname or ""
    if name == "localhost":
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def refusal_message(origin: str) -> str:
    """The log line for a page of `origin` that CORS refuses."""
    shown = origin if len(origin) <= 100 else origin[:100] + "..."
    return (
        f"refused cross-origin request from Origin {shown!r} (allow it with "
        f"--cors-origin {shown} / cors_origins=({shown!r},))"
    )


class RefusalLog:
    """Which refused origins to log now: each at most once per `every`
    seconds, remembering at most `limit` origins (bounded memory whatever
    the requests claim)."""

    __slots__ = ("_clock", "_every", "_limit", "_seen")

    def __init__(
        self, *, every: float = 60.0, limit: int = 256, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._every = every
        self._limit = limit
        self._clock = clock
        self._seen: dict[str, float] = {}

    def due(self, origin: str) -> bool:
        """Whether to log a refusal of `origin` now (and note that it was)."""
        now = self._clock()
        last = self._seen.get(origin)
        if last is not None and now - last < self._every:
            return False
        if last is None and len(self._seen) >= self._limit:
            self._seen = {o: t for o, t in self._seen.items() if now - t < self._every}
            if len(self._seen) >= self._limit:
                return False  # flooded with origins: stay quiet until some age out
        self._seen[origin] = now
        return True
