"""`BackgroundHub`: a hub and its server on a thread of their own, for plain
synchronous programs."""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Coroutine, Iterable
from concurrent.futures import Future
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from types import TracebackType
from typing import Any

from ssehub.backends import Backend
from ssehub.hub import (
    Hub,
    HubClosedError,
    HubConfig,
    HubStatistics,
    WatchCallback,
    validate_selector,
)
from ssehub.mercure import JWTAuth, MercureConfig
from ssehub.mercure._cors import SELF

from ._config import ServerConfig
from ._http import HubServer
from ._platform import new_event_loop
from ._threaded import ThreadSubscription

__all__ = ("BUILTIN_PAGE", "BackgroundHub")

BUILTIN_PAGE = Path(str(files("ssehub").joinpath("page")))
"""The folder of the built-in live page (`page=True`)."""


class BackgroundHub:
    """A hub served over HTTP from a background thread::

        with BackgroundHub(port=8000, page=True) as hub:
            while True:
                hub.publish("clock", time.strftime("%H:%M:%S"))
                time.sleep(1)

    `publish()` works from any thread and returns the event id once the hub
    has stored it; it never waits on subscribers. Leaving the block (or
    `stop()`) ends every stream within `grace` seconds and loses no published
    event. `page=True` serves the built-in live page at `/`; a folder path
    serves your own files instead. `dashboard=True` serves the live
    dashboard at `/_ssehub/` (None: only when listening on loopback).
    Pass `backend=` to keep history across a
    `stop()` and a new `BackgroundHub` in the same process.
    `on_watch(topic, watching)` is told when a topic gains its first
    subscriber or loses its last (`Hub.on_watch`); it runs on the hub's
    thread, so it must return quickly (set a flag, signal your thread).

    `subscribe()` reads events from a plain thread. `page_publishes=("commands",)`
    lets the pages the hub serves publish to those topics (selectors) and
    no others: the hub mints a publisher token (signed with a random key made
    at start, or with `mercure`'s HMAC publisher key) and hands it to its
    pages as an `HttpOnly; SameSite=Strict` cookie, accepted only from the
    hub's own origin. Anyone who can load the page can publish so: keep
    `host="127.0.0.1"` unless you mean it.

    Mercure settings are those of `ssehub serve`: `cors_origins` (pages of
    other origins that may subscribe; `"null"` for a page opened from disk),
    `publish_origins` (origins that may publish with the cookie),
    `anonymous_publish`, or a whole `mercure=MercureConfig(...)` (JWT keys
    and the rest) instead of those three.
    """

    def __init__(
        self,
        port: int = 8000,
        *,
        host: str = "127.0.0.1",
        page: bool | str | os.PathLike[str] = False,
        config: HubConfig | None = None,
        backend: Backend | None = None,
        cors_origins: Iterable[str] = (),
        publish_origins: Iterable[str] = (),
        anonymous_publish: bool = False,
        mercure: MercureConfig | None = None,
        page_publishes: Iterable[str] = (),
        dashboard: bool | None = False,
        grace: float = 5.0,
        on_watch: WatchCallback | None = None,
    ) -> None:
        static = BUILTIN_PAGE if page is True else (Path(page) if page else None)
        cors, origins = tuple(cors_origins), tuple(publish_origins)
        if mercure is None:
            mercure = MercureConfig(
                cors_origins=cors, publish_origins=origins, anonymous_publish=anonymous_publish
            )
        elif cors or origins or anonymous_publish:
            raise ValueError(
                "BackgroundHub: give cors_origins, publish_origins and anonymous_publish "
                "inside mercure=MercureConfig(...), not beside it"
            )
        self.page_publishes = tuple(page_publishes)
        mercure, token = _page_token(mercure, self.page_publishes)
        self.server_config = ServerConfig(
            host=host,
            port=port,
            static_dir=static,
            mercure=mercure,
            dashboard=dashboard,
            page_token=token,
        )
        self.hub = Hub(config, backend=backend, on_watch=on_watch)
        self.grace = grace
        self._server = HubServer(self.hub, self.server_config)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._port: int | None = None
        self._pumps: set[asyncio.Task[None]] = set()
        self._stopping = False

    @property
    def port(self) -> int:
        """The port the hub listens on (useful with `port=0`)."""
        if self._port is None:
            raise RuntimeError("BackgroundHub is not started")
        return self._port

    @property
    def url(self) -> str:
        """The hub's base URL, like `http://127.0.0.1:8000`."""
        host = self.server_config.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def start(self) -> BackgroundHub:
        """Start the thread; return once the hub listens (or raise why not)."""
        if self._thread is not None:
            raise RuntimeError("BackgroundHub.start() called twice")
        self._thread = threading.Thread(target=self._run, name="ssehub", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self

    def stop(self) -> None:
        """End every stream within `grace` seconds and stop the thread."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None or loop is None or stop is None:
            return
        self._stopping = True
        if not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop closed meanwhile
                pass
        thread.join()

    def __enter__(self) -> BackgroundHub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def publish(
        self,
        topics: str | Iterable[str],
        data: str = "",
        *,
        event: str = "message",
        id: str | None = None,
        retry: int | None = None,
        private: bool = False,
        timeout: float | None = 10.0,
    ) -> str:
        """Publish from any thread; return the event id once it is stored.

        The fields are those of `Hub.publish()`, which this delegates to.
        Raises `ValueError` for a bad field, `HubClosedError` when the hub is
        not running, and `TimeoutError` if the hub's loop did not take the
        event within `timeout` seconds.
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError("on the hub's own loop, use `await hub.hub.publish(...)`")
        if self._loop is None:
            raise HubClosedError("cannot publish: BackgroundHub is not started")
        future = self.hub.publish_threadsafe(
            topics, data, event=event, id=id, retry=retry, private=private
        )
        return future.result(timeout)

    def subscribe(
        self, topics: str | Iterable[str], *, last_event_id: str | None = None, buffer: int = 64
    ) -> ThreadSubscription:
        """The events of `topics` (selectors; `"*"`: all) for a plain thread,
        from now on (or after `last_event_id`, as `Hub.subscribe`)::

            with hub.subscribe("commands") as commands:
                for event in commands:
                    ...

        Iteration blocks until the next event and ends at `close()` or
        `stop()`; at most `buffer` events wait for the thread, then the
        hub's slow-subscriber policy applies (`SlowSubscriberError`).
        Public updates only."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("on the hub's own loop, use `hub.hub.subscribe(...)`")
        loop = self._loop
        if loop is None or loop.is_closed() or self._stopping:
            raise HubClosedError("cannot subscribe: BackgroundHub is not running")
        subscription = self.hub.subscribe(topics, last_event_id=last_event_id)
        return ThreadSubscription(loop, subscription, buffer, self._submit)

    def _submit(self, coroutine: Coroutine[Any, Any, None]) -> Future[None]:
        assert self._loop is not None

        async def owned() -> None:
            task = asyncio.current_task()
            assert task is not None
            self._pumps.add(task)
            try:
                await coroutine
            finally:
                self._pumps.discard(task)

        return asyncio.run_coroutine_threadsafe(owned(), self._loop)

    def statistics(self) -> HubStatistics:
        """A snapshot of the hub's counters (taken on the hub's thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return self.hub.statistics()

        async def snapshot() -> HubStatistics:
            return self.hub.statistics()

        return asyncio.run_coroutine_threadsafe(snapshot(), loop).result(10.0)

    def subscribers(self, topic: str) -> int:
        """How many subscriptions get `topic` now (`Hub.subscribers`, read
        on the hub's thread)."""
        loop = self._loop
        if loop is None or loop.is_closed() or threading.current_thread() is self._thread:
            return self.hub.subscribers(topic)

        async def count() -> int:
            return self.hub.subscribers(topic)

        return asyncio.run_coroutine_threadsafe(count(), loop).result(10.0)

    def _run(self) -> None:
        loop = self._loop = new_event_loop()
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self.hub.start()
            await self._server.start()
            self._port = self._server.port
        except BaseException as error:
            self._error = error
            self._ready.set()
            await self.hub.aclose()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self._server.drain(self.grace)
            await self.hub.aclose()  # ends every subscription, so every pump
            if self._pumps:
                await asyncio.wait(set(self._pumps), timeout=self.grace)
            await self._server.aclose()


def _page_token(
    mercure: MercureConfig, topics: tuple[str, ...]
) -> tuple[MercureConfig, str | None]:
    """With `topics`: the settings that accept the pages' cookie, and the
    token (publish to `topics` only) to hand them."""
    if not topics:
        return mercure, None
    for topic in topics:
        validate_selector(topic)
    auth = mercure.auth
    if mercure.anonymous_publish:
        raise ValueError("page_publishes and anonymous_publish: choose one")
    key = auth.publisher_key
    if key is None:
        key = secrets.token_urlsafe(32)
        auth = JWTAuth(
            publisher_key=key,
            subscriber_key=auth.subscriber_key,
            algorithm="HS256" if auth.subscriber_key is None else auth.algorithm,
            leeway=auth.leeway,
        )
    algorithm = auth.algorithm
    if not algorithm.startswith("HS"):
        raise ValueError(
            f"page_publishes needs an HMAC publisher key to sign the pages' token, "
            f"not a {algorithm} public key"
        )
    try:
        import jwt
    except ImportError:
        raise ImportError("page_publishes needs PyJWT: pip install 'ssehub[jwt]'") from None
    token = jwt.encode({"mercure": {"publish": list(topics)}}, key, algorithm=algorithm)
    origins = mercure.publish_origins
    if SELF not in origins:
        origins = (*origins, SELF)
    return replace(mercure, auth=auth, publish_origins=origins), token
