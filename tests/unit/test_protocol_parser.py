"""The parser: WHATWG vectors fed whole, byte by byte and split at every
index; property tests for round trips and robustness."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssehub.protocol import (
    Event,
    EventStreamParser,
    ProtocolError,
    RemoteProtocolError,
    encode_comment,
    encode_event,
)


def parse(*chunks: bytes) -> list[Event]:
    parser = EventStreamParser()
    events: list[Event] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.close())
    return events


# (name, stream, expected events) — many from the examples of the spec.
VECTORS: list[tuple[str, bytes, list[Event]]] = [
    ("simple", b"data: hello\n\n", [Event("hello")]),
    ("spec stock ticker", b"data: YHOO\ndata: +2\ndata: 10\n\n", [Event("YHOO\n+2\n10")]),
    (
        "spec four blocks",
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
        b"data:  third event\n\n",
        [Event("first event", id="1"), Event("second event"), Event(" third event")],
    ),
    ("spec two events, empty data", b"data\n\ndata\ndata\n\ndata:\n", [Event(""), Event("\n")]),
    ("spec space after colon", b"data:test\n\ndata: test\n\n", [Event("test"), Event("test")]),
    ("CRLF", b"data: a\r\ndata: b\r\n\r\n", [Event("a\nb")]),
    ("CR only", b"data: a\rdata: b\r\r", [Event("a\nb")]),
    ("mixed ends", b"data: a\r\ndata: b\rdata: c\n\r\n", [Event("a\nb\nc")]),
    ("event type", b"event: tick\ndata: 1\n\n", [Event("1", event="tick")]),
    ("type resets", b"event: tick\ndata: 1\n\ndata: 2\n\n", [Event("1", event="tick"), Event("2")]),
    ("type without data is dropped", b"event: tick\n\ndata: 2\n\n", [Event("2")]),
    ("id persists", b"id: 5\ndata: a\n\ndata: b\n\n", [Event("a", id="5"), Event("b", id="5")]),
    ("empty id resets", b"id: 5\ndata: a\n\nid\ndata: b\n\n", [Event("a", id="5"), Event("b")]),
    (
        "id with NUL ignored",
        b"id: 5\ndata: a\n\nid: 6\x007\ndata: b\n\n",
        [Event("a", id="5"), Event("b", id="5")],
    ),
    ("id set without data", b"id: 9\n\ndata: x\n\n", [Event("x", id="9")]),
    ("retry digits", b"retry: 1500\ndata: x\n\n", [Event("x", retry=1500)]),
    (
        "retry not digits",
        b"retry: 15x\ndata: x\n\nretry: -1\ndata: y\n\n",
        [Event("x"), Event("y")],
    ),
    ("retry empty", b"retry\ndata: x\n\n", [Event("x")]),
    # Chromium holds retry in a uint64 and ignores a value that does not fit
    ("retry max held", b"retry: 18446744073709551615\ndata: x\n\n", [Event("x", retry=2**64 - 1)]),
    ("retry past max ignored", b"retry: 18446744073709551616\ndata: x\n\n", [Event("x")]),
    (
        "retry of 4,400 digits ignored, event kept",
        b"retry: 250\ndata: a\n\nretry: " + b"9" * 4400 + b"\ndata: x\n\n",
        [Event("a", retry=250), Event("x")],
    ),
    ("retry leading zeros", b"retry: " + b"0" * 4400 + b"42\ndata: x\n\n", [Event("x", retry=42)]),
    ("one space removed only", b"data:   x\n\n", [Event("  x")]),
    ("no colon: empty value", b"data\n\n", [Event("")]),
    ("unknown field ignored", b"foo: bar\ndata: x\n\n", [Event("x")]),
    ("field names are case-sensitive", b"Data: x\n\n", []),
    ("colon in value", b"data: a:b: c\n\n", [Event("a:b: c")]),
    ("comment only", b": hi\n\n", []),
    ("BOM stripped", b"\xef\xbb\xbfdata: x\n\n", [Event("x")]),
    ("second BOM kept", b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n", []),
    ("BOM later is data", b"data: \xef\xbb\xbfx\n\n", [Event("\ufeffx")]),
    ("invalid UTF-8", b"data: a\xffb\xe2\x82\n\n", [Event("a\ufffdb\ufffd")]),
    ("incomplete event dropped", b"data: a\n\ndata: b\n", [Event("a")]),
    ("incomplete line dropped", b"data: a\n\ndata: b", [Event("a")]),
    (
        "unicode line separators are data",
        "data: a\u2028b\u0085c\n\n".encode(),
        [Event("a\u2028b\u0085c")],
    ),
    ("NUL in data", b"data: a\x00b\n\n", [Event("a\x00b")]),
]


@pytest.mark.parametrize(("name", "stream", "expected"), VECTORS, ids=[v[0] for v in VECTORS])
def test_vector_whole(name: str, stream: bytes, expected: list[Event]) -> None:
    assert parse(stream) == expected


@pytest.mark.parametrize(("name", "stream", "expected"), VECTORS, ids=[v[0] for v in VECTORS])
def test_vector_byte_by_byte(name: str, stream: bytes, expected: list[Event]) -> None:
    assert parse(*(stream[i : i + 1] for i in range(len(stream)))) == expected


@pytest.mark.parametrize(("name", "stream", "expected"), VECTORS, ids=[v[0] for v in VECTORS])
def test_vector_split_at_every_index(name: str, stream: bytes, expected: list[Event]) -> None:
    for i in range(len(stream) + 1):
        assert parse(stream[:i], stream[i:]) == expected, f"split at {i}"


def test_cr_split_from_lf_is_one_line_end() -> None:
    parser = EventStreamParser()
    assert parser.feed(b"data: a\r") == []
    # the CR already ended the line; a LF right after it is part of it
    assert parser.feed(b"\ndata: b\r\n\r") == [Event("a\nb")]
    assert parser.feed(b"\n") == []
    assert parser.feed(b"\ndata: c\n\n") == [Event("c")]  # a second LF is a blank line


def test_events_are_returned_as_soon_as_complete() -> None:
    parser = EventStreamParser()
    assert parser.feed(b"data: a\n") == []
    assert parser.feed(b"\nda") == [Event("a")]
    assert parser.feed(b"ta: b\n\n") == [Event("b")]


def test_last_event_id_and_retry_state() -> None:
    parser = EventStreamParser()
    parser.feed(b"retry: 2000\nid: 42\ndata: x\n\nid: 43\n")
    assert parser.last_event_id == "42"  # 43 was never dispatched
    assert parser.retry == 2000
    parser.feed(b"\n")
    assert parser.last_event_id == "43"  # set by the blank line, without an event


def test_a_cr_ends_a_line_at_once() -> None:
    parser = EventStreamParser()
    assert parser.feed(b"retry: 750\r") == []
    assert parser.retry == 750
    assert parser.feed(b"data: x\r\r") == [Event("x", retry=750)]
    assert parser.close() == []


def test_a_retry_too_big_keeps_the_last_one_held() -> None:
    parser = EventStreamParser()
    parser.feed(b"retry: 1500\n\n")
    events = parser.feed(b"retry: " + b"7" * 5000 + b"\ndata: kept\n\n")
    assert events == [Event("kept")]
    assert parser.retry == 1500  # ignored, not reset and not raised


def test_feed_after_close_is_an_error() -> None:
    parser = EventStreamParser()
    parser.close()
    with pytest.raises(RuntimeError, match="after close"):
        parser.feed(b"data: x\n\n")


def test_line_limit_raises_remote_protocol_error() -> None:
    parser = EventStreamParser(max_line_bytes=1024)
    parser.feed(b"data: " + b"x" * 1000)
    with pytest.raises(RemoteProtocolError, match="max_line_bytes=1024"):
        parser.feed(b"x" * 100)


def test_line_limit_is_per_line() -> None:
    parser = EventStreamParser(max_line_bytes=64)
    events = parser.feed((b"data: " + b"x" * 50 + b"\n") * 100 + b"\n")
    assert events == [Event("\n".join(["x" * 50] * 100))]


def test_multi_megabyte_event_in_small_chunks() -> None:
    # Linear time: each byte is scanned once however the stream is cut.
    # (A quadratic parser would take minutes here and hit the test timeout.)
    payload = b"y" * (8 * 1024 * 1024)
    stream = b"data: " + payload + b"\n\n"
    parser = EventStreamParser()
    events: list[Event] = []
    for i in range(0, len(stream), 1024):
        events.extend(parser.feed(stream[i : i + 1024]))
    assert len(events) == 1
    assert len(events[0].data) == len(payload)


def test_many_lines_multi_megabyte_event() -> None:
    line = b"data: " + b"z" * 100 + b"\n"
    stream = line * 40_000 + b"\n"
    parser = EventStreamParser()
    events: list[Event] = []
    for i in range(0, len(stream), 777):
        events.extend(parser.feed(stream[i : i + 777]))
    assert len(events) == 1
    assert events[0].data.count("\n") == 39_999


# -- properties ---------------------------------------------------------------------

texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
field_texts = texts.filter(lambda s: "\r" not in s and "\n" not in s)
events = st.builds(
    Event,
    data=texts,
    event=field_texts.filter(bool) | st.just("message"),
    id=st.none() | field_texts.filter(lambda s: s != "" and "\0" not in s),
    retry=st.none() | st.integers(min_value=0, max_value=2**40),
)


def _normalized(event: Event) -> Event:
    """What a parser sees: CRLF and CR in data arrive as LF."""
    return Event(
        event.data.replace("\r\n", "\n").replace("\r", "\n"), event.event, event.id, event.retry
    )


@given(events)
def test_round_trip(event: Event) -> None:
    assert parse(encode_event(event)) == [_normalized(event)]


@given(st.lists(events, max_size=8), st.lists(st.integers(min_value=0), max_size=6))
def test_splitting_never_changes_the_result(evs: list[Event], cuts: list[int]) -> None:
    stream = b"".join(encode_event(e) + encode_comment("hb") for e in evs)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    expected = parse(stream)
    assert parse(*chunks) == expected
    # ids persist across events, so compare each event's own fields
    assert [(e.data, e.event, e.retry) for e in expected] == [
        (_normalized(e).data, e.event, e.retry) for e in evs
    ]


@given(st.lists(st.binary(max_size=64), max_size=10))
def test_any_bytes_never_raise(chunks: list[bytes]) -> None:
    parser = EventStreamParser()
    for chunk in chunks:
        for event in parser.feed(chunk):
            assert isinstance(event.data, str)
    parser.close()


# lines a hostile server might send: fields with huge or odd values
_field_lines = st.tuples(
    st.sampled_from([b"retry", b"id", b"data", b"event", b"", b":"]),
    st.sampled_from([b":", b": ", b""]),
    st.one_of(
        st.binary(max_size=32),
        st.integers(min_value=0, max_value=6000).map(lambda n: b"9" * n),
        st.integers(min_value=0, max_value=6000).map(lambda n: b"0" * n + b"1"),
    ),
    st.sampled_from([b"\n", b"\r", b"\r\n", b"\n\n"]),
).map(b"".join)


@given(st.lists(_field_lines, max_size=12), st.integers(min_value=1, max_value=7000))
def test_any_field_lines_never_raise(lines: list[bytes], cut: int) -> None:
    stream = b"".join(lines)
    whole = parse(stream)
    assert parse(stream[:cut], stream[cut:]) == whole
    for event in whole:
        assert event.retry is None or 0 <= event.retry < 2**64


@given(st.lists(st.binary(max_size=64), max_size=10))
def test_any_bytes_with_a_limit_raise_only_protocol_errors(chunks: list[bytes]) -> None:
    parser = EventStreamParser(max_line_bytes=16)
    try:
        for chunk in chunks:
            parser.feed(chunk)
    except ProtocolError:
        pass


def test_last_event_id_carries_over_a_reconnection() -> None:
    parser = EventStreamParser(last_event_id="41")
    assert parser.last_event_id == "41"
    assert parser.feed(b"data: no id here\n\n") == [Event("no id here", id="41")]
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        EventStreamParser(last_event_id="a\nb")
