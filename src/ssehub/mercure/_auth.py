"""Mercure authorization: JWTs for publishers and subscribers.

A token comes from the `Authorization: Bearer` header, else the
`authorization` query parameter, else the `mercureAuthorization` cookie. Its
`mercure.publish` / `mercure.subscribe` claims list the topic selectors the
bearer may publish to / receive private updates of. PyJWT is imported here
only, when keys are configured (`pip install 'ssehub[jwt]'`).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._request import Request
from ._response import HTTPError, bearer_error

__all__ = ("COOKIE", "MAX_TOKEN_BYTES", "Grant", "JWTAuth", "VerifiedTokens", "find_token")

COOKIE = "mercureAuthorization"
# a token longer than this is refused before it is parsed, whatever the
# dialect and wherever it came from (below the front ends' 16 KiB request
# head, so the refusal is this one, not a 431)
MAX_TOKEN_BYTES = 8 * 1024
_KEY_KINDS = {"HS": "an HMAC secret", "RS": "an RSA PEM public key", "ES": "an EC PEM public key"}
ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512")


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid token allows: its `mercure.publish` or
    `mercure.subscribe` selectors, its `mercure.payload`, and when it
    expires (its `exp`, Unix time; None: never)."""

    selectors: frozenset[str]
    payload: Any = None
    expires: float | None = None


def find_token(
    request: Request, query: Mapping[str, list[str]], cookie: str = COOKIE
) -> tuple[str, str] | None:
    """The request's JWT and where it was: "header", then "query"
    (parameter), then "cookie" (named `cookie`); a token longer than
    `MAX_TOKEN_BYTES` is a 401 `invalid_token`."""
    found = _find_token(request, query, cookie)
    if found is not None and len(found[0]) > MAX_TOKEN_BYTES:
        raise bearer_error(401, f"the token is longer than {MAX_TOKEN_BYTES} bytes")
    return found


def _find_token(
    request: Request, query: Mapping[str, list[str]], cookie: str
) -> tuple[str, str] | None:
    value = request.headers.get(b"authorization")
    if b"authorization" in request.repeated or (value is not None and b"," in value):
        # (a server may join repeated fields with ", "; a JWT has no comma)
        # a malformed presentation: RFC 6750's invalid_request
        raise bearer_error(400, "more than one Authorization header", "invalid_request")
    if value is not None:
        scheme, _, token = value.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            # no bearer token was presented: a bare challenge (RFC 9110: every 401 has one)
            raise bearer_error(401, "the Authorization header must be 'Bearer <JWT>'", None)
        return token.strip(), "header"
    if "authorization" in query:
        return query["authorization"][0], "query"
    from_cookie = request.cookie(cookie)
    return None if from_cookie is None else (from_cookie, "cookie")


