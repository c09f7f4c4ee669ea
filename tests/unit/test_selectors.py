"""Topic selectors: exact topics, `*`, and RFC 6570 URI templates."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssehub.hub import (
    MAX_TEMPLATE_EXPRESSIONS,
    MAX_TEMPLATE_LENGTH,
    Hub,
    Matcher,
    PatternIndex,
    SelectorSet,
    selector_matcher,
    selectors_match,
    validate_selector,
)
from ssehub.hub._linear import Scan


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


# --- the linear matcher ------------------------------------------------------

_ORACLE_UNRESERVED = r"(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2})"
_ORACLE_RESERVED = r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})"
_ORACLE_VALUE = rf"(?:{_ORACLE_UNRESERVED}|,)*"
_ORACLE_OPERATORS = {
    "": _ORACLE_VALUE,
    "+": rf"{_ORACLE_RESERVED}*",
    "#": rf"(?:#{_ORACLE_RESERVED}*)?",
    ".": rf"(?:\.{_ORACLE_VALUE})*",
    "/": rf"(?:/{_ORACLE_VALUE})*",
    ";": rf"(?:;(?:{_ORACLE_UNRESERVED}|[=,])*)*",
    "?": rf"(?:\?(?:{_ORACLE_UNRESERVED}|[=,&])*)?",
    "&": rf"(?:&(?:{_ORACLE_UNRESERVED}|[=,])*)*",
}


def _oracle(template: str) -> re.Pattern[str]:
    """The backtracking regex translation ssehub used before the linear
    matcher: kept here only as the reference its answers must agree with."""
    pattern = []
    for literal, expression in re.findall(r"([^{]*)(?:\{([^}]*)\})?", template):
        pattern.append(re.escape(literal))
        if expression:
            operator = expression[:1] if expression[:1] in "+#./;?&" else ""
            pattern.append(_ORACLE_OPERATORS[operator])
    return re.compile("".join(pattern))


_LITERAL_CHARS = "ab/.,%4F?&=#;-:é~Z"
_OPERATOR_CHARS = ["", "+", "#", ".", "/", ";", "?", "&"]


@st.composite
def _templates(draw: st.DrawFn) -> tuple[str, list[str | None]]:
    """A template as alternating literals and expressions (None: a literal)."""
    parts: list[str | None] = []
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):
            parts.append(None)
        else:
            parts.append(draw(st.sampled_from(_OPERATOR_CHARS)))
    text = []
    for op in parts:
        if op is None:
            text.append(draw(st.text(_LITERAL_CHARS, min_size=1, max_size=4)))
        else:
            text.append("{" + op + draw(st.sampled_from(["x", "y*", "x,y", "v:3"])) + "}")
    return "".join(text), parts


@settings(max_examples=150, deadline=None)
@given(_templates(), st.data())
def test_agrees_with_the_backtracking_regex(
    template_parts: tuple[str, list[str | None]], data: st.DataObject
) -> None:
    template, _ = template_parts
    # topics near the template: each expression replaced by some text, then maybe mutated
    topic = re.sub(r"\{[^}]*\}", lambda _: data.draw(st.text(_LITERAL_CHARS, max_size=5)), template)
    if data.draw(st.booleans()):
        topic = data.draw(st.text(_LITERAL_CHARS, max_size=12))
    expected = _oracle(template).fullmatch(topic) is not None
    assert selector_matcher(template)(topic) is expected
    assert SelectorSet([template]).matches([topic]) is expected


ATTACK = "".join(f"{{+v{i}}}" for i in range(10)) + "Z"


@pytest.mark.parametrize(
    "template",
    [ATTACK, "{+a}{b}" * 16, "{/a}{.b}{;c}{?d}{&e}{#f}{g}{+h}" * 4, "a{x}" * 32],
)
def test_attacks_cost_the_same_steps_whatever_the_topic_length(template: str) -> None:
    """The matcher applies each piece of the template once: the same
    number of steps for a topic of 10 or 100,000 characters, matching or
    not (the backtracking regex took 45 s on 30 characters of ATTACK)."""
    steps = set()
    for n in (10, 1_000, 100_000):
        for topic in ("a" * n, "a" * n + "Z", "a/" * n + "X", "%41" * n + "Z"):
            scan = Scan(topic)
            selector_matcher(template)  # compiled (and validated) once
            SelectorSet([template]).patterns[0].match(topic, scan)
            steps.add(scan.steps)
    assert max(steps) <= template.count("{") * 2 + 1


def test_an_attack_costs_about_a_plain_scan_of_the_topic() -> None:
    topic = "a" * 200_000 + "Z"
    matcher = selector_matcher(ATTACK)
    rounds = 20
    started = time.perf_counter()
    for _ in range(rounds):
        assert matcher(topic)
    linear = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(rounds):
        assert re.fullmatch(r"[a-z]*Z", topic)  # one pass of a regex over the topic
    scan = time.perf_counter() - started
    assert linear < 50 * scan + 0.05


def test_limits_are_refused_by_name() -> None:
    too_long = "https://example.com/" + "a" * MAX_TEMPLATE_LENGTH + "{x}"
    too_many = "".join(f"{{v{i}}}" for i in range(MAX_TEMPLATE_EXPRESSIONS + 1))
    at_limit = "".join(f"{{v{i}}}" for i in range(MAX_TEMPLATE_EXPRESSIONS))
    for template, limit in (
        (too_long, "MAX_TEMPLATE_LENGTH"),
        (too_many, "MAX_TEMPLATE_EXPRESSIONS"),
    ):
        with pytest.raises(ValueError, match=limit):
            validate_selector(template)
        with pytest.raises(ValueError, match=limit):
            SelectorSet([template])
        assert SelectorSet([template], strict=False).matches(["x"]) is False
        assert selector_matcher(template)("x") is False
        with pytest.raises(ValueError, match=limit):
            Hub().subscribe(template)
    validate_selector(at_limit)
    assert selector_matcher(at_limit)("abc")
    assert MAX_TEMPLATE_LENGTH == 1024
    assert MAX_TEMPLATE_EXPRESSIONS == 32


def test_selector_sets_and_matchers() -> None:
    selectors = SelectorSet(
        ["https://example.com/a", "https://example.com/books/{id}"],
        matchers=[Matcher.exact("urn:x"), Matcher.urlpattern("https://example.com/u/:id")],
    )
    assert selectors.has_patterns
    assert not selectors.any
    assert selectors.exact == {"https://example.com/a", "urn:x"}
    for topic, expected in [
        ("https://example.com/a", True),
        ("urn:x", True),
        ("https://example.com/books/9", True),
        ("https://example.com/u/9", True),
        ("https://example.com/u/9/x", False),
        ("https://example.com/b", False),
    ]:
        assert selectors.matches([topic]) is expected, topic
    assert SelectorSet([], matchers=[Matcher.urlpattern("*")]).any
    assert SelectorSet([], matchers=[Matcher.exact("*")]).matches(["anything"])
    assert Matcher.exact("a") == Matcher.exact("a") != Matcher.template("a")
    assert (
        len(
            {
                Matcher.urlpattern("/x", base="https://h/"),
                Matcher.urlpattern("/x", base="https://h/"),
            }
        )
        == 1
    )
    assert Matcher.template("https://example.com/{id}").matches("https://example.com/1")
    assert not Matcher.template("https://example.com/{id}").matches("https://example.com/1/2")
    with pytest.raises(ValueError, match="invalid URI template"):
        Matcher.template("{x")
    with pytest.raises(ValueError, match="regular-expression groups"):
        Matcher.urlpattern("https://example.com/:id(\\d+)")


# --- the pattern index ---------------------------------------------------------

_POOL = [
    "*",
    "https://example.com/books/1",
    "https://example.com/books/{id}",
    "https://example.com/books/{id}/reviews",
    "https://example.com/{+path}",
    "https://example.org/{x}",
    "{scheme}://example.com/books/1",
    "{x}",
    "{+all}",
    "urn:{a}:b",
    "{a}b",
    "b",
    "a{/x*}",
]
_TOPICS = [
    "https://example.com/books/1",
    "https://example.com/books/2/reviews",
    "https://example.org/x",
    "https://example.org/x/y",
    "urn:q:b",
    "b",
    "ab",
    "a/b/c",
    "https://example.com/",
]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 7),
            st.booleans(),
            st.frozensets(st.sampled_from(_POOL), min_size=1, max_size=3),
        ),
        max_size=30,
    ),
    st.lists(st.sampled_from(_TOPICS), min_size=1, max_size=3),
)
def test_pattern_index_finds_exactly_the_matching_owners(
    operations: list[tuple[int, bool, frozenset[str]]], topics: list[str]
) -> None:
    index: PatternIndex[int] = PatternIndex()
    reference: dict[int, SelectorSet] = {}
    for key, add, selectors in operations:
        if add:
            index.add(key, SelectorSet(selectors))
            reference[key] = SelectorSet(selectors)
        else:
            index.discard(key)
            reference.pop(key, None)
    assert len(index) == len(reference)
    expected = [key for key, selectors in reference.items() if selectors.matches(topics)]
    assert index.matching(tuple(topics)) == expected


def test_pattern_index_touches_few_patterns_for_an_unrelated_topic() -> None:
    index: PatternIndex[int] = PatternIndex()
    for i in range(5_000):
        index.add(i, SelectorSet([f"https://example.com/app{i}/items/{{id}}"]))
    for i in range(60):  # 60 owners of 64 templates each, some starting with an expression
        templates = [f"https://example.com/t{i}/{j}/{{x}}" for j in range(60)]
        templates += [f"{{+base}}/feed{i}-{j}.json" for j in range(4)]
        index.add(5_000 + i, SelectorSet(templates))
    assert index.matching(("https://elsewhere.example/news/1",)) == []
    assert index.confirmations == 0
    assert index.matching(("https://example.com/app42/items/7",)) == [42]
    assert index.confirmations == 1
    assert index.matching(("https://example.com/t3/5/abc",)) == [5_003]
    assert index.confirmations <= 3
    before = index.confirmations
    assert index.matching(("https://cdn.example/feed7-2.json",)) == [5_007]
    assert index.confirmations - before == 1
    index.discard(42)
    assert index.matching(("https://example.com/app42/items/7",)) == []


def test_templates_differing_only_in_names_are_confirmed_once() -> None:
    """Distinct selector strings of one language (an attacker's variants of
    `{+a}/{+b}`) cost one confirmation per topic, not one per owner."""
    index: PatternIndex[int] = PatternIndex()
    for i in range(1_000):
        index.add(i, SelectorSet([f"{{+a{i}}}/{{+b{i}}}"]))
    assert index.matching(("https://example.com/x",)) == list(range(1_000))
    assert index.confirmations == 1
    assert index.matching(("no-slash",)) == []
    assert index.confirmations == 2
    for i in range(999):
        index.discard(i)
    assert index.matching(("a/b",)) == [999]
