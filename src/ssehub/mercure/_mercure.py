"""`Mercure`: a request in, a decision out; publishing and listing for the
decisions that need the hub. No sockets, no framework: both front ends (the
standalone server and the ASGI app) call it."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any
from urllib.parse import unquote

from ssehub.backends import DuplicateEventIdError, StoreRefusedError
from ssehub.hub import Hub, HubClosedError, selectors_match, validate_selector
from ssehub.protocol import LocalProtocolError

from ._auth import find_token
from ._config import MercureConfig
from ._cors import cors_headers, origin_allowed, preflight_headers
from ._decisions import Listing, Publish, Subscribe
from ._request import Request, parse_fields
from ._response import HTTPError, Response
from ._subscriptions import SUBSCRIPTIONS_PATH, Active, Registry

__all__ = ("MERCURE_PATH", "Decision", "Mercure", "discovery_link")

MERCURE_PATH = "/.well-known/mercure"
FORM = "application/x-www-form-urlencoded"
_MAX_RETRY_DIGITS = 10  # ~115 days in milliseconds: anything longer is a mistake
log = logging.getLogger("ssehub.mercure")

Decision = Subscribe | Publish | Listing | Response


class Mercure:
    """The Mercure protocol over one `Hub`, for any front end::

        mercure = Mercure(config, hub)
        decision = mercure.decide(request)
        # Response: send it; Subscribe: open hub.subscribe[_stream](...) and
        # send decision.headers(resume); Publish: await mercure.publish(d);
        # Listing: await mercure.listing(d)

    `decide` never raises for a bad request: refusals are a `Response`
    (status, one-line reason, CORS headers).
    """

    def __init__(self, config: MercureConfig, hub: Hub) -> None:
        self.config = config
        self.hub = hub
        self.registry = Registry(hub) if config.subscriptions else None

    def decide(self, request: Request) -> Decision:
        cors = cors_headers(self.config.cors_origins, request.header(b"origin"))
        try:
            return self._decide(request, cors)
        except HTTPError as error:
            return Response.text(error.status, error.reason, (*error.headers, *cors))

    def _decide(self, request: Request, cors: tuple[tuple[str, str], ...]) -> Decision:
        path = request.path
        if self.registry is not None and path.startswith(SUBSCRIPTIONS_PATH):
            rest = path[len(SUBSCRIPTIONS_PATH) :]
            if not rest or rest.startswith("/"):
                return self._listing(request, rest, cors)
        if unquote(path) != MERCURE_PATH:
            raise HTTPError(404, f"not found: {unquote(path)}")
        if request.method == "GET":
            return self._subscribe(request, cors)
        if request.method == "POST":
            return self._publish(request, cors)
        if request.method == "OPTIONS":
            if not cors:
                raise HTTPError(403, "origin not allowed (see cors_origins)")
            return Response(204, b"", headers=preflight_headers(cors))
        raise HTTPError(405, f"method {request.method} not allowed on {MERCURE_PATH}")

    # -- subscribing -------------------------------------------------------------

    def _subscribe(self, request: Request, cors: tuple[tuple[str, str], ...]) -> Subscribe:
        query = request.params()
        topics = query.get("topic")
        if not topics:
            raise HTTPError(400, "missing 'topic' query parameter")
        if "" in topics:
            raise HTTPError(400, "empty 'topic' query parameter")
        limit = self.config.max_topics
        if len(topics) > limit:
            raise HTTPError(400, f"more than {limit} topics in one subscription")
        for topic in topics:
            try:
                validate_selector(topic)
            except ValueError as error:
                raise HTTPError(400, str(error)) from None
        last_event_id = request.header(b"last-event-id")
        if not last_event_id:
            last_event_id = query.get("lastEventID", [""])[0] or None
        if last_event_id is not None:
            longest = self.hub.config.max_last_event_id
            if len(last_event_id) > longest:
                raise HTTPError(400, f"Last-Event-ID is longer than {longest} characters")
        private: frozenset[str] = frozenset()
        payload: Any = None
        expires: float | None = None
        auth = self.config.auth
        if auth.subscriber_key is not None:
            found = find_token(request, query)
            if found is not None:
                grant = auth.subscriber(found[0])
                private, payload, expires = grant.selectors, grant.payload, grant.expires
            elif not self.config.anonymous:
                raise HTTPError(
                    401, "subscribing requires a JWT (this hub has no anonymous access)"
                )
        return Subscribe(
            tuple(topics),
            last_event_id,
            private,
            payload,
            cors,
            expires,
            self.config.max_stream_seconds,
        )

    async def opened(self, decision: Subscribe, topics: tuple[str, ...]) -> str | None:
        """A stream is open: with subscription events on, announce it and
        return its subscriber id (hand it to `closed` at the end)."""
        if self.registry is None:
            return None
        subscriber = self.registry.new_id()
        await self.registry.opened(Active(subscriber, topics, decision.payload))
        return subscriber

    def closed(self, subscriber: str | None) -> None:
        """A stream opened with `opened` ended (safe from `connection_lost`)."""
        if self.registry is not None and subscriber is not None:
            self.registry.closed(subscriber)

    # -- publishing ----------------------------------------------------------------

    def _publish(self, request: Request, cors: tuple[tuple[str, str], ...]) -> Publish:
        config = self.config
        if config.auth.publisher_key is None and not config.anonymous_publish:
            raise HTTPError(
                403,
                "publishing over HTTP is disabled: give the hub a publisher JWT key "
                "(--jwt-key, SSEHUB_JWT_KEY) or allow --anonymous-publish "
                "(SSEHUB_ANONYMOUS_PUBLISH=1)",
            )
        ctype = (request.header(b"content-type") or "").split(";")[0].strip().lower()
        if ctype != FORM:
            raise HTTPError(415, f"publish with Content-Type: {FORM}")
        form = parse_fields(request.body, "form field")
        topics = form.get("topic")
        if not topics:
            raise HTTPError(400, "missing 'topic' field")
        if "" in topics:
            raise HTTPError(400, "empty 'topic' field")
        self._check_publisher(request, topics)
        retry: int | None = None
        if "retry" in form:
            raw = form["retry"][0]
            if not raw.isascii() or not raw.isdigit():
                raise HTTPError(400, f"'retry' must be a non-negative integer, not {raw[:40]!r}")
            if len(raw) > _MAX_RETRY_DIGITS:
                raise HTTPError(400, f"'retry' has more than {_MAX_RETRY_DIGITS} digits")
            retry = int(raw)
        return Publish(
            tuple(topics),
            form.get("data", [""])[0],
            form.get("type", [""])[0] or "message",
            form.get("id", [""])[0] or None,  # an empty id is no id: the hub assigns one
            retry,
            "private" in form,
            cors,
        )

    def _check_publisher(self, request: Request, topics: list[str]) -> None:
        auth = self.config.auth
        if auth.publisher_key is None:
            return  # anonymous publishing (allowed, or `_publish` refused it)
        found = find_token(request, {})
        if found is None:
            raise HTTPError(401, "publishing requires a JWT with a mercure.publish claim")
        allowed = auth.publisher(found[0]).selectors
        if found[1] == "cookie" and not origin_allowed(
            self.config.publish_origins, request.header(b"origin"), request.header(b"referer")
        ):
            # a cookie rides along with any page's request: only allowed
            # origins may publish with it (no cross-site request forgery)
            raise HTTPError(
                403, "publishing with the cookie needs an allowed Origin (publish_origins)"
            )
        for topic in topics:
            if not selectors_match(allowed, (topic,)):
                raise HTTPError(403, f"the JWT does not allow publishing to {topic!r}")

    async def publish(self, decision: Publish) -> Response:
        """Store the event; 200 with its id, or the refusal."""
        try:
            event_id = await self.hub.publish(
                decision.topics,
                decision.data,
                event=decision.event,
                id=decision.id,
                retry=decision.retry,
                private=decision.private,
            )
        except DuplicateEventIdError as error:
            return Response.text(409, str(error), decision.cors)
        except (LocalProtocolError, ValueError) as error:
            return Response.text(400, str(error), decision.cors)
        except HubClosedError:
            return Response.text(503, "the hub is shutting down", decision.cors)
        except Exception as error:  # the store failed: nothing was acknowledged
            reason = _store_failure(error)
            log.warning("publish failed: %s", reason)
            return Response.text(503, reason, decision.cors)
        return Response(200, event_id.encode(), headers=decision.cors)

    # -- the subscriptions API -----------------------------------------------------------

    def _listing(self, request: Request, rest: str, cors: tuple[tuple[str, str], ...]) -> Listing:
        if request.method != "GET":
            raise HTTPError(405, f"method {request.method} not allowed on {SUBSCRIPTIONS_PATH}")
        auth = self.config.auth
        if auth.subscriber_key is None:
            raise HTTPError(403, "the subscriptions API needs a subscriber JWT key")
        found = find_token(request, request.params())
        if found is None:
            raise HTTPError(401, "the subscriptions API requires a JWT")
        allowed = auth.subscriber(found[0]).selectors
        if not selectors_match(allowed, (request.path,)):
            raise HTTPError(403, f"the JWT does not allow reading {request.path}")
        return Listing(rest, cors)

    async def listing(self, decision: Listing) -> Response:
        assert self.registry is not None
        status, answer = await self.registry.listing(decision.rest)
        if isinstance(answer, str):
            return Response.text(status, answer, decision.cors)
        body = json.dumps(answer).encode()
        return Response(status, body, "application/ld+json", decision.cors)

    async def aclose(self) -> None:
        """Wait for the subscription events still being published."""
        if self.registry is not None:
            await self.registry.aclose()


def _store_failure(error: Exception) -> str:
    """The 503's reason when the store did not take a publish: the store's
    own words where they help the operator (full, read-only, replicas)."""
    if isinstance(error, StoreRefusedError):
        return str(error)
    redis = sys.modules.get("ssehub.backends.redis")  # loaded if the store is Redis
    if redis is not None and isinstance(error, redis.ReplicaWaitError):
        return f"the store did not confirm it (ReplicaWaitError: {error})"
    return f"the store is unavailable ({type(error).__name__})"


def discovery_link(hub_url: str, *, self_url: str | None = None) -> str:
    """The value of a `Link` header that lets Mercure clients discover the
    hub from any of your app's responses::

        response.headers["Link"] = discovery_link("https://hub.example/.well-known/mercure",
                                                  self_url="https://app.example/books/1")

    gives `<https://hub.example/.well-known/mercure>; rel="mercure",
    <https://app.example/books/1>; rel="self"`.
    """
    links = [(hub_url, "mercure")] + ([(self_url, "self")] if self_url else [])
    for url, _ in links:
        if any(c in url for c in '<>"\r\n ') or not url:
            raise ValueError(f"not a URL for a Link header: {url!r}")
    return ", ".join(f'<{url}>; rel="{rel}"' for url, rel in links)
