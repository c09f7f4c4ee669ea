"""`Webhooks`: the hub tells the app's endpoints when a subscription opens
or closes and when a topic gains its first subscriber or loses its last.

Off the hot path: the front end calls `opened` / `closed` / `watch`, which
only queue (a bounded queue: when it is full the notice is dropped and
counted); one worker the `Webhooks` owns posts each notice to each URL,
retrying with jittered exponential backoff a bounded number of times.

Each request is a JSON body signed with HMAC-SHA256 (`--webhook-secret`)::

    SSEHub-Signature: t=1767225600,v1=<hex of HMAC(secret, b"1767225600." + body)>

The timestamp is the sending time (fresh on each retry): a receiver refuses
an old one, so a recorded request cannot be replayed later
(docs/run-a-hub.md shows the check in Python).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import json
import logging
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._authorizer import _httpx

__all__ = ("SIGNATURE_HEADER", "WebhookConfig", "WebhookStatistics", "Webhooks", "sign")

SIGNATURE_HEADER = "SSEHub-Signature"
log = logging.getLogger("ssehub.hooks")


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """Where and how the hub posts its notices.

    - `urls`: the endpoints (`http://` or `https://`); each gets every notice.
    - `secret`: the HMAC-SHA256 key of the `SSEHub-Signature` header (None:
      unsigned).
    - `max_pending`: notices waiting at most; beyond, new ones are dropped.
    - `attempts`: tries per notice and URL (a 2xx answer ends them).
    - `backoff`: seconds before the first retry, doubled for each next one
      (at most `max_backoff`), each times a random factor in [0.5, 1.5).
    - `timeout`: seconds one try may take.
    """

    urls: tuple[str, ...]
    secret: str | None = None
    max_pending: int = 1000
    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    timeout: float = 5.0

    def __post_init__(self) -> None:
        if not isinstance(self.urls, tuple) or not self.urls:
            raise ValueError(f"WebhookConfig.urls must be a tuple of URLs, not {self.urls!r}")
        for url in self.urls:
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ValueError(f"WebhookConfig.urls: not an http:// or https:// URL: {url!r}")
        if self.secret is not None and (not isinstance(self.secret, str) or not self.secret):
            raise ValueError("WebhookConfig.secret must not be empty")
        for name in ("max_pending", "attempts"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"WebhookConfig.{name} must be an int >= 1, not {value!r}")
        for name in ("backoff", "max_backoff", "timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"WebhookConfig.{name} must be a number, not {value!r}")
            if not 0 < value < math.inf:
                raise ValueError(f"WebhookConfig.{name} must be > 0 and finite, not {value!r}")


@dataclass(frozen=True, slots=True)
class WebhookStatistics:
    """`Webhooks.statistics()`."""

    pending: int
    """Notices waiting for the worker."""
    sent: int
    """Deliveries a URL acknowledged (2xx)."""
    failed: int
    """Tries that failed (no answer, or not 2xx); each may be retried."""
    abandoned: int
    """Deliveries given up: after `attempts` tries, or at once at an
    unexpected error (one the HTTP client does not count as its own, such as
    a URL it cannot use; also counted in `failed`, and logged)."""
    dropped: int
    """Notices not queued: `max_pending` were waiting."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `SSEHub-Signature` value of `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


