"""Tokens the commands send: given (`--token`) or minted here (`--jwt-key`)."""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ._options import UsageError, read_key

__all__ = ("AUTHORIZATION_DETAIL", "Access", "Bearer", "bearer", "mint", "mint_access_token")

AUTHORIZATION_DETAIL = "https://mercure.rocks/authorization-detail"
Match = tuple[str, str]
"""A Mercure 1.0 topic matcher: its `match` and its `match_type`."""


@dataclass(frozen=True, slots=True)
class Access:
    """What makes a minted token a Mercure 1.0 access token: its `iss`, its
    `aud` (the hub's resource identifier) and its `sub`."""

    issuer: str
    audience: str
    subject: str = "ssehub-cli"


def mint(
    key: str,
    algorithm: str,
    publish: Sequence[str],
    subscribe: Sequence[str],
    ttl: float,
    *,
    now: float | None = None,
) -> str:
    """A Mercure JWT with these `mercure.publish` / `mercure.subscribe`
    claims, expiring `ttl` seconds from now (0: never)."""
    try:
        import jwt
    except ImportError:
        raise UsageError("minting a JWT needs PyJWT: pip install 'ssehub[jwt]'") from None
    rights = {"publish": list(publish), "subscribe": list(subscribe)}
    claims: dict[str, object] = {"mercure": rights}
    if ttl > 0:
        claims["exp"] = int((time.time() if now is None else now) + ttl)
    secret = read_key(key)
    assert secret is not None
    try:
        return str(jwt.encode(claims, secret, algorithm=algorithm))
    except (ValueError, TypeError, NotImplementedError, jwt.PyJWTError) as error:
        raise UsageError(f"--jwt-key: cannot sign with {algorithm}: {error}") from None


def mint_access_token(
    key: str,
    algorithm: str,
    access: Access,
    publish: Sequence[Match],
    subscribe: Sequence[Match],
    ttl: float,
    *,
    payload: Any = None,
    now: float | None = None,
) -> str:
    """A Mercure 1.0 access token (RFC 9068: `typ: at+jwt`, `iss`, `aud`,
    `exp`, `sub`, `client_id`, `iat`, `jti`) whose `authorization_details`
    grant `publish` and `subscribe` on these matchers (one detail each)."""
    try:
        import jwt
    except ImportError:
        raise UsageError("minting a JWT needs PyJWT: pip install 'ssehub[jwt]'") from None
    if ttl <= 0:
        raise UsageError("--ttl: a Mercure 1.0 access token must expire (exp): give SECONDS > 0")
    issued = int(time.time() if now is None else now)
    details: list[dict[str, Any]] = []
    for action, matchers in (("publish", publish), ("subscribe", subscribe)):
        if matchers:
            topics = [
                {"match": m} if kind == "exact" else {"match": m, "match_type": kind}
                for m, kind in matchers
            ]
            detail = {"type": AUTHORIZATION_DETAIL, "actions": [action], "topics": topics}
            if action == "subscribe" and payload is not None:
                detail["payload"] = payload
            details.append(detail)
    claims: dict[str, object] = {
        "iss": access.issuer,
        "aud": access.audience,
        "sub": access.subject,
        "client_id": "ssehub-cli",
        "iat": issued,
        "exp": int(issued + ttl),
        "jti": str(uuid.uuid4()),
        "authorization_details": details,
    }
    secret = read_key(key)
    assert secret is not None
    try:
        return str(jwt.encode(claims, secret, algorithm=algorithm, headers={"typ": "at+jwt"}))
    except (ValueError, TypeError, NotImplementedError, jwt.PyJWTError) as error:
        raise UsageError(f"--jwt-key: cannot sign with {algorithm}: {error}") from None


class Bearer:
    """The `Authorization` header of a command's requests: a given token,
    a token minted with `key` (re-minted when half its life is gone, so a
    long `pipe` or `listen` never sends an expired one), or none."""

    TTL = 60.0

    def __init__(
        self,
        token: str | None = None,
        key: str | None = None,
        algorithm: str = "HS256",
        *,
        publish: Sequence[str] = (),
        subscribe: Sequence[str] = (),
        access: Access | None = None,
        matchers: Sequence[Match] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        given = read_key(token, "--token")
        self._token = None if given is None else given.strip()  # a file's final newline
        self._key = key
        self._algorithm = algorithm
        self._publish = tuple(publish)
        self._subscribe = tuple(subscribe)
        self._access = access
        self._matchers = tuple(matchers)  # 1.0: the subscribe matchers, beside `subscribe`
        self._clock = clock
        self._minted = 0.0
        if key is not None:
            self._token = self._mint()  # a bad key fails now, not at the first request

    @property
    def given(self) -> bool:
        """Whether the command has credentials at all."""
        return self._token is not None

    def _mint(self) -> str:
        assert self._key is not None
        self._minted = self._clock()
        if self._access is not None:
            return mint_access_token(
                self._key,
                self._algorithm,
                self._access,
                [(t, "exact") for t in self._publish],
                [*((t, "exact") for t in self._subscribe), *self._matchers],
                self.TTL,
                now=self._minted,
            )
        return mint(
            self._key, self._algorithm, self._publish, self._subscribe, self.TTL, now=self._minted
        )

    def headers(self) -> dict[str, str]:
        if self._key is not None and self._clock() - self._minted > self.TTL / 2:
            self._token = self._mint()
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}


def bearer(
    args: argparse.Namespace,
    endpoint: str,
    *,
    publish: Sequence[str] = (),
    subscribe: Sequence[str] = (),
    matchers: Sequence[Match] = (),
) -> Bearer:
    """The `Bearer` of a command's token options (`add_token_options`):
    with `--jwt-issuer`, minted tokens are Mercure 1.0 access tokens for
    `--resource` (default: the hub's `endpoint`)."""
    access = None
    if args.jwt_issuer is not None:
        if args.jwt_key is None:
            raise UsageError("--jwt-issuer goes with --jwt-key (it names the minted token's iss)")
        access = Access(args.jwt_issuer, args.resource or endpoint)
    elif args.resource is not None:
        raise UsageError("--resource goes with --jwt-issuer (a Mercure 1.0 access token's aud)")
    return Bearer(
        args.token,
        args.jwt_key,
        args.jwt_algorithm,
        publish=publish,
        subscribe=subscribe,
        access=access,
        matchers=matchers,
    )
