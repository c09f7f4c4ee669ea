"""ASGI integration, importing no framework: `EventSourceResponse` for any
async iterator, `Streams` to end them on demand, and `HubApp` to serve a
`Hub` from FastAPI or Starlette."""

from ._app import HubApp
from ._response import EventLike, EventSourceResponse, Streams, encode_item

__all__ = ("EventLike", "EventSourceResponse", "HubApp", "Streams", "encode_item")
