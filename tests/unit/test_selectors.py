"""Topic selectors: exact topics, `*`, and RFC 6570 URI templates."""

from __future__ import annotations

import asyncio

import pytest

from ssehub.hub import Hub, selector_matcher, selectors_match, validate_selector


@pytest.mark.parametrize(
    ("selector", "topic", "matches"),
    [
        ("https://example.com/books/1", "https://example.com/books/1", True),
        ("https://example.com/books/1", "https://example.com/books/2", False),
        ("*", "anything at all", True),
        ("https://example.com/books/{id}", "https://example.com/books/1", True),
        ("https://example.com/books/{id}", "https://example.com/books/war%20and%20peace", True),
        ("https://example.com/books/{id}", "https://example.com/books/1/reviews", False),
        ("https://example.com/books/{id}", "https://example.com/books/", True),  # empty value
        ("https://example.com/books/{id}", "https://example.org/books/1", False),
        ("https://example.com/{+path}", "https://example.com/a/b/c?x=1", True),
        ("https://example.com/books{/id*}", "https://example.com/books/1/2", True),
        ("https://example.com/books{/id}", "https://example.com/booksX", False),
        ("https://example.com/search{?q,page}", "https://example.com/search?q=x&page=2", True),
        ("https://example.com/search{?q}", "https://example.com/search", True),
        (
            "https://example.com/{lang}/books/{id}{.format}",
            "https://example.com/fr/books/7.json",
            True,
        ),
        ("https://example.com/users/{id}{#section}", "https://example.com/users/3#bio", True),
        ("/books/{id}", "/books/1", True),
        ("https://example.com/books/{id}.html", "https://example.com/books/1.html", True),
        ("a.b{x}", "aXb", False),  # literal parts are literal, not regex
    ],
)
def test_matching(selector: str, topic: str, matches: bool) -> None:
    assert selector_matcher(selector)(topic) is matches
    assert selectors_match(frozenset([selector]), [topic]) is matches


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("https://example.com/books/{id", "without"),  # never closed
        ("https://example.com/books/id}", "without"),
        ("https://example.com/{a{b}}", "nested"),
        ("https://example.com/{}", "bad expression"),
        ("https://example.com/{!x}", "bad expression"),
        ("https://example.com/{a b}", "bad expression"),
        ("https://example.com/{x:0}", "bad expression"),
    ],
)
def test_malformed_templates_are_refused_by_name(template: str, problem: str) -> None:
    with pytest.raises(ValueError, match=rf"invalid URI template .*{problem}"):
        validate_selector(template)
    assert selector_matcher(template)("https://example.com/x") is False


def test_hub_delivers_and_replays_by_template() -> None:
    async def main() -> None:
        async with Hub() as hub:
            await hub.publish("https://example.com/books/1", "old book")
            await hub.publish("https://example.com/authors/1", "an author")
            sub = hub.subscribe("https://example.com/books/{id}", last_event_id="earliest")
            await sub.open()
            await hub.publish("https://example.com/books/2", "new book")
            await hub.publish("https://example.com/books/2/reviews", "a review")
            await hub.publish(
                ["https://example.com/authors/9", "https://example.com/books/9"], "both"
            )
            got = [await asyncio.wait_for(anext(sub), 5) for _ in range(3)]
            assert [e.data for e in got] == ["old book", "new book", "both"]
            assert hub.statistics().subscribers_by_topic == {"https://example.com/books/{id}": 1}
            sub.close()
            with pytest.raises(ValueError, match="invalid URI template"):
                hub.subscribe("https://example.com/books/{id")

    asyncio.run(main())
