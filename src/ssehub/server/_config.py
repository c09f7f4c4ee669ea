"""Server settings: frozen and validated on construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ._auth import JWTAuth

__all__ = ("ServerConfig",)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How the hub is served over HTTP/1.1.

    - `host`, `port`: where to listen (`port=0` picks a free port).
    - `static_dir`: a folder served at `/` (`index.html` for `/`), or None.
    - `anonymous_publish`: accept `POST /.well-known/mercure` from anyone who
      can reach the hub, when no publisher key is set. Off by default; for
      local use and benchmarks.
    - `anonymous`: subscribers without a token (only when a subscriber key is
      set; without one every subscriber is anonymous and sees no private
      update).
    - `cors_origins`: origins allowed to subscribe and publish from pages of
      another origin (`"*"`: any); credentials (the auth cookie) allowed.
    - `auth`: JWT keys (Mercure). With a publisher key, publishing needs a
      token whose `mercure.publish` claim covers every topic; with a
      subscriber key, subscribing needs a token unless `anonymous`, and its
      `mercure.subscribe` claim selects the private updates it receives.
    - `max_head_bytes`, `max_body_bytes`: request size limits (431 / 413).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    static_dir: Path | None = None
    anonymous_publish: bool = False
    cors_origins: tuple[str, ...] = ()
    auth: JWTAuth = field(default_factory=JWTAuth)
    anonymous: bool = False
    max_head_bytes: int = 16 * 1024
    max_body_bytes: int = 1024 * 1024
    backlog: int = 4096

    def __post_init__(self) -> None:
        if type(self.port) is not int or not 0 <= self.port <= 65535:
            raise ValueError(f"ServerConfig.port must be an int in 0..65535, not {self.port!r}")
        if self.static_dir is not None and not Path(self.static_dir).is_dir():
            raise ValueError(f"ServerConfig.static_dir is not a directory: {self.static_dir}")
        for name in ("max_head_bytes", "max_body_bytes", "backlog"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"ServerConfig.{name} must be an int >= 1, not {value!r}")
