"""Per-topic policies (`HubConfig.topics`): which policy a topic gets, what
they check, and what the hub does with them, in process; the `[[topics]]`
tables of `serve --config`, checked at start."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from ssehub.backends import MemoryBackend
from ssehub.cli import main
from ssehub.hub import (
    EventSubscription,
    Hub,
    HubConfig,
    Matcher,
    SubscriberLimitError,
    TopicPolicies,
    TopicPolicy,
)
from ssehub.protocol import Event
from ssehub.testing import FakeClock

BOOKS = "https://example.com/books/{id}"


def test_the_first_matching_policy_wins_and_others_get_none() -> None:
    first = TopicPolicy("https://example.com/books/1", history=5)
    books = TopicPolicy(BOOKS, history=50, newest=1)
    pattern = TopicPolicy("https://example.com/:kind/:id", "urlpattern", history_age=60)
    braces = TopicPolicy("literally{x}", "exact", max_subscribers=2)
    anything = TopicPolicy("*", history=7)
    policies = TopicPolicies((first, books, pattern, braces))
    assert policies.policy("https://example.com/books/1") is first
    assert policies.policy("https://example.com/books/2") is books
    assert policies.policy("https://example.com/books/2/reviews") is None
    assert policies.policy("https://example.com/authors/3") is pattern
    assert policies.policy("literally{x}") is braces
    assert policies.policy("literallyx") is None
    assert policies.bounds("https://example.com/books/2") == (50, None)
    assert policies.bounds("elsewhere") == (None, None)
    assert (policies.longest_age, policies.most_events) == (60, 50)
    everything = TopicPolicies((braces, anything))
    assert everything.policy("anything") is anything
    assert everything.policy("literally{x}") is braces


def test_newest_applies_to_subscriptions_naming_topics_exactly() -> None:
    policies = TopicPolicies(
        (TopicPolicy("score", newest=1), TopicPolicy("log/{n}", newest=5), TopicPolicy("other"))
    )
    assert policies.newest(("score",)) == 1
    assert policies.newest(("score", "log/1")) == 5
    assert policies.newest(("other", "unknown")) == 0
    assert policies.newest(("score", "log/{n}")) == 0  # a template names no topic
    assert policies.newest(("score", "*")) == 0
    assert policies.newest((Matcher.exact("log/2"),)) == 5
    assert policies.newest((Matcher.urlpattern("https://x/:id"),)) == 0


def test_a_long_topic_against_many_templates_matches_in_linear_time() -> None:
    """The matchers never backtrack: a topic built to make a regex explode
    is matched at once (the cost is counted in lookups, not timed)."""
    hostile = TopicPolicy("{+a}{+b}{+c}{+d}{+e}{+f}{+g}{+h}Z", history=1)
    policies = TopicPolicies((hostile,))
    assert policies.policy("x" * 20_000) is None
    assert policies.policy("x" * 20_000 + "Z") is hostile


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"match": ""}, "TopicPolicy.match must be a non-empty str"),
        ({"match": "a", "match_type": "regex"}, "match_type must be one of template, exact"),
        ({"match": "books/{id"}, r"TopicPolicy.match 'books/\{id': invalid URI template"),
        ({"match": "/books/:id", "match_type": "urlpattern"}, "must be absolute"),
        ({"match": "a", "history": 0}, "TopicPolicy.history must be an int >= 1, not 0"),
        ({"match": "a", "history": True}, "TopicPolicy.history must be an int >= 1"),
        ({"match": "a", "newest": -1}, "TopicPolicy.newest must be an int >= 1, not -1"),
        ({"match": "a", "max_subscribers": 0}, "max_subscribers must be an int >= 1"),
        ({"match": "a", "history_age": 0}, "history_age must be > 0 seconds, not 0"),
        ({"match": "a", "history_age": float("inf")}, "history_age must be > 0 seconds"),
        ({"match": "a", "history": 2, "newest": 3}, r"newest \(3\) must not be over its history"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TopicPolicy(**kwargs)  # type: ignore[arg-type]


def test_hub_config_takes_only_policies() -> None:
    with pytest.raises(ValueError, match=r"HubConfig\.topics must be a tuple of TopicPolicy"):
        HubConfig(topics=[TopicPolicy("a")])  # type: ignore[arg-type]


# -- the hub ----------------------------------------------------------------------


def run(body: Callable[[Hub, FakeClock], Awaitable[None]], *policies: TopicPolicy) -> None:
    async def main() -> None:
        clock = FakeClock()
        backend = MemoryBackend(clock=clock.time)
        async with Hub(HubConfig(topics=policies), backend=backend, clock=clock) as hub:
            await body(hub, clock)

    asyncio.run(main())


def test_the_hub_gives_its_backend_each_topics_history_bounds() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        for i in range(5):
            await hub.publish("short", f"s{i}")
            await hub.publish("plain", f"p{i}")
        await clock.advance(120)  # past short's age, not the default hour
        await hub.publish("short", "fresh")
        history = await hub.backend.history(["short"], None)
        assert [r.event.data for r in history.records] == ["fresh"]
        history = await hub.backend.history(["plain"], None)
        assert [r.event.data for r in history.records] == [f"p{i}" for i in range(5)]
        assert hub.backend.limits.of("short") == (2, 60)

    run(body, TopicPolicy("short", history=2, history_age=60))


async def take(events: EventSubscription, n: int) -> list[str]:
    return [(await asyncio.wait_for(anext(events), 5)).data for _ in range(n)]


def test_a_subscriber_asking_no_replay_gets_its_topics_newest() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        for i in range(3):
            await hub.publish("score", f"{i}")
            await hub.publish("log", f"log {i}")
        async with hub.subscribe("score") as events:
            assert await take(events, 1) == ["2"]
            await asyncio.wait_for(events.wait_live(), 5)  # a replay: marked as one
        async with hub.subscribe(["score", "log"]) as events:  # the largest, for each
            assert await take(events, 4) == ["1", "log 1", "2", "log 2"]
        async with hub.subscribe("score", newest=3) as events:  # asked: its own wins
            assert await take(events, 3) == ["0", "1", "2"]
        async with hub.subscribe("score", last_event_id="earliest") as events:  # a resume
            assert await take(events, 3) == ["0", "1", "2"]
        async with hub.subscribe(["score", "log/{n}"]) as events:  # a template: no newest
            await hub.publish("score", "live")
            assert await take(events, 1) == ["live"]

    run(body, TopicPolicy("score", newest=1), TopicPolicy("log", newest=2))


def test_a_subscription_past_a_topics_maximum_is_refused_until_one_leaves() -> None:
    async def body(hub: Hub, clock: FakeClock) -> None:
        first, second = hub.subscribe("busy"), hub.subscribe(["quiet", "busy"])
        await first.open()
        await second.open()
        third = hub.subscribe("busy")
        with pytest.raises(SubscriberLimitError, match=r"topic 'busy' has its maximum of 2") as e:
            await third.open()
        assert (e.value.topic, e.value.limit, e.value.retry_after) == ("busy", 2, 10)
        assert third.closed
        assert hub.subscribers("busy") == 2
        everything = hub.subscribe("*")  # patterns name no topic: not refused, but counted
        await everything.open()
        with pytest.raises(SubscriberLimitError):
            await hub.subscribe("busy").open()
        await hub.subscribe("elsewhere").open()  # another topic: its own count
        everything.close()
        first.close()
        again = hub.subscribe("busy")
        await again.open()  # room again
        assert hub.subscribers("busy") == 2
        event_id = await hub.publish("busy", "x")
        assert await asyncio.wait_for(anext(again), 5) == Event("x", id=event_id)

    run(body, TopicPolicy("busy", max_subscribers=2))


# -- the [[topics]] tables of serve --config -----------------------------------------

GOOD = '[[topics]]\nmatch = "https://example.com/books/{id}"\nhistory = 10\n'


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('histroy = 5\nmatch = "a"', "#2: unknown key 'histroy' (did you mean history?)"),
        ('match = "a"\ncolour = 1', "#2: unknown key 'colour' (one of match, match_type,"),
        ("history = 5", '#2: match is missing (the selector: match = "https://'),
        ("match = 5", "#2: match must be a string, not 5"),
        ('match = "a"\nhistory = "5"', "#2: history must be an integer, not '5'"),
        ('match = "a"\nhistory = -5', "#2: history must be an int >= 1, not -5"),
        ('match = "a"\nhistory_age = "1h"', "#2: history_age must be a number of seconds"),
        ('match = "a"\nnewest = 0', "#2: newest must be an int >= 1, not 0"),
        ('match = "a"\nmax-subscribers = true', "#2: max_subscribers must be an integer, not True"),
        ('match = "a{"', "#2: match 'a{': invalid URI template"),
        ('match = "/b/:id"\nmatch-type = "urlpattern"', "#2: match '/b/:id': a URL pattern here"),
        ('match = "a"\nmatch_type = "glob"', "#2: match_type must be one of template, exact"),
    ],
)
def test_a_bad_topics_table_is_one_line_naming_file_table_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str, message: str
) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(f"port = 0\n{GOOD}\n[[topics]]\n{table}\n")
    assert main(["serve", "--config", str(config), "--store", "memory:"]) == 2
    err = capsys.readouterr().err
    assert err == f"ssehub serve: {config}: [[topics]] {message}" + err.partition(message)[2]
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_topics_that_are_not_tables_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "hub.toml"
    config.write_text("topics = 5\n")
    assert main(["serve", "--config", str(config)]) == 2
    assert capsys.readouterr().err == (
        f"ssehub serve: {config}: topics: expected [[topics]] tables (an array of tables)\n"
    )


def test_background_hub_takes_the_policies_too() -> None:
    from ssehub import BackgroundHub

    config = HubConfig(topics=(TopicPolicy("status", history=1),))
    with BackgroundHub(0, config=config) as hub:
        for data in ("starting", "running"):
            hub.publish("status", data)
        sub = hub.subscribe("status", last_event_id="earliest")
        try:
            assert next(iter(sub)).data == "running"
        finally:
            sub.close()
