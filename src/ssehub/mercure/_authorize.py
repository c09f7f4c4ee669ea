"""The app's authorization callback, sans-IO: the settings, the question the
hub asks before a subscription opens or a publish is stored, and what the
app's answer means.

The front end asks (`ssehub.hooks.Authorizer` does the HTTP, the timeout
and the cache); this module only builds the question from a request and
turns the answer's bytes into a `Verdict`, and the verdict plus the pending
decision into the final one (`Mercure.resume`).
"""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

from ssehub.hub import selectors_match

__all__ = (
    "MAX_REASON",
    "AuthorizeConfig",
    "Question",
    "Verdict",
    "covered",
    "parse_answer",
    "sanitise",
)

MAX_REASON = 200  # characters of the app's reason a client is shown
MAX_TTL = 3600.0  # an answer is never cached longer than an hour
_MAX_SELECTORS = 1000  # in one list of the answer
_MAX_SELECTOR = 2048  # characters of one selector in the answer
# the hub's own request to the app is framed by the hub
_FRAMING = frozenset(
    ("host", "content-length", "content-type", "transfer-encoding", "connection", "accept-encoding")
)


@dataclass(frozen=True, slots=True)
class AuthorizeConfig:
    """Ask the app before a subscription opens and before a publish is stored.

    - `url`: the app's endpoint, `POST`ed a JSON question (`http://` or
      `https://`).
    - `forward`: the request headers passed on to it, by name (e.g.
      `("cookie", "authorization")`); none by default, never everything.
    - `timeout`: seconds the whole exchange may take (connecting, the
      answer trickling in); beyond, the request is refused (503).
    - `cache_seconds`: how long an answer is reused for the same question
      and forwarded headers, unless the answer's `ttl` says otherwise
      (at most an hour); 0: only when the answer asks.
    - `cache_size`: answers kept at most (the least recently used go first).
    - `max_answer_bytes`: a larger answer is refused (503).
    - `max_connections`: connections to the app at once.
    """

    url: str
    forward: tuple[str, ...] = ()
    timeout: float = 2.0
    cache_seconds: float = 5.0
    cache_size: int = 1024
    max_answer_bytes: int = 64 * 1024
    max_connections: int = 32

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url.startswith(("http://", "https://")):
            raise ValueError(
                f"AuthorizeConfig.url must be an http:// or https:// URL, not {self.url!r}"
            )
        names = self.forward
        if not isinstance(names, tuple) or not all(
            isinstance(n, str) and n and n.isascii() and all(c.isalnum() or c in "-_" for c in n)
            for n in names
        ):
            raise ValueError(f"AuthorizeConfig.forward must be header names, not {names!r}")
        framing = sorted({n.lower() for n in names} & _FRAMING)
        if framing:
            raise ValueError(f"AuthorizeConfig.forward cannot name {', '.join(framing)}")
        for name, low in (("timeout", 0.0), ("cache_seconds", -1.0)):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not low < value < math.inf
            ):
                bound = "> 0" if low == 0 else ">= 0"
                raise ValueError(
                    f"AuthorizeConfig.{name} must be {bound} and finite, not {value!r}"
                )
        for name in ("cache_size", "max_answer_bytes", "max_connections"):
            value = getattr(self, name)
            if type(value) is not int or value < (0 if name == "cache_size" else 1):
                raise ValueError(f"AuthorizeConfig.{name} must be an int >= 1, not {value!r}")

    @property
    def forwarded(self) -> tuple[bytes, ...]:
        """The forwarded header names, lower-case bytes (as requests hold them)."""
        return tuple(n.lower().encode("ascii") for n in self.forward)


@dataclass(frozen=True, slots=True)
class Question:
    """What the hub asks the app: the action, the topic selectors (0.x
    `topic`s, or 1.0 matchers as their text), for a publish whether it is
    private, and the forwarded headers. `key` identifies it in the cache:
    the same action, selectors and forwarded headers (credentials) get the
    same answer."""

    action: Literal["subscribe", "publish"]
    topics: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]
    private: bool = False

    @property
    def body(self) -> bytes:
        document: dict[str, Any] = {"action": self.action, "topics": list(self.topics)}
        if self.action == "publish":
            document["private"] = self.private
        return json.dumps(document).encode()

    @property
    def key(self) -> bytes:
        return hashlib.sha256(
            json.dumps([self.action, self.topics, self.headers, self.private]).encode()
        ).digest()


@dataclass(frozen=True, slots=True)
class Verdict:
    """The app's answer.

    - `allow`: may the request go on; `reason`: why not (one line, shown
      to the client).
    - `subscribe`, `publish`: selectors the request's topics must be
      covered by (None: the answer did not narrow them).
    - `private`: selectors of the private updates a subscription receives
      (None: the answer gave none).
    - `ttl`: seconds the answer may be reused (None: the configured time).
    - `failed`: the app could not be asked or answered nonsense (the reason
      is the operator's, in `reason`): refused with 503, never cached.
    """

    allow: bool
    reason: str = ""
    subscribe: frozenset[str] | None = None
    publish: frozenset[str] | None = None
    private: frozenset[str] | None = None
    ttl: float | None = None
    failed: bool = False

    @classmethod
    def failure(cls, reason: str) -> Verdict:
        return cls(False, sanitise(reason), failed=True)


def sanitise(text: str, limit: int = MAX_REASON) -> str:
    """One line of at most `limit` characters: control and format characters
    (line ends, escapes, bidi overrides) become spaces, runs of spaces one."""
    cleaned = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text[: limit * 4])
    line = " ".join(cleaned.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def parse_answer(status: int, body: bytes) -> Verdict:
    """The verdict in the app's answer: `200` with a JSON object whose
    `allow` is true or false, and optionally `reason` (text), `subscribe`,
    `publish`, `private` (lists of selectors), `ttl` (seconds). Anything
    else is a failure (the request is refused, 503)."""
    if status != 200:
        return Verdict.failure(f"the authorization endpoint answered {status}")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return Verdict.failure("the authorization endpoint's answer is not JSON")
    if not isinstance(document, dict) or not isinstance(document.get("allow"), bool):
        return Verdict.failure('the authorization endpoint\'s answer has no "allow": true/false')
    reason = document.get("reason", "")
    ttl = document.get("ttl")
    if ttl is not None and (
        isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 <= ttl < math.inf
    ):
        return Verdict.failure('the authorization endpoint\'s "ttl" is not a number of seconds')
    lists: dict[str, frozenset[str] | None] = {}
    for name in ("subscribe", "publish", "private"):
        value = document.get(name)
        if value is not None and not (
            isinstance(value, list)
            and len(value) <= _MAX_SELECTORS
            and all(isinstance(s, str) and 0 < len(s) <= _MAX_SELECTOR for s in value)
        ):
            return Verdict.failure(
                f'the authorization endpoint\'s "{name}" is not a list of selectors'
            )
        lists[name] = None if value is None else frozenset(value)
    return Verdict(
        document["allow"],
        sanitise(reason if isinstance(reason, str) else str(reason)),
        lists["subscribe"],
        lists["publish"],
        lists["private"],
        None if ttl is None else min(float(ttl), MAX_TTL),
    )


def covered(allowed: frozenset[str], selector: str) -> bool:
    """Whether `allowed` covers the selector `selector`: one of them is it,
    is `*`, or is a URI template matching its text."""
    return selector in allowed or selectors_match(allowed, (selector,))