@dataclass(frozen=True, slots=True)
class JWTAuth:
    """Which tokens a hub accepts: an HMAC secret or a PEM public key for
    publishers and for subscribers, verified with `algorithm` only (never
    `none`). `leeway`: seconds of clock skew allowed on `exp`, `nbf` and
    `iat`. A key that does not fit the algorithm (a PEM key with HS256, a
    secret with RS256) is refused here, at start."""

    publisher_key: str | None = None
    subscriber_key: str | None = None
    algorithm: str = "HS256"
    leeway: float = 1.0

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"JWT algorithm must be one of {', '.join(ALGORITHMS)}")
        if not (isinstance(self.leeway, int | float) and 0 <= self.leeway < math.inf):
            raise ValueError(f"JWTAuth.leeway must be >= 0 seconds, not {self.leeway!r}")
        for who, key in (("publisher", self.publisher_key), ("subscriber", self.subscriber_key)):
            if key is not None:
                self._check_key(who, key)

    def _check_key(self, who: str, key: str) -> None:
        jwt = _jwt()  # fail at start, not at the first request, if PyJWT is missing
        try:
            jwt.get_algorithm_by_name(self.algorithm).prepare_key(key)
        except Exception as error:
            kind = _KEY_KINDS[self.algorithm[:2]]
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            if "got: " in detail:  # PyJWT's key type mismatch names a generator object
                detail = "got an " + detail.split("got: ")[1].split(".")[0]
            raise ValueError(
                f"the {who} JWT key does not fit {self.algorithm}, which needs {kind} ({detail})"
            ) from None

    def publisher(self, token: str) -> Grant:
        """What a publisher may publish to; raises `HTTPError` (401)."""
        assert self.publisher_key is not None
        return self._grant(token, self.publisher_key, "publish")

    def subscriber(self, token: str) -> Grant:
        """Whose private updates a subscriber may receive, and its payload;
        raises `HTTPError` (401)."""
        assert self.subscriber_key is not None
        return self._grant(token, self.subscriber_key, "subscribe")

    def _grant(self, token: str, key: str, name: str) -> Grant:
        jwt = _jwt()
        try:
            payload = jwt.decode(token, key, algorithms=[self.algorithm], leeway=self.leeway)
        except jwt.ExpiredSignatureError:
            raise HTTPError(401, "the JWT has expired") from None
        except jwt.ImmatureSignatureError:
            raise HTTPError(401, "the JWT is not valid yet (nbf or iat in the future)") from None
        except jwt.InvalidSignatureError:
            raise HTTPError(401, "the JWT's signature is not valid for this hub") from None
        except jwt.InvalidAlgorithmError:
            raise HTTPError(401, f"the JWT must be signed with {self.algorithm}") from None
        except jwt.InvalidTokenError as error:
            raise HTTPError(401, f"the JWT is not valid: {error}") from None
        mercure = payload.get("mercure")
        mercure = mercure if isinstance(mercure, dict) else {}
        selectors = mercure.get(name)
        if selectors is None:
            selectors = []
        if not isinstance(selectors, list) or not all(isinstance(s, str) for s in selectors):
            raise HTTPError(401, f"the JWT's mercure.{name} claim must be a list of strings")
        exp = payload.get("exp")
        expires = float(exp) + self.leeway if isinstance(exp, int | float) else None
        return Grant(frozenset(selectors), mercure.get("payload"), expires)


class VerifiedTokens:
    """The 0.x JWTs verified lately, by their exact text: presenting the
    same token again (a keep-alive publisher, a reconnecting page) skips
    the signature check. Why that is safe: whether a token verifies depends
    only on its text, the hub's key and algorithm (fixed for the hub's
    life) and the time; only tokens that verified are kept, each only
    until its `exp` (with the leeway, as PyJWT allows it), and `nbf` and
    `iat`, once passed, stay passed. A token that fails is never kept, so
    forged tokens cost the full check every time (and are bounded by
    `MAX_TOKEN_BYTES`); at most `size` tokens are kept, least recently used
    out first (at most `size` x 8 KiB), and only validly signed tokens can
    get in. A hit tells nothing to a client that does not hold the token."""

    __slots__ = ("_clock", "_kept", "_size")

    def __init__(self, size: int = 256, clock: Callable[[], float] = time.time) -> None:
        self._size = size
        self._clock = clock
        self._kept: OrderedDict[tuple[str, str], Grant] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def grant(self, auth: JWTAuth, token: str, action: Literal["publish", "subscribe"]) -> Grant:
        """`auth.publisher(token)` or `auth.subscriber(token)`, from the
        cache while the token is unexpired; raises `HTTPError` (401)."""
        key = (action, token)
        kept = self._kept
        grant = kept.get(key)
        if grant is not None:
            if grant.expires is None or self._clock() < grant.expires:
                kept.move_to_end(key)
                return grant
            del kept[key]  # expired: checked again, and refused
        grant = auth.publisher(token) if action == "publish" else auth.subscriber(token)
        kept[key] = grant
        if len(kept) > self._size:
            kept.popitem(last=False)
        return grant


def _jwt() -> Any:
    try:
        import jwt
    except ImportError:
        raise ImportError("JWT keys need PyJWT: pip install 'ssehub[jwt]'") from None
    return jwt
