"""The decisions `Mercure.decide` returns besides a `Response`: a
subscription to open, a publish to make, a subscriptions-API listing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ssehub.hub import Matcher, Resume
from ssehub.protocol._slots import slot_setters

from ._authorize import Question

__all__ = ("CACHE_CONTROL", "Authorize", "Listing", "Publish", "Subscribe")

CACHE_CONTROL = "private, no-cache, no-store, must-revalidate, max-age=0"
_HEAD = (
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/event-stream\r\n"
    f"Cache-Control: {CACHE_CONTROL}\r\n"
    "X-Accel-Buffering: no\r\n"
    "Connection: close\r\n"
)
FIRST_BYTES = b":\n\n"  # a comment at once, so no proxy holds the head back
_PLAIN_HEAD = (_HEAD + "\r\n").encode() + FIRST_BYTES  # no resume asked, no CORS


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Open a subscription: to `topics` (selectors), resuming after
    `last_event_id` (None: live only), receiving the private updates of
    `private_topics`; `payload` is the token's `mercure.payload` (for
    subscription events); the stream must end at `expires` (Unix time, the
    token's expiry) and after `max_seconds` (None: never). `newest`: the
    newest N events of each topic first, when not resuming (0: none; the
    `newest` query parameter, an ssehub extension). `matchers`: the Mercure
    1.0 topic matchers (beside or instead of `topics`); `dialect`: the
    Mercure the request spoke, which its answer speaks too; `payloads`: in
    1.0, each matcher's payload (draft, "Payloads"), in `matchers` order.
    `tagged`: each event after a `matched:` line per selector it matched
    (the `tagged=1` query parameter, an ssehub extension; `ssehub.hub._tags`).
    `_head`: `head()` made already, for a decision shared by many
    requests that ask no resume (None: made when asked)."""

    topics: tuple[str, ...]
    last_event_id: str | None
    private_topics: frozenset[str | Matcher]
    payload: Any
    cors: tuple[tuple[str, str], ...]
    expires: float | None = None
    max_seconds: float | None = None
    newest: int = 0
    matchers: tuple[Matcher, ...] = ()
    dialect: Literal["1.0", "0.x"] = "0.x"
    payloads: tuple[Any, ...] = ()
    tagged: bool = False
    _head: bytes | None = field(default=None, repr=False, compare=False)

    def seconds_left(self, now: float) -> float | None:
        """How long the stream may stay open from `now` (Unix time)."""
        left = None if self.expires is None else max(self.expires - now, 0.0)
        if self.max_seconds is not None:
            left = self.max_seconds if left is None else min(left, self.max_seconds)
        return left

    def headers(self, resume: Resume) -> tuple[tuple[str, str], ...]:
        """The stream's headers beyond its content type: `Cache-Control`,
        and, only when the request asked to resume, `Last-Event-ID` (0.x) or
        `Mercure-Last-Event-ID` (1.0): the id of the event before the first
        one sent, or `earliest` (the client named it, or all retained
        history follows); and `SSEHub-Gap`."""
        headers = [("Cache-Control", CACHE_CONTROL)]
        asked = self.last_event_id
        if asked is not None:
            value = "earliest" if resume.gap or asked == "earliest" else asked
            name = "Mercure-Last-Event-ID" if self.dialect == "1.0" else "Last-Event-ID"
            headers.append((name, value))
            if resume.gap:
                headers.append(("SSEHub-Gap", "1"))
        headers.extend(self.cors)
        return tuple(headers)

    def head(self, resume: Resume) -> bytes:
        """The whole HTTP/1.1 response head and the first comment, for a
        server that writes bytes."""
        if self.last_event_id is None:
            if not self.cors:
                return _PLAIN_HEAD  # most subscribers: one shared bytes object
            if self._head is not None:
                return self._head  # (it does not depend on `resume`)
        lines = [_HEAD]
        lines.extend(f"{k}: {v}\r\n" for k, v in self.headers(resume)[1:])
        lines.append("\r\n")
        return "".join(lines).encode() + FIRST_BYTES


@dataclass(frozen=True, slots=True, init=False)
class Publish:
    """Store an event (the fields of `Hub.publish`), then answer with its id."""

    topics: tuple[str, ...]
    data: str
    event: str
    id: str | None
    retry: int | None
    private: bool
    cors: tuple[tuple[str, str], ...]

    def __init__(
        self,
        topics: tuple[str, ...],
        data: str,
        event: str,
        id: str | None,
        retry: int | None,
        private: bool,
        cors: tuple[tuple[str, str], ...],
    ) -> None:
        # the dataclass's fields, each set through its slot (`_slots.py`)
        _TOPICS(self, topics)
        _DATA(self, data)
        _EVENT(self, event)
        _ID(self, id)
        _RETRY(self, retry)
        _PRIVATE(self, private)
        _CORS(self, cors)


_TOPICS, _DATA, _EVENT, _ID, _RETRY, _PRIVATE, _CORS = slot_setters(
    Publish, "topics", "data", "event", "id", "retry", "private", "cors"
)


@dataclass(frozen=True, slots=True)
class Listing:
    """Answer a subscriptions-API request for `rest` (the path after
    `/subscriptions`, still percent-encoded), in `dialect`. In 1.0 the
    request was parsed already: `selection` is `(match_type, match,
    subscriber)` (decoded; None: not given), at most `limit` documents after
    the cursor `after`; `hub_url` goes in the `Link` header."""

    rest: str
    cors: tuple[tuple[str, str], ...]
    dialect: Literal["1.0", "0.x"] = "0.x"
    selection: tuple[str | None, str | None, str | None] = (None, None, None)
    limit: int = 0
    after: tuple[int, int] | None = None
    hub_url: str = ""


@dataclass(frozen=True, slots=True)
class Authorize:
    """Ask the app first (`MercureConfig.authorize`): send `question` to its
    endpoint (`ssehub.hooks.Authorizer`), then hand the answer to
    `Mercure.resume(decision, verdict)`, which gives `pending` (perhaps
    narrowed: the private updates the app allows) or a refusal. `grant`:
    the private selectors the JWT gave (None: no JWT), which the app's
    answer may only narrow."""

    question: Question
    pending: Subscribe | Publish
    grant: frozenset[str | Matcher] | None = None
