"""`Hooks`: what one front end runs of the app's hooks, and its life cycle."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._authorizer import Authorizer
from ._webhooks import WebhookConfig, Webhooks

if TYPE_CHECKING:
    from ssehub.hub import Hub
    from ssehub.mercure import AuthorizeConfig

__all__ = ("Hooks",)


class Hooks:
    """A front end's hooks into the app: the authorization callback
    (`authorizer`) and the webhooks (`webhooks`, told of the hub's watched
    and unwatched topics), each None when not configured. `aclose()` once
    the front end's streams have ended."""

    def __init__(
        self, hub: Hub, authorize: AuthorizeConfig | None, webhooks: WebhookConfig | None
    ) -> None:
        self.authorizer = None if authorize is None else Authorizer(authorize)
        self.webhooks = None if webhooks is None else Webhooks(webhooks)
        self._unwatch = None if self.webhooks is None else hub.on_watch(self.webhooks.watch)

    async def aclose(self) -> None:
        """Stop watching; give the queued notices (the streams just ended)
        the webhooks' timeout to go out, then stop both."""
        unwatch, self._unwatch = self._unwatch, None
        if unwatch is not None:
            unwatch()
        if self.webhooks is not None:
            await self.webhooks.aclose(grace=self.webhooks.config.timeout)
        if self.authorizer is not None:
            await self.authorizer.aclose()
