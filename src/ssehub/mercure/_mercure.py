"""`Mercure`: a request in, a decision out; publishing and listing for the
decisions that need the hub. No sockets, no framework: both front ends (the
standalone server and the ASGI app) call it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote, unquote_to_bytes, urlsplit

from ssehub.backends import DuplicateEventIdError, StoreRefusedError
from ssehub.hub import (
    Hub,
    HubClosedError,
    Matcher,
    Resume,
    SelectorSet,
    StreamSubscription,
    SubscriberLimitError,
    selectors_match,
    validate_selector,
)
from ssehub.protocol import LocalProtocolError

from ._auth import VerifiedTokens, find_token
from ._authorize import Question, Verdict, covered
from ._config import MercureConfig
from ._cors import (
    RefusalLog,
    cors_headers,
    origin_allowed,
    preflight_headers,
    refusal_message,
    same_origin,
)
from ._decisions import CACHE_CONTROL, Authorize, Listing, Publish, Subscribe
from ._dialect import MATCH_TYPES, Dialect, check_field, dialect_of, in_hub_namespace, matchers
from ._discovery import METADATA_PATH, discovery_link, metadata_url, protected_resource_metadata
from ._idempotency import HEADER as IDEMPOTENCY_KEY
from ._idempotency import publish_id
from ._issuers import trust
from ._request import Request, parse_form
from ._response import HTTPError, Response
from ._subscriptions import LISTING_PAGE, SUBSCRIPTIONS_PATH, Active, Entry, Registry, v1_resource
from ._tokens import COOKIE_V1, AccessGrant, bearer_error, is_access_token
from ._tokens import validate as validate_access_token

__all__ = ("MERCURE_PATH", "Decision", "Mercure")

MERCURE_PATH = "/.well-known/mercure"
FORM = "application/x-www-form-urlencoded"
_FORM_BYTES = FORM.encode()
_MAX_RETRY_DIGITS = 10  # ~115 days in milliseconds: anything longer is a mistake
log = logging.getLogger("ssehub.mercure")

Decision = Subscribe | Publish | Listing | Authorize | Response


_NO_TOPICS: frozenset[str | Matcher] = frozenset()  # shared: an empty frozenset costs 216 B each
_QUERIES = 128  # subscribe query strings kept parsed (the oldest goes first)
_QUERY_BYTES = 1024  # a longer query string is parsed every time, never kept
_CORS_SHARED = 16  # CORS variants of a kept query's decision (one per allowed origin)


class _Query:
    """A subscribe request's query string, parsed and checked once, and
    kept for the next requests with the same one (`Mercure._queries`):
    what a request takes from its query alone, never from its headers
    (token, cookie, `Origin`, `Last-Event-ID`), so sharing it shares no
    one's rights. `plain`: the decision for a request that adds nothing
    to its query (no token, no CORS, no `Last-Event-ID` header), shared
    too (it is frozen); `with_cors`: the same with each allowed origin's
    CORS headers (as many as `cors_origins` gives, at most `_CORS_SHARED`),
    their heads made once. `base`: the hub URL its 1.0 matchers were
    resolved against (None: none were)."""

    __slots__ = (
        "base",
        "dialect",
        "fields",
        "last_event_id",
        "matchers",
        "newest",
        "plain",
        "tagged",
        "topics",
        "with_cors",
    )

    def __init__(
        self,
        fields: dict[str, list[str]],
        dialect: Dialect,
        topics: tuple[str, ...],
        matchers: tuple[Matcher, ...],
        base: str | None,
        last_event_id: str | None,
        newest: int,
        tagged: bool,
        plain: Subscribe,
    ) -> None:
        self.fields = fields
        self.dialect = dialect
        self.topics = topics
        self.matchers = matchers
        self.base = base
        self.last_event_id = last_event_id
        self.newest = newest
        self.tagged = tagged
        self.plain = plain
        self.with_cors: dict[tuple[tuple[str, str], ...], Subscribe] = {}


class Mercure:
    """The Mercure protocol over one `Hub`, for any front end::

        mercure = Mercure(config, hub)
        decision = mercure.decide(request)
        # Response: send it; Subscribe: open hub.subscribe[_stream](...) and
        # send decision.headers(resume); Publish: await mercure.publish(d);
        # Listing: await mercure.listing(d)
        # Authorize: ask the app d.question (ssehub.hooks.Authorizer), then
        # decision = mercure.resume(d, verdict) and carry that out

    `decide` never raises for a bad request: refusals are a `Response`
    (status, one-line reason, CORS headers).
    """

    def __init__(self, config: MercureConfig, hub: Hub) -> None:
        self.config = config
        self.hub = hub
        self.registry = Registry(hub) if config.subscriptions else None
        self.refusals = RefusalLog()
        self.tokens = VerifiedTokens()  # 0.x JWTs verified lately (no check per request)
        auth = config.auth
        self._queries: dict[bytes | str, _Query] = {}  # subscribe queries parsed lately
        # no token, cookie or app to ask: a subscriber's rights are none
        self._open = (
            auth.subscriber_key is None and not config.issuer_keys and config.authorize is None
        )
        # whom 1.0 tokens may come from, with which keys, for each action
        self._trust = {
            "publish": trust(
                config.issuers, auth.publisher_key, auth.algorithm, config.issuer_keys
            ),
            "subscribe": trust(
                config.issuers, auth.subscriber_key, auth.algorithm, config.issuer_keys
            ),
        }

    def decide(self, request: Request) -> Decision:
        sent = request.headers
        cors: tuple[tuple[str, str], ...] = ()
        if b"origin" in sent:
            origin = sent[b"origin"].decode("latin-1")
            cors = cors_headers(self.config.cors_origins, origin)
            if (
                not cors
                and not same_origin(origin, request.header(b"host"))
                and self.refusals.due(origin)  # once per origin per minute, not per request
            ):
                log.info("%s", refusal_message(origin))
        try:
            return self._decide(request, cors)
        except HTTPError as error:
            headers = error.headers
            if self.config.dialects != "0.x":
                # RFC 9728: a Bearer challenge points at the metadata
                where = metadata_url(self._hub_url(request))
                headers = tuple(
                    (k, f'{v}{"," if v != "Bearer" else ""} resource_metadata="{where}"')
                    if k == "WWW-Authenticate" and v.startswith("Bearer")
                    else (k, v)
                    for k, v in headers
                )
            return Response.text(error.status, error.reason, (*headers, *cors))

    def _decide(self, request: Request, cors: tuple[tuple[str, str], ...]) -> Decision:
        path = request.path
        if self.registry is not None and path.startswith(SUBSCRIPTIONS_PATH):
            rest = path[len(SUBSCRIPTIONS_PATH) :]
            if not rest or rest.startswith("/"):
                return self._listing(request, rest, cors)
        plain = unquote(path) if "%" in path else path
        if plain == METADATA_PATH and self.config.dialects != "0.x":
            if request.method != "GET":
                raise HTTPError(405, f"method {request.method} not allowed on {METADATA_PATH}")
            config = self.config
            document = protected_resource_metadata(
                config.resource or self._hub_url(request),
                issuers=(*config.issuers, *(k.issuer for k in config.issuer_keys)),
                subscriptions=config.subscriptions,
            )
            body = json.dumps(document).encode()
            return Response(200, body, "application/json", cors)
        if plain != MERCURE_PATH:
            raise HTTPError(404, f"not found: {plain}")
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

    def _subscribe(
        self, request: Request, cors: tuple[tuple[str, str], ...]
    ) -> Subscribe | Authorize:
        raw_id = request.headers.get(b"last-event-id")
        try:
            query = self._queries[request.query]
        except KeyError:
            query = self._parse_query(request, raw_id)
        else:
            if query.base is not None and query.base != self._hub_url(request):
                query = self._parse_query(request, raw_id)  # 1.0 matchers of another host
        if self._open and not raw_id:
            if not cors:
                return query.plain  # most subscribers: one decision for all who ask the same
            shared = query.with_cors.get(cors)
            if shared is None:
                shared = dataclasses.replace(query.plain, cors=cors)
                head = shared.head(Resume("earliest", False, 0))  # (asked none: not read)
                shared = dataclasses.replace(shared, _head=head)
                if len(query.with_cors) < _CORS_SHARED:
                    query.with_cors[cors] = shared
            return shared
        last_event_id = query.last_event_id
        if raw_id:  # the header wins over the query parameter
            last_event_id = raw_id.decode("latin-1")
            longest = self.hub.config.max_last_event_id
            if len(last_event_id) > longest:
                raise HTTPError(400, f"Last-Event-ID is longer than {longest} characters")
        found_matchers = query.matchers
        private: frozenset[str | Matcher] = _NO_TOPICS
        payload: Any = None
        payloads: tuple[Any, ...] = ()
        expires: float | None = None
        auth = self.config.auth
        own_keys = bool(self.config.issuer_keys)
        # the token's private selectors, which the app's answer may only narrow
        # (None: no key, the app alone decides)
        has_key = auth.subscriber_key is not None or own_keys
        grant: frozenset[str | Matcher] | None = _NO_TOPICS if has_key else None
        if query.dialect == "1.0" and has_key:
            # no token in the URL in 1.0 (`authorization` there is a 0.x marker)
            found = find_token(request, {}, COOKIE_V1)
            if found is not None:
                access = self._access(request, found[0], "subscribe")
                private, expires = access.subscribe, access.expires
                payloads = tuple(access.payload_for(m) for m in found_matchers)
                grant = private
            elif not self.config.anonymous:
                raise bearer_error(
                    401, "subscribing requires an access token (no anonymous access)", None
                )
        elif auth.subscriber_key is not None:
            found = find_token(request, query.fields)
            if found is not None:
                _refuse_access_token(found[0])
                jwt = self.tokens.grant(auth, found[0], "subscribe")
                private, payload, expires = frozenset(jwt.selectors), jwt.payload, jwt.expires
                grant = private
            elif not self.config.anonymous:
                raise HTTPError(
                    401, "subscribing requires a JWT (this hub has no anonymous access)"
                )
        elif own_keys and not self.config.anonymous:
            # 1.0 issuers only: a 0.x JWT cannot be verified, so no 0.x access
            raise HTTPError(
                401,
                "subscribing requires a Mercure 1.0 access token (subscribe with match=): "
                "this hub has no key for 0.x JWTs",
            )
        decision = query.plain
        if (
            cors
            or last_event_id != decision.last_event_id
            or private is not _NO_TOPICS
            or payload is not None
            or expires is not None
            or payloads
        ):
            decision = Subscribe(
                query.topics,
                last_event_id,
                private,
                payload,
                cors,
                expires,
                self.config.max_stream_seconds,
                query.newest,
                found_matchers,
                query.dialect,
                payloads,
                query.tagged,
            )
        if self.config.authorize is None:
            return decision
        selectors = (*query.topics, *(m.value for m in found_matchers))
        return Authorize(
            Question("subscribe", selectors, self._forwarded(request)), decision, grant
        )

    def _parse_query(self, request: Request, raw_id: bytes | None) -> _Query:
        """What a subscribe request asks in its query string (400 naming
        what is wrong), kept for the next requests with the same query
        string when it is short. `raw_id`: the `Last-Event-ID` header,
        which takes the query parameter's place (checked here in the
        order the refusals were always made)."""
        fields = request.params()
        dialect = dialect_of(fields, self.config.dialects)
        found_matchers: tuple[Matcher, ...] = ()
        topics: tuple[str, ...] = ()
        base = None
        if dialect == "1.0":
            base = self._hub_url(request)
            found_matchers = matchers(fields, base=base, limit=self.config.max_topics)
            values = fields.get("last_event_id")
        else:
            topics = tuple(self._topics(fields))
            values = fields.get("lastEventID")
        query_id = values[0] if values and values[0] else None
        longest = self.hub.config.max_last_event_id
        last_event_id = raw_id.decode("latin-1") if raw_id else query_id
        if last_event_id is not None and len(last_event_id) > longest:
            raise HTTPError(400, f"Last-Event-ID is longer than {longest} characters")
        newest = self._newest(fields.get("newest"))
        tagged = _tagged(fields.get("tagged"))
        plain = Subscribe(
            topics,
            query_id,
            _NO_TOPICS,
            None,
            (),
            None,
            self.config.max_stream_seconds,
            newest,
            found_matchers,
            dialect,
            (),
            tagged,
        )
        query = _Query(
            fields, dialect, topics, found_matchers, base, query_id, newest, tagged, plain
        )
        raw = request.query
        if len(raw) <= _QUERY_BYTES and (query_id is None or len(query_id) <= longest):
            queries = self._queries
            queries.pop(raw, None)  # a 1.0 one for another base: replaced
            queries[raw] = query
            if len(queries) > _QUERIES:  # the oldest goes
                del queries[next(iter(queries))]
        return query

    def _newest(self, values: list[str] | None) -> int:
        """The `newest=N` query parameter (an ssehub extension): the newest N
        events of each topic before live ones, 1 <= N <= the history bound;
        ignored by the hub when the request resumes (`Last-Event-ID` wins)."""
        if values is None:
            return 0
        bound = self.hub.backend.limits.most_events
        raw = values[0]
        if len(values) > 1 or not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
            raise HTTPError(400, f"'newest' must be one integer from 1 to {bound}")
        n = int(raw)
        if not 1 <= n <= bound:
            raise HTTPError(
                400, f"'newest' must be one integer from 1 to {bound} (the history bound)"
            )
        return n

    def _topics(self, query: dict[str, list[str]]) -> list[str]:
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
        return topics

    def _access(self, request: Request, token: str, action: str) -> AccessGrant:
        """Validate a Mercure 1.0 access token for this hub and `action`'s
        keys (401 invalid_token)."""
        config = self.config
        hub_url = self._hub_url(request)
        return validate_access_token(
            token,
            self._trust[action],
            audience=config.resource or hub_url,
            leeway=config.auth.leeway,
            base=hub_url,
        )

    def _hub_url(self, request: Request) -> str:
        """The hub's URL, the base of relative URL patterns and topics: the
        resource identifier if configured, else this endpoint on the
        request's `Host`."""
        if self.config.resource is not None:
            return self.config.resource
        host = request.header(b"host") or "localhost"
        return f"{request.scheme}://{host}{MERCURE_PATH}"

    def stream(self, decision: Subscribe, transport: asyncio.WriteTransport) -> StreamSubscription:
        """The hub stream `decision` asks for, writing to `transport`; not
        open yet (`open_stream`). Raises `HTTPError` (400) when the hub
        refuses what it asks (a Last-Event-ID too long, a bad selector)."""
        try:
            return self.hub.subscribe_stream(
                transport,
                decision.topics,
                last_event_id=decision.last_event_id,
                newest=decision.newest,
                private_topics=decision.private_topics,
                matchers=decision.matchers,
                tagged=decision.tagged,
            )
        except ValueError as error:
            raise HTTPError(400, str(error), decision.cors) from None

    async def open_stream(
        self, sub: StreamSubscription, decision: Subscribe, head: Callable[[Resume], bytes]
    ) -> None:
        """Open `sub` (from `stream`), `head(resume)` its first bytes. Raises
        `HTTPError` (503) when the hub is shutting down or at its subscriber
        limit (with `Retry-After`); the refusal carries the CORS headers."""
        try:
            await sub.open(head)
        except HubClosedError:
            raise HTTPError(503, "the hub is shutting down", decision.cors) from None
        except SubscriberLimitError as error:
            retry = (("Retry-After", str(error.retry_after)),)
            raise HTTPError(503, str(error), decision.cors + retry) from None

    async def opened(self, decision: Subscribe, topics: tuple[str, ...]) -> str | None:
        """A stream is open: with subscription events on, announce it and
        return its subscriber id (hand it to `closed` at the end)."""
        if self.registry is None:
            return None
        subscriber = self.registry.new_id()
        if decision.dialect == "1.0":
            payloads = decision.payloads or (None,) * len(decision.matchers)
            entries = tuple(
                Entry(m.value, m.kind, p) for m, p in zip(decision.matchers, payloads, strict=True)
            )
        else:
            entries = tuple(Entry(topic, None, decision.payload) for topic in topics)
        await self.registry.opened(Active(subscriber, entries))
        return subscriber

    def closed(self, subscriber: str | None) -> None:
        """A stream opened with `opened` ended (safe from `connection_lost`)."""
        if self.registry is not None and subscriber is not None:
            self.registry.closed(subscriber)

    # -- publishing ----------------------------------------------------------------

    def _publish(self, request: Request, cors: tuple[tuple[str, str], ...]) -> Publish | Authorize:
        config = self.config
        if (
            config.auth.publisher_key is None
            and not config.issuer_keys
            and not config.anonymous_publish
            and config.authorize is None
        ):
            raise HTTPError(
                403,
                "publishing over HTTP is disabled: give the hub a publisher JWT key "
                "(--jwt-key, SSEHUB_JWT_KEY) or allow --anonymous-publish "
                "(SSEHUB_ANONYMOUS_PUBLISH=1)",
            )
        headers = request.headers
        if headers.get(b"content-type") != _FORM_BYTES:  # else the exact value, as most send it
            ctype = (request.header(b"content-type") or "").split(";")[0].strip().lower()
            if ctype != FORM:
                raise HTTPError(415, f"publish with Content-Type: {FORM}")
        # the token first: a request without a valid one costs no form parsing
        dialect: Dialect = "0.x"
        granted: SelectorSet | frozenset[str] | None = None  # anonymous: any topic
        if config.auth.publisher_key is not None or config.issuer_keys:
            dialect, granted = self._publisher(request)
        topics, form = parse_form(request.body, config.max_topics)
        if not topics:
            raise HTTPError(400, "missing 'topic' field")
        if "" in topics:
            raise HTTPError(400, "empty 'topic' field")
        kind = form.get("type", "")
        form_id = form.get("id", "")
        if granted is not None:
            _check_grant(granted, topics)
        if dialect == "1.0":
            _check_v1_publish(topics, form_id, kind, self._hub_url(request))
        retry: int | None = None
        raw = form.get("retry")
        if raw is not None:
            if not raw.isascii() or not raw.isdigit():
                raise HTTPError(400, f"'retry' must be a non-negative integer, not {raw[:40]!r}")
            if len(raw) > _MAX_RETRY_DIGITS:
                raise HTTPError(400, f"'retry' has more than {_MAX_RETRY_DIGITS} digits")
            retry = int(raw)
        # an empty id is no id: the hub assigns one (or Idempotency-Key gives it)
        event_id: str | None = None
        if form_id or IDEMPOTENCY_KEY in headers:
            event_id = publish_id(request, form_id or None, self.hub.config.max_last_event_id)
        decision = Publish(
            tuple(topics),
            form.get("data", ""),
            kind or "message",
            event_id,
            retry,
            "private" in form,
            cors,
        )
        if config.authorize is None:
            return decision
        question = Question(
            "publish", decision.topics, self._forwarded(request), private=decision.private
        )
        return Authorize(question, decision)

    # -- the app's authorization callback ------------------------------------------

    def _forwarded(self, request: Request) -> tuple[tuple[str, str], ...]:
        """The request headers the app is told (`AuthorizeConfig.forward`)."""
        assert self.config.authorize is not None
        return tuple(
            (name.decode(), value.decode("latin-1"))
            for name in self.config.authorize.forwarded
            if (value := request.headers.get(name)) is not None
        )

    def resume(self, decision: Authorize, verdict: Verdict) -> Subscribe | Publish | Response:
        """The app answered `decision.question`: the pending decision, its
        private updates narrowed to what both the JWT and the app allow; or
        403 with the app's reason; or 503 when the app could not say
        (fail closed: a timeout, an error, an answer that makes no sense)."""
        pending = decision.pending
        cors = pending.cors
        if verdict.failed:
            if self.refusals.due(verdict.reason):  # each reason once a minute, not per request
                log.warning("authorization callback failed: %s", verdict.reason)
            return Response.text(
                503, f"authorization unavailable: {verdict.reason}", (("Retry-After", "1"), *cors)
            )
        if not verdict.allow:
            return Response.text(
                403, f"not authorized: {verdict.reason or 'denied by the app'}", cors
            )
        if isinstance(pending, Publish):
            allowed = verdict.publish
            action = "publishing"
        else:
            allowed = verdict.subscribe
            action = "subscribing"
        if allowed is not None:
            for topic in decision.question.topics:
                if not covered(allowed, topic):
                    return Response.text(403, f"the app does not allow {action} to {topic!r}", cors)
        if isinstance(pending, Publish):
            return pending
        return dataclasses.replace(
            pending, private_topics=_both_allow(decision.grant, verdict.private)
        )

    def _publisher(self, request: Request) -> tuple[Dialect, SelectorSet | frozenset[str] | None]:
        """Check the publisher's token, before its body is parsed: the
        dialect it speaks (its token's) and the topics it may publish to
        (None: any, anonymous publishing); `_check_grant` checks them.
        Asked only when the hub has a key (`_publish`: else anonymous)."""
        auth = self.config.auth
        dialects = self.config.dialects
        # the header, else 1.0's cookie, else (unless 1.0 only) 0.x's cookie
        found = find_token(request, {}, COOKIE_V1)
        v1 = found is not None and (
            found[1] == "cookie" or dialects == "1.0" or is_access_token(found[0])
        )
        if found is None and dialects != "1.0":
            found = find_token(request, {})
        if found is None and self.config.anonymous_publish and auth.publisher_key is None:
            return "0.x", None  # anonymous publishing beside 1.0 issuers with keys of their own
        if found is None:
            if dialects == "1.0":
                raise bearer_error(401, "publishing requires an access token", None)
            raise HTTPError(401, "publishing requires a JWT with a mercure.publish claim")
        if v1 and dialects == "0.x":
            raise HTTPError(400, "this hub speaks Mercure 0.x only: publish with a 0.x JWT")
        if found[1] == "cookie" and not origin_allowed(
            self.config.publish_origins,
            request.header(b"origin"),
            request.header(b"referer"),
            request.header(b"host"),
        ):
            # a cookie rides along with any page's request: only allowed
            # origins may publish with it (no cross-site request forgery)
            raise HTTPError(
                403, "publishing with the cookie needs an allowed Origin (publish_origins)"
            )
        if v1:
            access = self._access(request, found[0], "publish")
            return "1.0", SelectorSet((), matchers=access.publish)
        if auth.publisher_key is None:
            raise HTTPError(
                401, "this hub has no key for 0.x JWTs: publish with a Mercure 1.0 access token"
            )
        return "0.x", self.tokens.grant(auth, found[0], "publish").selectors

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
        if auth.subscriber_key is None and not self.config.issuer_keys:
            raise HTTPError(403, "the subscriptions API needs a subscriber JWT key")
        dialects = self.config.dialects
        query = request.params()
        # the dialect of the token: a 1.0 access token (header or 1.0
        # cookie, never the URL), else a 0.x JWT (also from the URL)
        found = None if dialects == "0.x" else find_token(request, {}, COOKIE_V1)
        v1 = found is not None and (
            found[1] == "cookie" or dialects == "1.0" or is_access_token(found[0])
        )
        if not v1 and dialects != "1.0":
            found = find_token(request, query)
        if found is None:
            if dialects == "0.x":
                raise HTTPError(401, "the subscriptions API requires a JWT")
            raise bearer_error(
                401, "the subscriptions API requires an access token (or a 0.x JWT)", None
            )
        if not v1:
            if auth.subscriber_key is None:
                raise HTTPError(401, "this hub has no key for 0.x JWTs")
            if rest and "" in rest[1:].split("/"):
                # an empty segment would match a template's empty variable
                # (`{topic}/{subscriber}` allows `//`) and list more than it
                raise HTTPError(404, "not found: use /subscriptions[/{topic}[/{subscriber}]]")
            allowed = self.tokens.grant(auth, found[0], "subscribe").selectors
            if not selectors_match(allowed, (request.path,)):
                raise HTTPError(403, f"the JWT does not allow reading {request.path}")
            return Listing(rest, cors)
        if len(request.path) > _MAX_API_PATH:
            raise HTTPError(414, f"the subscriptions API path is longer than {_MAX_API_PATH} bytes")
        selection = _v1_selection(rest)
        # authorized on the canonical path: the topic of the same
        # subscriptions' events (a matcher grants both, never one alone)
        canonical = _v1_path(*selection)
        access = self._access(request, found[0], "subscribe")
        if not SelectorSet((), matchers=access.subscribe).matches((canonical,)):
            raise bearer_error(
                403,
                f"the access token does not allow subscribe on {canonical[:200]}",
                "insufficient_scope",
            )
        limit, after = _page(query) if selection[2] is None else (LISTING_PAGE, None)
        return Listing(rest, cors, "1.0", selection, limit, after, self._hub_url(request))

    async def listing(self, decision: Listing) -> Response:
        assert self.registry is not None
        if decision.dialect == "1.0":
            return await self._v1_listing(decision)
        status, answer = await self.registry.listing(decision.rest)
        if isinstance(answer, str):
            return Response.text(status, answer, decision.cors)
        body = json.dumps(answer).encode()
        return Response(status, body, "application/ld+json", decision.cors)

    async def _v1_listing(self, decision: Listing) -> Response:
        assert self.registry is not None
        match_type, match, subscriber = decision.selection
        page = await self.registry.v1_listing(
            match_type, match, subscriber, limit=decision.limit, after=decision.after
        )
        # the reconciliation cursor, as in discovery (draft, "Subscription API")
        link = discovery_link(
            decision.hub_url,
            last_event_id=page.last_event_id,
            event_type="mercure",
            content_type="application/json",
        )
        if page.next is not None:
            seq, index = page.next
            # a query-only reference: the same path, wherever the hub is mounted
            link += f', <?after={seq}.{index}&limit={decision.limit}>; rel="next"'
        headers = [("Link", link), ("Cache-Control", CACHE_CONTROL)]
        if decision.cors:
            headers += [*decision.cors, ("Access-Control-Expose-Headers", "Link")]
        if isinstance(page.answer, str):
            return Response.text(page.status, page.answer, tuple(headers))
        body = json.dumps(page.answer).encode()
        return Response(page.status, body, "application/json", tuple(headers))

    async def aclose(self) -> None:
        """Wait for the subscription events still being published."""
        if self.registry is not None:
            await self.registry.aclose()