class Webhooks:
    """The notices of one hub, and the worker that sends them (started at
    the first notice, on the running loop; `aclose()` gives it `grace`
    seconds to finish what is queued, then stops it)."""

    def __init__(
        self,
        config: WebhookConfig,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.clock = clock
        self.sleep = sleep
        self.jitter = jitter
        self._httpx: Any = _httpx()
        self._queue: collections.deque[tuple[str, bytes]] = collections.deque()
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._client: Any = None
        self._closing = False
        self._sent = self._failed = self._abandoned = self._dropped = 0

    def statistics(self) -> WebhookStatistics:
        return WebhookStatistics(
            len(self._queue), self._sent, self._failed, self._abandoned, self._dropped
        )

    # -- what the front end tells (never waits) --------------------------------------

    def opened(self, subscriber: str | None, topics: tuple[str, ...], payload: Any = None) -> str:
        """A stream opened: its `subscriber` id (with subscription events
        on), or None for a fresh `urn:uuid:` one; returns the id, for
        `closed`."""
        if subscriber is None:
            subscriber = f"urn:uuid:{uuid.uuid4()}"
        notice: dict[str, Any] = {"subscriber": subscriber, "topics": list(topics)}
        if payload is not None:
            notice["payload"] = payload
        self.send_nowait("subscription.opened", notice)
        return subscriber

    def closed(self, subscriber: str, topics: tuple[str, ...]) -> None:
        self.send_nowait("subscription.closed", {"subscriber": subscriber, "topics": list(topics)})

    def watch(self, topic: str, watching: bool) -> None:
        """For `Hub.on_watch`: a topic's first subscriber came, or its last left."""
        self.send_nowait("topic.watched" if watching else "topic.unwatched", {"topic": topic})

    def send_nowait(self, kind: str, fields: dict[str, Any]) -> bool:
        """Queue a notice of type `kind`; False if it was dropped (queue full,
        or closing)."""
        if self._closing or len(self._queue) >= self.config.max_pending:
            self._dropped += 1
            return False
        notice = {"type": kind, "id": f"urn:uuid:{uuid.uuid4()}", "time": self.clock(), **fields}
        self._queue.append((kind, json.dumps(notice, default=str).encode()))
        self._wake.set()
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(
                self._work(), name="ssehub-webhooks"
            )
        return True

    # -- the worker -------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            while self._queue:
                kind, body = self._queue[0]
                for url in self.config.urls:
                    try:
                        await self._deliver(url, kind, body)
                    except Exception as error:  # one delivery's failure, never the worker's
                        # what the HTTP client raises beyond its own errors (a URL
                        # it cannot use, a surprise of its transport): give this
                        # delivery up, keep the worker for the others
                        self._failed += 1
                        self._abandoned += 1
                        log.error(
                            "webhook %s to %s abandoned: unexpected %s",
                            kind,
                            shown_url(url),
                            type(error).__name__,
                        )
                self._queue.popleft()
            if self._closing:
                return
            self._wake.clear()
            await self._wake.wait()

    async def _deliver(self, url: str, kind: str, body: bytes) -> None:
        config = self.config
        httpx = self._httpx
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=config.timeout,
                follow_redirects=False,
                trust_env=False,
                limits=httpx.Limits(max_connections=len(config.urls)),
            )
        delivery = json.loads(body)["id"]
        for attempt in range(config.attempts):
            headers = {
                "content-type": "application/json",
                "user-agent": "ssehub",
                "ssehub-event": kind,
                "ssehub-delivery": delivery,
            }
            if config.secret is not None:
                headers[SIGNATURE_HEADER] = sign(config.secret, int(self.clock()), body)
            try:
                async with asyncio.timeout(config.timeout):
                    # the status only: the receiver's body is never read (a
                    # huge or endless one costs no memory)
                    async with self._client.stream(
                        "POST", url, content=body, headers=headers
                    ) as response:
                        status = response.status_code
                if 200 <= status < 300:
                    self._sent += 1
                    return
                problem = f"answered {status}"
            except (TimeoutError, httpx.HTTPError) as error:
                problem = type(error).__name__
            self._failed += 1
            if attempt + 1 < config.attempts:
                delay = min(config.backoff * 2**attempt, config.max_backoff)
                await self.sleep(delay * (0.5 + self.jitter()))
        self._abandoned += 1
        log.warning(
            "webhook %s to %s abandoned after %d tries (%s)",
            kind,
            shown_url(url),
            config.attempts,
            problem,
        )

    async def aclose(self, grace: float = 0.0) -> None:
        """No more notices; `grace` seconds for the queued ones, then stop."""
        self._closing = True
        worker = self._worker
        if worker is not None:
            self._wake.set()
            if grace > 0:
                await asyncio.wait((worker,), timeout=grace)
            worker.cancel()
            await asyncio.wait((worker,))
            self._worker = None
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


def shown_url(url: str) -> str:
    """`url` for a log line: without its user info and query, where
    receivers' credentials go (`https://user:pass@host/hook?token=...`)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # (e.g. "http://[::1/": it may hold credentials too)
        return "(a URL that does not parse)"
    host = parts.netloc.rpartition("@")[2]
    query = "?…" if parts.query else ""
    return f"{parts.scheme}://{host}{parts.path}{query}"
