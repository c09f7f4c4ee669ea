"""The encoder: exact bytes, and refusals that name the field."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from ssehub.protocol import Event, LocalProtocolError, encode_comment, encode_event


@pytest.mark.parametrize(
    ("event", "wire"),
    [
        (Event("hello"), b"data: hello\n\n"),
        (Event(""), b"data: \n\n"),
        (Event("a\nb"), b"data: a\ndata: b\n\n"),
        (Event("a\r\nb\rc"), b"data: a\ndata: b\ndata: c\n\n"),
        (Event("a\n"), b"data: a\ndata: \n\n"),
        (Event("x", event="tick"), b"event: tick\ndata: x\n\n"),
        (Event("x", id="7"), b"id: 7\ndata: x\n\n"),
        (Event("x", id=""), b"id\ndata: x\n\n"),
        (Event("x", retry=0), b"retry: 0\ndata: x\n\n"),
        (
            Event("x", event="e", id="1", retry=3000),
            b"event: e\nid: 1\nretry: 3000\ndata: x\n\n",
        ),
        (Event(" leading space"), b"data:  leading space\n\n"),
        (Event("caf\u00e9 \u2603"), "data: caf\u00e9 \u2603\n\n".encode()),
    ],
)
def test_encode_event_bytes(event: Event, wire: bytes) -> None:
    assert encode_event(event) == wire


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c"])
def test_data_is_split_only_on_cr_and_lf(char: str) -> None:
    # str.splitlines() would split on all of these; the format does not.
    assert encode_event(Event(f"a{char}b")) == f"data: a{char}b\n\n".encode()


def test_comments() -> None:
    assert encode_comment() == b":\n\n"
    assert encode_comment("ping") == b": ping\n\n"
    assert encode_comment("a\r\nb\nc") == b": a\n: b\n: c\n\n"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"id": "1\ndata: injected"}, "id"),
        ({"id": "1\r2"}, "id"),
        ({"id": "1\x002"}, "id"),
        ({"event": "a\nb"}, "event"),
        ({"event": "a\rb"}, "event"),
        ({"event": ""}, "event"),
        ({"retry": -1}, "retry"),
        ({"retry": 1.5}, "retry"),
        ({"retry": "10"}, "retry"),
        ({"retry": True}, "retry"),
        ({"data": b"bytes"}, "data"),
        ({"id": 5}, "id"),
    ],
)
def test_illegal_fields_are_refused_by_name(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(LocalProtocolError, match=rf"Event {field}\b"):
        Event(**kwargs)  # type: ignore[arg-type]


def test_local_protocol_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        Event("x", id="a\nb")


def test_event_is_frozen() -> None:
    event = Event("x")
    with pytest.raises(AttributeError):
        event.data = "y"  # type: ignore[misc]


def test_event_takes_its_fields_as_the_dataclass_would() -> None:
    """`Event.__init__` is written by hand (its slots set through their
    descriptors): the same parameters, order and defaults as its fields,
    positional or by name, and a copy by `dataclasses.replace` validated."""
    params = list(inspect.signature(Event).parameters.values())
    fields = dataclasses.fields(Event)
    assert [p.name for p in params] == [f.name for f in fields]
    assert [p.default for p in params] == [f.default for f in fields]
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)
    assert Event("d", "t", "1", 5) == Event(retry=5, id="1", event="t", data="d")
    assert Event() == Event("", "message", None, None)
    with pytest.raises(LocalProtocolError, match="Event id"):
        dataclasses.replace(Event("x"), id="a\nb")
    with pytest.raises(TypeError):
        Event("a", "b", "c", 1, 2)  # type: ignore[call-arg]
