"""A hostile subscriber's selectors cannot stall the hub (issue 11, items
1-2): over real sockets against a real server."""

from __future__ import annotations

import time
from urllib.parse import quote

from ssehub.hub import MAX_TEMPLATE_EXPRESSIONS
from tests.support.helpers import publish, request, subscribe
from tests.support.servers import run, serving

# ten `{+v}` expressions then a literal: a backtracking regex takes ~45 s to
# reject a 40-character topic (the hub froze for as long, per event)
ATTACK = "".join(f"{{+v{i}}}" for i in range(10)) + "Z"
SLOW_TOPIC = "https://example.com/" + "a" * 40


def test_a_backtracking_template_with_a_replay_does_not_stall_the_hub() -> None:
    async def body() -> None:
        async with serving(anonymous_publish=True) as (hub, _, port):
            await hub.publish(SLOW_TOPIC, "not for the attacker")
            await hub.publish("https://example.com/aZ", "old")
            started = time.monotonic()
            stream = await subscribe(port, ATTACK, query_last_event_id="earliest")
            assert stream.status == 200
            assert [e.data for e in await stream.next_events(1, timeout=2)] == ["old"]
            assert time.monotonic() - started < 2

            started = time.monotonic()
            health = await request(port, "GET", "/healthz")
            assert health.status == 200
            assert time.monotonic() - started < 2

            for topic, data in ((SLOW_TOPIC, "slow"), ("https://example.com/bZ", "new")):
                started = time.monotonic()
                answer = await publish(port, topic=topic, data=data)
                assert answer.status == 200, answer.text
                assert time.monotonic() - started < 2
            assert [e.data for e in await stream.next_events(1, timeout=2)] == ["new"]
            stream.close()

    run(body)


def test_a_template_over_the_limits_is_refused_naming_the_limit() -> None:
    async def body() -> None:
        async with serving() as (_, _, port):
            many = "".join(f"{{v{i}}}" for i in range(MAX_TEMPLATE_EXPRESSIONS + 1))
            long = "https://example.com/{id}/" + "a" * 2000
            for template, limit in (
                (many, "MAX_TEMPLATE_EXPRESSIONS"),
                (long, "MAX_TEMPLATE_LENGTH"),
            ):
                answer = await request(port, "GET", "/.well-known/mercure?topic=" + quote(template))
                assert answer.status == 400
                assert limit in answer.text
                assert len(answer.text.splitlines()) == 1

    run(body)