_MAX_API_PATH = 8192  # a subscriptions-API path longer than this is refused (414)


def _v1_selection(rest: str) -> tuple[str | None, str | None, str | None]:
    """`(match_type, match, subscriber)` of a 1.0 API path after
    `/subscriptions` (each segment percent-decoded once, strict UTF-8):
    all None (the collection), the first two (one matcher's collection) or
    all three (one subscription); 404 for another shape or matcher type."""
    if not rest:
        return None, None, None
    parts = rest[1:].split("/")
    if len(parts) not in (2, 3) or "" in parts:
        raise HTTPError(
            404,
            "not found: use /subscriptions[/{match_type}/{match}[/{subscriber}]], "
            "each variable percent-encoded",
        )
    decoded: list[str] = []
    for name, part in zip(("match_type", "match", "subscriber"), parts, strict=False):
        try:
            decoded.append(unquote_to_bytes(part).decode("utf-8"))
        except UnicodeDecodeError:
            raise HTTPError(400, f"the {name} in the path is not valid UTF-8") from None
    if decoded[0] not in MATCH_TYPES:
        raise HTTPError(
            404, f"no matcher type {decoded[0][:40]!r} (this hub has {', '.join(MATCH_TYPES)})"
        )
    return decoded[0], decoded[1], decoded[2] if len(decoded) == 3 else None


