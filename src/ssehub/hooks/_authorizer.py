"""`Authorizer`: asks the app's endpoint the `Question` a `Mercure` decision
carries, within a time limit, with a small cache; and `decide`, the one
call both front ends make instead of `Mercure.decide`."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ssehub.mercure import (
    Authorize,
    AuthorizeConfig,
    Listing,
    Mercure,
    Publish,
    Question,
    Request,
    Response,
    Subscribe,
    Verdict,
    parse_answer,
)

if TYPE_CHECKING:
    import httpx

__all__ = ("Authorizer", "AuthorizerStatistics", "decide")


@dataclass(frozen=True, slots=True)
class AuthorizerStatistics:
    """`Authorizer.statistics()`."""

    asked: int
    """Questions sent to the app."""
    cached: int
    """Questions answered from the cache, or by the answer to the same
    question already being asked."""
    failed: int
    """Questions the app did not answer in time or answered nonsense (503)."""
    entries: int
    """Answers in the cache now."""


class Authorizer:
    """One per hub: an HTTP client (at most `config.max_connections`
    connections to the app) and a cache of at most `config.cache_size`
    answers, each kept for the answer's `ttl` or `config.cache_seconds`.

    `await ask(question)` never raises for the app's faults: a timeout, a
    refused connection, a non-200 status, an answer larger than
    `config.max_answer_bytes` or not the expected JSON is a failed
    `Verdict` (the request is refused with 503), never cached. `aclose()`
    closes the client. `clock`: seconds, for the cache (injected in tests).
    """

    def __init__(
        self, config: AuthorizeConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self.clock = clock
        self._cache: OrderedDict[bytes, tuple[float, Verdict]] = OrderedDict()
        self._client: httpx.AsyncClient | None = None
        self._httpx: Any = _httpx()  # at start, not at the first request, if it is missing
        self._asking: dict[bytes, asyncio.Future[Verdict]] = {}  # questions being asked
        # the questions beyond `max_connections` wait here, not in httpx's
        # pool: a flood of them there cost the loop ~14 ms each (its queue
        # is rescanned per event), stalling every other request for seconds
        self._slots = asyncio.Semaphore(config.max_connections)
        self._asked = self._cached = self._failed = 0

    def statistics(self) -> AuthorizerStatistics:
        return AuthorizerStatistics(self._asked, self._cached, self._failed, len(self._cache))

    async def ask(self, question: Question) -> Verdict:
        key = question.key
        found = self._cache.get(key)
        if found is not None:
            if found[0] > self.clock():
                self._cache.move_to_end(key)
                self._cached += 1
                return found[1]
            del self._cache[key]
        # the same question already on its way is not asked again: a burst
        # of identical cold questions costs the app one request (shielded:
        # the asker that leaves first does not cancel it for the others)
        asking = self._asking.get(key)
        if asking is not None:
            self._cached += 1
            return await asyncio.shield(asking)
        self._asked += 1
        asking = self._asking[key] = asyncio.ensure_future(self._answer(key, question))
        asking.add_done_callback(lambda _: self._asking.pop(key, None))
        return await asyncio.shield(asking)

    async def _answer(self, key: bytes, question: Question) -> Verdict:
        verdict = await self._ask(question)
        if verdict.failed:
            self._failed += 1
            return verdict
        config = self.config
        ttl = config.cache_seconds if verdict.ttl is None else verdict.ttl
        if ttl > 0 and config.cache_size > 0:
            self._cache[key] = (self.clock() + ttl, verdict)
            self._cache.move_to_end(key)
            while len(self._cache) > config.cache_size:
                self._cache.popitem(last=False)
        return verdict

    async def _ask(self, question: Question) -> Verdict:
        httpx = self._httpx
        config = self.config
        if self._client is None:
            self._client = httpx.AsyncClient(
                limits=httpx.Limits(
                    max_connections=config.max_connections,
                    max_keepalive_connections=config.max_connections,
                ),
                timeout=config.timeout,
                follow_redirects=False,
                trust_env=False,
            )
        headers = [
            # the bytes the client sent (latin-1 round-trips them; httpx
            # would refuse a str that is not ASCII)
            *((name.encode("ascii"), value.encode("latin-1")) for name, value in question.headers),
            (b"content-type", b"application/json"),
            (b"accept", b"application/json"),
            (b"accept-encoding", b"identity"),  # no decompression bomb
            (b"user-agent", b"ssehub"),
        ]
        limit = config.max_answer_bytes
        try:
            # the whole exchange, however slowly the answer trickles in
            async with (
                asyncio.timeout(config.timeout),
                self._slots,
                self._client.stream(
                    "POST", config.url, content=question.body, headers=headers
                ) as response,
            ):
                body = bytearray()
                async for chunk in response.aiter_raw():
                    body += chunk
                    if len(body) > limit:
                        return Verdict.failure(
                            f"the authorization endpoint's answer is larger than {limit} bytes"
                        )
                status = response.status_code
        except (TimeoutError, httpx.TimeoutException):
            return Verdict.failure(
                f"the authorization endpoint did not answer within {config.timeout:g} s"
            )
        except httpx.HTTPError as error:
            return Verdict.failure(
                f"cannot reach the authorization endpoint ({type(error).__name__})"
            )
        return parse_answer(status, bytes(body))

    async def aclose(self) -> None:
        """Cancel the questions on their way and wait until they have
        ended (each asker gets `CancelledError`), then close the client."""
        asking = list(self._asking.values())
        for question in asking:
            question.cancel()
        await asyncio.gather(*asking, return_exceptions=True)
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


async def decide(
    mercure: Mercure, request: Request, authorizer: Authorizer | None
) -> Subscribe | Publish | Listing | Response:
    """`mercure.decide(request)`, and when the hub must ask the app first
    (an `Authorize` decision), the app's answer resumed into the final
    decision (`Mercure.resume`)."""
    decision = mercure.decide(request)
    if isinstance(decision, Authorize):
        return await settle(mercure, decision, authorizer)
    return decision


async def settle(
    mercure: Mercure, decision: Authorize, authorizer: Authorizer | None
) -> Subscribe | Publish | Listing | Response:
    """The app's answer to an `Authorize` decision's question, resumed into
    the final decision (what `decide` does once the hub must ask: a front
    end that decided at once itself calls this only then)."""
    if authorizer is None:
        raise RuntimeError("MercureConfig.authorize is set: give the front end an Authorizer")
    return mercure.resume(decision, await authorizer.ask(decision.question))


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        raise ImportError(
            "the authorization callback and webhooks need httpx: pip install 'ssehub[hooks]'"
        ) from None
    return httpx
