"""`parse_form`, the one-pass reader of a publish's form body: the same
fields as `parse_fields` (the general form reader), refused the same way."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssehub.mercure import HTTPError
from ssehub.mercure._request import parse_fields, parse_form


def test_plus_is_a_space_and_escapes_are_bytes() -> None:
    topics, form = parse_form(b"topic=a+b&data=1%2B1%3D2+%26+x&type=%E2%9C%93")
    assert topics == ["a b"]
    assert form == {"data": "1+1=2 & x", "type": "\u2713"}


def test_names_are_unquoted_too() -> None:
    topics, form = parse_form(b"%74opic=t&da%74a=x&pri+vate=1")
    assert topics == ["t"]
    assert form == {"data": "x", "pri vate": "1"}


def test_a_bad_escape_stays_as_sent() -> None:
    topics, form = parse_form(b"topic=%zz&data=100%&id=%4&type=%%41")
    assert topics == ["%zz"]
    assert form == {"data": "100%", "id": "%4", "type": "%A"}


def test_every_topic_in_order_and_the_first_of_every_other_field() -> None:
    topics, form = parse_form(b"topic=b&data=1&topic=a&data=2&topic=b&id=x&id=y")
    assert topics == ["b", "a", "b"]  # as sent: the hub keeps the first of each
    assert form == {"data": "1", "id": "x"}


def test_empty_parts_are_skipped_and_empty_values_kept() -> None:
    topics, form = parse_form(b"&&topic=&data=&private&&=v&")
    assert topics == [""]  # `_publish` refuses it: "empty 'topic' field"
    assert form == {"data": "", "private": "", "": "v"}
    assert parse_form(b"") == ([], {})


def test_a_value_may_hold_equals_signs() -> None:
    assert parse_form(b"topic=t&data=a=b==c") == (["t"], {"data": "a=b==c"})


def test_raw_utf8_is_taken_with_or_without_escapes_beside_it() -> None:
    body = "topic=caf\u00e9&data=\u00e9+%C3%A9".encode()
    assert parse_form(body) == (["caf\u00e9"], {"data": "\u00e9 \u00e9"})


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"topic=a%FF", "form field 'topic' is not valid UTF-8"),
        (b"topic=ok&data=%C3", "form field 'data' is not valid UTF-8"),
        (b"topic=ok&data=\xff", "form field 'data' is not valid UTF-8"),
        (b"to%FFpic=x&topic=ok", "form field name 'to\ufffdpic' is not valid UTF-8"),
        (b"topic=\xc3&data=%FF", "form field 'topic' is not valid UTF-8"),  # the first one
    ],
)
def test_a_field_that_is_not_utf8_is_a_400_naming_it(body: bytes, reason: str) -> None:
    with pytest.raises(HTTPError) as refused:
        parse_form(body)
    assert (refused.value.status, refused.value.reason) == (400, reason)


def test_halves_of_a_character_across_a_raw_byte_and_an_escape_join_as_before() -> None:
    # not UTF-8 as sent, UTF-8 once unescaped: taken, as the general reader takes it
    assert parse_form(b"topic=\xc3%A9") == (["\u00e9"], {})


def _as_publish(fields: dict[str, list[str]]) -> tuple[list[str], dict[str, str]]:
    topics = fields.pop("topic", [])
    return topics, {name: values[0] for name, values in fields.items()}


PIECES = [
    b"topic", b"data", b"id", b"private", b"=", b"&", b"+", b"%", b"%2", b"%41", b"%2B",
    b"%26", b"%3D", b"%FF", b"%C3", b"%A9", b"%zz", b"\xc3", b"\xa9", b"\xc3\xa9", b"a", b"",
    b"\xff", "\u2713".encode(),
]  # fmt: skip


def _general(body: bytes) -> object:
    return _as_publish(parse_fields(body, "form field"))


def _reading(reader: Callable[[bytes], object], body: bytes) -> object:
    """What `reader` makes of `body`: its answer, or its refusal."""
    try:
        return reader(body)
    except HTTPError as error:
        return (error.status, error.reason)


@given(st.lists(st.sampled_from(PIECES), max_size=12).map(b"".join))
def test_it_reads_every_body_as_the_general_reader_does(body: bytes) -> None:
    assert _reading(parse_form, body) == _reading(_general, body)


@given(st.binary(max_size=64))
def test_any_bytes_are_read_as_the_general_reader_does(body: bytes) -> None:
    assert _reading(parse_form, body) == _reading(_general, body)


def test_parse_form_refuses_more_topic_fields_than_asked_as_it_reads_them() -> None:
    assert parse_form(b"topic=a&topic=b&data=x", 2) == (["a", "b"], {"data": "x"})
    for body in (
        b"topic=a&topic=b&topic=c",
        b"topic=a&topic=a&topic=a",
        b"topic=%61&topic=b&topic=c",
    ):
        with pytest.raises(HTTPError) as refused:
            parse_form(body, 2)
        assert (refused.value.status, refused.value.reason) == (
            400,
            "more than 2 'topic' fields in one publish",
        )
    with pytest.raises(HTTPError):  # not UTF-8: the slow path holds it too
        parse_form(b"topic=a&topic=b&topic=c&data=\xff", 2)
    assert parse_form(b"&".join([b"topic=t"] * 100))[0] == ["t"] * 100  # no bound asked