def _v1_path(match_type: str | None, match: str | None, subscriber: str | None) -> str:
    path = v1_resource(match_type, match)
    return path if subscriber is None else f"{path}/{quote(subscriber, safe='')}"


def _page(query: dict[str, list[str]]) -> tuple[int, tuple[int, int] | None]:
    """The `limit` (1 to `LISTING_PAGE`, default the most) and `after` (a
    `next` link's cursor) query parameters of a 1.0 collection (400)."""
    limit = LISTING_PAGE
    raw = query.get("limit", [None])[-1]
    if raw is not None:
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or not (
            1 <= int(raw) <= LISTING_PAGE
        ):
            raise HTTPError(400, f"'limit' must be one integer from 1 to {LISTING_PAGE}")
        limit = int(raw)
    raw = query.get("after", [None])[-1]
    if raw is None:
        return limit, None
    seq, dot, index = raw.partition(".")
    if not (dot and seq.isascii() and seq.isdigit() and index.isascii() and index.isdigit()) or (
        len(raw) > 40
    ):
        raise HTTPError(400, "'after' must be the cursor of a 'next' link")
    return limit, (int(seq), int(index))


def _both_allow(
    grant: frozenset[str | Matcher] | None, app: frozenset[str] | None
) -> frozenset[str | Matcher]:
    """The private selectors both the JWT (`grant`; None: no JWT key) and the
    app (`app`; None: it said nothing) allow: each side's selectors that the
    other side covers (is, is `*`, or has a template or pattern matching)."""
    if grant is None:
        return _NO_TOPICS if app is None else frozenset(app)
    if app is None:
        return grant
    texts = frozenset(s for s in grant if isinstance(s, str))
    patterns = [m for m in grant if isinstance(m, Matcher)]
    both: set[str | Matcher] = {
        s for s in app if covered(texts, s) or any(m.matches(s) for m in patterns)
    }
    both.update(s for s in grant if covered(app, s if isinstance(s, str) else s.value))
    return frozenset(both)


