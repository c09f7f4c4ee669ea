"""Server settings: frozen and validated on construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ssehub.hooks import WebhookConfig
from ssehub.mercure import MercureConfig

__all__ = ("LOOPBACK_HOSTS", "ServerConfig")

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


_TOKEN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How the hub is served over HTTP/1.1 (what Mercure says is in
    `mercure`, a `MercureConfig`: JWT keys, anonymous access, CORS, publish
    origins, subscriptions, topic limit).

    - `host`, `port`: where to listen (`port=0` picks a free port).
    - `static_dir`: a folder served at `/` (`index.html` for `/`), or None.
    - `dashboard`: serve the live dashboard at `/_ssehub/` (None: only when
      listening on a loopback address, and then only to requests whose Host
      is a loopback name, so no other site can reach it by DNS rebinding);
      `dashboard_token`: then require it (`?token=`, or the `ssehubDashboard`
      cookie), whatever the Host.
    - `page_token`: a publisher JWT handed to the pages it serves (the static
      folder and `/_ssehub/`) as the `mercureAuthorization` cookie
      (`HttpOnly; SameSite=Strict`), so they can publish what it allows;
      pair it with `"self"` in `mercure.publish_origins`. Anyone who can load
      a page can then publish so. None: no cookie.
    - `max_head_bytes`, `max_body_bytes`: request size limits (431 / 413).
    - `max_connections`: open connections at most (beyond: 503); None: the
      process's open-files limit less a margin, so the hub answers instead
      of failing to accept.
    - `idle_timeout`: seconds a connection that is not a stream may stay
      idle between requests (a keep-alive publisher); closed without a word.
    - `head_timeout`: seconds a request head may take, from its first byte
      (the first request's: from the connection's opening, or `idle_timeout`
      if shorter) to its end, however slowly it trickles (beyond: 408).
    - `body_timeout`: seconds a request body may take after its head (408).
    - `max_header_fields`: header fields in one request head (431 beyond).
    - `certfile`, `keyfile`: serve HTTPS with this certificate chain and key.
    - `webhooks`: post subscription and watch notices to the app's URLs
      (`ssehub.hooks.WebhookConfig`); None: no webhooks.
    - `reuse_port`: bind with SO_REUSEPORT, so several processes share the
      port (what `ssehub serve --workers N` does).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    static_dir: Path | None = None
    mercure: MercureConfig = field(default_factory=MercureConfig)
    reuse_port: bool = False
    dashboard: bool | None = None
    dashboard_token: str | None = None
    page_token: str | None = None
    max_head_bytes: int = 16 * 1024
    max_body_bytes: int = 1024 * 1024
    backlog: int = 4096
    max_connections: int | None = None
    idle_timeout: float = 60.0
    head_timeout: float = 10.0
    body_timeout: float = 30.0
    max_header_fields: int = 100
    certfile: Path | None = None
    keyfile: Path | None = None
    webhooks: WebhookConfig | None = None

    @property
    def dashboard_enabled(self) -> bool:
        """`dashboard`, or when None: whether the hub listens on loopback only."""
        if self.dashboard is not None:
            return self.dashboard
        return self.host in LOOPBACK_HOSTS

    def __post_init__(self) -> None:
        if type(self.port) is not int or not 0 <= self.port <= 65535:
            raise ValueError(f"ServerConfig.port must be an int in 0..65535, not {self.port!r}")
        if not isinstance(self.mercure, MercureConfig):
            raise ValueError(f"ServerConfig.mercure must be a MercureConfig, not {self.mercure!r}")
        if self.static_dir is not None and not Path(self.static_dir).is_dir():
            raise ValueError(f"ServerConfig.static_dir is not a directory: {self.static_dir}")
        token = self.page_token
        if token is not None and (
            not isinstance(token, str) or not token or not all(c in _TOKEN for c in token)
        ):
            raise ValueError("ServerConfig.page_token must be a JWT (base64url and dots)")
        if self.webhooks is not None and not isinstance(self.webhooks, WebhookConfig):
            raise ValueError(
                f"ServerConfig.webhooks must be a WebhookConfig or None, not {self.webhooks!r}"
            )
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("ServerConfig needs both certfile and keyfile for HTTPS, or neither")
        for path in (self.certfile, self.keyfile):
            if path is not None and not Path(path).is_file():
                raise ValueError(f"ServerConfig: no such file: {path}")
        for name in ("idle_timeout", "head_timeout", "body_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"ServerConfig.{name} must be > 0, not {value!r}")
            if value == float("inf"):  # the loop's timers cannot hold it
                raise ValueError(f"ServerConfig.{name} must be finite, not {value!r}")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError(
                f"ServerConfig.max_connections must be >= 1, not {self.max_connections}"
            )
        for name in ("max_head_bytes", "max_body_bytes", "max_header_fields", "backlog"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"ServerConfig.{name} must be an int >= 1, not {value!r}")
