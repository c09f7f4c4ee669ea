"""The webhooks' worker outlives a delivery that fails in a way the HTTP
client does not count as its own: that delivery is given up (counted and
logged on one line), the next URLs and notices are still delivered to a
real receiver."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.support.hooks import app


def test_an_unexpected_delivery_error_ends_that_delivery_not_the_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from ssehub.hooks import WebhookConfig, Webhooks

    caplog.set_level(logging.WARNING, logger="ssehub.hooks")
    with app() as receiver:

        async def body() -> tuple[int, int, int, int]:
            # passes the config's checks, but httpx cannot use it (InvalidURL,
            # not an httpx.HTTPError)
            config = WebhookConfig(("http://[::1/hook", receiver.url), attempts=3)
            hooks = Webhooks(config)
            try:
                assert hooks.send_nowait("topic.watched", {"topic": "a"})
                assert hooks.send_nowait("topic.unwatched", {"topic": "a"})
                for _ in range(2000):
                    if hooks.statistics().sent == 2:
                        break
                    await asyncio.sleep(0.01)
                stats = hooks.statistics()
            finally:
                await hooks.aclose()
            return stats.sent, stats.failed, stats.abandoned, stats.pending

        assert asyncio.run(body()) == (2, 2, 2, 0)
        assert [(b["type"], b["topic"]) for b in receiver.bodies()] == [
            ("topic.watched", "a"),
            ("topic.unwatched", "a"),
        ]
    assert [r.getMessage() for r in caplog.records if r.name == "ssehub.hooks"] == [
        f"webhook {kind} to (a URL that does not parse) abandoned: unexpected InvalidURL"
        for kind in ("topic.watched", "topic.unwatched")
    ]