def _refuse_access_token(token: str) -> None:
    if is_access_token(token):
        raise HTTPError(
            400,
            "the request mixes 0.x query parameters (topic) with a Mercure 1.0 access token "
            "(typ at+jwt): subscribe with match=",
        )


def _store_failure(error: Exception) -> str:
    """The 503's reason when the store did not take a publish: the store's
    own words where they help the operator (full, read-only, replicas)."""
    if isinstance(error, StoreRefusedError):
        return str(error)
    redis = sys.modules.get("ssehub.backends.redis")  # loaded if the store is Redis
    if redis is not None and isinstance(error, redis.ReplicaWaitError):
        return f"the store did not confirm it (ReplicaWaitError: {error})"
    return f"the store is unavailable ({type(error).__name__})"


def _check_grant(granted: SelectorSet | frozenset[str], topics: list[str]) -> None:
    """403 unless the publisher's token allows each of `topics`."""
    for topic in topics:
        if isinstance(granted, SelectorSet):
            if not granted.matches((topic,)):
                raise bearer_error(
                    403,
                    f"the access token does not allow publishing to {topic!r}",
                    "insufficient_scope",
                )
        elif not selectors_match(granted, (topic,)):
            raise HTTPError(403, f"the JWT does not allow publishing to {topic!r}")


