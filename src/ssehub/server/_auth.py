"""Mercure authorization: JWTs for publishers and subscribers.

A token comes from the `Authorization: Bearer` header, else the
`authorization` query parameter, else the `mercureAuthorization` cookie. Its
`mercure.publish` / `mercure.subscribe` claims list the topic selectors the
bearer may publish to / receive private updates of. PyJWT is imported here
only, when keys are configured (`pip install 'ssehub[jwt]'`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any

__all__ = ("AuthError", "JWTAuth", "cookie", "find_token")

COOKIE = "mercureAuthorization"
ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512")


class AuthError(Exception):
    """A refused token: HTTP status and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def find_token(
    headers: Mapping[bytes, bytes], query: Mapping[str, list[str]]
) -> tuple[str, str] | None:
    """The request's JWT and where it was: "header", then "query"
    (parameter), then "cookie"."""
    value = headers.get(b"authorization")
    if value is not None:
        scheme, _, token = value.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(401, "the Authorization header must be 'Bearer <JWT>'")
        return token.strip(), "header"
    if "authorization" in query:
        return query["authorization"][0], "query"
    from_cookie = cookie(headers, COOKIE)
    return None if from_cookie is None else (from_cookie, "cookie")


def cookie(headers: Mapping[bytes, bytes], name: str) -> str | None:
    """The value of the request's cookie `name` (None if absent or the
    Cookie header is malformed)."""
    raw = headers.get(b"cookie")
    if raw is None:
        return None
    try:
        jar = SimpleCookie(raw.decode("latin-1"))
    except CookieError:
        return None
    return jar[name].value if name in jar else None


@dataclass(frozen=True, slots=True)
class JWTAuth:
    """Which tokens a hub accepts: an HMAC secret or a PEM public key for
    publishers and for subscribers, verified with `algorithm` only (never
    `none`)."""

    publisher_key: str | None = None
    subscriber_key: str | None = None
    algorithm: str = "HS256"

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"JWT algorithm must be one of {', '.join(ALGORITHMS)}")
        if self.publisher_key is not None or self.subscriber_key is not None:
            _jwt()  # fail at start, not at the first request, if PyJWT is missing

    def publish_selectors(self, token: str | None) -> frozenset[str]:
        """What a publisher may publish to; raises `AuthError`."""
        assert self.publisher_key is not None
        if token is None:
            raise AuthError(401, "publishing requires a JWT with a mercure.publish claim")
        return self._claim(token, self.publisher_key, "publish")

    def subscribe_selectors(self, token: str) -> frozenset[str]:
        """Whose private updates a subscriber may receive; raises `AuthError`."""
        return self.subscriber(token)[0]

    def subscriber(self, token: str) -> tuple[frozenset[str], Any]:
        """A subscriber's `mercure.subscribe` selectors and its
        `mercure.payload` (shown in subscription events); raises `AuthError`."""
        assert self.subscriber_key is not None
        mercure = self._mercure(token, self.subscriber_key)
        return _selectors(mercure, "subscribe"), mercure.get("payload")

    def _claim(self, token: str, key: str, name: str) -> frozenset[str]:
        return _selectors(self._mercure(token, key), name)

    def _mercure(self, token: str, key: str) -> dict[str, Any]:
        jwt = _jwt()
        try:
            payload = jwt.decode(token, key, algorithms=[self.algorithm])
        except jwt.ExpiredSignatureError:
            raise AuthError(401, "the JWT has expired") from None
        except jwt.InvalidSignatureError:
            raise AuthError(401, "the JWT's signature is not valid for this hub") from None
        except jwt.InvalidAlgorithmError:
            raise AuthError(401, f"the JWT must be signed with {self.algorithm}") from None
        except jwt.InvalidTokenError as error:
            raise AuthError(401, f"the JWT is not valid: {error}") from None
        mercure = payload.get("mercure")
        return mercure if isinstance(mercure, dict) else {}


def _selectors(mercure: dict[str, Any], name: str) -> frozenset[str]:
    selectors = mercure.get(name)
    if selectors is None:
        return frozenset()
    if not isinstance(selectors, list) or not all(isinstance(s, str) for s in selectors):
        raise AuthError(401, f"the JWT's mercure.{name} claim must be a list of strings")
    return frozenset(selectors)


def _jwt() -> Any:
    try:
        import jwt
    except ImportError:
        raise ImportError("JWT keys need PyJWT: pip install 'ssehub[jwt]'") from None
    return jwt
