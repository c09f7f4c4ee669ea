"""ssehub's ASGI path under uvicorn: `HubApp` serving a `Hub`, publishing
open (as `ssehub serve --anonymous-publish` is in the native rows).
Measured beside the standalone server (decision 0001) and beside
sse-starlette and FastAPI's built-in SSE (docs/benchmarks.md).

Run: uvicorn benchmarks.peers.ssehub_asgi:app --loop uvloop --http httptools
Subscribe GET /.well-known/mercure?topic=T; publish POST form topic=T&data=D.

`HubApp` is the ASGI app itself, with no wrapper of ours around it: an
idle stream keeps HubApp's coroutine frame where the floor
(`asgi_floor.py`) keeps its app's.
"""

from __future__ import annotations

from ssehub import Hub
from ssehub.asgi import HubApp
from ssehub.mercure import MercureConfig

hub = Hub()
app = HubApp(hub, config=MercureConfig(anonymous_publish=True))
