"""Helpers of the tests of eager answers (no task when the answer is
ready at once): a raw publish request, and the tasks a block makes."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

MERCURE = "/.well-known/mercure"


def publish_request(topic: str, data: str, event_id: str, *, close: bool = False) -> bytes:
    body = urlencode({"topic": topic, "data": data, "id": event_id}).encode()
    head = (
        f"POST {MERCURE} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    return (head + ("Connection: close\r\n" if close else "") + "\r\n").encode() + body


@contextmanager
def tasks_made() -> Iterator[list[Coroutine[Any, Any, Any]]]:
    """The coroutines of every task made on this loop meanwhile (the test's
    own client runs in a thread: it makes none), but plain asyncio's own
    per accepted connection (uvloop accepts with none)."""
    loop = asyncio.get_running_loop()
    made: list[Coroutine[Any, Any, Any]] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        if getattr(coro, "__qualname__", "") != "BaseSelectorEventLoop._accept_connection2":
            made.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    try:
        yield made
    finally:
        loop.set_task_factory(None)
