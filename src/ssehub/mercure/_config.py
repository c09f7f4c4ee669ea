"""The Mercure settings, shared by both front ends: frozen, validated on
construction, and loadable from the same `SSEHUB_*` variables as
`ssehub serve`."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._auth import JWTAuth
from ._authorize import AuthorizeConfig
from ._dialect import DIALECTS
from ._issuers import IssuerKey, issuer_keys

__all__ = ("MercureConfig",)

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


@dataclass(frozen=True, slots=True)
class MercureConfig:
    """How a hub speaks Mercure, whichever server carries it.

    - `auth`: JWT keys. With a publisher key, publishing needs a token whose
      `mercure.publish` claim covers every topic; with a subscriber key,
      subscribing needs a token unless `anonymous`, and its
      `mercure.subscribe` claim selects the private updates it receives.
    - `anonymous`: subscribers without a token (only matters with a
      subscriber key; without one every subscriber is anonymous and sees no
      private update).
    - `anonymous_publish`: accept publishes from anyone who can reach the hub
      when no publisher key is set (local use, benchmarks). Off by default.
    - `cors_origins`: origins whose pages may subscribe and publish. Listed
      origins get credentials (the auth cookie); `"*"` lets any page read
      public updates, without credentials; `null` only when listed.
    - `publish_origins`: origins allowed to publish with the
      `mercureAuthorization` cookie (a token in the header needs none).
    - `subscriptions`: subscription events and the subscriptions API.
    - `max_topics`: topic selectors in one subscription, and `topic` fields
      in one publish (400 beyond).
    - `max_stream_seconds`: end every stream after this long (None: never;
      the client reconnects and resumes). Streams opened with a token end
      when it expires in any case.
    - `dialects`: the Mercure spoken: `"both"` (each request is answered in
      the dialect its shape shows: `match` / `last_event_id` for 1.0,
      `topic` / `lastEventID` for 0.x), `"1.0"` or `"0.x"` only.
    - `issuers`: the trusted issuers of Mercure 1.0 access tokens (their
      `iss`, exactly) that share `auth`'s keys and algorithm.
    - `issuer_keys`: issuers with keys of their own (`IssuerKey`: issuer,
      key, algorithms): their tokens are verified with those keys only,
      never with `auth`'s or another issuer's (also when the issuer is in
      `issuers`). With neither, no 1.0 token is accepted.
    - `resource`: the hub's resource identifier (the `aud` 1.0 tokens need) (its public URL, e.g.
      `https://example.com/.well-known/mercure`), also the base of relative
      URL patterns; None: this endpoint on the request's `Host`.
    - `authorize`: ask the app's endpoint before each subscription and
      publish (`AuthorizeConfig`); beside JWTs, both must allow. None: no
      callback.
    """

    auth: JWTAuth = field(default_factory=JWTAuth)
    anonymous: bool = False
    anonymous_publish: bool = False
    cors_origins: tuple[str, ...] = ()
    publish_origins: tuple[str, ...] = ()
    subscriptions: bool = False
    max_topics: int = 64
    max_stream_seconds: float | None = None
    dialects: str = "both"
    issuers: tuple[str, ...] = ()
    resource: str | None = None
    issuer_keys: tuple[IssuerKey, ...] = ()
    authorize: AuthorizeConfig | None = None

    def __post_init__(self) -> None:
        if self.dialects not in DIALECTS:
            raise ValueError(
                f"MercureConfig.dialects must be one of {', '.join(DIALECTS)}, "
                f"not {self.dialects!r}"
            )
        if self.resource is not None and (
            not isinstance(self.resource, str) or "://" not in self.resource
        ):
            raise ValueError(
                f"MercureConfig.resource must be an absolute URL, not {self.resource!r}"
            )
        if not isinstance(self.issuers, tuple) or not all(
            isinstance(i, str) and i for i in self.issuers
        ):
            raise ValueError(
                f"MercureConfig.issuers must be a tuple of issuer identifiers, not {self.issuers!r}"
            )
        if not isinstance(self.issuer_keys, tuple) or not all(
            isinstance(k, IssuerKey) for k in self.issuer_keys
        ):
            raise ValueError(
                f"MercureConfig.issuer_keys must be a tuple of IssuerKey, not {self.issuer_keys!r}"
            )
        for name in ("cors_origins", "publish_origins"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or not all(isinstance(o, str) for o in value):
                raise ValueError(f"MercureConfig.{name} must be a tuple of origins, not {value!r}")
        if type(self.max_topics) is not int or self.max_topics < 1:
            raise ValueError(
                f"MercureConfig.max_topics must be an int >= 1, not {self.max_topics!r}"
            )
        if self.authorize is not None and not isinstance(self.authorize, AuthorizeConfig):
            raise ValueError(
                "MercureConfig.authorize must be an AuthorizeConfig or None, "
                f"not {self.authorize!r}"
            )
        seconds = self.max_stream_seconds
        if seconds is not None and not (
            isinstance(seconds, int | float) and 0 < seconds < math.inf
        ):
            raise ValueError(
                f"MercureConfig.max_stream_seconds must be > 0 or None, not {seconds!r}"
            )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> MercureConfig:
        """The settings from `SSEHUB_*` variables, with the names and meanings
        of `ssehub serve`'s options: `SSEHUB_JWT_KEY` (`@FILE` reads it from a
        file), `SSEHUB_PUBLISHER_JWT_KEY`, `SSEHUB_SUBSCRIBER_JWT_KEY`,
        `SSEHUB_JWT_ALGORITHM`, `SSEHUB_JWT_LEEWAY`, `SSEHUB_ANONYMOUS`,
        `SSEHUB_ANONYMOUS_PUBLISH`, `SSEHUB_CORS_ORIGIN=a,b`,
        `SSEHUB_PUBLISH_ORIGIN=a,b`, `SSEHUB_SUBSCRIPTIONS`,
        `SSEHUB_MAX_TOPICS`, `SSEHUB_MAX_STREAM_SECONDS`,
        `SSEHUB_MERCURE_DIALECT` (`both`, `1.0`, `0.x`), `SSEHUB_JWT_ISSUER=a,b`,
        `SSEHUB_JWT_ISSUER_KEY=ISSUER=KEY,...` (KEY may be `@FILE`),
        `SSEHUB_JWT_ISSUER_ALGORITHM=ISSUER=ALG,...`, `SSEHUB_RESOURCE`,
        `SSEHUB_AUTHORIZE_URL`, `SSEHUB_AUTHORIZE_FORWARD=a,b`, `SSEHUB_AUTHORIZE_TIMEOUT`,
        `SSEHUB_AUTHORIZE_CACHE_SECONDS`. A bad value raises
        `ValueError` naming the variable."""
        env = os.environ if environ is None else environ
        read = _Reader(env)
        jwt_key = read.key("SSEHUB_JWT_KEY")
        algorithm = env.get("SSEHUB_JWT_ALGORITHM", "HS256").strip() or "HS256"
        auth = JWTAuth(
            publisher_key=read.key("SSEHUB_PUBLISHER_JWT_KEY") or jwt_key,
            subscriber_key=read.key("SSEHUB_SUBSCRIBER_JWT_KEY") or jwt_key,
            algorithm=algorithm,
            leeway=read.number("SSEHUB_JWT_LEEWAY", 1.0),
        )
        own = issuer_keys(
            read.origins("SSEHUB_JWT_ISSUER_KEY"),
            read.origins("SSEHUB_JWT_ISSUER_ALGORITHM"),
            algorithm,
            read=lambda raw: read.key("SSEHUB_JWT_ISSUER_KEY", raw) or raw,
            names=("SSEHUB_JWT_ISSUER_KEY", "SSEHUB_JWT_ISSUER_ALGORITHM"),
        )
        stream_seconds = read.number("SSEHUB_MAX_STREAM_SECONDS", 0.0)
        authorize = None
        url = env.get("SSEHUB_AUTHORIZE_URL", "").strip()
        if url:
            try:
                authorize = AuthorizeConfig(
                    url,
                    forward=read.origins("SSEHUB_AUTHORIZE_FORWARD"),
                    timeout=read.number("SSEHUB_AUTHORIZE_TIMEOUT", 2.0),
                    cache_seconds=read.number("SSEHUB_AUTHORIZE_CACHE_SECONDS", 5.0),
                )
            except ValueError as error:
                raise ValueError(f"SSEHUB_AUTHORIZE_*: {error}") from None
        return cls(
            auth=auth,
            anonymous=read.flag("SSEHUB_ANONYMOUS"),
            anonymous_publish=read.flag("SSEHUB_ANONYMOUS_PUBLISH"),
            cors_origins=read.origins("SSEHUB_CORS_ORIGIN"),
            publish_origins=read.origins("SSEHUB_PUBLISH_ORIGIN"),
            subscriptions=read.flag("SSEHUB_SUBSCRIPTIONS"),
            max_topics=int(read.number("SSEHUB_MAX_TOPICS", 64, whole=True)),
            max_stream_seconds=stream_seconds or None,
            dialects=read.choice("SSEHUB_MERCURE_DIALECT", DIALECTS),
            issuers=read.origins("SSEHUB_JWT_ISSUER"),
            resource=env.get("SSEHUB_RESOURCE", "").strip() or None,
            issuer_keys=own,
            authorize=authorize,
        )


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def flag(self, name: str) -> bool:
        raw = self.env.get(name, "")
        text = raw.strip().lower()
        if text not in _TRUE and text not in _FALSE:
            raise ValueError(f"{name}: expected true or false, not {raw!r}")
        return text in _TRUE

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        raw = self.env.get(name, "").strip()
        if not raw:
            return choices[0]
        if raw not in choices:
            raise ValueError(f"{name}: expected one of {', '.join(choices)}, not {raw!r}")
        return raw

    def origins(self, name: str) -> tuple[str, ...]:
        return tuple(s.strip() for s in self.env.get(name, "").split(",") if s.strip())

    def number(self, name: str, default: float, *, whole: bool = False) -> float:
        # the messages are `ssehub serve`'s for the same variables
        raw = self.env.get(name)
        if raw is None or not raw.strip():
            return default
        try:
            return int(raw) if whole else float(raw)
        except ValueError:
            kind = "an integer" if whole else "a number"
            raise ValueError(f"{name}: expected {kind}, not {raw!r}") from None

    def key(self, name: str, value: str | None = None) -> str | None:
        raw = self.env.get(name) if value is None else value
        if not raw:
            return None
        if not raw.startswith("@"):
            return raw
        try:
            return Path(raw[1:]).read_text()
        except OSError as error:
            raise ValueError(f"{name}: cannot read {raw[1:]}: {error.strerror}") from None
