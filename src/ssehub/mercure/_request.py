"""The request the layer decides on: a small frozen value, built by each
front end from what its server parsed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from urllib.parse import unquote_to_bytes

from ._response import HTTPError

__all__ = ("Request", "parse_fields", "parse_form")


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request, as the Mercure layer needs it.

    - `method`: `"GET"`, `"POST"`...; `path`: as sent (still percent-encoded),
      without the query; `query`: the raw query string;
    - `headers`: lower-case names to values (the last one of a name);
      `repeated`: the names sent more than once (see `from_pairs`);
    - `body`: the whole body (the front end bounds its size);
    - `scheme`: `"http"` or `"https"`, as the client reached the hub.
    """

    method: str
    path: str
    query: bytes | str = b""
    headers: Mapping[bytes, bytes] = field(default_factory=dict)
    body: bytes = b""
    repeated: frozenset[bytes] = frozenset()
    scheme: str = "http"

    @classmethod
    def from_pairs(
        cls,
        method: str,
        path: str,
        query: bytes | str,
        pairs: Iterable[tuple[bytes, bytes]],
        body: bytes = b"",
        scheme: str = "http",
    ) -> Request:
        """From a list of `(name, value)` header pairs (ASGI's `headers`)."""
        headers: dict[bytes, bytes] = {}
        repeated: set[bytes] = set()
        for name, value in pairs:
            key = name.lower()
            if key in headers:
                repeated.add(key)
            headers[key] = value
        return cls(method, path, query, headers, body, frozenset(repeated), scheme)

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")

    def cookie(self, name: str) -> str | None:
        """The value of cookie `name` (None if absent or the header is malformed)."""
        raw = self.headers.get(b"cookie")
        if raw is None:
            return None
        try:
            jar = SimpleCookie(raw.decode("latin-1"))
        except CookieError:
            return None
        return jar[name].value if name in jar else None

    def params(self) -> dict[str, list[str]]:
        """The query parameters; a non-UTF-8 one is a 400 naming it."""
        return parse_fields(self.query, "query parameter")


def parse_fields(raw: bytes | str, what: str) -> dict[str, list[str]]:
    """`application/x-www-form-urlencoded` fields, decoded as strict UTF-8:
    a field that is not UTF-8 is refused (400, naming it), never turned
    into U+FFFD (`topic=a%FF` must not become another topic)."""
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    fields: dict[str, list[str]] = {}
    for part in data.split(b"&"):
        if not part:
            continue
        name, value = _field(part, what)
        fields.setdefault(name, []).append(value)
    return fields


def parse_form(body: bytes, max_topics: int | None = None) -> tuple[list[str], dict[str, str]]:
    """A publish's form in one pass: the `topic` values in order, and the
    first value of each other field. The same fields as `parse_fields`
    (`+` is a space, `%XX` a byte, a bad escape stays as sent, an empty
    part is skipped, a part without `=` has an empty value), refused the
    same way (400 naming the first field that is not UTF-8). The body is
    checked as UTF-8 once, so only fields with `%` escapes are taken apart
    byte by byte. More than `max_topics` `topic` fields: 400, as soon as
    the one too many is read."""
    try:
        text = body.decode()
    except UnicodeDecodeError:  # raw bytes that are not UTF-8 (or halves of an escape)
        fields = parse_fields(body, "form field")
        named = fields.pop("topic", [])
        if max_topics is not None and len(named) > max_topics:
            raise _too_many_topics(max_topics) from None
        return named, {name: values[0] for name, values in fields.items()}
    most = len(text) if max_topics is None else max_topics
    topics: list[str] = []
    first: dict[str, str] = {}
    for part in text.split("&"):
        if not part:
            continue
        if "%" in part:  # escapes may decode to anything, also to bytes that are not UTF-8
            name, value = _field(part.encode(), "form field")
        else:
            if "+" in part:
                part = part.replace("+", " ")
            name, _, value = part.partition("=")
        if name == "topic":
            if len(topics) == most:
                raise _too_many_topics(most)
            topics.append(value)
        elif name not in first:
            first[name] = value
    return topics, first


def _too_many_topics(most: int) -> HTTPError:
    return HTTPError(400, f"more than {most} 'topic' fields in one publish")


def _field(part: bytes, what: str) -> tuple[str, str]:
    """One `name=value` part, unquoted and decoded (400 if not UTF-8)."""
    name_raw, _, value_raw = part.partition(b"=")
    if b"%" not in part and b"+" not in part:  # nothing to unquote (most queries)
        try:
            return name_raw.decode("utf-8"), value_raw.decode("utf-8")
        except UnicodeDecodeError:
            pass  # refused below, naming the field
    name_bytes = unquote_to_bytes(name_raw.replace(b"+", b" "))
    try:
        name = name_bytes.decode("utf-8")
    except UnicodeDecodeError:
        shown = name_bytes.decode("utf-8", "replace")
        raise HTTPError(400, f"{what} name {shown!r} is not valid UTF-8") from None
    try:
        value = unquote_to_bytes(value_raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPError(400, f"{what} {name!r} is not valid UTF-8") from None
    return name, value
