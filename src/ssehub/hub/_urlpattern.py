"""WHATWG URL Pattern matchers (Mercure 1.0 `urlpattern`), compiled to the
linear matcher (`_linear`) instead of a backtracking regular expression,
as the draft's "URL-Pattern Denial of Service" section asks.

The supported syntax is the pattern-string subset Mercure uses, for each
component of an absolute pattern (`https://{:sub.}?example.com:*/books/:id?q=*#*`,
or with an opaque path: `urn:*`, where `:name` is not cut at `/`) or of a
relative one (`/books/:id`, resolved against the hub's URL):

- literal text, `\\` escaping the next character;
- `:name`, a segment: one or more characters other than the component's
  delimiter (`/` in the pathname, `.` in the hostname, none elsewhere);
- `*`, any characters;
- `{...}`, a group: text and at most one name or `*`, without modifiers;
- the modifiers `?` (optional), `*` (any number) and `+` (at least one)
  after a name, a wildcard or a group; in the pathname a `/` just before a
  name or wildcard belongs to it (`/books/:id?` matches `/books`);
- a component the pattern leaves out after its last one is a wildcard
  (`https://example.com/books/:id` matches any query and fragment, and
  `https://example.com/books/:id#top` only an empty query);
  username and password are wildcards, a left-out port is the default one.

Regular-expression groups (`:id(\\d+)`, `(.*)`) are refused with a
`ValueError`: their engine would have to backtrack. Pattern and topic
components are compared as written (hosts and schemes case-insensitively),
without the standard's percent-encoding canonicalisation. Matching costs
O(pieces * component length); a repeated group loops at most once per
position it reaches. A topic that cannot be parsed as a URL (or is relative
with no base) matches no pattern.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urljoin, urlsplit

from . import _linear

__all__ = ("MAX_URLPATTERN_LENGTH", "MAX_URLPATTERN_PARTS", "URLPattern")

MAX_URLPATTERN_LENGTH = 1024
"""The longest URL pattern accepted, in characters."""
MAX_URLPATTERN_PARTS = 32
"""The most names, wildcards and groups a URL pattern may have."""

_COMPONENTS = ("protocol", "username", "password", "hostname", "port", "pathname", "search", "hash")
_DELIMITERS = {"hostname": ".", "pathname": "/"}
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}
_SPECIAL = (*_DEFAULT_PORTS, "file")
_SCHEME = re.compile(r"[A-Za-z0-9+.-]")

# a token: (kind, text, escaped); kinds: char, name, any, open, close, mod
_Token = tuple[str, str, bool]


def _name_char(c: str, first: bool) -> bool:
    return c == "_" or c == "$" or (c.isalpha() if first else c.isalnum())


def _tokens(pattern: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        after = tokens[-1][0] if tokens else ""
        if c == "\\":
            if i + 1 == len(pattern):
                raise ValueError(f"invalid URL pattern {pattern!r}: a trailing '\\'")
            tokens.append(("char", pattern[i + 1], True))
            i += 2
            continue
        if c == ":" and i + 1 < len(pattern) and _name_char(pattern[i + 1], True):
            j = i + 2
            while j < len(pattern) and _name_char(pattern[j], False):
                j += 1
            tokens.append(("name", pattern[i + 1 : j], False))
            i = j
            continue
        if c == "(":
            raise ValueError(
                f"invalid URL pattern {pattern!r}: regular-expression groups '(...)' are not "
                "supported (they need a backtracking engine)"
            )
        if c in "?*+" and after in ("name", "any", "close"):
            tokens.append(("mod", c, False))
        elif c == "*":
            tokens.append(("any", c, False))
        elif c == "{":
            tokens.append(("open", c, False))
        elif c == "}":
            tokens.append(("close", c, False))
        else:
            tokens.append(("char", c, False))
        i += 1
    return tokens


def _is(token: _Token, chars: str, depth: int) -> bool:
    return depth == 0 and token[0] == "char" and not token[2] and token[1] in chars


def _split(pattern: str, tokens: list[_Token], base: str | None) -> dict[str, list[_Token]]:
    """The tokens of each component the pattern gives."""
    depths = []
    depth = 0
    for kind, _, _ in tokens:
        if kind == "open":
            if depth:
                raise ValueError(f"invalid URL pattern {pattern!r}: nested '{{'")
            depth = 1
        elif kind == "close":
            if not depth:
                raise ValueError(f"invalid URL pattern {pattern!r}: '}}' without '{{'")
            depth = 0
        depths.append(depth if kind != "close" else 1)
    if depth:
        raise ValueError(f"invalid URL pattern {pattern!r}: '{{' without '}}'")
    found: dict[str, list[_Token]] = {}
    at = 0
    if tokens and _is(tokens[0], "/", depths[0]):
        if base is None:
            raise ValueError(
                f"invalid URL pattern {pattern!r}: a relative pattern needs a base URL"
            )
        parts = urlsplit(base)
        found["protocol"] = [("char", c, True) for c in parts.scheme]
        found["hostname"] = [("char", c, True) for c in parts.hostname or ""]
        found["port"] = [("char", c, True) for c in _port(parts.scheme, parts.port)]
    else:
        sep = -1
        for i, token in enumerate(tokens):
            if _is(token, ":", depths[i]):
                sep = i
                break
            if _is(token, "/?#", depths[i]):
                break
        authority_form = (
            sep > 0
            and sep + 2 < len(tokens)
            and _is(tokens[sep + 1], "/", depths[sep + 1])
            and _is(tokens[sep + 2], "/", depths[sep + 2])
        )
        scheme_chars = all(t[0] == "char" and _SCHEME.fullmatch(t[1]) for t in tokens[:sep])
        if sep <= 0 or not (authority_form or scheme_chars):
            raise ValueError(
                f"invalid URL pattern {pattern!r}: not absolute (scheme:...) "
                "nor a path starting with '/'"
            )
        found["protocol"] = tokens[:sep]
        at = end = sep + 1
        if not authority_form:  # `urn:*`: an opaque path, no host
            found["hostname"] = found["port"] = []
            found["opaque"] = []
        else:
            at = end = sep + 3
            while end < len(tokens) and not _is(tokens[end], "/?#", depths[end]):
                end += 1
            authority = tokens[at:end]
            adepths = depths[at:end]
            if any(_is(t, "@", d) for t, d in zip(authority, adepths, strict=True)):
                raise ValueError(f"invalid URL pattern {pattern!r}: user info is not supported")
            colon = max(
                (
                    k
                    for k, (t, d) in enumerate(zip(authority, adepths, strict=True))
                    if _is(t, ":", d)
                ),
                default=-1,
            )
            found["hostname"] = authority if colon < 0 else authority[:colon]
            found["port"] = [] if colon < 0 else authority[colon + 1 :]
            if not found["hostname"]:
                raise ValueError(f"invalid URL pattern {pattern!r}: no host")
            at = end
    end = at
    while end < len(tokens) and not _is(tokens[end], "?#", depths[end]):
        end += 1
    found["pathname"] = tokens[at:end]
    scheme = "".join(t[1] for t in found["protocol"] if t[0] == "char").lower()
    if not found["pathname"] and len(scheme) == len(found["protocol"]) and scheme in _SPECIAL:
        found["pathname"] = [("char", "/", True)]
    if end < len(tokens) and tokens[end][1] == "?":
        at = end + 1
        end = at
        while end < len(tokens) and not _is(tokens[end], "#", depths[end]):
            end += 1
        found["search"] = tokens[at:end]
    if end < len(tokens):
        found["hash"] = tokens[end + 1 :]
        found.setdefault("search", [])  # given a fragment, the query is given too
    return found


def _port(scheme: str, port: int | None) -> str:
    return "" if port is None or _DEFAULT_PORTS.get(scheme) == port else str(port)


def _compile(
    pattern: str, component: str, tokens: list[_Token], parts: list[int]
) -> tuple[_linear.Piece, ...]:
    delimiter = _DELIMITERS.get(component, "")
    segment = _linear.char_table(delimiter, invert=True)
    lower = component in ("protocol", "hostname")
    pieces: list[_linear.Piece] = []
    literal: list[str] = []

    def flush() -> None:
        if literal:
            text = "".join(literal)
            pieces.append(_linear.Literal((text.lower() if lower else text).encode()))
            literal.clear()

    def body(kind: str) -> _linear.Piece:
        parts[0] += 1
        return _linear.Plus(segment) if kind == "name" else _linear.Any()

    i = 0
    while i < len(tokens):
        kind, text, _ = tokens[i]
        modifier = tokens[i + 1][1] if i + 1 < len(tokens) and tokens[i + 1][0] == "mod" else ""
        if kind == "char":
            literal.append(text)
            i += 1
            continue
        if kind in ("name", "any"):
            prefix = ""
            if delimiter == "/" and literal and literal[-1] == "/" and modifier:
                prefix = literal.pop()
            flush()
            inner: list[_linear.Piece] = [_linear.Literal(prefix.encode())] if prefix else []
            inner.append(body(kind))
            i += 1
        elif kind == "open":
            flush()
            close = next(j for j in range(i, len(tokens)) if tokens[j][0] == "close")
            inside = [t[0] for t in tokens[i + 1 : close]]
            if "mod" in inside or inside.count("name") + inside.count("any") > 1:
                raise ValueError(
                    f"invalid URL pattern {pattern!r}: a group holds text and at most one "
                    "name or '*', without modifiers"
                )
            parts[0] += 1
            inner = list(_compile(pattern, component, tokens[i + 1 : close], parts))
            modifier = (
                tokens[close + 1][1]
                if close + 1 < len(tokens) and tokens[close + 1][0] == "mod"
                else ""
            )
            i = close + 1
        else:  # pragma: no cover - the tokenizer makes no other kind here
            raise ValueError(f"invalid URL pattern {pattern!r}: unexpected {text!r}")
        if modifier:
            i += 1
            repeat = modifier != "?"
            pieces.append(_linear.Group(inner, minimum=int(modifier == "+"), repeat=repeat))
        else:
            pieces.extend(inner)
    flush()
    return tuple(pieces)


class URLPattern:
    """A compiled URL pattern: `match(topic)` tells whether the topic (a
    URL, resolved against `base` if relative) matches every component."""

    __slots__ = ("_base", "_components", "language", "prefix", "suffix", "text")

    def __init__(self, pattern: str, *, base: str | None = None) -> None:
        if len(pattern) > MAX_URLPATTERN_LENGTH:
            raise ValueError(
                f"invalid URL pattern: {len(pattern)} characters, over the limit of "
                f"{MAX_URLPATTERN_LENGTH} (MAX_URLPATTERN_LENGTH)"
            )
        if not pattern:
            raise ValueError("invalid URL pattern: empty")
        self.text = pattern
        self._base = base
        self.language = f"urlpattern {base} {pattern}"
        self.prefix = self.suffix = ""  # components are matched apart: not filed by affix
        given = _split(pattern, _tokens(pattern), base)
        parts = [0]
        compiled: list[tuple[int, tuple[_linear.Piece, ...]]] = []
        for index, component in enumerate(_COMPONENTS):
            tokens = given.get(component)
            if tokens is None:
                if component == "port":
                    tokens = []
                else:
                    continue  # a wildcard
            opaque = component == "pathname" and "opaque" in given
            pieces = _compile(pattern, "opaque" if opaque else component, tokens, parts)
            if len(pieces) == 1 and isinstance(pieces[0], _linear.Any):
                continue
            compiled.append((index, pieces))
        if parts[0] > MAX_URLPATTERN_PARTS:
            raise ValueError(
                f"invalid URL pattern: more than {MAX_URLPATTERN_PARTS} names, wildcards "
                "and groups, the limit (MAX_URLPATTERN_PARTS)"
            )
        self._components = tuple(compiled)

    def match(self, topic: str, scan: _linear.Scan | None = None) -> bool:
        values = _components(topic, self._base)
        if values is None:
            return False
        return all(
            _linear.matches(pieces, _linear.Scan(values[index]))
            for index, pieces in self._components
        )

    def __call__(self, topic: str) -> bool:
        return self.match(topic)

    def __repr__(self) -> str:
        return f"URLPattern({self.text!r})"


# the URL standard's forbidden domain code points (after percent-decoding)
_FORBIDDEN_HOST = frozenset(" #%/:<>?@[\\]^|\x7f" + "".join(map(chr, range(0x20))))


def _components(topic: str, base: str | None) -> tuple[str, ...] | None:
    try:
        parts = urlsplit(urljoin(base, topic) if base else topic)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme:
        return None
    special = parts.scheme in _SPECIAL
    if (
        special
        and "[" not in parts.netloc
        and not _FORBIDDEN_HOST.isdisjoint(unquote(parts.hostname or ""))
    ):
        return None  # the URL standard's host parser fails on these
    return (
        parts.scheme,
        parts.username or "",
        parts.password or "",
        parts.hostname or "",
        _port(parts.scheme, port),
        parts.path or ("/" if special else ""),
        parts.query,
        parts.fragment,
    )
