"""The operator's routes: `/healthz` (alive), `/readyz` (running, and the
store answers), `/metrics` (Prometheus)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

from ssehub.backends import StoreRefusedError
from ssehub.hooks import Authorizer, Webhooks
from ssehub.hub import Hub
from ssehub.mercure import Response
from ssehub.mercure._subscriptions import Registry

from ._dashboard import Feeds
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
        if self.hub.state != "running":
            return Response.text(503, f"not ready: {self.hub.state}")
        problem = await self._store_problem()
        if problem is not None:
            return Response.text(503, f"not ready: {problem}")
        return Response.text(200, "ready")

    async def _store_problem(self) -> str | None:
        """Why the store cannot take events now, or None: it must answer a
        read, and take writes (when it has a cheap probe for that)."""
        backend = self.hub.backend
        try:
            await asyncio.wait_for(backend.last_id(), 2.0)
            check = getattr(backend, "check_writable", None)
            if check is not None:
                await asyncio.wait_for(check(), 2.0)
        except StoreRefusedError as error:
            return str(error)
        except Exception as error:
            return f"the store does not answer ({type(error).__name__})"
        return None


class Metrics:
    def __init__(
        self,
        hub: Hub,
        connections: Callable[[], int],
        publish: Histogram,
        feeds: Feeds | None = None,
        registry: Registry | None = None,
        authorizer: Authorizer | None = None,
        webhooks: Webhooks | None = None,
    ) -> None:
        self.hub = hub
        self.connections = connections
        self.publish = publish
        self.feeds = feeds
        self.registry = registry
        self.authorizer = authorizer
        self.webhooks = webhooks

    async def __call__(self, request: Request) -> Response:
        redis = None
        backend_statistics = getattr(self.hub.backend, "statistics", None)
        if backend_statistics is not None and "ssehub.backends.redis" in sys.modules:
            from ssehub.backends.redis import RedisStatistics

            found = backend_statistics()
            redis = found if isinstance(found, RedisStatistics) else None
        body = render(
            self.hub.statistics(),
            self.connections(),
            self.publish,
            dashboard=None if self.feeds is None else self.feeds.statistics(),
            redis=redis,
            subscriptions=None if self.registry is None else self.registry.statistics(),
            authorize=None if self.authorizer is None else self.authorizer.statistics(),
            webhooks=None if self.webhooks is None else self.webhooks.statistics(),
        )
        return Response(200, body.encode(), CONTENT_TYPE)
