"""ssehub: Server-Sent Events done right.

The names here are the ones the README uses; everything else lives in its
layer: `ssehub.protocol`, `ssehub.backends`, `ssehub.hub`, `ssehub.server`.

They are loaded on first use, so `import ssehub.protocol` (or the client)
does not pull in the hub, the server, httptools or sqlite3.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backends import HistoryLimits, MemoryBackend
    from .hub import Hub, HubConfig
    from .protocol import Event, EventStreamParser, encode_event
    from .server import BackgroundHub

__all__ = (
    "BackgroundHub",
    "Event",
    "EventStreamParser",
    "HistoryLimits",
    "Hub",
    "HubConfig",
    "MemoryBackend",
    "encode_event",
)

__version__ = "0.1.0"

_LAZY = {
    "BackgroundHub": "ssehub.server",
    "Event": "ssehub.protocol",
    "EventStreamParser": "ssehub.protocol",
    "HistoryLimits": "ssehub.backends",
    "Hub": "ssehub.hub",
    "HubConfig": "ssehub.hub",
    "MemoryBackend": "ssehub.backends",
    "encode_event": "ssehub.protocol",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ssehub' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # loaded once; later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
