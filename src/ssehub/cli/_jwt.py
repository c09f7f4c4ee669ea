"""Tokens the commands send: given (`--token`) or minted here (`--jwt-key`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ._options import UsageError, read_key

__all__ = ("Bearer", "mint")


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
        clock: Callable[[], float] = time.time,
    ) -> None:
        given = read_key(token, "--token")
        self._token = None if given is None else given.strip()  # a file's final newline
        self._key = key
        self._algorithm = algorithm
        self._publish = tuple(publish)
        self._subscribe = tuple(subscribe)
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
        return mint(
            self._key, self._algorithm, self._publish, self._subscribe, self.TTL, now=self._minted
        )

    def headers(self) -> dict[str, str]:
        if self._key is not None and self._clock() - self._minted > self.TTL / 2:
            self._token = self._mint()
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}
