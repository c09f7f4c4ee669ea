"""The server's request reader takes an origin-form target apart without
`httptools.parse_url` (`_handler.Request`): for every target its parser
lets through, the path and query are what `parse_url` gives, and a target
`parse_url` refuses is refused (400) as before."""

from __future__ import annotations

import httptools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssehub.server import ServerConfig
from ssehub.server._reader import RequestReader

# what a target is made of: URL bytes, the delimiters, escapes, and (less
# often) bytes a parser may refuse: controls, space, DEL, bytes past ASCII
GOOD = [b"/", b"?", b"#", b"%", b"%2F", b"%zz", b"a", b"Z", b"9", b"-._~", b"!$&'()*+,;=:@"]
ODD = [bytes([c]) for c in (0, 9, 10, 12, 13, 32, 34, 60, 62, 92, 94, 96, 123, 124, 125, 127)]
ODD += [b"*", b"\x80", b"\xc3\xa9", b"\xff"]
PIECES = st.one_of(st.sampled_from(GOOD), st.sampled_from(GOOD), st.sampled_from(ODD))
TARGETS = st.tuples(
    st.sampled_from([b"/", b"/", b"/", b"", b"*", b"http://h", b"http://h:80/"]),
    st.lists(PIECES, max_size=12).map(b"".join),
).map(b"".join)


class _Url:
    """What the parser's URL callback gives, alone."""

    def __init__(self) -> None:
        self.url = b""
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        self.complete = True


def _request(target: bytes) -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n"


def _as_parse_url_gives(target: bytes) -> tuple[str, str] | None:
    """(path, query) as `parse_url` takes the target the parser let
    through apart; None where either refuses it."""
    seen = _Url()
    try:
        httptools.HttpRequestParser(seen).feed_data(_request(target))
    except httptools.HttpParserError:
        return None
    if not seen.complete:
        return None
    try:
        url = httptools.parse_url(seen.url)
    except httptools.HttpParserInvalidURLError:
        return None
    try:
        path = url.path.decode("utf-8", "replace")
    except AttributeError:  # no path (`http://h`): the server refuses that too
        return None
    return path, (url.query or b"").decode("utf-8", "replace")


def _as_the_server_reads(target: bytes) -> tuple[str, str] | None:
    reader = RequestReader(ServerConfig())
    if reader.feed(_request(target), False) is not None or not reader.requests:
        return None
    (request,) = reader.requests
    return request.raw_path, request.query


@settings(max_examples=3000, deadline=None)
@given(TARGETS)
def test_a_target_is_taken_apart_as_parse_url_does(target: bytes) -> None:
    assert _as_the_server_reads(target) == _as_parse_url_gives(target)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (b"/.well-known/mercure?topic=t1", ("/.well-known/mercure", "topic=t1")),
        (b"/a?b?c", ("/a", "b?c")),
        (b"/a?", ("/a", "")),
        (b"/a%20b?x=%2F", ("/a%20b", "x=%2F")),
        (b"/a#frag?x", ("/a", "")),
        (b"/a?x#frag", ("/a", "x")),
        (b"http://example.com/p?q=1", ("/p", "q=1")),
        (b"/\xc3\xa9", None),  # the parser refuses bytes past ASCII in a target
        (b"/a\x7fb", None),
    ],
)
def test_targets_as_sent(target: bytes, expected: tuple[str, str] | None) -> None:
    assert _as_the_server_reads(target) == expected == _as_parse_url_gives(target)
