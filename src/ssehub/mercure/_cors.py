"""CORS for the Mercure endpoint: which pages of other origins may read it."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ("cors_headers", "origin_allowed", "preflight_headers")

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


def origin_allowed(allowed: tuple[str, ...], origin: str | None, referer: str | None) -> bool:
    """Whether a cookie-carrying publish comes from a page of an allowed
    origin (its `Origin`, else its `Referer`'s)."""
    if origin is None and referer:
        parts = urlsplit(referer)
        if parts.scheme and parts.netloc:
            origin = f"{parts.scheme}://{parts.netloc}"
    return origin is not None and ("*" in allowed or origin in allowed)
