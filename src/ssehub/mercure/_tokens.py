"""Mercure 1.0 access tokens (draft 1.0.0-alpha.3, "Token Validation",
"Authorization Details"): RFC 9068 JWT access tokens (`typ: at+jwt`) whose
`authorization_details` grant `publish` / `subscribe` on topic matchers.

Every failure is a 401 with `WWW-Authenticate: Bearer error="invalid_token"`
(the reason is in the body and in `error_description`); a token the hub
cannot use at all is never partly accepted.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from ssehub.hub import MAX_URLPATTERN_LENGTH, Matcher

from ._auth import MAX_TOKEN_BYTES
from ._issuers import Trust
from ._response import bearer_error

__all__ = (
    "AUTHORIZATION_DETAIL",
    "COOKIE_V1",
    "MAX_DETAILS",
    "MAX_TOKEN_BYTES",
    "MAX_TOPICS_PER_DETAIL",
    "AccessGrant",
    "bearer_error",
    "is_access_token",
    "validate",
)

AUTHORIZATION_DETAIL = "https://mercure.rocks/authorization-detail"
COOKIE_V1 = "__Secure-mercure_access_token"
MAX_DETAILS = 32  # Mercure authorization details in one token
MAX_TOPICS_PER_DETAIL = 64  # topic matchers in one detail's `topics`
_ACTIONS = ("publish", "subscribe")
_MATCH_TYPES = ("exact", "urlpattern")


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """What a valid 1.0 access token allows: the matchers of its `publish`
    and `subscribe` details, its `sub`, its `exp` (Unix time), and each
    `subscribe` detail's matchers and payload, in the token's order
    (`payload_for`)."""

    publish: frozenset[Matcher]
    subscribe: frozenset[Matcher]
    subject: str | None
    expires: float
    subscribe_details: tuple[tuple[frozenset[Matcher], Any], ...] = ()

    def payload_for(self, matcher: Matcher) -> Any:
        """The payload of a subscription made with `matcher` (draft,
        "Payloads"): that of the first `subscribe` detail whose topics match
        the matcher's own string as if it were a topic (None: that detail
        has none, or no detail matches)."""
        for topics, payload in self.subscribe_details:
            if any(m.matches(matcher.value) for m in topics):
                return payload
        return None


@functools.lru_cache(maxsize=128)
def is_access_token(token: str) -> bool:
    """Whether the token's header says it is a JWT access token (`typ`
    `at+jwt` or `application/at+jwt`, case-insensitively): the 1.0 kind.
    A pure function of the text, kept for the last 128 tokens (a publisher
    presents the same one on every request; PyJWT decodes all three parts
    to read the header; at most 128 x 8 KiB)."""
    jwt = _jwt()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        return False
    typ = header.get("typ")
    if not isinstance(typ, str):
        return False
    typ = typ.lower()
    return typ.removeprefix("application/") == "at+jwt"


def validate(
    token: str,
    trusted: Trust,
    *,
    audience: str,
    leeway: float,
    base: str,
) -> AccessGrant:
    """Validate a 1.0 access token against the hub's trusted issuers (each
    with its own keys and algorithms, `trusted`), its resource identifier
    `audience`; raises `HTTPError` 401 `invalid_token` naming the problem.
    The token is verified with the keys of its own `iss` only, so a token
    signed by one issuer cannot pass as another's. Key material in the
    token's header (`jwk`, `jku`, `x5u`) is never used."""
    if len(token) > MAX_TOKEN_BYTES:  # (`find_token` refuses these first)
        raise bearer_error(401, f"the access token is longer than {MAX_TOKEN_BYTES} bytes")
    jwt = _jwt()
    try:
        jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as error:  # (an unknown `crit` extension, bad base64...)
        raise bearer_error(401, f"the access token's header is not valid: {error}") from None
    if not is_access_token(token):
        raise bearer_error(401, "the access token's typ must be at+jwt (RFC 9068)")
    if not trusted:
        raise bearer_error(401, "this hub trusts no token issuer (--jwt-issuer, --jwt-issuer-key)")
    try:  # (the issuer names the keys to verify it with: read it first)
        unverified = jwt.decode(token, options={"verify_signature": False})
        algorithm = jwt.get_unverified_header(token).get("alg")
    except jwt.InvalidTokenError as error:
        raise bearer_error(401, f"the access token is not valid: {error}") from None
    issuer = unverified.get("iss")
    if issuer is None:
        raise bearer_error(401, "the access token has no 'iss' claim")
    keys = trusted.get(issuer) if isinstance(issuer, str) else None
    if keys is None:
        raise bearer_error(401, f"the access token's issuer {str(issuer)[:80]!r} is not trusted")
    allowed = tuple(dict.fromkeys(a for _, algorithms in keys for a in algorithms))
    if algorithm not in allowed:
        raise bearer_error(401, f"the access token must be signed with {' or '.join(allowed)}")
    for key in (key for key, algorithms in keys if algorithm in algorithms):
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=audience,
                issuer=issuer,
                leeway=leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
            break
        except jwt.InvalidSignatureError:
            continue  # another of the issuer's keys (rotation) may fit
        except jwt.MissingRequiredClaimError as error:
            raise bearer_error(401, f"the access token has no {error.claim!r} claim") from None
        except jwt.ExpiredSignatureError:
            raise bearer_error(401, "the access token has expired") from None
        except jwt.ImmatureSignatureError:
            raise bearer_error(401, "the access token is not valid yet (nbf or iat)") from None
        except jwt.InvalidAudienceError:
            raise bearer_error(401, f"the access token's aud does not contain {audience}") from None
        except jwt.InvalidTokenError as error:
            raise bearer_error(401, f"the access token is not valid: {error}") from None
    else:
        raise bearer_error(
            401, f"the access token's signature is not valid for its issuer {issuer[:80]!r}"
        )
    exp = claims["exp"]
    if not isinstance(exp, int | float):
        raise bearer_error(401, "the access token's exp must be a number")
    publish, subscribe, details = _details(claims.get("authorization_details"), base)
    sub = claims.get("sub")
    subject = sub if isinstance(sub, str) else None
    return AccessGrant(publish, subscribe, subject, float(exp) + leeway, details)