def _check_v1_publish(topics: list[str], event_id: str, kind: str, hub_url: str) -> None:
    """What the 1.0 draft refuses in a publish beyond 0.x (400, "Publication"
    and "Reserved Hub Namespace"), whatever the token allows."""
    for topic in topics:
        if topic == "*":
            raise HTTPError(400, "the topic '*' is the wildcard: it cannot be published to")
        check_field("topic", topic)
        if in_hub_namespace(topic, hub_url):
            raise HTTPError(
                400,
                f"the topic {topic[:80]!r} is in the hub's reserved namespace "
                f"({urlsplit(hub_url).path} and below): only the hub publishes there",
            )
    if event_id == "earliest" or event_id.startswith("#"):
        raise HTTPError(400, f"the id {event_id!r} is reserved (earliest, or starting with #)")
    check_field("id", event_id)
    check_field("type", kind)
    if kind == "mercure":
        raise HTTPError(400, "the type 'mercure' is reserved for the events the hub generates")


def _tagged(values: list[str] | None) -> bool:
    """The `tagged=1` query parameter (an ssehub extension): each event
    carries a `matched:` line per selector of the request that matched it."""
    if values is None:
        return False
    if values != ["1"]:
        raise HTTPError(400, "'tagged' must be given once, as tagged=1")
    return True
