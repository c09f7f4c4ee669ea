"""A publish names at most `max_topics` topics (`--max-topics`, as a
subscription's selectors): beyond, a one-line 400 as soon as the field too
many is read, and nothing is stored or delivered. Before, one 1 MB form of
70,000 `topic` fields held the loop for 130-300 ms and added ~58 MB to the
memory store; twenty of them took it past 1 GB (found by attack, 2026-12-01)."""

from __future__ import annotations

from urllib.parse import urlencode

from tests.support.helpers import request, subscribe
from tests.support.servers import run, serving, until

MERCURE = "/.well-known/mercure"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_a_publish_with_more_topics_than_the_bound_is_refused_and_nothing_is_stored() -> None:
    async def body() -> None:
        async with serving(anonymous_publish=True, max_topics=8) as (hub, _, port):
            watcher = await subscribe(port, "t0")
            await until(lambda: hub.statistics().subscribers == 1)
            nine = urlencode([("topic", f"t{i}") for i in range(9)] + [("data", "x")])
            answer = await request(port, "POST", MERCURE, headers=FORM, body=nine.encode())
            assert (answer.status, answer.text.strip()) == (
                400,
                "more than 8 'topic' fields in one publish",
            )
            # 70,000 of them in one 1 MB body: refused at the ninth, the same line
            flood = ("&".join(f"topic=t{i}" for i in range(70_000)) + "&data=x").encode()
            assert len(flood) < 1024 * 1024
            answer = await request(port, "POST", MERCURE, headers=FORM, body=flood)
            assert answer.status == 400
            assert "more than 8 'topic' fields" in answer.text
            # a repeated topic counts as sent (the bound is on fields read)
            same = urlencode([("topic", "t0")] * 9 + [("data", "x")])
            answer = await request(port, "POST", MERCURE, headers=FORM, body=same.encode())
            assert answer.status == 400
            assert hub.statistics().events_published == 0
            eight = urlencode([("topic", f"t{i}") for i in range(8)] + [("data", "ok")])
            answer = await request(port, "POST", MERCURE, headers=FORM, body=eight.encode())
            assert answer.status == 200
            [event] = await watcher.next_events(1)
            assert event.data == "ok"  # the only one stored and delivered
            assert hub.statistics().events_published == 1
            watcher.close()

    run(body)
