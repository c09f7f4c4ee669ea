"""`BackgroundHub`: a hub and its server on a thread of their own, for plain
synchronous programs."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path
from types import TracebackType

from ssehub.backends import Backend
from ssehub.hub import Hub, HubClosedError, HubConfig, HubStatistics, WatchCallback
from ssehub.mercure import MercureConfig

from ._config import ServerConfig
from ._http import HubServer
from ._platform import new_event_loop

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
        anonymous_publish: bool = False,
        dashboard: bool | None = False,
        grace: float = 5.0,
        on_watch: WatchCallback | None = None,
    ) -> None:
        static = BUILTIN_PAGE if page is True else (Path(page) if page else None)
        self.server_config = ServerConfig(
            host=host,
            port=port,
            static_dir=static,
            mercure=MercureConfig(
                cors_origins=tuple(cors_origins), anonymous_publish=anonymous_publish
            ),
            dashboard=dashboard,
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
            await self.hub.aclose()
            await self._server.aclose()
