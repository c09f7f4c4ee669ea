"""Read an event source to the end, the same way for both twins."""

from __future__ import annotations

import asyncio
from typing import Any

from ssehub.client import AsyncEventSource, EventSource
from ssehub.protocol import Event

__all__ = ("KINDS", "collect")

KINDS = ["sync", "async"]


def collect(
    kind: str, url: str, limit: int | None = None, **kwargs: Any
) -> tuple[list[Event], BaseException | None]:
    """Read events until `limit`, or until the source raises."""
    kwargs.setdefault("retry", 0.02)
    events: list[Event] = []
    try:
        if kind == "sync":
            with EventSource(url, **kwargs) as source:
                for event in source:
                    events.append(event)
                    if limit is not None and len(events) >= limit:
                        break
        else:

            async def main() -> None:
                async with AsyncEventSource(url, **kwargs) as source:
                    async for event in source:
                        events.append(event)
                        if limit is not None and len(events) >= limit:
                            break

            asyncio.run(main())
    except Exception as error:
        return events, error
    return events, None
