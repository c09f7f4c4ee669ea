"""The event stream format, sans-IO: `Event`, its encoder and an incremental
parser, exactly as WHATWG HTML "Server-sent events" specifies.

Standard library only; no asyncio, threads or clocks.
"""

from ._errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from ._event import Event, encode_comment, encode_event
from ._parser import EventStreamParser

__all__ = (
    "Event",
    "EventStreamParser",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "encode_comment",
    "encode_event",
)
