"""URL Pattern matchers (Mercure 1.0 `urlpattern`) on the linear engine."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssehub.hub import Matcher, PatternIndex, SelectorSet
from ssehub.hub._linear import Scan, matches
from ssehub.hub._urlpattern import (
    MAX_URLPATTERN_LENGTH,
    MAX_URLPATTERN_PARTS,
    URLPattern,
    _components,
)

HUB = "https://hub.example/.well-known/mercure"


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("https://example.com/books/:id", "https://example.com/books/1", True),
        ("https://example.com/books/:id", "https://example.com/books/1/2", False),
        ("https://example.com/books/:id", "https://example.com/books/", False),
        ("https://example.com/books/:id", "https://example.com/books/1?any=query#and-hash", True),
        ("https://example.com/books/:id", "https://EXAMPLE.com:443/books/1", True),
        ("https://example.com/books/:id", "https://example.com:8443/books/1", False),
        ("https://example.com/books/:id", "http://example.com/books/1", False),
        ("https://example.com/books/:id", "https://example.org/books/1", False),
        ("https://example.com/books/:id?", "https://example.com/books", True),
        ("https://example.com/books/:id?", "https://example.com/books/1", True),
        ("https://example.com/books/:id*", "https://example.com/books", True),
        ("https://example.com/books/:id*", "https://example.com/books/1/2/3", True),
        ("https://example.com/books/:id*", "https://example.com/books/1//3", False),
        ("https://example.com/books/:id+", "https://example.com/books", False),
        ("https://example.com/books/:id+", "https://example.com/books/1/2", True),
        ("https://example.com/books/*", "https://example.com/books/1/2", True),
        ("https://example.com/books/*", "https://example.com/book", False),
        ("https://example.com/books/:id.json", "https://example.com/books/7.json", True),
        ("https://example.com/books/:id#top", "https://example.com/books/7#top", True),
        ("https://example.com/books/:id#top", "https://example.com/books/7?q=1#top", False),
        ("https://example.com/search?q=:term", "https://example.com/search?q=x", True),
        ("https://example.com/search?q=:term", "https://example.com/search?q=", False),
        ("https://example.com/\\:id", "https://example.com/:id", True),
        ("https://example.com/\\:id", "https://example.com/1", False),
        ("http{s}?://example.com/:id", "http://example.com/1", True),
        ("http{s}?://example.com/:id", "https://example.com/1", True),
        ("https://{:sub.}?example.com/*", "https://example.com/x", True),
        ("https://{:sub.}?example.com/*", "https://a.example.com/x", True),
        ("https://{:sub.}?example.com/*", "https://a.b.example.com/x", False),
        ("https://*.example.com/*", "https://a.b.example.com/x", True),
        ("https://example.com:*/*", "https://example.com:8080/x", True),
        ("https://example.com", "https://example.com/", True),
        ("https://example.com", "https://example.com/x", False),
        ("https://example.com/books{/:id}?", "https://example.com/books/1", True),
        ("https://example.com/books{/:id}?", "https://example.com/books", True),
        ("urn:*", "urn:isbn:0451450523", True),  # an opaque path
        ("urn:*", "url:isbn:0451450523", False),
        ("mailto:*@example.com", "mailto:a@example.com", True),
        ("mailto:*@example.com", "mailto:a@example.org", False),
        ("urn:\\x/:rest", "urn:x/a/b", True),  # no `/` delimiter in an opaque path
    ],
)
def test_matching(pattern: str, topic: str, expected: bool) -> None:
    assert Matcher.urlpattern(pattern).matches(topic) is expected
    assert SelectorSet([], matchers=[Matcher.urlpattern(pattern)]).matches([topic]) is expected


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        (
            "/.well-known/mercure/subscriptions/:topic/:sub",
            "/.well-known/mercure/subscriptions/a/b",
            True,
        ),
        ("/.well-known/mercure/subscriptions/:topic/:sub", f"{HUB}/subscriptions/a/b", True),
        (
            "/.well-known/mercure/subscriptions/:topic/:sub",
            "https://other.example/.well-known/mercure/subscriptions/a/b",
            False,
        ),
        ("https://example.com/books/:id", "/books/1", False),  # resolved against the hub
        ("https://hub.example/books/:id", "/books/1", True),
    ],
)
def test_relative_patterns_and_topics_use_the_hub_url(
    pattern: str, topic: str, expected: bool
) -> None:
    assert Matcher.urlpattern(pattern, base=HUB).matches(topic) is expected


def test_a_topic_that_is_not_a_url_matches_no_pattern() -> None:
    pattern = Matcher.urlpattern("https://example.com/*")
    assert not pattern.matches("https://example.com:99999/x")  # a port out of range
    assert not pattern.matches("/books/1")  # relative, and no base
    assert not pattern.matches("not a url")
    assert Matcher.urlpattern("*").matches("not a url")  # `*` is every topic


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("https://example.com/:id(\\d+)", "regular-expression groups"),
        ("https://example.com/(.*)", "regular-expression groups"),
        ("books/:id", "not absolute"),
        ("urn:isbn:*", "not absolute"),
        ("/books/:id", "needs a base URL"),
        ("https://example.com/{a", "'{' without '}'"),
        ("https://example.com/a}", "'}' without '{'"),
        ("https://example.com/{a{b}}", "nested"),
        ("https://example.com/{:a:b}", "at most one name"),
        ("https://example.com/{:a*}", "without modifiers"),
        ("https://user@example.com/", "user info"),
        ("https:///books", "no host"),
        ("https://example.com/\\", "trailing"),
        ("", "empty"),
        ("https://example.com/" + "a" * MAX_URLPATTERN_LENGTH, "MAX_URLPATTERN_LENGTH"),
        ("https://example.com/" + "/:p" * (MAX_URLPATTERN_PARTS + 1), "MAX_URLPATTERN_PARTS"),
    ],
)
def test_malformed_patterns_are_refused_by_name(pattern: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        URLPattern(pattern)
    with pytest.raises(ValueError, match=problem):
        Matcher.urlpattern(pattern)


def _steps(pattern: URLPattern, topic: str) -> int:
    values = _components(topic, None)
    assert values is not None
    total = 0
    for index, pieces in pattern._components:
        scan = Scan(values[index])
        matches(pieces, scan)
        total += scan.steps
    return total


@pytest.mark.parametrize(
    "text",
    [
        "https://example.com/" + "*a" * 15 + "b",  # (.*)a(.*)a...b backtracks on a regex engine
        "https://example.com/" + ":a-" * 15 + "b",
        "https://example.com/{*a}?" * 1 + "{*a}?" * 14 + "b",
    ],
)
def test_pathological_patterns_cost_the_same_steps_whatever_the_topic(text: str) -> None:
    pattern = URLPattern(text)
    steps = set()
    for n in (10, 1_000, 50_000):
        for path in ("a" * n, "a-" * n, "a" * n + "b"):
            topic = "https://example.com/" + path
            steps.add(_steps(pattern, topic))
            pattern.match(topic)
    assert max(steps) <= 64


def test_a_repeated_group_loops_at_most_once_per_segment() -> None:
    pattern = URLPattern("https://example.com/:seg*")
    for n in (10, 1_000):
        topic = "https://example.com" + "/a" * n
        assert pattern.match(topic)
        assert _steps(pattern, topic) <= 3 * n + 10


def test_an_index_confirms_url_patterns() -> None:
    index: PatternIndex[str] = PatternIndex()
    index.add(
        "books", SelectorSet([], matchers=[Matcher.urlpattern("https://example.com/books/:id")])
    )
    index.add("all", SelectorSet([], matchers=[Matcher.urlpattern("*")]))
    index.add("urn", SelectorSet([], matchers=[Matcher.exact("urn:x")]))
    assert index.matching(("https://example.com/books/1",)) == ["books", "all"]
    assert index.matching(("urn:x",)) == ["all", "urn"]


def _path_oracle(parts: list[tuple[str, str, str]]) -> re.Pattern[str]:
    """The regular expression the URL Pattern standard would build for a
    pathname of these parts (kind, text, modifier), with a backtracking
    engine: the reference for the linear one."""
    out = []
    for kind, text, modifier in parts:
        if kind == "char":
            out.append(re.escape(text))
            continue
        prefix = ""
        if kind in ("name", "any") and modifier and out and out[-1] == "/":
            prefix = out.pop()
        body = {"name": "[^/]+", "any": ".*"}.get(kind) or "".join(
            {"char": re.escape(t), "name": "[^/]+", "any": ".*"}[k] for k, t in _group(text)
        )
        group = f"(?:{prefix}{body})"
        out.append(group + modifier if modifier else group)
    return re.compile("".join(out))


def _group(text: str) -> list[tuple[str, str]]:
    return [("name", c) if c == "N" else ("any", c) if c == "A" else ("char", c) for c in text]


def _path_pattern(parts: list[tuple[str, str, str]]) -> str:
    out = []
    bare = False  # the last part was a name, wildcard or group without a modifier
    for kind, text, modifier in parts:
        if kind == "char":
            out.append("\\" + text if text.isalnum() else text)
        elif kind == "name":
            out.append(":n" + str(len(out)) + modifier)
        elif kind == "any":
            # `*` right after `:n` or `*` would be read as its modifier
            out.append(("{*}" if bare else "*") + modifier)
        else:
            inner = "".join(
                ":g" if c == "N" else "*" if c == "A" else "\\" + c if c.isalnum() else c
                for c in text
            )
            out.append("{" + inner + "}" + modifier)
        bare = kind != "char" and not modifier
    return "".join(out)


_PARTS = st.lists(
    st.one_of(
        st.tuples(st.just("char"), st.sampled_from(["/", "a", "b", "-", "."]), st.just("")),
        st.tuples(
            st.sampled_from(["name", "any"]), st.just(""), st.sampled_from(["", "?", "*", "+"])
        ),
        st.tuples(
            st.just("group"),
            st.text("/ab-NA", min_size=1, max_size=4).filter(
                lambda t: t.count("N") + t.count("A") <= 1
            ),
            st.sampled_from(["", "?", "*", "+"]),
        ),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=120, deadline=None)
@given(_PARTS, st.text("/ab-.", max_size=12))
def test_pathnames_agree_with_the_standards_regular_expression(
    parts: list[tuple[str, str, str]], path: str
) -> None:
    pattern = _path_pattern([("char", "/", ""), *parts])
    topic = "https://example.com" + ("/" + path if not path.startswith("/") else path)
    values = _components(topic, None)
    assert values is not None
    expected = _path_oracle([("char", "/", ""), *parts]).fullmatch(values[5]) is not None
    assert URLPattern("https://example.com" + pattern).match(topic) is expected, pattern
