"""The Mercure endpoint on this server: a thin adapter that hands each
request to `ssehub.mercure.Mercure` and carries out its decision."""

from __future__ import annotations

import asyncio
import logging
import time
from time import perf_counter

from ssehub.hooks import Authorizer, Webhooks, settle
from ssehub.hub import StreamSubscription
from ssehub.mercure import (
    Authorize,
    HTTPError,
    Listing,
    Mercure,
    Publish,
    Response,
    Subscribe,
)
from ssehub.mercure import Request as MercureRequest

from ._handler import Request, Streaming, StreamTarget
from ._log import log, loggable
from ._metrics import Histogram

__all__ = ("MercureRoute",)

# what a stream whose token expired ends with: come back soon, with a fresh token
_COME_BACK = b"retry: 1000\n\n"


class MercureRoute:
    """`/.well-known/mercure` and below: subscribe, publish, preflight, the
    subscriptions API."""

    def __init__(
        self,
        mercure: Mercure,
        publish_seconds: Histogram,
        authorizer: Authorizer | None = None,
        webhooks: Webhooks | None = None,
    ) -> None:
        self.mercure = mercure
        self.publish_seconds = publish_seconds
        self.authorizer = authorizer
        self.webhooks = webhooks

    async def __call__(self, request: Request) -> Response | Streaming:
        mercure = self.mercure
        mercure_request = MercureRequest(
            request.method, request.raw_path, request.query, request.headers, request.body
        )
        # decided at once (no coroutine); the app is asked only when the hub must
        decision = mercure.decide(mercure_request)
        if type(decision) is Authorize:
            decision = await settle(mercure, decision, self.authorizer)
        if type(decision) is Publish:
            started = perf_counter()
            response = await mercure.publish(decision)
            if response.status == 200:
                self.publish_seconds.observe(perf_counter() - started)
            return response
        if isinstance(decision, Subscribe):
            return _Subscribing(mercure, decision, self.webhooks)
        if isinstance(decision, Listing):
            return await mercure.listing(decision)
        assert isinstance(decision, Response)  # only a POST publishes
        return decision


class _Subscribing:
    """Opens the hub stream on the connection's transport: from then on the
    hub writes to it and the connection is a bare transport."""

    __slots__ = ("decision", "mercure", "webhooks")

    def __init__(self, mercure: Mercure, decision: Subscribe, webhooks: Webhooks | None) -> None:
        self.mercure = mercure
        self.decision = decision
        self.webhooks = webhooks

    async def run(self, conn: StreamTarget) -> None:
        transport = conn.transport
        assert transport is not None
        decision = self.decision
        mercure = self.mercure
        sub = conn.stream = mercure.stream(decision, transport)
        # from now on its closing is logged: also while its replay is written
        conn.opened_at = time.monotonic()
        try:
            await mercure.open_stream(sub, decision, decision.head)
        except HTTPError:
            conn.stream = None
            raise
        if sub.reason is not None:
            return  # gone already: connection_lost cleans up
        subscriber = None
        if mercure.registry is not None:  # subscription events are on
            subscriber = await mercure.opened(decision, sub.topics)
        webhooks = self.webhooks
        hooked = None
        if webhooks is not None:
            hooked = webhooks.opened(subscriber, sub.topics, decision.payload)
        timer = None
        if decision.expires is not None or decision.max_seconds is not None:
            seconds = decision.seconds_left(time.time())
            assert seconds is not None
            timer = asyncio.get_running_loop().call_later(seconds, _expire, sub, transport)
        if subscriber is not None or timer is not None or hooked is not None:
            topics = sub.topics

            def lost() -> None:
                if timer is not None:
                    timer.cancel()
                mercure.closed(subscriber)
                if webhooks is not None and hooked is not None:
                    webhooks.closed(hooked, topics)

            conn.on_lost = lost
        if log.isEnabledFor(logging.INFO):
            resume = sub.resume
            log.info(
                "stream open peer=%s topics=%s last_event_id=%s replayed=%d gap=%s",
                conn.peer(),
                loggable(",".join(sub.topics)),
                loggable(decision.last_event_id),
                resume.replayed if resume else 0,
                bool(resume and resume.gap),
            )


def _expire(sub: StreamSubscription, transport: asyncio.WriteTransport) -> None:
    """The token expired (or the stream lived its maximum): stop the events
    and end the stream, so the client comes back with a fresh token."""
    sub.close()
    if not transport.is_closing():
        transport.write(_COME_BACK)
        transport.close()
