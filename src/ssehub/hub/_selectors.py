"""Topic selectors, as Mercure defines them: a topic itself, `*` (every
topic), or a URI template (RFC 6570) that matches the topics it could
expand to; and the Mercure 1.0 matchers (`Matcher.exact`,
`Matcher.urlpattern`).

Matching a template means: could some values of its variables expand to
this topic? Each operator's variables match what that operator may produce
(`{id}`: unreserved characters and commas; `{+path}`: reserved characters
too; `{/segments*}`: slash-separated segments; `{?q,page}`: a query), so
`https://example.com/books/{id}` matches `https://example.com/books/1` but
not `https://example.com/books/1/reviews`. Prefix lengths (`{id:3}`) are
not enforced: such a variable matches as if it had none.

No subscriber can turn matching against the hub: a template is compiled
once (when its subscription opens) into pieces for a matcher that never
backtracks (`_linear`), whose cost is linear in the topic's length; a
template is at most `MAX_TEMPLATE_LENGTH` characters with at most
`MAX_TEMPLATE_EXPRESSIONS` expressions, longer ones are refused with a
`ValueError` naming the limit; and `PatternIndex` finds the templates a
topic may match by their literal prefix (or suffix), so a publish costs
what its topic can match, not the number of subscriptions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable
from functools import lru_cache
from typing import Generic, Protocol, TypeVar

from . import _linear
from ._urlpattern import MAX_URLPATTERN_LENGTH, MAX_URLPATTERN_PARTS, URLPattern

__all__ = (
    "MAX_TEMPLATE_EXPRESSIONS",
    "MAX_TEMPLATE_LENGTH",
    "MAX_URLPATTERN_LENGTH",
    "MAX_URLPATTERN_PARTS",
    "Matcher",
    "PatternIndex",
    "SelectorSet",
    "selector_matcher",
    "selectors_match",
    "validate_selector",
)

MAX_TEMPLATE_LENGTH = 1024
"""The longest URI template accepted as a selector, in characters."""
MAX_TEMPLATE_EXPRESSIONS = 32
"""The most `{...}` expressions a URI template selector may have."""

_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_RESERVED = _UNRESERVED + ":/?#[]@!$&'()*+,;="
# what each operator's expansion looks like (RFC 6570 section 3.2): the
# characters of its values (percent-encoded triples too) and the byte that
# starts each item, if any. `(?:/V)*` is `/` then slashes and values, or nothing.
_OPERATORS: dict[str, tuple[str, int | None]] = {
    "": (_UNRESERVED + ",", None),
    "+": (_RESERVED, None),
    "#": (_RESERVED, ord("#")),
    ".": (_UNRESERVED + ",", ord(".")),
    "/": (_UNRESERVED + ",/", ord("/")),
    ";": (_UNRESERVED + "=,;", ord(";")),
    "?": (_UNRESERVED + "=,&", ord("?")),
    "&": (_UNRESERVED + "=,&", ord("&")),
}
_TABLES = {op: _linear.char_table(chars) for op, (chars, _) in _OPERATORS.items()}
_VARSPEC = re.compile(r"(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})(?:\.?(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2}))*"
                      r"(?::[1-9][0-9]{0,3}|\*)?")  # fmt: skip


def _is_template(selector: str) -> bool:
    return "{" in selector or "}" in selector


class _Pattern(Protocol):
    """A compiled selector beyond an exact topic: what `PatternIndex` files
    by `prefix` / `suffix` and confirms with `match`."""

    @property
    def prefix(self) -> str: ...
    @property
    def suffix(self) -> str: ...
    @property
    def language(self) -> str:
        """Equal for patterns that match the same topics (a template
        without its variable names)."""

    def match(self, topic: str, scan: _linear.Scan | None = None) -> bool: ...


class _Template:
    """A URI template compiled to pieces of the linear matcher, with the
    literal text before its first expression (`prefix`) and after its last
    (`suffix`) checked first."""

    __slots__ = ("_inner", "_pieces", "_start", "language", "prefix", "suffix", "text")

    def __init__(self, template: str) -> None:
        if len(template) > MAX_TEMPLATE_LENGTH:
            raise ValueError(
                f"invalid URI template: {len(template)} characters, "
                f"over the limit of {MAX_TEMPLATE_LENGTH} (MAX_TEMPLATE_LENGTH)"
            )
        if template.count("{") > MAX_TEMPLATE_EXPRESSIONS:
            raise ValueError(
                f"invalid URI template: more than {MAX_TEMPLATE_EXPRESSIONS} expressions, "
                f"the limit (MAX_TEMPLATE_EXPRESSIONS)"
            )
        self.text = template
        language = []
        pieces: list[_linear.Piece] = []
        literals: list[str] = []
        rest = template
        while rest:
            start = rest.find("{")
            stop = rest.find("}")
            if start < 0:
                if stop >= 0:
                    raise ValueError(f"invalid URI template {template!r}: '}}' without '{{'")
                literals.append(rest)
                break
            if stop < start:
                raise ValueError(f"invalid URI template {template!r}: '}}' without '{{'")
            literals.append(rest[:start])
            expression = rest[start + 1 : stop]
            if "{" in expression:
                raise ValueError(f"invalid URI template {template!r}: nested '{{'")
            operator = expression[:1] if expression[:1] in "+#./;?&" else ""
            variables = expression[len(operator) :].split(",")
            if not all(_VARSPEC.fullmatch(v) for v in variables):
                raise ValueError(
                    f"invalid URI template {template!r}: bad expression {{{expression}}}"
                )
            if literals[-1]:
                pieces.append(_linear.Literal(_encode(literals[-1])))
            language.append(f"{literals[-1]}{{{operator}}}")
            lead = _OPERATORS[operator][1]
            pieces.append(_linear.Run(_TABLES[operator], lead=lead, percent=True))
            rest = rest[stop + 1 :]
        else:
            literals.append("")
        if len(literals) > 1 and literals[-1]:
            pieces.append(_linear.Literal(_encode(literals[-1])))
        self.language = "".join(language) + literals[-1]
        self.prefix = literals[0]
        self.suffix = literals[-1] if len(literals) > 1 else ""
        # the literals between, which a topic must hold in this order
        self._inner = tuple(literal for literal in literals[1:-1] if literal)
        # the prefix is compared as text before the pieces run
        self._pieces = tuple(pieces[1:] if self.prefix else pieces)
        self._start = len(_encode(self.prefix))

    def match(self, topic: str, scan: _linear.Scan | None = None) -> bool:
        if not topic.startswith(self.prefix) or not topic.endswith(self.suffix):
            return False
        at = len(self.prefix)
        for literal in self._inner:  # a quick necessary condition, in C
            at = topic.find(literal, at)
            if at < 0:
                return False
            at += len(literal)
        if scan is None:
            scan = _linear.Scan(topic)
        return _linear.matches(self._pieces, scan, start=self._start)

    def __call__(self, topic: str) -> bool:
        return self.match(topic)

    def __repr__(self) -> str:
        return f"_Template({self.text!r})"


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


@lru_cache(maxsize=1024)
def _compiled(template: str) -> _Template:
    # Bounded, and a miss costs one linear parse: the one-off checks
    # (`selectors_match`, a token's claims) share compiled templates, while
    # subscriptions keep theirs in their `SelectorSet`.
    return _Template(template)


def validate_selector(selector: str) -> None:
    """Raise `ValueError` naming the problem if `selector` is a malformed
    URI template (or longer than the limits)."""
    if _is_template(selector):
        _compiled(selector)


def _never(topic: str) -> bool:
    return False


def _always(topic: str) -> bool:
    return True


def selector_matcher(selector: str) -> Callable[[str], bool]:
    """A function telling whether a topic matches `selector` (a malformed
    template matches nothing)."""
    if selector == "*":
        return _always
    if not _is_template(selector):
        return selector.__eq__
    try:
        return _compiled(selector)
    except ValueError:
        return _never  # a malformed template (in a token) matches nothing


class Matcher:
    """One topic matcher of a given type (Mercure 1.0 "matcher types"):
    `Matcher.exact(topic)`, `Matcher.template(uri_template)` (the 0.x
    selectors) or `Matcher.urlpattern(pattern, base=hub_url)`. The value
    `*` matches every topic whatever the type. Constructors raise
    `ValueError` naming the problem with a malformed value. Equal when type,
    value and base are."""

    __slots__ = ("_pattern", "base", "kind", "value")

    def __init__(self, kind: str, value: str, base: str | None, pattern: _Pattern | None) -> None:
        self.kind = kind
        self.value = value
        self.base = base
        self._pattern = pattern

    @classmethod
    def exact(cls, topic: str) -> Matcher:
        return cls("exact", topic, None, None)

    @classmethod
    def template(cls, template: str) -> Matcher:
        if template == "*" or not _is_template(template):
            return cls("template", template, None, None)
        return cls("template", template, None, _Template(template))

    @classmethod
    def urlpattern(cls, pattern: str, *, base: str | None = None) -> Matcher:
        """A WHATWG URL Pattern (`https://example.com/books/:id`); a
        relative pattern (and topic) is resolved against `base`, the hub's
        URL. See `ssehub.hub._urlpattern` for the supported syntax."""
        if pattern == "*":
            return cls("urlpattern", pattern, base, None)
        return cls("urlpattern", pattern, base, URLPattern(pattern, base=base))

    @property
    def any(self) -> bool:
        return self.value == "*"

    def matches(self, topic: str) -> bool:
        if self.value == "*":
            return True
        if self._pattern is None:
            return topic == self.value
        return self._pattern.match(topic)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Matcher):
            return NotImplemented
        return (self.kind, self.value, self.base) == (other.kind, other.value, other.base)

    def __hash__(self) -> int:
        return hash((self.kind, self.value, self.base))

    def __repr__(self) -> str:
        base = "" if self.base is None else f", base={self.base!r}"
        return f"Matcher.{self.kind}({self.value!r}{base})"


class SelectorSet:
    """Topic selectors compiled once (when a subscription opens, when a
    token is read) and matched many times: `matches(topics)` tells whether
    any selector matches any of the topics. `matchers` (and any `Matcher`
    among `selectors`) adds Mercure 1.0 matchers to the string selectors.

    `strict=True` raises `ValueError` naming a malformed selector (a
    subscriber's request); `strict=False` lets a malformed one match nothing
    (a token's claim).
    """

    __slots__ = ("any", "exact", "matchers", "patterns", "selectors")

    def __init__(
        self,
        selectors: Iterable[str | Matcher],
        *,
        strict: bool = True,
        matchers: Iterable[Matcher] = (),
    ) -> None:
        items = tuple(selectors)  # a `Matcher` among them counts as one of `matchers`
        self.selectors = frozenset(s for s in items if isinstance(s, str))
        self.matchers = frozenset((*matchers, *(m for m in items if isinstance(m, Matcher))))
        self.any = "*" in self.selectors or any(m.any for m in self.matchers)
        exact = {s for s in self.selectors if not _is_template(s)}
        patterns: list[_Pattern] = []
        for selector in sorted(self.selectors - exact):
            try:
                patterns.append(_compiled(selector))  # shared with validate_selector
            except ValueError:
                if strict:
                    raise
        for matcher in self.matchers:
            if matcher._pattern is not None:
                patterns.append(matcher._pattern)
            elif not matcher.any:
                exact.add(matcher.value)
        exact.discard("*")
        self.exact = frozenset(exact)
        self.patterns: tuple[_Pattern, ...] = tuple(patterns)

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
        return any(pattern.match(topic) for topic in topics for pattern in self.patterns)

    def __repr__(self) -> str:
        matchers = f", matchers={sorted(map(repr, self.matchers))}" if self.matchers else ""
        return f"SelectorSet({sorted(self.selectors)!r}{matchers})"


def selectors_match(selectors: frozenset[str], topics: Iterable[str]) -> bool:
    """Whether any selector matches any of `topics` (for one-off checks;
    compile a `SelectorSet` once where the same selectors match often). A
    malformed template matches nothing."""
    if "*" in selectors:
        return True
    topics = tuple(topics)
    if not selectors.isdisjoint(topics):
        return True
    return any(
        selector_matcher(selector)(topic)
        for selector in selectors
        if _is_template(selector)
        for topic in topics
    )


K = TypeVar("K", bound=Hashable)


class _Entry(Generic[K]):
    """One pattern language and the owners whose sets hold it: confirmed
    once per topic however many owners share it."""

    __slots__ = ("owners", "pattern")

    def __init__(self, pattern: _Pattern) -> None:
        self.pattern = pattern
        self.owners: dict[K, None] = {}


class _Shelf(Generic[K]):
    """Entries filed by a literal affix (affix → language → entry), and how
    many affixes of each length there are (the lengths at which a topic's
    own affixes are looked up)."""

    __slots__ = ("by_affix", "lengths")

    def __init__(self) -> None:
        self.by_affix: dict[str, dict[str, _Entry[K]]] = {}
        self.lengths: dict[int, int] = {}

    def add(self, affix: str, key: K, pattern: _Pattern) -> None:
        entries = self.by_affix.get(affix)
        if entries is None:
            entries = self.by_affix[affix] = {}
            self.lengths[len(affix)] = self.lengths.get(len(affix), 0) + 1
        _file(entries, key, pattern)

    def discard(self, affix: str, key: K, pattern: _Pattern) -> None:
        entries = self.by_affix.get(affix)
        if entries is None or not _unfile(entries, key, pattern) or entries:
            return
        del self.by_affix[affix]
        left = self.lengths[len(affix)] - 1
        if left:
            self.lengths[len(affix)] = left
        else:
            del self.lengths[len(affix)]


def _file(entries: dict[str, _Entry[K]], key: K, pattern: _Pattern) -> None:
    entry = entries.get(pattern.language)
    if entry is None:
        entry = entries[pattern.language] = _Entry(pattern)
    entry.owners[key] = None


def _unfile(entries: dict[str, _Entry[K]], key: K, pattern: _Pattern) -> bool:
    """Remove `key` from the pattern's entry; whether the entry went."""
    entry = entries.get(pattern.language)
    if entry is None:
        return False
    entry.owners.pop(key, None)
    if entry.owners:
        return False
    del entries[pattern.language]
    return True


class PatternIndex(Generic[K]):
    """Owners (e.g. fan-out groups) of selector sets, found by topic:
    `matching(topics)` is every owner whose selectors match one of the
    topics, in the order they were added.

    Patterns are filed by the literal text before their first expression
    (else after their last), so a topic looks up its own prefixes (one
    dictionary lookup per distinct prefix length) and only the patterns
    filed there are confirmed with the linear matcher, once per language
    (templates differing only in variable names are one); patterns with
    neither (`{x}`, URL patterns) are confirmed for every topic. `*`
    owners match at once, exact topics are looked up. `confirmations`
    counts the patterns confirmed so far.
    """

    __slots__ = (
        "_any",
        "_exact",
        "_next",
        "_order",
        "_owners",
        "_prefixes",
        "_suffixes",
        "_unfiled",
        "confirmations",
    )

    def __init__(self) -> None:
        self._owners: dict[K, SelectorSet] = {}
        self._order: dict[K, int] = {}
        self._next = 0
        self._any: dict[K, None] = {}
        self._exact: dict[str, dict[K, None]] = {}
        self._prefixes: _Shelf[K] = _Shelf()
        self._suffixes: _Shelf[K] = _Shelf()
        self._unfiled: dict[str, _Entry[K]] = {}
        self.confirmations = 0

    def __len__(self) -> int:
        return len(self._owners)

    def add(self, key: K, selectors: SelectorSet) -> None:
        order = self._order.get(key)
        self.discard(key)  # replaced: refiled, but keeps its place in the order
        self._owners[key] = selectors
        if order is None:
            order = self._next
            self._next += 1
        self._order[key] = order
        if selectors.any:
            self._any[key] = None
            return
        for topic in selectors.exact:
            self._exact.setdefault(topic, {})[key] = None
        for pattern in selectors.patterns:
            if pattern.prefix:
                self._prefixes.add(pattern.prefix, key, pattern)
            elif pattern.suffix:
                self._suffixes.add(pattern.suffix, key, pattern)
            else:
                _file(self._unfiled, key, pattern)

    def discard(self, key: K) -> None:
        selectors = self._owners.pop(key, None)
        if selectors is None:
            return
        del self._order[key]
        if self._any.pop(key, 0) is None:
            return
        for topic in selectors.exact:
            owners = self._exact[topic]
            del owners[key]
            if not owners:
                del self._exact[topic]
        for pattern in selectors.patterns:
            if pattern.prefix:
                self._prefixes.discard(pattern.prefix, key, pattern)
            elif pattern.suffix:
                self._suffixes.discard(pattern.suffix, key, pattern)
            else:
                _unfile(self._unfiled, key, pattern)

    def matching(self, topics: tuple[str, ...]) -> list[K]:
        found = dict(self._any)
        for topic in topics:
            exact = self._exact.get(topic)
            if exact:
                found.update(exact)
            scan: _linear.Scan | None = None
            size = len(topic)
            for shelf, prefix in ((self._prefixes, True), (self._suffixes, False)):
                for length in shelf.lengths:
                    if length > size:
                        continue
                    owners = shelf.by_affix.get(topic[:length] if prefix else topic[-length:])
                    if owners:
                        scan = self._confirm(owners, topic, scan, found)
            if self._unfiled:
                scan = self._confirm(self._unfiled, topic, scan, found)
        if len(found) < 2:
            return list(found)
        order = self._order
        return sorted(found, key=order.__getitem__)

    def _confirm(
        self,
        entries: dict[str, _Entry[K]],
        topic: str,
        scan: _linear.Scan | None,
        found: dict[K, None],
    ) -> _linear.Scan | None:
        for entry in entries.values():
            if found.keys() >= entry.owners.keys():
                continue
            if scan is None:
                scan = _linear.Scan(topic)
            self.confirmations += 1
            if entry.pattern.match(topic, scan):
                found.update(entry.owners)
        return scan
