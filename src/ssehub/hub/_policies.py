"""Per-topic policies: history bounds, the newest-N a subscriber gets on
open, and a subscriber limit, for the topics a selector matches.

`HubConfig(topics=(TopicPolicy(...), ...))`: the first policy whose
selector matches a topic is that topic's; a topic no policy matches keeps
the hub's defaults. The hub looks a topic's policy up with `TopicPolicies`,
which matches with the linear matchers of `_selectors` (never a
backtracking regex) and caches the answer per topic (bounded), so a publish
costs a dict lookup per topic once its topics were seen.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from ._selectors import Matcher, _is_template

__all__ = ("MatchType", "SubscriberLimitError", "TopicPolicies", "TopicPolicy")

MatchType = Literal["template", "exact", "urlpattern"]
_MATCH_TYPES = ("template", "exact", "urlpattern")
_CACHE = 16_384  # topics whose policy is remembered (least recently used goes)


class SubscriberLimitError(RuntimeError):
    """A subscription would take a topic past its policy's
    `max_subscribers`: refused (over HTTP: 503 with `Retry-After`)."""

    def __init__(self, topic: str, limit: int, retry_after: int) -> None:
        super().__init__(f"topic {topic!r} has its maximum of {limit} subscribers")
        self.topic = topic
        self.limit = limit
        self.retry_after = retry_after
        """Seconds after which trying again may succeed."""


@dataclass(frozen=True, slots=True)
class TopicPolicy:
    """What the topics `match` selects get instead of the hub's defaults.

    - `match`: one selector. With `match_type="template"` (the default, as
      Mercure 0.x `topic=`): an exact topic, `*` (every topic) or a URI
      template (`https://example.com/books/{id}`); `"exact"`: the topic
      itself, braces and all; `"urlpattern"`: a WHATWG URL Pattern (as
      Mercure 1.0 `match_urlpattern=`), absolute (`https://example.com/books/:id`).
    - `history`: events kept per topic (over `HistoryLimits.max_events`).
    - `history_age`: seconds an event is kept (over `HistoryLimits.max_age`).
    - `newest`: a subscription naming matching topics exactly that asks
      for no replay (no `Last-Event-ID`, no `newest=`) gets the newest N
      events of each first, as if it had asked `newest=N`.
    - `max_subscribers`: subscriptions a matching topic may have at once
      (counting `*` and templates that match it); one more naming it
      exactly, also beside patterns, is refused with `SubscriberLimitError`.
    None: the hub's default (no newest, no limit). Validated on
    construction: `ValueError` naming the field.
    """

    match: str
    match_type: MatchType = "template"
    history: int | None = None
    history_age: float | None = None
    newest: int | None = None
    max_subscribers: int | None = None
    matcher: Matcher = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.match, str) or not self.match:
            raise ValueError(f"TopicPolicy.match must be a non-empty str, not {self.match!r}")
        if self.match_type not in _MATCH_TYPES:
            raise ValueError(
                f"TopicPolicy.match_type must be one of {', '.join(_MATCH_TYPES)},"
                f" not {self.match_type!r}"
            )
        try:
            matcher = _matcher(self.match, self.match_type)
        except ValueError as error:
            raise ValueError(f"TopicPolicy.match {self.match!r}: {error}") from None
        object.__setattr__(self, "matcher", matcher)
        for name in ("history", "newest", "max_subscribers"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 1):
                raise ValueError(f"TopicPolicy.{name} must be an int >= 1, not {value!r}")
        age = self.history_age
        if age is not None and (
            type(age) not in (int, float) or not math.isfinite(age) or not age > 0
        ):
            raise ValueError(f"TopicPolicy.history_age must be > 0 seconds, not {age!r}")
        if self.newest is not None and self.history is not None and self.newest > self.history:
            raise ValueError(
                f"TopicPolicy.newest ({self.newest}) must not be over its history ({self.history})"
            )


def _matcher(match: str, match_type: MatchType) -> Matcher:
    if match_type == "exact":
        return Matcher.exact(match)
    if match_type == "template":
        return Matcher.template(match)
    if match != "*" and not match.partition(":")[0].isalpha():
        raise ValueError("a URL pattern here must be absolute (https://host/path/:name)")
    return Matcher.urlpattern(match)


class TopicPolicies:
    """`TopicPolicy`s in order, looked up per topic: the first that matches
    wins (`policy(topic)`), answers cached per topic (bounded). It is the
    backends' `TopicLimits` (`bounds(topic)`), safe from any thread."""

    __slots__ = ("_lookup", "longest_age", "most_events", "policies", "watched")

    def __init__(self, policies: Iterable[TopicPolicy] = ()) -> None:
        self.policies = tuple(policies)
        for policy in self.policies:
            if not isinstance(policy, TopicPolicy):
                raise ValueError(f"topic policies must be TopicPolicy objects, not {policy!r}")
        ages = [p.history_age for p in self.policies if p.history_age is not None]
        counts = [p.history for p in self.policies if p.history is not None]
        self.longest_age: float | None = max(ages, default=None)
        self.most_events: int | None = max(counts, default=None)
        self.watched = any(p.max_subscribers or p.newest for p in self.policies)
        """Whether any policy acts on subscriptions (newest, a limit)."""
        self._lookup = functools.lru_cache(maxsize=_CACHE)(self._first)

    def __bool__(self) -> bool:
        return bool(self.policies)

    @property
    def bounds_history(self) -> bool:
        """Whether any policy sets history bounds (the backend needs them)."""
        return self.longest_age is not None or self.most_events is not None

    def policy(self, topic: str) -> TopicPolicy | None:
        """The first policy whose selector matches `topic`, or None."""
        return self._lookup(topic)

    def cached(self) -> int:
        """How many topics' policies are remembered now (at most 16,384)."""
        return self._lookup.cache_info().currsize

    def bounds(self, topic: str) -> tuple[int | None, float | None]:
        policy = self._lookup(topic)
        if policy is None:
            return None, None
        return policy.history, policy.history_age

    def _first(self, topic: str) -> TopicPolicy | None:
        for policy in self.policies:
            if policy.matcher.matches(topic):
                return policy
        return None

    def newest(self, selectors: Iterable[str | Matcher]) -> int:
        """The newest-N a subscription with `selectors` gets when it asks
        for no replay: the largest of its topics' policies, if it names
        topics exactly only (else 0)."""
        topics = exact_topics(selectors)
        if not topics:
            return 0
        return max((p.newest or 0 for t in topics if (p := self._lookup(t)) is not None), default=0)


def exact_topics(selectors: Iterable[str | Matcher]) -> tuple[str, ...]:
    """The topics `selectors` name, or () if any of them is a pattern (`*`,
    a URI template, a URL pattern)."""
    topics: list[str] = []
    for selector in selectors:
        if isinstance(selector, str):
            if selector == "*" or _is_template(selector):
                return ()
            topics.append(selector)
        elif not selector.any and (
            selector.kind == "exact"
            or (selector.kind == "template" and not _is_template(selector.value))
        ):
            topics.append(selector.value)
        else:
            return ()
    return tuple(topics)
