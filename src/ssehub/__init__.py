"""ssehub: Server-Sent Events done right.

The names here are the ones the README uses; everything else lives in its
layer: `ssehub.protocol`, `ssehub.backends`, `ssehub.hub`, `ssehub.server`.
"""

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
