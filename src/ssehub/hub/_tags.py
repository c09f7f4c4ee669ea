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
selectors once and writes the lines before the event's shared bytes (the
stream front end writes that one bytes object to each of the group's
subscribers); the prefixes of the last 64 events are cached for subscribers
that encode their own batches (`frames()`, the ASGI front end). A group
costs at most its selector count (`max_topics`) matches per event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ssehub.backends import Record

from ._selectors import Matcher, SelectorSet, _is_template

__all__ = ("TAG_FIELD", "Tags", "check_tags", "tag_of")

TAG_FIELD = "matched"
_CACHE = 64  # prefixes of recent records kept per group (a few KB at most)


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
        self._lines = tuple((f"{TAG_FIELD}: {tag_of(s)}\n".encode(), _test(s)) for s in items)
        self._cache: dict[str, bytes] = {}

    def _prefix(self, topics: tuple[str, ...]) -> bytes:
        return b"".join([line for line, test in self._lines if test(topics)])

    def prefix(self, record: Record) -> bytes:
        """The lines for `record` (none for the hub's own events), cached."""
        topics = record.topics
        if not topics:
            return b""
        cache = self._cache
        found = cache.get(record.id)
        if found is None:
            found = self._prefix(topics)
            if len(cache) >= _CACHE:
                del cache[next(iter(cache))]
            cache[record.id] = found
        return found

    def encode(self, records: list[Record], *, once: bool = False) -> bytes:
        """The records' bytes, each after its lines. `once`: these records
        are encoded for this group only once (the fan-out): no caching."""
        if once:
            lines = self._prefix
            if len(records) == 1:  # the usual batch
                record = records[0]
                return lines(record.topics) + record.frame if record.topics else record.frame
            parts = [p for r in records for p in ((lines(r.topics) if r.topics else b""), r.frame)]
        else:
            prefix = self.prefix
            parts = [p for r in records for p in (prefix(r), r.frame)]
        return b"".join(parts)


def _test(selector: str | Matcher) -> Callable[[tuple[str, ...]], bool]:
    """Whether `selector` matches one of an event's topics."""
    if selector == "*" or (isinstance(selector, Matcher) and selector.any):
        return _always
    if isinstance(selector, str) and not _is_template(selector):
        return lambda topics: selector in topics
    return SelectorSet((selector,)).matches


def _always(topics: tuple[str, ...]) -> bool:
    return True
