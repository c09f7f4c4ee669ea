"""Attacks on the durable store's group commit through a real hub server:
a publish the store cannot take is refused before it joins a batch, so it
never fails the others' publishes committed with it (docs/security.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ssehub.backends import HistoryLimits, SQLiteBackend
from tests.support.helpers import subscribe
from tests.support.servers import run, serving


def test_a_topic_the_store_cannot_encode_fails_alone_not_its_batch(tmp_path: Path) -> None:
    # a lone surrogate in a topic (e.g. `os.fsdecode` of a non-UTF-8 file
    # name, published by the app) failed the whole SQLite batch: every
    # other publisher's event committed with it was refused too
    async def body() -> None:
        backend = SQLiteBackend(tmp_path / "hub.db", HistoryLimits())
        async with serving(backend=backend, anonymous=True) as (hub, _, port):
            stream = await subscribe(port, "good")
            try:
                outcomes = await asyncio.gather(
                    hub.publish("good", "one"),
                    hub.publish("bad\udcff", "poison"),
                    hub.publish("good", "two"),
                    return_exceptions=True,
                )
                assert isinstance(outcomes[0], str), outcomes
                assert isinstance(outcomes[2], str), outcomes
                assert isinstance(outcomes[1], ValueError)
                assert "valid Unicode" in str(outcomes[1])
                received = await stream.next_events(2)
                assert sorted(e.data for e in received) == ["one", "two"]
            finally:
                stream.close()

    run(body)