_Details = tuple[tuple[frozenset[Matcher], Any], ...]


def _details(details: Any, base: str) -> tuple[frozenset[Matcher], frozenset[Matcher], _Details]:
    """The grants of `authorization_details`, all or nothing; last, each
    `subscribe` detail's matchers and payload, in order."""
    if details is None:
        return frozenset(), frozenset(), ()
    if not isinstance(details, list):
        raise bearer_error(401, "the access token's authorization_details must be an array")
    mercure = [d for d in details if isinstance(d, dict) and d.get("type") == AUTHORIZATION_DETAIL]
    if len(details) != len([d for d in details if isinstance(d, dict)]):
        raise bearer_error(401, "every authorization_details entry must be an object")
    if len(mercure) > MAX_DETAILS:
        raise bearer_error(401, f"more than {MAX_DETAILS} Mercure authorization details")
    granted: dict[str, set[Matcher]] = {action: set() for action in _ACTIONS}
    subscribe_details: list[tuple[frozenset[Matcher], Any]] = []
    for n, detail in enumerate(mercure):
        where = f"Mercure authorization detail {n}"
        actions = detail.get("actions")
        if not isinstance(actions, list) or not actions:
            raise bearer_error(401, f"{where}: actions must be a non-empty array")
        if not all(isinstance(a, str) for a in actions):
            raise bearer_error(401, f"{where}: every action must be a string")
        topics = detail.get("topics")
        if not isinstance(topics, list) or not topics:
            raise bearer_error(401, f"{where}: topics must be a non-empty array")
        if len(topics) > MAX_TOPICS_PER_DETAIL:
            raise bearer_error(401, f"{where}: more than {MAX_TOPICS_PER_DETAIL} topics")
        matchers = [_matcher(f"{where}, topic {i}", t, base) for i, t in enumerate(topics)]
        if "payload" in detail and not isinstance(detail["payload"], dict):
            raise bearer_error(401, f"{where}: payload must be an object")
        for action in _ACTIONS:  # an action this hub does not know grants nothing
            if action in actions:
                granted[action].update(matchers)
        if "subscribe" in actions:
            subscribe_details.append((frozenset(matchers), detail.get("payload")))
    return (
        frozenset(granted["publish"]),
        frozenset(granted["subscribe"]),
        tuple(subscribe_details),
    )


def _matcher(where: str, entry: Any, base: str) -> Matcher:
    if not isinstance(entry, dict) or not isinstance(entry.get("match"), str):
        raise bearer_error(401, f"{where}: must be an object with a string 'match'")
    value: str = entry["match"]
    kind = entry.get("match_type", "exact")
    if kind not in _MATCH_TYPES:
        raise bearer_error(401, f"{where}: unsupported match_type {str(kind)[:40]!r}")
    if not value or len(value) > MAX_URLPATTERN_LENGTH:
        raise bearer_error(401, f"{where}: match must be 1 to {MAX_URLPATTERN_LENGTH} characters")
    if kind == "exact":
        return Matcher.exact(value)
    try:
        return Matcher.urlpattern(value, base=base)
    except ValueError as error:
        raise bearer_error(401, f"{where}: {error}") from None


def _jwt() -> Any:
    try:
        import jwt
    except ImportError:
        raise ImportError("JWT keys need PyJWT: pip install 'ssehub[jwt]'") from None
    return jwt
