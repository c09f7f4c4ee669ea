"""Which Mercure a request speaks, told by its shape, and the Mercure 1.0
subscribe parameters (draft 1.0.0-alpha.3, "Subscription", "Matcher Types",
"Reconnection").

- 1.0: `match` / `match_<type>` query parameters, `last_event_id`;
- 0.x: `topic`, `lastEventID`, the `authorization` query parameter.

A request with markers of both is refused (400, naming them): serving it in
either dialect would silently ignore half of what it asked for.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urljoin, urlsplit

from ssehub.hub import Matcher

from ._response import HTTPError

__all__ = (
    "DIALECTS",
    "MATCH_PARAMETERS",
    "MATCH_TYPES",
    "Dialect",
    "check_field",
    "dialect_of",
    "in_hub_namespace",
    "last_event_id",
    "matchers",
)

Dialect = Literal["1.0", "0.x"]
DIALECTS = ("both", "1.0", "0.x")
# the subscribe parameter of each matcher type this hub supports
MATCH_PARAMETERS = {"match": "exact", "match_exact": "exact", "match_urlpattern": "urlpattern"}
MATCH_TYPES = ("exact", "urlpattern")  # their canonical names
_V0_PARAMETERS = ("topic", "lastEventID", "authorization")


def _is_v1(name: str) -> bool:
    # the whole `match` prefix is reserved (ASCII case-insensitive)
    return name == "last_event_id" or name[:5].lower() == "match"


def dialect_of(query: Mapping[str, list[str]], allowed: str) -> Dialect:
    """The dialect of a subscribe request with these query parameters, for
    a hub that speaks `allowed` (`both`, `1.0` or `0.x`); raises
    `HTTPError` (400) when the request mixes them or speaks the other one.
    A request with no marker is 0.x unless the hub speaks 1.0 only."""
    v1 = [name for name in query if _is_v1(name)]
    v1.sort()
    v0 = [name for name in _V0_PARAMETERS if name in query]
    if v1 and v0:
        raise HTTPError(
            400,
            f"the request mixes Mercure 1.0 ({', '.join(v1)}) and 0.x ({', '.join(v0)}) "
            "query parameters: use one dialect",
        )
    dialect: Dialect = "1.0" if v1 or (not v0 and allowed == "1.0") else "0.x"
    if allowed != "both" and dialect != allowed:
        hint = "match=TOPIC" if allowed == "1.0" else "topic=TOPIC"
        raise HTTPError(400, f"this hub speaks Mercure {allowed} only: subscribe with {hint}")
    return dialect


def _check_value(name: str, value: str) -> None:
    if not value:
        raise HTTPError(400, f"empty {name!r} query parameter")
    check_field(name, value)


def check_field(name: str, value: str) -> None:
    """Refuse (400) a value with a C0 or C1 control, DEL or a format (`Cf`)
    character: what 1.0 forbids in matchers, topics, ids and types."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf"):
            raise HTTPError(
                400, f"{name!r} contains the control or format character U+{ord(char):04X}"
            )


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_C0_AND_SPACE = "".join(map(chr, range(0x21)))
_SPECIAL = ("http", "https", "ws", "wss", "ftp", "file")


def in_hub_namespace(topic: str, hub_url: str) -> bool:
    """Whether `topic`, resolved against `hub_url`, addresses the hub's
    reserved namespace (1.0 draft, "Publication"): its path, with
    percent-encoded unreserved characters decoded and dot segments removed,
    is the hub URL's path or below it, whatever its scheme or authority.
    A topic that is no URL reference names no hub path."""
    hub_path = _normal_path(urlsplit(hub_url).path)
    text = topic.strip(_C0_AND_SPACE)
    text = text.replace("\t", "").replace("\n", "").replace("\r", "")  # as the URL parser does
    try:
        scheme = urlsplit(text).scheme.lower() or urlsplit(hub_url).scheme.lower()
        if scheme in _SPECIAL:
            text = text.replace("\\", "/")  # a backslash is a slash in special URLs
        path = urlsplit(urljoin(hub_url, text)).path
    except ValueError:
        return False
    path = _normal_path(path)
    return path == hub_path or path.startswith(hub_path + "/")


def _normal_path(path: str) -> str:
    """RFC 3986: percent-encoded unreserved characters decoded (6.2.2.2),
    then dot segments removed (5.2.4)."""
    pieces = path.split("%")
    decoded = [pieces[0]]
    for piece in pieces[1:]:
        char = chr(int(piece[:2], 16)) if _is_hex(piece[:2]) else ""
        decoded.append(char + piece[2:] if char in _UNRESERVED and char else "%" + piece)
    segments: list[str] = []
    parts = "".join(decoded).split("/")
    for n, segment in enumerate(parts):
        last = n == len(parts) - 1
        if segment == ".":
            if last:
                segments.append("")
        elif segment == "..":
            if len(segments) > 1:
                segments.pop()
            if last:
                segments.append("")
        else:
            segments.append(segment)
    return "/".join(segments)


def _is_hex(text: str) -> bool:
    return len(text) == 2 and all(c in "0123456789abcdefABCDEF" for c in text)


def matchers(
    query: Mapping[str, list[str]], *, base: str | None, limit: int
) -> tuple[Matcher, ...]:
    """The topic matchers of a 1.0 subscribe request (URL patterns resolved
    against `base`, the hub's URL), at most `limit`; raises `HTTPError`
    (400) naming an unsupported matcher type or a malformed value."""
    found: list[Matcher] = []
    for name, values in query.items():
        if name == "last_event_id" or not _is_v1(name):
            continue
        kind = MATCH_PARAMETERS.get(name)
        if kind is None:
            supported = ", ".join(MATCH_PARAMETERS)
            raise HTTPError(
                400, f"unsupported matcher parameter {name!r} (this hub supports {supported})"
            )
        for value in values:
            _check_value(name, value)
            if kind == "exact":
                found.append(Matcher.exact(value))
                continue
            try:
                found.append(Matcher.urlpattern(value, base=base))
            except ValueError as error:
                raise HTTPError(400, f"{name} {value[:80]!r}: {error}") from None
    if not found:
        raise HTTPError(400, "missing 'match' query parameter")
    if len(found) > limit:
        raise HTTPError(400, f"more than {limit} topic matchers in one subscription")
    return tuple(dict.fromkeys(found))


def last_event_id(header: str | None, query: Mapping[str, list[str]]) -> str | None:
    """The 1.0 resume cursor: the `Last-Event-ID` header takes precedence
    over the `last_event_id` query parameter (the first one, if repeated)."""
    if header:
        return header
    values = query.get("last_event_id")
    return values[0] if values and values[0] else None
