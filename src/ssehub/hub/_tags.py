"""Tagged streams (an ssehub extension): each event carries one
`matched: <selector>` line per selector of the subscription that matched it.

A subscriber that multiplexes several consumers over one stream (the
browser's `SharedEventSource`: the union of its tabs' topics) needs to know
which of its selectors an event answered. The tag names only the
subscriber's own selectors (`topic=<selector>`, `match=<topic>`,
`match_urlpattern=<pattern>`, as it wrote them), never a topic of the event:
it learns nothing it could not learn by subscribing to each selector apart —
not an alternate topic, not what a template or `*` matched. Standard SSE
parsers ignore the unknown field.

Cost: nothing for untagged subscribers. A tagged group (subscribers with the
same selectors, rights and tagging) matches each event against its
selectors once and writes the lines before the event's shared bytes; the
prefixes of recent events are cached for the group's other subscribers and
replays.
"""

from __future__ import annotations

from collections.abc import Iterable

from ssehub.backends import Record

from ._selectors import Matcher, SelectorSet

__all__ = ("TAG_FIELD", "Tags", "check_tags", "tag_of")

TAG_FIELD = "matched"
_CACHE = 1024  # prefixes of recent records kept per group


def tag_of(selector: str | Matcher) -> str:
    """A selector as its tag names it: the subscribe parameter and value."""
    if isinstance(selector, str):
        return f"topic={selector}"
    name = "match" if selector.kind == "exact" else f"match_{selector.kind}"
    return f"{name}={selector.value}"


def check_tags(selectors: Iterable[str | Matcher]) -> None:
    """Raise `ValueError` if a selector cannot go in a `matched:` line."""
    for selector in selectors:
        tag = tag_of(selector)
        if "\r" in tag or "\n" in tag or "\0" in tag:  # it goes on the wire
            raise ValueError(f"a selector of a tagged stream has CR, LF or NUL: {tag!r}")


class Tags:
    """The `matched:` lines of one group's selectors, compiled once."""

    __slots__ = ("_cache", "_lines")

    def __init__(self, selectors: Iterable[str | Matcher]) -> None:
        items = sorted(selectors, key=tag_of)
        check_tags(items)
        lines = [(f"{TAG_FIELD}: {tag_of(s)}\n".encode(), SelectorSet((s,))) for s in items]
        self._lines = tuple(lines)
        self._cache: dict[str, bytes] = {}

    def prefix(self, record: Record) -> bytes:
        """The lines for `record` (none for the hub's own events)."""
        topics = record.topics
        if not topics:
            return b""
        cache = self._cache
        found = cache.get(record.id)
        if found is None:
            found = b"".join([line for line, selectors in self._lines if selectors.matches(topics)])
            if len(cache) >= _CACHE:
                del cache[next(iter(cache))]
            cache[record.id] = found
        return found

    def encode(self, records: list[Record]) -> bytes:
        """The records' bytes, each after its lines."""
        prefix = self.prefix
        return b"".join([part for r in records for part in (prefix(r), r.frame)])
