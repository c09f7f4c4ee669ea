"""The operator's routes: `/healthz` (alive), `/readyz` (running, and the
store answers), `/metrics` (Prometheus)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ssehub.hub import Hub
from ssehub.mercure import Response

from ._handler import Request
from ._metrics import CONTENT_TYPE, Histogram, render

__all__ = ("Health", "Metrics", "Readiness")


class Health:
    async def __call__(self, request: Request) -> Response:
        return Response.text(200, "ok")


class Readiness:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def __call__(self, request: Request) -> Response:
        if self.hub.state == "running" and await self._store_answers():
            return Response.text(200, "ready")
        return Response.text(503, f"not ready: {self.hub.state}")

    async def _store_answers(self) -> bool:
        try:
            await asyncio.wait_for(self.hub.backend.last_id(), 2.0)
        except Exception:
            return False
        return True


class Metrics:
    def __init__(self, hub: Hub, connections: Callable[[], int], publish: Histogram) -> None:
        self.hub = hub
        self.connections = connections
        self.publish = publish

    async def __call__(self, request: Request) -> Response:
        body = render(self.hub.statistics(), self.connections(), self.publish)
        return Response(200, body.encode(), CONTENT_TYPE)
