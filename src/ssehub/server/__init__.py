"""Serving the hub over HTTP: `HubServer` (asyncio) and `BackgroundHub`
(a thread of its own, for synchronous programs)."""

from ._auth import JWTAuth
from ._background import BUILTIN_PAGE, BackgroundHub
from ._config import ServerConfig
from ._http import ASSETS, MERCURE_PATH, HubServer, discovery_link

__all__ = (
    "ASSETS",
    "BUILTIN_PAGE",
    "MERCURE_PATH",
    "BackgroundHub",
    "HubServer",
    "JWTAuth",
    "ServerConfig",
    "discovery_link",
)
