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

from ssehub.hub import Matcher

from ._response import HTTPError

__all__ = (
    "DIALECTS",
    "MATCH_PARAMETERS",
    "MATCH_TYPES",
    "Dialect",
    "dialect_of",
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
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf"):
            raise HTTPError(
                400, f"{name!r} contains the control or format character U+{ord(char):04X}"
            )


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
