"""Topic selectors, as Mercure defines them: a topic itself, `*` (every
topic), or a URI template (RFC 6570) that matches the topics it could
expand to. Templates are compiled to regular expressions once and cached.

Matching a template means: could some values of its variables expand to
this topic? Each operator's variables match what that operator may produce
(`{id}`: unreserved characters and commas; `{+path}`: reserved characters
too; `{/segments*}`: slash-separated segments; `{?q,page}`: a query), so
`https://example.com/books/{id}` matches `https://example.com/books/1` but
not `https://example.com/books/1/reviews`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable
from functools import lru_cache
from typing import Generic, TypeVar

__all__ = (
    "PatternIndex",
    "SelectorSet",
    "selector_matcher",
    "selectors_match",
    "validate_selector",
)

_UNRESERVED = r"(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2})"
_RESERVED = r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})"
_VALUE = rf"(?:{_UNRESERVED}|,)*"
# what each operator's expansion looks like (RFC 6570 section 3.2)
_OPERATORS = {
    "": _VALUE,
    "+": rf"{_RESERVED}*",
    "#": rf"(?:#{_RESERVED}*)?",
    ".": rf"(?:\.{_VALUE})*",
    "/": rf"(?:/{_VALUE})*",
    ";": rf"(?:;(?:{_UNRESERVED}|[=,])*)*",
    "?": rf"(?:\?(?:{_UNRESERVED}|[=,&])*)?",
    "&": rf"(?:&(?:{_UNRESERVED}|[=,])*)*",
}
_VARSPEC = re.compile(r"(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})(?:\.?(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2}))*"
                      r"(?::[1-9][0-9]{0,3}|\*)?")  # fmt: skip


@lru_cache(maxsize=4096)
def _template(template: str) -> re.Pattern[str]:
    pattern = []
    rest = template
    while rest:
        start = rest.find("{")
        stop = rest.find("}")
        if start < 0:
            if stop >= 0:
                raise ValueError(f"invalid URI template {template!r}: '}}' without '{{'")
            pattern.append(re.escape(rest))
            break
        if stop < start:
            raise ValueError(f"invalid URI template {template!r}: '}}' without '{{'")
        pattern.append(re.escape(rest[:start]))
        expression = rest[start + 1 : stop]
        if "{" in expression:
            raise ValueError(f"invalid URI template {template!r}: nested '{{'")
        operator = expression[:1] if expression[:1] in "+#./;?&" else ""
        variables = expression[len(operator) :].split(",")
        if not all(_VARSPEC.fullmatch(v) for v in variables):
            raise ValueError(f"invalid URI template {template!r}: bad expression {{{expression}}}")
        pattern.append(_OPERATORS[operator])
        rest = rest[stop + 1 :]
    return re.compile("".join(pattern))


def validate_selector(selector: str) -> None:
    """Raise `ValueError` naming the problem if `selector` is a malformed
    URI template."""
    if "{" in selector or "}" in selector:
        _template(selector)


@lru_cache(maxsize=4096)
def selector_matcher(selector: str) -> Callable[[str], bool]:
    """A function telling whether a topic matches `selector`."""
    if selector == "*":
        return lambda topic: True
    if "{" not in selector and "}" not in selector:
        return selector.__eq__
    try:
        match = _template(selector).fullmatch
    except ValueError:
        return lambda topic: False  # a malformed template (in a token) matches nothing
    return lambda topic: match(topic) is not None


@lru_cache(maxsize=4096)
def _templates(selectors: frozenset[str]) -> tuple[Callable[[str], bool], ...]:
    return tuple(selector_matcher(s) for s in selectors if "{" in s or "}" in s)


class SelectorSet:
    """Topic selectors compiled once (when a subscription opens, when a
    token is read) and matched many times: `matches(topics)` tells whether
    any selector matches any of the topics.

    `strict=True` raises `ValueError` naming a malformed selector (a
    subscriber's request); `strict=False` lets a malformed one match nothing
    (a token's claim).
    """

    __slots__ = ("any", "exact", "patterns", "selectors")

    def __init__(self, selectors: Iterable[str], *, strict: bool = True) -> None:
        self.selectors = frozenset(selectors)
        self.any = "*" in self.selectors
        self.exact = frozenset(s for s in self.selectors if "{" not in s and "}" not in s)
        patterns = []
        for selector in self.selectors - self.exact:
            if strict:
                validate_selector(selector)
            patterns.append(selector_matcher(selector))
        self.patterns: tuple[Callable[[str], bool], ...] = tuple(patterns)

    @property
    def has_patterns(self) -> bool:
        """Whether matching needs more than a lookup of exact topics."""
        return self.any or bool(self.patterns)

    def matches(self, topics: Iterable[str]) -> bool:
        if self.any:
            return True
        topics = tuple(topics)
        if not self.exact.isdisjoint(topics):
            return True
        return any(match(topic) for match in self.patterns for topic in topics)

    def __repr__(self) -> str:
        return f"SelectorSet({sorted(self.selectors)!r})"


def selectors_match(selectors: frozenset[str], topics: Iterable[str]) -> bool:
    """Whether any selector matches any of `topics` (for one-off checks;
    compile a `SelectorSet` once where the same selectors match often)."""
    if "*" in selectors:
        return True
    topics = tuple(topics)
    if not selectors.isdisjoint(topics):
        return True
    return any(match(topic) for match in _templates(selectors) for topic in topics)


K = TypeVar("K", bound=Hashable)


class PatternIndex(Generic[K]):
    """Owners (e.g. fan-out groups) of selector sets with patterns, found by
    topic: `matching(topics)` is every owner whose selectors match one of
    the topics, in the order they were added."""

    __slots__ = ("_owners",)

    def __init__(self) -> None:
        self._owners: dict[K, SelectorSet] = {}

    def __len__(self) -> int:
        return len(self._owners)

    def add(self, key: K, selectors: SelectorSet) -> None:
        self._owners[key] = selectors

    def discard(self, key: K) -> None:
        self._owners.pop(key, None)

    def matching(self, topics: tuple[str, ...]) -> list[K]:
        return [key for key, selectors in self._owners.items() if selectors.matches(topics)]
