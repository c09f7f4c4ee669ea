"""Serving the hub over HTTP: `HubServer` (asyncio) and `BackgroundHub`
(a thread of its own, for synchronous programs). The Mercure protocol itself
is `ssehub.mercure` (`JWTAuth`, `MercureConfig`, `discovery_link` are
re-exported here)."""

from ssehub.mercure import MERCURE_PATH, JWTAuth, MercureConfig, discovery_link

from ._background import BUILTIN_PAGE, BackgroundHub
from ._config import ServerConfig
from ._files import ASSETS
from ._http import HubServer
from ._threaded import ThreadSubscription

__all__ = (
    "ASSETS",
    "BUILTIN_PAGE",
    "MERCURE_PATH",
    "BackgroundHub",
    "HubServer",
    "JWTAuth",
    "MercureConfig",
    "ServerConfig",
    "ThreadSubscription",
    "discovery_link",
)
